"""Feedback records: decoding beside traces, validation, dead letters, schema, OTLP carriers."""

from __future__ import annotations

import orjson
import pytest

from sidecar.app import build_engine
from sidecar.config import Settings
from sidecar.errors import InvalidInputError
from sidecar.feedback import (
    FeedbackRecord,
    decode_record,
    feedback_json_schema,
    feedback_key,
    late_feedback_record,
)
from sidecar.stages import DeadLetter, Record, Result
from sidecar.trace import Feedback, Trace
from tests.conftest import make_trace


def fb(**over: object) -> bytes:
    doc: dict[str, object] = {"type": "feedback", "trace_id": "t-1", "thumbs": "down"}
    doc.update(over)
    return orjson.dumps(doc)


def test_a_feedback_record_and_a_trace_are_told_apart() -> None:
    rec = decode_record(fb(timestamp="2026-11-20T10:05:00Z", rating=2, comment="no", source="w"))
    assert isinstance(rec, FeedbackRecord)
    assert (rec.trace_id, rec.thumbs, rec.rating, rec.comment, rec.source) == (
        "t-1",
        "down",
        2.0,
        "no",
        "w",
    )
    assert rec.timestamp == 1795169100.0
    assert isinstance(decode_record(orjson.dumps(make_trace())), Trace)


def test_timestamp_defaults_to_arrival_and_accepts_epoch_seconds() -> None:
    rec = decode_record(fb(timestamp=1795169100))
    assert isinstance(rec, FeedbackRecord) and rec.timestamp == 1795169100.0
    rec = decode_record(fb())
    assert isinstance(rec, FeedbackRecord) and rec.timestamp > 1.7e9


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"thumbs": None}, "needs thumbs, rating or comment"),
        ({"thumbs": "sideways"}, "thumbs"),
        ({"trace_id": ""}, "trace_id"),
        ({"trace_id": None}, "trace_id"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"rating": "five"}, "rating"),
        ({"rating": [4]}, "rating"),
    ],
)
def test_invalid_feedback_is_invalid_trace(over: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        decode_record(fb(**over))
    assert err.value.reason == "invalid_trace"
    assert err.value.detail.startswith("feedback: ") and needle in err.value.detail


def test_error_details_never_carry_the_comment() -> None:
    with pytest.raises(InvalidInputError) as err:
        decode_record(fb(thumbs="meh", comment="my phone is 555-0100"))
    assert "555" not in err.value.detail


def test_engine_returns_feedback_only_when_accepted() -> None:
    engine = build_engine(Settings())
    raw = fb(comment="x")
    letter = engine.process(Record(raw, "f:1"), "file")
    assert isinstance(letter, DeadLetter) and letter.reason == "invalid_trace"
    assert "feedback is off" in letter.detail
    engine.accept_feedback = True
    assert isinstance(engine.process(Record(raw, "f:1"), "file"), FeedbackRecord)
    bad = engine.process(Record(fb(thumbs=1), "f:2"), "file")
    assert isinstance(bad, DeadLetter) and bad.reason == "invalid_trace" and bad.raw == fb(thumbs=1)
    trace = engine.process(Record(orjson.dumps(make_trace()), "f:3"), "file")
    assert isinstance(trace, Result)


def test_key_ignores_timestamp_and_source() -> None:
    a = decode_record(fb(timestamp=1, source="web", comment="c"))
    b = decode_record(fb(timestamp=2, source="app", comment="c"))
    assert isinstance(a, FeedbackRecord) and isinstance(b, FeedbackRecord)
    assert feedback_key(a.thumbs, a.rating, a.comment) == feedback_key(
        b.thumbs, b.rating, b.comment
    )
    assert feedback_key("down", None, None) != feedback_key("up", None, None)


def test_late_otlp_feedback_becomes_a_feedback_record() -> None:
    rec = late_feedback_record("ab" * 16, Feedback(thumbs="up", comment="ok"), arrival=1795169100.0)
    assert rec.origin == f"otlp:feedback:{'ab' * 16}" and rec.trace is None
    out = decode_record(rec.value)
    assert isinstance(out, FeedbackRecord)
    assert (out.thumbs, out.comment, out.source, out.timestamp) == (
        "up",
        "ok",
        "otlp_annotation",
        1795169100.0,
    )


def test_schema_documents_every_field() -> None:
    schema = feedback_json_schema()
    assert schema["title"] == "FeedbackRecord"
    assert set(schema["properties"]) == {
        "type",
        "trace_id",
        "timestamp",
        "thumbs",
        "rating",
        "comment",
        "source",
        "app",
        "model",
        "prompt_version",
    }
    assert schema["required"] == ["type", "trace_id"]


def test_feedback_timestamp_in_milliseconds_is_read_as_seconds() -> None:
    doc = {"type": "feedback", "trace_id": "t", "thumbs": "up", "timestamp": 1_793_491_200_000}
    rec = decode_record(orjson.dumps(doc))
    assert isinstance(rec, FeedbackRecord) and rec.timestamp == 1_793_491_200


def test_an_integer_trace_id_joins_the_trace_of_that_id() -> None:
    rec = decode_record(orjson.dumps({"type": "feedback", "trace_id": 123, "thumbs": "up"}))
    assert isinstance(rec, FeedbackRecord) and rec.trace_id == "123"
