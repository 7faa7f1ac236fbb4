"""The reply schema sent as response_format agrees with the parser and sizes itself to the trace."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sidecar.scorers.judge.parse import ClaimOut, FactOut, JudgeReply, RubricOut, parse_reply
from sidecar.scorers.judge.schema import reply_schema, response_format


def required(schema: dict[str, Any]) -> set[str]:
    assert schema["additionalProperties"] is False  # OpenAI strict subset
    assert set(schema["required"]) == set(schema["properties"])
    return set(schema["required"])


def test_every_field_the_parser_reads_is_in_the_schema_and_nothing_else() -> None:
    full = reply_schema(3, with_reference=True, with_rubric=True, with_factual=True)
    assert required(full) == set(JudgeReply.model_fields)
    assert next(iter(full["properties"])) == "factual"  # decided first, in decoding order
    props = full["properties"]
    assert required(props["claims"]["items"]) == set(ClaimOut.model_fields)
    assert required(props["reference_facts"]["items"]) == set(FactOut.model_fields)
    assert required(props["rubric"]) == set(RubricOut.model_fields)
    core = reply_schema(3, with_reference=False, with_rubric=False)
    assert required(core) == {"claims", "answer_relevance", "chunk_relevance", "sufficient"}


@pytest.mark.parametrize("n", [0, 1, 5])
def test_exactly_one_grade_per_chunk_and_chunk_numbers_in_range(n: int) -> None:
    props = reply_schema(n, with_reference=True, with_rubric=False)["properties"]
    grades = props["chunk_relevance"]
    assert grades["minItems"] == grades["maxItems"] == n
    assert grades["items"]["enum"] == [0, 1, 2]
    chunk = props["claims"]["items"]["properties"]["chunk"]
    fact_chunk = props["reference_facts"]["items"]["properties"]["chunk"]
    assert chunk == fact_chunk
    if n == 0:
        assert chunk == {"type": "null"}
    else:
        assert chunk["anyOf"][0]["enum"] == list(range(1, n + 1))


def test_a_reply_the_schema_describes_parses() -> None:
    props = reply_schema(2, with_reference=False, with_rubric=False)["properties"]
    verdicts = props["claims"]["items"]["properties"]["verdict"]["enum"]
    reply = {
        "claims": [{"claim": "x", "verdict": v, "chunk": 1, "quote": ""} for v in verdicts],
        "answer_relevance": props["answer_relevance"]["enum"][-1],
        "chunk_relevance": [2, 0],
        "sufficient": True,
    }
    parsed = parse_reply(
        orjson.dumps(reply).decode(), n_chunks=2, with_reference=False, with_rubric=False
    )
    assert [c.verdict for c in parsed.claims] == verdicts


def test_wire_forms() -> None:
    schema = reply_schema(1, with_reference=False, with_rubric=False)
    assert response_format("none", schema) is None
    assert response_format("json_object", schema) == {"type": "json_object"}
    assert response_format("inline", schema) == {"type": "json_object", "schema": schema}
    assert response_format("json_schema", None) == {"type": "json_object"}
    wrapped = response_format("json_schema", schema)
    assert wrapped is not None and wrapped["json_schema"]["schema"] is schema
