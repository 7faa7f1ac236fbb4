"""The joiner: order, duplicates, unknown traces, windows, inline feedback, restarts, agreement."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_engine
from sidecar.config import Settings
from sidecar.events import FeedbackView, Sampling
from sidecar.feedback import FeedbackJoiner, FeedbackRecord, FeedbackSettings, decode_record
from sidecar.stages import Record, Result
from tests.conftest import make_trace

T0 = 1795168800.0  # 2026-11-20T10:00:00Z, the traces' time


class Clock:
    def __init__(self, now: float = T0 + 60) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


ENGINE = build_engine(Settings(sampling={"rate": 0.0}))


def scored(trace_id: str = "t-1", **over: Any) -> tuple[Result, bytes]:
    raw = orjson.dumps(make_trace(trace_id=trace_id, timestamp=T0, **over))
    out = ENGINE.process(Record(raw, "test"), "file")
    assert isinstance(out, Result)
    return out, raw


def fb(trace_id: str = "t-1", **over: Any) -> FeedbackRecord:
    doc: dict[str, Any] = {"type": "feedback", "trace_id": trace_id, "timestamp": T0 + 30}
    doc.update({"thumbs": "down", **over})
    rec = decode_record(orjson.dumps(doc))
    assert isinstance(rec, FeedbackRecord)
    return rec


def joiner(
    clock: Clock | None = None, registry: CollectorRegistry | None = None, **over: Any
) -> tuple[FeedbackJoiner, CollectorRegistry]:
    registry = registry or CollectorRegistry()
    kw = {k: over.pop(k) for k in ("keep_traces", "label_ttl_s", "max_apps") if k in over}
    j = FeedbackJoiner(FeedbackSettings(**over), registry, clock=clock or Clock(), **kw)
    return j, registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_feedback_after_its_trace_joins_at_once() -> None:
    j, reg = joiner()
    j.scored(*scored(app="shop"))
    j.feedback(fb(thumbs="down", rating=2, comment="wrong", source="widget"), "kafka", T0 + 31)
    [res], late = j.take()
    ev = res.event
    assert ev.type == "feedback" and ev.trace_id == "t-1" and ev.source == "kafka"
    assert ev.labels.app == "shop" and ev.scores == {} and ev.timestamp == T0 + 30
    assert ev.feedback == FeedbackView("down", 2.0) and ev.sampled == Sampling()
    d = ev.detail
    assert d is not None
    assert d["joined"] is True and d["time_to_feedback_s"] == 30.0 and d["judged"] is False
    assert (d["thumbs"], d["rating"], d["comment"], d["source"]) == ("down", 2.0, "wrong", "widget")
    assert d["scores"]["groundedness_lexical"] > 0.5 and d["trace_timestamp"] == T0
    assert late == [], "no judge: full traces are not kept"
    assert value(reg, "rag_sidecar_feedback_joined_total", order="trace_first") == 1
    assert value(reg, "rag_sidecar_time_to_feedback_seconds_count", app="shop") == 1
    assert value(reg, "rag_sidecar_time_to_feedback_seconds_sum", app="shop") == 30


def test_feedback_before_its_trace_waits_and_joins() -> None:
    j, reg = joiner()
    j.feedback(fb(thumbs="up"), "kafka", T0 + 31)
    assert j.take() == ([], []) and len(j.pending) == 1
    j.scored(*scored())
    [res], _ = j.take()
    assert res.event.detail is not None and res.event.detail["joined"] is True
    assert res.event.feedback == FeedbackView("up", None)
    assert value(reg, "rag_sidecar_feedback_joined_total", order="feedback_first") == 1
    assert len(j.pending) == 0 and j.pending.bytes == 0


def test_duplicates_are_idempotent_and_updates_win() -> None:
    j, reg = joiner()
    j.scored(*scored())
    j.feedback(fb(thumbs="up"), "file", T0)
    [first], _ = j.take()
    j.feedback(fb(thumbs="up", timestamp=T0 + 99), "file", T0)  # same content, other time
    assert j.take() == ([], [])
    j.feedback(fb(thumbs="down", comment="actually wrong"), "file", T0)
    [second], _ = j.take()
    assert second.event.event_id != first.event.event_id
    assert second.event.detail is not None
    assert second.event.detail["supersedes"] == first.event.event_id
    assert second.event.feedback == FeedbackView("down", None)
    assert second.event.detail["retracted"] == "up", "net votes: counted minus retracted"
    assert "retracted" not in (first.event.detail or {})
    j.feedback(fb(thumbs="down", comment="actually wrong"), "file", T0)
    assert j.take() == ([], [])
    assert value(reg, "rag_sidecar_feedback_duplicates_total", kind="identical") == 2
    assert value(reg, "rag_sidecar_feedback_duplicates_total", kind="updated") == 1
    assert value(reg, "rag_sidecar_feedback_joined_total", order="trace_first") == 1
    assert value(reg, "rag_sidecar_time_to_feedback_seconds_count", app="support-bot") == 1


SEQUENCES = {
    "repeat_then_change": [{"thumbs": "up"}, {"thumbs": "up"}, {"thumbs": "down"}],
    "thumbs_then_comment": [{"thumbs": "down"}, {"thumbs": None, "comment": "wrong plan"}],
    "rating_then_new_rating": [{"thumbs": "down", "rating": 2}, {"thumbs": None, "rating": 4}],
}


def _outcome(feedback_first: bool, records: list[dict[str, Any]]) -> tuple[Any, ...]:
    j, reg = joiner()
    if not feedback_first:
        j.scored(*scored())
    for over in records:
        j.feedback(fb(**over), "file", T0)
    if feedback_first:
        j.scored(*scored())
    events, _ = j.take()
    counters = tuple(
        value(reg, name, **labels)
        for name, labels in (
            ("rag_sidecar_feedback_duplicates_total", {"kind": "identical"}),
            ("rag_sidecar_feedback_duplicates_total", {"kind": "updated"}),
            ("rag_sidecar_feedback_joined_total", {"order": "trace_first"}),
            ("rag_sidecar_feedback_joined_total", {"order": "feedback_first"}),
        )
    )
    assert len(j.pending) == 0 and j.pending.bytes == 0
    seen = [(r.event.event_id, r.event.feedback, (r.event.detail or {}).get("supersedes"))
            for r in events]  # fmt: skip
    return seen, counters[:2], sum(counters[2:])


@pytest.mark.parametrize("records", SEQUENCES.values(), ids=SEQUENCES.keys())
def test_feedback_waiting_for_its_trace_joins_as_if_the_trace_came_first(
    records: list[dict[str, Any]],
) -> None:
    """Waiting records used to replace each other: a thumbs-down followed by a comment-only
    record (a widget's second step) lost the thumbs-down when both came before the trace."""
    assert _outcome(True, records) == _outcome(False, records)


def test_a_thumbs_down_then_a_comment_before_the_trace_still_counts_the_thumbs() -> None:
    j, _ = joiner()
    j.feedback(fb(thumbs="down"), "file", T0)
    j.feedback(fb(thumbs=None, comment="wrong plan"), "file", T0)
    assert len(j.pending) == 2
    j.scored(*scored())
    first, second = j.take()[0]
    assert first.event.feedback == FeedbackView("down", None) and second.event.feedback is None
    assert second.event.detail is not None and second.event.detail["comment"] == "wrong plan"


def test_unknown_trace_is_emitted_unjoined_after_the_window() -> None:
    clock = Clock()
    j, reg = joiner(clock, window_s=600)
    j.feedback(fb("nope", thumbs="down", rating=1), "file", clock.now)
    assert j.expire(clock.now + 599) == []
    clock.now += 601
    [res] = j.expire(clock.now)
    ev = res.event
    assert ev.detail is not None and ev.detail["joined"] is False
    assert ev.detail["reason"] == "unknown_trace" and ev.detail["time_to_feedback_s"] is None
    assert ev.labels.app is None and ev.feedback == FeedbackView("down", 1.0)
    assert value(reg, "rag_sidecar_feedback_unjoined_total", reason="unknown_trace") == 1
    assert len(j.pending) == 0


def test_unjoined_feedback_keeps_the_labels_its_sender_gave() -> None:
    """A widget that knows its app (and model, prompt_version) says so: feedback whose trace
    is gone (a restart, another replica) still lands on the right app's thumbs-down rate."""
    clock = Clock()
    j, _ = joiner(clock, window_s=600)
    j.feedback(fb("gone", app="support-bot", model="m1", prompt_version="v7"), "file", clock.now)
    clock.now += 601
    [res] = j.expire(clock.now)
    assert res.event.detail is not None and res.event.detail["joined"] is False
    labels = res.event.labels
    assert (labels.app, labels.model, labels.prompt_version) == ("support-bot", "m1", "v7")


def test_same_feedback_has_the_same_event_id_joined_or_not() -> None:
    j, _ = joiner(window_s=10)
    j.feedback(fb("x", thumbs="up"), "file", T0)
    j.watermark = T0 + 100  # event time moved on: the wait is over
    [unjoined] = j.expire(T0)
    j.scored(*scored("x"))
    j.feedback(fb("x", thumbs="up"), "file", T0)
    [joined], _ = j.take()
    assert joined.event.event_id == unjoined.event.event_id


def test_traces_leave_the_store_after_the_window_by_event_time() -> None:
    j, reg = joiner(window_s=300)
    j.scored(*scored("old"))
    newer, raw = scored("new")
    newer.event.timestamp = T0 + 301
    j.scored(newer, raw)
    j.expire(T0 + 400)
    assert j.store.peek("old") is None and j.store.peek("new") is not None
    j.feedback(fb("old"), "file", T0)
    assert j.take() == ([], []) and len(j.pending) == 1
    assert (
        value(reg, "rag_sidecar_feedback_store_evicted_total", part="entry", reason="window") == 1
    )


def test_future_timestamps_do_not_expire_everything() -> None:
    j, _ = joiner(window_s=300, max_future_s=60)
    j.scored(*scored("a"))
    j.feedback(fb("a", timestamp=T0 + 10**7), "file", T0)
    assert j.watermark <= T0 + 60 + 60
    j.expire(T0 + 60)
    assert j.store.peek("a") is not None


def test_a_full_buffer_gives_up_the_oldest_feedback_first() -> None:
    j, reg = joiner(max_pending=2)
    for i in range(3):
        j.feedback(fb(f"u{i}"), "file", T0)
    [res], _ = j.take()
    assert res.event.trace_id == "u0" and res.event.detail is not None
    assert res.event.detail["reason"] == "buffer_full"
    assert value(reg, "rag_sidecar_feedback_unjoined_total", reason="buffer_full") == 1


def test_inline_feedback_is_not_counted_twice() -> None:
    j, _ = joiner()
    res, raw = scored(feedback={"thumbs": "up", "rating": 5})
    assert res.event.feedback == FeedbackView("up", 5.0)  # counted by the heuristic event
    j.scored(res, raw)
    j.feedback(fb(thumbs="up", rating=5), "file", T0)
    assert j.take() == ([], [])
    j.feedback(fb(thumbs="up", rating=2), "file", T0)
    [res2], _ = j.take()
    assert res2.event.feedback == FeedbackView(None, 2.0), "only the new rating is counted"


async def test_restart_loses_the_store_and_counts_what_arrives_unjoined() -> None:
    before, _ = joiner()
    before.scored(*scored("t-9"))
    written: list[Result] = []

    async def write(results: list[Result]) -> None:
        written.extend(results)

    await before.start(write)
    before.feedback(fb("t-8", thumbs="up"), "file", T0)  # still waiting at shutdown
    await before.aclose()
    [left] = written
    assert left.event.detail is not None and left.event.detail["reason"] == "shutdown"
    clock = Clock()
    after, reg = joiner(clock, window_s=60)  # a new process: nothing remembered
    after.feedback(fb("t-9"), "file", clock.now)
    clock.now += 61
    [res] = after.expire(clock.now)
    assert res.event.detail is not None and res.event.detail["reason"] == "unknown_trace"
    assert value(reg, "rag_sidecar_feedback_unjoined_total", reason="unknown_trace") == 1


async def test_the_sweeper_writes_given_up_feedback() -> None:
    clock = Clock()
    j, _ = joiner(clock, window_s=1, expire_interval_s=0.01)
    written: list[Result] = []

    async def write(results: list[Result]) -> None:
        written.extend(results)

    await j.start(write)
    j.feedback(fb("gone"), "file", clock.now)
    clock.now += 2
    for _ in range(100):
        if written:
            break
        await asyncio.sleep(0.01)
    await j.aclose()
    assert [r.event.trace_id for r in written] == ["gone"]


async def test_a_hung_write_bounds_the_whole_shutdown_and_is_counted() -> None:
    """shutdown_timeout_s bounds the sweeper's stop and the final write together (the
    chart's grace period counts it once), and writes cut short are counted as failed."""
    clock = Clock()
    j, reg = joiner(clock, window_s=1, expire_interval_s=0.01, shutdown_timeout_s=1.0)
    hung = asyncio.Event()

    async def write(results: list[Result]) -> None:
        hung.set()
        await asyncio.Event().wait()  # a sink retrying for ever

    await j.start(write)
    j.feedback(fb("gone"), "file", clock.now)
    clock.now += 2
    await asyncio.wait_for(hung.wait(), 5)
    j.feedback(fb("left"), "file", clock.now)  # waits for its trace until shutdown
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await j.aclose()
    assert loop.time() - t0 < 1.8  # one timeout, not one for stop and one for the rest
    assert value(reg, "rag_sidecar_feedback_write_failed_total") == 2


def test_agreement_auroc_and_disagreement_flags() -> None:
    j, reg = joiner()
    good = "Open Settings, choose Security and click Reset password."
    bad = "Call the billing team on Mondays for a refund."
    for i in range(10):
        up = i % 2 == 0
        j.scored(*scored(f"t{i}", app="shop", answer=good if up else bad))
        j.feedback(fb(f"t{i}", thumbs="up" if up else "down"), "file", T0)
    events, _ = j.take()
    assert value(reg, "rag_sidecar_feedback_agreement", app="shop", score="groundedness_lexical",
                 stat="auroc") == 1.0  # fmt: skip
    assert value(reg, "rag_sidecar_feedback_agreement", app="shop", score="groundedness_lexical",
                 stat="n") == 10  # fmt: skip
    assert not any(r.event.flags for r in events)
    j.scored(*scored("t-dis", app="shop", answer=good))
    j.feedback(fb("t-dis", thumbs="down"), "file", T0)
    [flagged], _ = j.take()
    assert flagged.event.flags == ["feedback_disagreement"]
    assert flagged.event.detail is not None
    assert flagged.event.detail["disagreement"] == {"groundedness_lexical": 1.0}


def test_primary_judge_scores_join_and_pair_later() -> None:
    j, reg = joiner()
    res, raw = scored(app="shop")
    j.scored(res, raw)
    j.feedback(fb(thumbs="down"), "file", T0)
    j.take()
    shadow = _judge_event(res, 0.1, role="shadow")
    j.judged([shadow])
    assert j.store.peek("t-1").judge is None  # type: ignore[union-attr]
    j.judged([_judge_event(res, 0.95)])
    assert value(reg, "rag_sidecar_feedback_agreement", app="shop", score="faithfulness",
                 stat="n") == 1  # fmt: skip
    j.feedback(fb(thumbs="down", comment="still wrong"), "file", T0)
    [upd], _ = j.take()
    assert upd.event.detail is not None and upd.event.detail["judged"] is True
    assert upd.event.detail["judge_scores"] == {"faithfulness": 0.95}
    assert upd.event.flags == ["feedback_disagreement"]


def _judge_event(res: Result, faithfulness: float, role: str = "primary") -> Result:
    ev = replace(
        res.event, type="judge", scores={"faithfulness": faithfulness}, detail={"role": role}
    )
    return Result(res.trace, ev)


@pytest.mark.parametrize("keep", [True, False])
def test_late_thumbs_down_goes_to_the_judge_once(keep: bool) -> None:
    j, reg = joiner(keep_traces=keep)
    offered: list[Result] = []
    j.scored(*scored())
    j.feedback(fb(thumbs="down", rating=1, comment="private"), "file", T0)
    _, late = j.take()
    if not keep:
        assert late == []
        return
    j.offer_late(late, lambda r: offered.append(r) or True)
    [r] = offered
    assert r.event.sampled.reasons == ["thumbs_down_late"] and r.event.type == "heuristic"
    assert r.trace.feedback is not None and r.trace.feedback.thumbs == "down"
    assert r.trace.feedback.comment is None, "the comment never goes to the judge"
    assert r.trace.query and r.event.scores["groundedness_lexical"] > 0
    j.offer_late(late, lambda r: offered.append(r) or True)
    assert len(offered) == 1
    assert value(reg, "rag_sidecar_feedback_judge_offers_total", outcome="accepted") == 1
    assert value(reg, "rag_sidecar_feedback_judge_offers_total", outcome="already_judged") == 1


def test_late_thumbs_down_respects_sampling_and_refusals() -> None:
    j, reg = joiner(keep_traces=True)
    res, raw = scored("s")
    res.event.sampled = Sampling(True, ["rate"])
    j.scored(res, raw)
    j.feedback(fb("s"), "file", T0)
    _, late = j.take()
    j.offer_late(late, lambda r: True)
    assert value(reg, "rag_sidecar_feedback_judge_offers_total", outcome="already_sampled") == 1
    j.refused("s")
    j.offer_late(late, lambda r: False)
    assert value(reg, "rag_sidecar_feedback_judge_offers_total", outcome="refused") == 1
    j.judged([_judge_event(res, 0.5)])
    assert j.store.peek("s").body is None  # type: ignore[union-attr]
    j.offer_late(late, lambda r: True)
    assert value(reg, "rag_sidecar_feedback_judge_offers_total", outcome="already_judged") == 1


def test_a_long_stream_stays_within_caps_and_loses_no_feedback() -> None:
    """The bench's stream in small: caps hold at every step, every record is accounted for."""
    clock = Clock(T0)
    j, reg = joiner(
        clock,
        keep_traces=True,
        window_s=30,
        max_traces=500,
        max_bytes=200_000,
        max_trace_bytes=100_000,
        max_pending=50,
        max_pending_bytes=40_000,
    )
    base, raw = scored("base")
    sent, emitted = 0, 0
    for i in range(20_000):
        clock.now = T0 + i / 100
        tid = f"tr-{i:06d}"
        ev = replace(base.event, trace_id=tid, timestamp=clock.now)
        j.scored(Result(base.trace, ev), raw.replace(b'"base"', f'"{tid}"'.encode()))
        if i % 7 == 0:  # feedback for a trace 3 s old, one for a trace to come, one unknown
            for target in (f"tr-{i - 300:06d}", f"tr-{i + 5:06d}", f"nowhere-{i}"):
                j.feedback(fb(target, timestamp=clock.now), "file", clock.now)
                sent += 1
        if i % 100 == 0:
            emitted += len(j.take()[0]) + len(j.expire(clock.now))
            st = j.store
            assert len(st) <= 500 and st.bytes <= 200_000 and st.body_bytes <= 100_000
            assert len(j.pending) <= 50 and j.pending.bytes <= 40_000
    emitted += len(j.take()[0])
    joined = value(reg, "rag_sidecar_feedback_joined_total", order="trace_first") + value(
        reg, "rag_sidecar_feedback_joined_total", order="feedback_first"
    )
    unjoined = sum(
        value(reg, "rag_sidecar_feedback_unjoined_total", reason=r)
        for r in ("unknown_trace", "buffer_full")
    )
    assert joined > 0 and unjoined > 0
    assert emitted == joined + unjoined
    assert sent == joined + unjoined + len(j.pending)


def test_a_redelivered_trace_keeps_what_was_joined() -> None:
    j, reg = joiner()
    res, raw = scored(feedback={"thumbs": "up"})
    j.scored(res, raw)
    j.feedback(fb(thumbs="down"), "kafka", T0)
    [first], _ = j.take()
    j.scored(res, raw)  # at-least-once: the same trace again
    j.feedback(fb(thumbs="down"), "kafka", T0)  # and its feedback again
    assert j.take() == ([], [])
    assert value(reg, "rag_sidecar_feedback_duplicates_total", kind="identical") == 1
    assert first.event.feedback == FeedbackView("down", None)


def test_missing_or_nan_judge_scores_never_break_a_join() -> None:
    j, _ = joiner()
    res, raw = scored()
    j.scored(res, raw)
    j.judged([_judge_event(res, float("nan"))])  # stored as null
    j.feedback(fb(thumbs="down"), "file", T0)
    [ev], _ = j.take()
    assert ev.event.detail is not None and ev.event.detail["judge_scores"] == {"faithfulness": None}


def test_per_app_series_are_retired_after_the_label_ttl() -> None:
    """Like the Prometheus sink's: an app gone for ``http.label_ttl_s`` (a preview deploy, a
    renamed app) leaves the exposition and frees its label slot, so series do not pile up."""
    clock = Clock()
    j, reg = joiner(clock, label_ttl_s=3600, max_apps=2)
    ttf = "rag_sidecar_time_to_feedback_seconds_count"
    agreement = "rag_sidecar_feedback_agreement"
    n = {"score": "groundedness_lexical", "stat": "n"}
    for app in ("old", "new"):
        j.scored(*scored(app, app=app))
        j.feedback(fb(app), "file", clock.now)
        clock.now += 3000
    j.expire(clock.now)  # "old" last used 6000 s ago, "new" 3000 s ago
    assert reg.get_sample_value(ttf, {"app": "old"}) is None
    assert reg.get_sample_value(agreement, {"app": "old", **n}) is None
    assert value(reg, ttf, app="new") == 1 and value(reg, agreement, app="new", **n) == 1
    j.scored(*scored("third", app="third"))
    j.feedback(fb("third"), "file", clock.now)
    assert value(reg, ttf, app="third") == 1, "the retired app's slot was freed, not 'other'"
    assert reg.get_sample_value(ttf, {"app": "other"}) is None
