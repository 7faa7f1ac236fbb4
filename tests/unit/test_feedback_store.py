"""The trace store: LRU by count and bytes, full-trace budget, event-time window, honest bytes."""

from __future__ import annotations

import gc
import tracemalloc

import orjson

from sidecar.events import Labels
from sidecar.feedback.outputs import pack
from sidecar.feedback.pending import PendingFeedback, Waiting
from sidecar.feedback.record import FeedbackRecord, decode_record
from sidecar.feedback.store import BODY_OVERHEAD, JUDGED, Last, TraceStore
from tests.conftest import make_trace

SCORES = {
    "groundedness_lexical": 0.91,
    "answer_query_overlap": 0.6,
    "context_query_overlap": 0.75,
    "conciseness": 1.0,
    "citation_validity": 1.0,
    "context_redundancy": 0.0,
    "retrieval_top_score": 0.82,
    "retrieval_mean_score": 0.61,
    "retrieval_score_gap": 0.21,
    "retrieval_count": 2.0,
    "answer_length": 12.0,
}


def blob(i: int = 0) -> bytes:
    labels = Labels("support-bot", "gpt-4o-mini", f"v{i % 3}", "bm25")
    return pack("file", labels, dict(SCORES), ["invalid_citation"] if i % 2 else [])


def store(**over: float) -> TraceStore:
    kw: dict[str, float] = {
        "max_traces": 1000,
        "max_bytes": 1 << 30,
        "max_body_bytes": 1 << 30,
        "window_s": 3600,
    }
    kw.update(over)
    return TraceStore(**kw)  # type: ignore[arg-type]


def test_lru_by_count_keeps_the_recently_used() -> None:
    st = store(max_traces=3)
    for i in range(3):
        st.put(f"t{i}", float(i), blob(i), 0)
    assert st.get("t0") is not None  # touched: now the most recent
    st.put("t3", 3.0, blob(3), 0)
    assert st.peek("t1") is None and st.peek("t0") is not None and len(st) == 3
    assert st.evicted["entry", "max_traces"] == 1


def test_bytes_cap_evicts_oldest_and_accounting_balances() -> None:
    st = store(max_traces=10**6, max_bytes=20_000)
    for i in range(500):
        st.put(f"trace-{i:05d}", float(i), blob(i), 0)
        assert st.bytes <= 20_000
    assert 0 < len(st) < 500 and st.evicted["entry", "max_bytes"] == 500 - len(st)
    held = [e for i in range(500) if (e := st.peek(f"trace-{i:05d}")) is not None]
    assert st.bytes == sum(e.size for e in held)


def test_bodies_have_their_own_smaller_budget() -> None:
    raw = orjson.dumps(make_trace())
    st = store(max_body_bytes=3 * (len(raw) + 33 + BODY_OVERHEAD))
    for i in range(10):
        st.put(f"t{i}", float(i), blob(i), 0, raw, len(raw) + 33)
        assert st.body_bytes <= st.max_body_bytes
    assert st.bodies == 3 and len(st) == 10
    assert st.peek("t0").body is None and st.peek("t9").body == raw  # type: ignore[union-attr]
    assert st.evicted["body", "max_trace_bytes"] == 7
    st.put("huge", 11.0, blob(), 0, raw * 10, 10 * len(raw))
    assert st.peek("huge").body is None and st.bodies == 3  # type: ignore[union-attr]


def test_window_expires_by_event_time() -> None:
    st = store(window_s=100)
    for i in range(10):
        st.put(f"t{i}", 1000.0 + 10 * i, blob(i), 0)
    assert st.expire(1000.0 + 150) == 5  # older than 1050 go
    assert st.peek("t4") is None and st.peek("t5") is not None
    assert st.evicted["entry", "window"] == 5


def test_redelivery_keeps_feedback_and_judge_state() -> None:
    st = store()
    e = st.put("t", 1.0, blob(), 0, b"{}", 35)
    e.last = Last("k", "up", None, "ev")
    e.judge = orjson.dumps({"faithfulness": 1.0})
    e.state |= JUDGED
    st.drop_body("t", e)
    st.update("t", e)
    again = st.put("t", 1.0, blob(), 1, b"{}", 35)
    assert again is e and e.last is not None and e.judge is not None and e.state & JUDGED
    assert e.body is None, "a judged trace's full trace is not needed any more"
    assert st.bytes == e.size


def _measure(fill):  # type: ignore[no-untyped-def]
    gc.collect()
    tracemalloc.start()
    try:
        held = fill()
        gc.collect()
        return held, tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def test_byte_accounting_stays_under_cap_and_matches_real_memory() -> None:
    raw = orjson.dumps(make_trace())
    cap, body_cap = 2 << 20, 1 << 20

    def fill() -> TraceStore:
        st = store(max_traces=10**6, max_bytes=cap, max_body_bytes=body_cap)
        for i in range(30_000):
            own = raw[:-1] + raw[-1:]  # a bytes object of its own, as a source reads it
            st.put(f"trace-{i:08d}", float(i), blob(i), 0, own, len(own) + 33)
            if i % 1000 == 0:
                assert st.bytes <= cap and st.body_bytes <= body_cap
        return st

    st, measured = _measure(fill)
    accounted = st.bytes + st.body_bytes
    assert st.bytes <= cap and st.body_bytes <= body_cap and len(st) < 30_000
    assert 0.8 * measured <= accounted <= 1.25 * measured, (accounted, measured)


def test_pending_accounting_matches_real_memory() -> None:
    def fill() -> PendingFeedback:
        p = PendingFeedback(max_items=10**6, max_bytes=1 << 30, window_s=60)
        for i in range(5_000):
            doc = {"type": "feedback", "trace_id": f"trace-{i:08d}", "thumbs": "up"}
            if i % 2:
                doc.update(comment=f"comment number {i} " * 3, rating=4, source="widget")
            rec = decode_record(orjson.dumps(doc))
            assert isinstance(rec, FeedbackRecord)
            p.add(Waiting(rec, "file", 0.0))
        return p

    p, measured = _measure(fill)
    assert 0.8 * measured <= p.bytes <= 1.25 * measured, (p.bytes, measured)
