from __future__ import annotations

import orjson
import pytest

from sidecar.errors import InvalidInputError
from sidecar.trace import Trace, decode_trace, detect_format, trace_from_object
from tests.conftest import make_trace


def test_native_trace_parses_with_rfc3339_and_epoch() -> None:
    t = decode_trace(orjson.dumps(make_trace()))
    assert t.trace_id == "t-1"
    assert t.timestamp == 1795168800.0
    assert [c.id for c in t.chunks] == ["kb-1", "kb-2"]
    t2 = decode_trace(orjson.dumps(make_trace(timestamp=1795168800)))
    assert t2.timestamp == t.timestamp


def test_missing_chunk_ids_default_to_rank() -> None:
    t = trace_from_object(make_trace(chunks=[{"text": "a"}, {"text": "b", "id": 7}]))
    assert [c.id for c in t.chunks] == ["0", "7"]


def test_empty_answer_is_accepted() -> None:
    assert decode_trace(orjson.dumps(make_trace(answer=""))).answer == ""


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"hello": "world"}', "unknown_format"),
        (orjson.dumps(make_trace(chunks="nope")), "invalid_trace"),
        (orjson.dumps(make_trace(timestamp="yesterday")), "invalid_trace"),
        (orjson.dumps(make_trace(timestamp="2026-11-20T10:00:00")), "invalid_trace"),
        (orjson.dumps(make_trace(trace_id="")), "invalid_trace"),
        (orjson.dumps({"query": "q", "answer": "a"}), "invalid_trace"),
        # non-finite numbers: JSON events would carry null, Prometheus sums NaN for good
        (orjson.dumps(make_trace(timestamp="nan")), "invalid_trace"),
        (orjson.dumps(make_trace(timestamp="inf")), "invalid_trace"),
        (orjson.dumps(make_trace(timestamp="1e400")), "invalid_trace"),
        (orjson.dumps(make_trace(feedback={"rating": "NaN"})), "invalid_trace"),
        (orjson.dumps(make_trace(feedback={"rating": "-Infinity"})), "invalid_trace"),
    ],
)
def test_invalid_input_has_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        decode_trace(raw)
    assert info.value.reason == reason
    assert info.value.detail


def test_too_large() -> None:
    with pytest.raises(InvalidInputError) as info:
        decode_trace(orjson.dumps(make_trace(answer="x" * 5000)), max_bytes=1000)
    assert info.value.reason == "too_large"


def test_nemo_row_gets_deterministic_id() -> None:
    row = {
        "query": "What is the refund window?",
        "retrieved_docs": [{"title": "refunds.md", "text": "Refunds within 30 days."}],
        "reference": "30 days",
        "output": "You can get a refund within 30 days.",
    }
    assert detect_format(row) == "nemo"
    a, b = trace_from_object(dict(row)), trace_from_object(dict(row))
    assert a.trace_id == b.trace_id and len(a.trace_id) == 32
    assert a.chunks[0].source == "refunds.md"
    assert a.answer.startswith("You can") and a.reference == "30 days"
    other = trace_from_object({**row, "output": "something else"})
    assert other.trace_id != a.trace_id


@pytest.mark.parametrize(
    "row",
    [
        {"question": "q?", "contexts": ["c1", "c2"], "answer": "a", "ground_truth": "g"},
        {"user_input": "q?", "retrieved_contexts": ["c1", "c2"], "response": "a", "reference": "g"},
    ],
)
def test_ragas_rows_old_and_new(row: dict[str, object]) -> None:
    assert detect_format(row) == "ragas"
    t = trace_from_object(row)
    assert t.query == "q?" and t.answer == "a" and t.reference == "g"
    assert [c.text for c in t.chunks] == ["c1", "c2"]
    assert t.metadata["format"] == "ragas"


def test_schema_documents_fields() -> None:
    schema = Trace.model_json_schema()
    assert {"trace_id", "query", "answer"} <= set(schema["required"])
    assert "chunks" in schema["properties"] and "feedback" in schema["properties"]


@pytest.mark.parametrize(
    "stamp",
    [1_793_491_200.5, 1_793_491_200_500, 1_793_491_200_500_000, 1_793_491_200_500_000_000],
)
def test_epoch_milliseconds_micro_and_nanoseconds_are_read_as_seconds(stamp: float) -> None:
    """JavaScript's Date.now() (ms) and OTel clocks (ns) were read as seconds: the year
    58,800, a drift window never reached, an event no consumer could place."""
    trace = trace_from_object({"trace_id": "t", "query": "q", "answer": "a", "timestamp": stamp})
    assert trace.timestamp == pytest.approx(1_793_491_200.5)


def test_an_integer_trace_id_is_text_as_in_the_other_formats() -> None:
    """A database key as trace_id was dead-lettered (NeMo and RAGAS rows took it)."""
    trace = trace_from_object({"trace_id": 123, "query": "q", "answer": "a"})
    assert trace.trace_id == "123"
    with pytest.raises(InvalidInputError):
        trace_from_object({"trace_id": True, "query": "q", "answer": "a"})
