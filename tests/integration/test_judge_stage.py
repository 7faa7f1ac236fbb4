"""JudgeStage end to end against the fake judge: scores, budget, backpressure, cache, faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.events import make_event_id
from sidecar.scorers.judge import JudgeSettings, JudgeStage, ndcg_at_k
from sidecar.stages import Result
from tests.conftest import make_trace
from tests.support.fake_judge import FakeJudge, Reply, sampled_result

EXAMPLES = Path(__file__).resolve().parents[2] / "examples/traces.jsonl"
CHUNKS = [
    {"id": "a", "text": "To reset your password open Settings, choose Security and click Reset."},
    {"id": "b", "text": "Billing happens monthly on the first day."},
    {"id": "c", "text": "Security settings also hold two-factor authentication."},
]


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


class Harness:
    """A stage on a fresh registry, collecting what it writes."""

    def __init__(self, fake: FakeJudge, clock: Clock | None = None, **over: Any) -> None:
        settings = {
            "url": fake.url,
            "model": "toy",
            "trust_env": False,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.02,
            "rate_per_minute": 10_000,
            "shutdown_timeout_s": 2,
            **over,
        }
        self.registry = CollectorRegistry()
        self.settings = JudgeSettings.model_validate(settings)
        self.stage = JudgeStage(self.settings, self.registry, clock=clock or time.time)
        self.written: list[Result] = []

    async def write(self, results: list[Result]) -> None:
        self.written.extend(results)

    async def __aenter__(self) -> Harness:
        await self.stage.start(self.write)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stage.aclose()

    async def settle(self) -> None:
        async with asyncio.timeout(5):
            await self.stage._queue.join()

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"judge": "default", **labels})
        return value or 0.0

    def skipped(self, reason: str) -> float:
        return self.metric("rag_sidecar_judge_skipped_total", reason=reason)


@pytest.fixture
async def fake() -> AsyncIterator[FakeJudge]:
    async with FakeJudge() as judge:
        yield judge


def result(i: int = 1, reasons: tuple[str, ...] = ("rate",), **over: Any) -> Result:
    row = make_trace(trace_id=f"t-{i}", chunks=CHUNKS, **over)
    return sampled_result(row, reasons)


SCRIPTED = {
    "claims": [
        {
            "claim": "Open Settings and choose Security.",
            "verdict": "supported",
            "chunk": 1,
            "quote": "open Settings, choose Security",
        },
        {
            "claim": "Click Reset.",
            "verdict": "supported",
            "chunk": 1,
            "quote": "and click Reset",
        },
        {"claim": "It takes a minute.", "verdict": "not_in_context", "chunk": None, "quote": ""},
    ],
    "answer_relevance": 2,
    "chunk_relevance": [2, 0, 1],
    "sufficient": True,
}


async def test_scores_from_a_scripted_reply(fake: FakeJudge) -> None:
    fake.push(Reply.json(SCRIPTED))
    async with Harness(fake) as h:
        assert h.stage.offer(result(reasons=("thumbs_down",)))
        await h.settle()
    (out,) = h.written
    ev = out.event
    assert ev.type == "judge" and ev.trace_id == "t-1"
    assert ev.event_id == make_event_id("t-1", "judge", h.stage.version)
    assert ev.scorer_version == h.stage.version and h.stage.version.startswith("judge-rag_v1+toy+")
    assert ev.scores["faithfulness"] == pytest.approx(2 / 3)
    assert ev.scores["answer_relevance"] == pytest.approx(2 / 3)
    assert ev.scores["context_relevance"] == pytest.approx(0.5)
    assert ev.scores["context_precision"] == pytest.approx(2 / 3)
    assert ev.scores["context_ndcg"] == pytest.approx(ndcg_at_k([2, 0, 1]) or 0.0)
    assert ev.scores["context_sufficiency"] == 1.0
    assert ev.sampled.reasons == [] and ev.feedback is None
    assert ev.labels.app == "support-bot" and ev.source == "test"
    d = ev.detail
    assert d is not None
    assert [c["verdict"] for c in d["claims"]] == ["supported", "supported", "not_in_context"]
    assert d["claims"][0]["chunk_id"] == "a" and d["claims"][0]["verified"] is True
    assert d["tokens"] == {"prompt": fake.prompt_tokens, "completion": fake.completion_tokens}
    assert d["cached"] is False and d["sample_reasons"] == ["thumbs_down"]
    assert d["judge_model"] == "toy" and d["prompt_version"] == "rag_v1"
    assert h.metric("rag_sidecar_judge_tokens_total", kind="prompt") == fake.prompt_tokens
    assert h.metric("rag_sidecar_judge_judged_total") == 1
    orjson.dumps(ev)  # serialisable as written by the JSONL sink


async def test_fabricated_quote_is_downgraded_and_counted(fake: FakeJudge) -> None:
    doc = dict(SCRIPTED)
    doc["claims"] = [
        {**SCRIPTED["claims"][0]},  # type: ignore[index]
        {
            "claim": "Reset links expire in 24 hours.",
            "verdict": "supported",
            "chunk": 1,
            "quote": "reset links expire after 24 hours",
        },
    ]
    fake.push(Reply.json(doc))
    async with Harness(fake) as h:
        h.stage.offer(result())
        await h.settle()
    ev = h.written[0].event
    assert ev.detail is not None
    bad = ev.detail["claims"][1]
    assert (bad["verdict"], bad["judge_verdict"], bad["verified"]) == (
        "not_in_context",
        "supported",
        False,
    )
    assert bad["reason"] == "quote_not_found"
    assert ev.scores["faithfulness"] == 0.5 and "judge_unverified" in ev.flags
    assert h.metric("rag_sidecar_judge_verdicts_downgraded_total") == 1


async def test_bad_output_gets_one_repair_then_counts(fake: FakeJudge) -> None:
    fake.push(Reply.malformed(), Reply(truncate=True))
    async with Harness(fake) as h:
        assert h.stage.offer(result())
        await h.settle()
        assert h.written == []
        assert len(fake.requests) == 2
        repair = fake.requests[1].messages
        assert repair[-2]["role"] == "assistant" and repair[-2]["content"].startswith("Sure!")
        assert "could not be used" in repair[-1]["content"]
        assert h.skipped("bad_output") == 1
        assert h.metric("rag_sidecar_judge_requests_total", outcome="bad_output") == 2
        # tokens of the failed replies are still booked
        assert h.metric("rag_sidecar_judge_tokens_total", kind="prompt") == fake.prompt_tokens
        # a malformed reply repaired on the second try yields an event
        fake.push(Reply.malformed())
        assert h.stage.offer(result(2, answer="Something else."))
        await h.settle()
        assert len(fake.requests) == 4
        # a reply cut at max_tokens would run long again: no repair, one request, bad_output
        fake.push(Reply(truncate=True))
        assert h.stage.offer(result(3, answer="A third answer."))
        await h.settle()
        assert len(fake.requests) == 5 and h.skipped("bad_output") == 2
    (out,) = h.written
    assert out.event.detail is not None and out.event.detail["repaired"] is True
    assert out.event.detail["requests"] == 2


async def test_duplicates_and_replays_are_served_from_cache(fake: FakeJudge) -> None:
    async with Harness(fake) as h:
        assert h.stage.offer(result(1))
        assert h.stage.offer(result(2))  # same content, in flight at the same time
        await h.settle()
        assert h.stage.offer(result(1))  # a replay
        await h.settle()
    assert len(fake.requests) == 1
    assert [r.event.trace_id for r in h.written] == ["t-1", "t-2", "t-1"]
    assert [r.event.detail["cached"] for r in h.written if r.event.detail] == [False, True, True]
    cached = h.written[2].event
    assert cached.detail is not None and cached.detail["tokens"] == {"prompt": 0, "completion": 0}
    assert cached.scores == h.written[0].event.scores
    assert cached.event_id == h.written[0].event.event_id  # idempotent on replay
    assert h.metric("rag_sidecar_judge_cache_hits_total") == 2


async def test_budget_rate_exhausted_skips_plain_samples_first(fake: FakeJudge) -> None:
    clock = Clock()
    async with Harness(fake, clock, rate_per_minute=4, priority_reserve=0.5) as h:
        plain = [h.stage.offer(result(i, answer=f"plain {i}.")) for i in range(4)]
        prio = [
            h.stage.offer(result(10 + i, ("flag:low_groundedness",), answer=f"p {i}."))
            for i in range(3)
        ]
        await h.settle()
    assert plain == [True, True, False, False]
    assert prio == [True, True, False]
    assert h.skipped("budget") == 3 and len(fake.requests) == 4


async def test_daily_usd_cap(fake: FakeJudge) -> None:
    clock = Clock()
    async with Harness(
        fake,
        clock,
        daily_usd_cap=0.5,
        priority_reserve=0.0,
        usd_per_1k_prompt_tokens=1.0,  # ~0.2 USD per judged trace at ~200 tokens
        concurrency=1,
    ) as h:
        admitted = []
        for i in range(6):
            admitted.append(h.stage.offer(result(i, answer=f"answer number {i}.")))
            await h.settle()
        spent = h.stage.budget.spent_today
        assert admitted.count(True) == len(fake.requests) < 6
        assert 0 < spent <= 0.5
        assert h.skipped("budget") == admitted.count(False)
        assert h.metric("rag_sidecar_judge_cost_usd_total") == pytest.approx(spent)
        clock.t += 86_400
        assert h.stage.offer(result(99, answer="a new day."))


async def test_backpressure_never_blocks_the_caller() -> None:
    async with FakeJudge(default=Reply(delay_s=0.3)) as fake:
        h = Harness(fake, concurrency=1, queue_size=2, shutdown_timeout_s=0)
        async with h:
            t0 = time.perf_counter()
            accepted = [h.stage.offer(result(i, answer=f"answer {i}.")) for i in range(20)]
            elapsed = time.perf_counter() - t0
            await asyncio.sleep(0.05)  # a worker takes one; one slot frees
            assert h.metric("rag_sidecar_judge_queue_depth") == 1
            assert h.stage.offer(result(50, answer="late."))
        assert elapsed < 0.05  # 20 offers, no waiting on the slow judge
        assert accepted[:2] == [True, True] and not any(accepted[2:])
        assert h.skipped("backpressure") == 18
        assert h.skipped("shutdown") == 3  # one in flight, two queued: abandoned at close
        assert h.written == []


async def test_queue_keeps_room_for_priority_samples() -> None:
    async with FakeJudge(default=Reply(delay_s=0.2)) as fake:
        h = Harness(fake, concurrency=1, queue_size=4, priority_reserve=0.5, shutdown_timeout_s=0)
        async with h:
            plain = [h.stage.offer(result(i, answer=f"a {i}.")) for i in range(4)]
            prio = [
                h.stage.offer(result(9 + i, ("thumbs_down",), answer=f"p {i}.")) for i in range(3)
            ]
        assert plain == [True, True, False, False]
        assert prio == [True, True, False]


async def test_failures_are_counted_and_open_the_breaker(fake: FakeJudge) -> None:
    fake.push(Reply.error(500), Reply.error(500))
    async with Harness(fake, max_retries=0, breaker={"failures": 2, "open_s": 60}) as h:
        assert h.stage.offer(result(1, answer="one."))
        await h.settle()
        assert h.skipped("failed") == 1
        assert h.stage.offer(result(2, answer="two."))
        await h.settle()
        assert h.metric("rag_sidecar_judge_breaker_state") == 2
        assert not h.stage.offer(result(3, answer="three."))
        assert h.skipped("breaker_open") == 1
        assert h.metric("rag_sidecar_judge_requests_total", outcome="error") == 2
    assert h.written == []


async def test_pii_is_redacted_before_it_leaves(fake: FakeJudge) -> None:
    async with Harness(fake) as h:
        h.stage.offer(
            result(
                query="I am jane.doe@example.com, call me on +44 20 7946 0958",
                answer="We emailed jane.doe@example.com about card 4111 1111 1111 1111.",
            )
        )
        await h.settle()
    body = orjson.dumps(fake.requests[0].body).decode()
    for secret in ("jane.doe", "7946", "4111"):
        assert secret not in body
    assert "[EMAIL]" in body and "[PHONE]" in body and "[CARD]" in body
    assert len(h.written) == 1


async def test_reference_and_rubric_in_the_same_request(fake: FakeJudge) -> None:
    async with Harness(fake, rubric={"enabled": True}) as h:
        h.stage.offer(
            result(
                answer="Open Settings, choose Security and click Reset.",
                reference="Open Settings, choose Security and click Reset. It is free.",
            )
        )
        await h.settle()
    assert len(fake.requests) == 1
    sent = fake.requests[0].body["response_format"]["json_schema"]["schema"]
    assert {"reference_facts", "rubric"} <= set(sent["required"])
    assert sent["properties"]["chunk_relevance"]["maxItems"] == len(result().trace.chunks)
    ev = h.written[0].event
    assert ev.scores["answer_correctness"] == 0.5  # the second fact is missing
    assert ev.scores["context_recall"] == 0.5  # and in no chunk
    assert ev.scores["rubric_composite"] == 1.0 and ev.scores["faithfulness"] == 1.0
    assert ev.detail is not None and len(ev.detail["reference_facts"]) == 2


async def test_offer_after_close_and_write_failures_are_counted(fake: FakeJudge) -> None:
    h = Harness(fake)

    async def broken(results: list[Result]) -> None:
        raise OSError("disk full")

    await h.stage.start(broken)
    h.stage.offer(result())
    await h.settle()
    await h.stage.aclose()
    assert h.skipped("write_failed") == 1
    assert not h.stage.offer(result(2))
    assert h.skipped("shutdown") == 1


async def test_one_request_per_trace_on_the_examples(fake: FakeJudge) -> None:
    """Economy guard: the shipped examples cost one request each and a bounded prompt."""
    lines = EXAMPLES.read_bytes().splitlines()[:60]
    async with Harness(fake, concurrency=8, queue_size=64, priority_reserve=0) as h:
        for line in lines:
            assert h.stage.offer(sampled_result(orjson.loads(line)))
        await h.settle()
    assert len(fake.requests) == len(h.written) == len(lines)
    per_trace = fake.prompt_tokens / len(lines)
    assert per_trace < 600, per_trace  # whitespace tokens (~1.3 model tokens each)


async def test_a_body_that_does_not_decode_is_a_counted_failure(fake: FakeJudge) -> None:
    """A proxy sending a broken gzip body: httpx's DecodingError is no TransportError;
    it must still be a retried, counted judge failure, not a silently lost trace."""
    fake.push(*[Reply(body=b"not gzip at all", headers={"content-encoding": "gzip"})] * 2)
    failed: list[str] = []
    async with Harness(fake, max_retries=1) as h:
        h.stage.on_failed = lambda r, reason: failed.append(reason)
        assert h.stage.offer(result())
        await h.settle()
        assert h.skipped("failed") == 1 and failed == ["failed"]
        assert h.metric("rag_sidecar_judge_requests_total", outcome="error") == 2
    assert h.written == [] and len(fake.requests) == 2


async def test_an_unexpected_error_is_counted_and_reported(fake: FakeJudge) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    failed: list[str] = []
    async with Harness(fake) as h:
        h.stage.on_failed = lambda r, reason: failed.append(reason)
        h.stage.scorer.judge = broken  # type: ignore[method-assign,assignment]
        assert h.stage.offer(result())
        await h.settle()
        assert h.skipped("failed") == 1 and failed == ["failed"]
        assert h.stage.budget.reserved == 0
    assert h.written == []


async def test_a_cached_judgement_names_the_chunks_of_the_trace_it_is_served_to(
    fake: FakeJudge,
) -> None:
    """Same chunk texts, other ids (a re-indexed corpus): the claims must cite this
    trace's ids, not the first trace's."""
    fake.push(Reply(content=orjson.dumps(SCRIPTED).decode()))
    renamed = [{**c, "id": f"doc-{c['id']}"} for c in CHUNKS]
    async with Harness(fake) as h:
        assert h.stage.offer(result(1))
        await h.settle()
        assert h.stage.offer(sampled_result(make_trace(trace_id="t-2", chunks=renamed)))
        await h.settle()
    first, second = (r.event.detail for r in h.written)
    assert first is not None and second is not None and second["cached"] is True
    assert [c["chunk_id"] for c in first["claims"]] == ["a", "a", None]
    assert [c["chunk_id"] for c in second["claims"]] == ["doc-a", "doc-a", None]


async def test_offers_while_the_half_open_probe_is_out_are_refused_up_front(
    fake: FakeJudge,
) -> None:
    """Admitted, they spent a rate token each and then failed as breaker_open."""
    async with Harness(fake, rate_per_minute=60, breaker={"failures": 1, "open_s": 0.05}) as h:
        breaker = h.stage.client.breaker
        breaker.record_failure()
        await asyncio.sleep(0.06)
        assert breaker.state == "half_open" and breaker.allow()  # the probe goes out
        tokens = h.stage.budget.tokens
        assert not h.stage.offer(result(1))
        assert h.skipped("breaker_open") == 1 and h.stage.budget.tokens > tokens - 0.5
        breaker.record_success()
        assert h.stage.offer(result(2))


async def test_room_for_never_waits_for_room_the_reserve_never_leaves() -> None:
    """priority_reserve: 1.0 keeps the whole queue for priority samples: offer refuses every
    other one, so (background_overflow: block) waiting for room for it never ended."""
    async with FakeJudge() as fake, Harness(fake, queue_size=4, priority_reserve=1.0) as h:
        plain = result(1, answer="one.")
        await asyncio.wait_for(h.stage.room_for(plain), 2)
        assert not h.stage.offer(plain)
        assert h.skipped("backpressure") == 1
