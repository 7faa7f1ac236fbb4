"""Strict parsing of judge replies."""

from __future__ import annotations

import orjson
import pytest

from sidecar.scorers.judge.parse import extract_json_object, parse_reply

GOOD = {
    "claims": [{"claim": "A", "verdict": "Supported", "chunk": 1, "quote": "a"}],
    "answer_relevance": 3,
    "chunk_relevance": [2, 0],
    "sufficient": True,
}


def test_parses_and_normalises_verdict_words() -> None:
    doc = {**GOOD, "claims": [{"claim": "A", "verdict": "Not in context", "quote": None}]}
    reply = parse_reply(
        orjson.dumps(doc).decode(), n_chunks=2, with_reference=False, with_rubric=False
    )
    assert reply.claims[0].verdict == "not_in_context"
    assert reply.claims[0].quote == "" and reply.claims[0].chunk is None


@pytest.mark.parametrize(
    "wrap",
    [
        "```json\n{}\n```",
        "```\n{}\n```",
        "Here you go:\n{}\nHope it helps.",
        "  {}  ",
    ],
)
def test_fences_and_prose_around_the_object_are_cut(wrap: str) -> None:
    content = wrap.replace("{}", orjson.dumps(GOOD).decode())
    assert parse_reply(content, n_chunks=2, with_reference=False, with_rubric=False).sufficient


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("no json here", "no JSON object"),
        ('{"claims": [', "not valid JSON"),
        ("[1, 2]", "no JSON object"),
        (orjson.dumps({**GOOD, "answer_relevance": 5}).decode(), "answer_relevance"),
        (orjson.dumps({**GOOD, "chunk_relevance": [2]}).decode(), "expected 2 grades"),
        (
            orjson.dumps({**GOOD, "claims": [{"claim": "A", "verdict": "maybe"}]}).decode(),
            "verdict",
        ),
        (orjson.dumps({k: v for k, v in GOOD.items() if k != "sufficient"}).decode(), "sufficient"),
    ],
)
def test_invalid_replies_raise_value_error(content: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_reply(content, n_chunks=2, with_reference=False, with_rubric=False)


def test_reference_and_rubric_required_when_asked() -> None:
    content = orjson.dumps(GOOD).decode()
    with pytest.raises(ValueError, match="reference_facts"):
        parse_reply(content, n_chunks=2, with_reference=True, with_rubric=False)
    with pytest.raises(ValueError, match="rubric"):
        parse_reply(content, n_chunks=2, with_reference=False, with_rubric=True)
    full = {
        **GOOD,
        "reference_facts": [{"fact": "F", "answer": "Stated", "chunk": None}],
        "rubric": {
            "clarity": 3,
            "completeness": 2,
            "conciseness": 1,
            "groundedness": 2,
            "harmfulness": 0,
        },
    }
    reply = parse_reply(
        orjson.dumps(full).decode(), n_chunks=2, with_reference=True, with_rubric=True
    )
    assert reply.reference_facts is not None and reply.reference_facts[0].answer == "stated"
    assert reply.rubric is not None and reply.rubric.clarity == 3


def test_extract_rejects_non_objects() -> None:
    with pytest.raises(ValueError):
        extract_json_object("```json\n```")


def test_factual_verdict_required_only_when_the_prompt_asks() -> None:
    content = orjson.dumps(GOOD).decode()
    assert parse_reply(content, n_chunks=2, with_reference=False, with_rubric=False).factual is None
    with pytest.raises(ValueError, match="factual"):
        parse_reply(content, n_chunks=2, with_reference=False, with_rubric=False, with_factual=True)
    said = orjson.dumps({"factual": False, **GOOD}).decode()
    reply = parse_reply(
        said, n_chunks=2, with_reference=False, with_rubric=False, with_factual=True
    )
    assert reply.factual is False


@pytest.mark.parametrize(
    "wrap",
    [
        "```json\n{}\n```\nThe answer is grounded in chunk 1.",
        "Here it is:\n```json\n{}\n```\nLet me know if you need {more}.",
        "{}\n\nNote: chunks are numbered from 1, as in {chunk}.",
        '<think>The format is {"claims": [...]} so I list them.</think>\n{}',
        "<think>\nFirst claim {A} is supported.\n</think>\n\n```json\n{}\n```",
    ],
)
def test_what_real_models_put_around_the_object_is_cut(wrap: str) -> None:
    """Prose after a fence, and reasoning blocks (<think>) holding braces, are not the reply."""
    content = wrap.replace("{}", orjson.dumps(GOOD).decode())
    assert parse_reply(content, n_chunks=2, with_reference=False, with_rubric=False).sufficient


def test_an_unfinished_reasoning_block_is_not_mined_for_json() -> None:
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json_object('<think>I will answer {"claims": []} once I')
