"""The pipeline's contracts: acknowledgement, retries, backpressure, drops, health, draining."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_engine
from sidecar.config import PipelineSettings, Settings
from sidecar.errors import PermanentError
from sidecar.pipeline import Pipeline
from sidecar.stages import Batch, Emit, Record, Result
from tests.conftest import make_trace
from tests.support.memory import MemoryDLQ, MemorySink


class ListSource:
    """Emits fixed batches and records their acknowledgements."""

    def __init__(self, batches: list[list[bytes]]) -> None:
        self.name = "list"
        self._batches = batches
        self.acks: list[tuple[int, bool]] = []
        self.emitted = 0
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, emit: Emit) -> None:
        self._task = asyncio.create_task(self._run(emit))

    async def _run(self, emit: Emit) -> None:
        for i, lines in enumerate(self._batches):
            recs = [Record(v, f"list:{i}:{j}") for j, v in enumerate(lines)]
            self.emitted += 1
            await emit(Batch(self.name, recs, self._ack(i)))

    def _ack(self, i: int):  # type: ignore[no-untyped-def]
        def done(ok: bool) -> None:
            self.acks.append((i, ok))
            if len(self.acks) == len(self._batches):
                self._done.set()

        return done

    async def drained(self) -> None:
        await self._done.wait()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()


def lines(n: int, prefix: str = "t") -> list[bytes]:
    return [orjson.dumps(make_trace(trace_id=f"{prefix}{i}")) for i in range(n)]


def make(
    source: ListSource, sink: MemorySink, **pipe: object
) -> tuple[Pipeline, MemoryDLQ, CollectorRegistry]:
    registry = CollectorRegistry()
    dlq = MemoryDLQ()
    p = Pipeline(
        sources=[source],
        sinks=[sink],
        dead_letters=dlq,
        engine=build_engine(Settings()),
        registry=registry,
        settings=PipelineSettings(**pipe),  # type: ignore[arg-type]
    )
    return p, dlq, registry


async def test_every_batch_written_then_acked_and_bad_input_dead_lettered() -> None:
    batches = [lines(10, "a"), [b"{oops", *lines(3, "b"), b"[]"], lines(5, "c")]
    src, sink = ListSource(batches), MemorySink()
    p, dlq, reg = make(src, sink)
    await p.start()
    assert await p.drained()
    await p.aclose()
    assert sorted(src.acks) == [(0, True), (1, True), (2, True)]
    assert len(sink.results) == 18
    assert [d.reason for d in dlq.letters] == ["not_json", "not_object"]
    assert dlq.letters[0].origin == "list:1:0" and dlq.letters[0].raw == b"{oops"
    assert (
        reg.get_sample_value("rag_sidecar_traces_total", {"source": "list", "outcome": "scored"})
        == 18
    )
    assert reg.get_sample_value("rag_sidecar_dead_letters_total", {"reason": "not_json"}) == 1
    assert sink.closed


async def test_retryable_errors_are_retried_before_ack() -> None:
    src, sink = ListSource([lines(4)]), MemorySink(fail_times=3)
    p, _, reg = make(src, sink)
    await p.start()
    assert await p.drained()
    await p.aclose()
    assert src.acks == [(0, True)]
    assert len(sink.results) == 4
    assert (
        reg.get_sample_value(
            "rag_sidecar_sink_errors_total", {"sink": "memory", "kind": "retryable"}
        )
        == 3
    )


async def test_permanent_error_fails_pipeline_without_ack() -> None:
    src, sink = ListSource([lines(4)]), MemorySink(fail_times=1, exc=PermanentError("disk gone"))
    p, _, _ = make(src, sink)
    await p.start()
    assert not await p.drained()
    await p.aclose()
    assert src.acks == [(0, False)], "the failed batch is reported undone, never acked"
    assert isinstance(p.failure, PermanentError)
    ok, detail = p.health()
    assert not ok and "disk gone" in detail["failure"]


async def test_permanent_error_stops_the_other_sinks_retries() -> None:
    flaky = MemorySink(fail_times=10**6)  # retryable forever, 10 ms apart
    broken = MemorySink(fail_times=1, exc=PermanentError("disk gone"))
    src = ListSource([lines(2)])
    p = Pipeline(
        sources=[src],
        sinks=[flaky, broken],
        dead_letters=MemoryDLQ(),
        engine=build_engine(Settings()),
        registry=CollectorRegistry(),
        settings=PipelineSettings(),
    )
    await p.start()
    assert not await p.drained()
    tries = flaky.fail_times
    await asyncio.sleep(0.1)
    assert flaky.fail_times == tries, "the retryable sink is still being retried"
    await p.aclose()
    assert src.acks == [(0, False)]


async def test_block_policy_bounds_in_flight_batches() -> None:
    src, sink = ListSource([lines(1, f"b{i}-") for i in range(30)]), MemorySink(delay=0.01)
    p, _, _ = make(src, sink, queue_size=2)
    await p.start()
    max_in_flight = 0
    while len(src.acks) < 30:
        max_in_flight = max(max_in_flight, src.emitted - len(src.acks))
        await asyncio.sleep(0.002)
    await p.aclose()
    # 2 queued for scoring + 1 held by the scorer + 2 queued for writing + 2 being written
    # (taken in one round) + 1 counted by the source while blocked in emit: 3 * queue_size + 2.
    assert max_in_flight <= 8
    assert all(ok for _, ok in src.acks)


async def test_batches_scored_while_the_sink_waits_are_written_in_one_round() -> None:
    class CountingSink(MemorySink):
        calls = 0

        async def write(self, results: Sequence[Result]) -> None:
            self.calls += 1
            await super().write(results)

    src, sink = ListSource([lines(2, f"c{i}-") for i in range(12)]), CountingSink(delay=0.02)
    p, _, _ = make(src, sink, queue_size=4)
    await p.start()
    assert await p.drained()
    await p.aclose()
    assert src.acks == [(i, True) for i in range(12)], "each batch acked once, in order"
    assert [r.trace.trace_id for r in sink.results] == [
        f"c{i}-{j}" for i in range(12) for j in (0, 1)
    ]
    assert sink.calls < 12


async def test_drop_policy_drops_and_counts() -> None:
    src, sink = ListSource([lines(2, f"d{i}-") for i in range(40)]), MemorySink(delay=0.02)
    p, _, reg = make(src, sink, queue_size=1, overflow="drop")
    await p.start()
    assert await p.drained()
    await p.aclose()
    dropped = [i for i, ok in src.acks if not ok]
    assert dropped, "a slow sink with a queue of 1 must drop"
    assert reg.get_sample_value("rag_sidecar_queue_dropped_total", {"stage": "score"}) == 2 * len(
        dropped
    )
    assert len(sink.results) == 2 * (40 - len(dropped))


async def test_health_reports_a_stalled_stage() -> None:
    src, sink = ListSource([lines(1)]), MemorySink(delay=0.5)
    p, _, _ = make(src, sink, stall_timeout_s=0.1)
    await p.start()
    await asyncio.sleep(0.3)
    ok, detail = p.health()
    assert not ok and "write" in detail["stalled"]
    assert await p.drained()
    assert p.health()[0]
    await p.aclose()


async def test_close_drains_in_flight_work() -> None:
    src, sink = ListSource([lines(5, f"z{i}-") for i in range(5)]), MemorySink(delay=0.02)
    p, _, _ = make(src, sink)
    await p.start()
    await asyncio.sleep(0.01)
    await p.aclose()
    acked = [i for i, ok in src.acks if ok]
    assert len(sink.results) == 5 * len(acked)
    assert acked, "work in flight at close must be written, not lost"


@pytest.mark.parametrize("n", [0])
async def test_no_sources_is_immediately_drained(n: int) -> None:
    p = Pipeline(
        sources=[],
        sinks=[MemorySink()],
        dead_letters=MemoryDLQ(),
        engine=build_engine(Settings()),
        registry=CollectorRegistry(),
        settings=PipelineSettings(),
    )
    await p.start()
    assert await p.drained()
    await p.aclose()


class FailingSource(ListSource):
    """Reads its batches, then cannot finish its input (a replay losing its broker)."""

    async def drained(self) -> None:
        await super().drained()
        raise PermanentError("partitions still short of their end")


async def test_a_source_that_cannot_finish_fails_the_pipeline() -> None:
    src, sink = FailingSource([lines(3)]), MemorySink()
    p, _, _ = make(src, sink)
    await p.start()
    assert not await p.drained()
    await p.aclose()
    assert len(sink.results) == 3
    assert isinstance(p.failure, PermanentError)
    assert "short of their end" in str(p.failure)


async def test_scored_traces_are_exported_at_zero_before_any_arrive() -> None:
    """So that "nothing scored for 30 minutes" (RagSidecarNoTraces) has a series to read."""
    src, sink = ListSource([]), MemorySink()
    p, _, reg = make(src, sink)
    await p.start()
    value = reg.get_sample_value(
        "rag_sidecar_traces_total", {"source": "list", "outcome": "scored"}
    )
    await p.aclose()
    assert value == 0


class SlowClosingSource(ListSource):
    """Spends most of the drain time in its own aclose (handing over what it holds)."""

    async def aclose(self) -> None:
        await super().aclose()
        await asyncio.sleep(0.6)


async def test_sources_and_queues_share_one_drain_budget() -> None:
    """Shutdown takes drain_timeout_s, not that twice: the chart's grace period is sized
    on it, and Kubernetes kills the pod after it."""
    src, sink = SlowClosingSource([lines(2)]), MemorySink(delay=60)
    p, _, _ = make(src, sink, drain_timeout_s=1.0)
    await p.start()
    await asyncio.sleep(0.1)  # the batch is stuck in the blocked sink
    t0 = asyncio.get_running_loop().time()
    await p.aclose()
    assert asyncio.get_running_loop().time() - t0 < 1.5


async def test_a_record_the_scorers_choke_on_is_dead_lettered_not_fatal() -> None:
    """A scorer bug on one hostile record must not stop the pipeline (a Kafka source would
    crash-loop on it from its last commit): the record goes to the dead letters, counted."""
    poison = orjson.dumps(
        make_trace(
            trace_id="poison",
            chunks=[{"text": "a", "score": 1.7e308}] * 2 + [{"text": "b", "score": -1.7e308}],
        )
    )
    engine = build_engine(Settings())
    real = engine.process

    def process(record: Record, source: str) -> object:
        if record.value == poison:
            raise OverflowError("intermediate overflow in fsum")  # what retrieval raised
        return real(record, source)

    engine.process = process  # type: ignore[method-assign,assignment]
    src, sink, dlq = (
        ListSource([[*lines(2, "a"), poison, *lines(1, "b")]]),
        MemorySink(),
        MemoryDLQ(),
    )
    registry = CollectorRegistry()
    p = Pipeline(
        sources=[src],
        sinks=[sink],
        dead_letters=dlq,
        engine=engine,
        registry=registry,
        settings=PipelineSettings(),
    )
    await p.start()
    assert await p.drained()
    await p.aclose()
    assert p.failure is None
    assert src.acks == [(0, True)]
    assert [r.trace.trace_id for r in sink.results] == ["a0", "a1", "b0"]
    assert [(d.reason, d.raw) for d in dlq.letters] == [("scoring_error", poison)]
    assert "OverflowError" in dlq.letters[0].detail
    assert (
        registry.get_sample_value("rag_sidecar_dead_letters_total", {"reason": "scoring_error"})
        == 1
    )


async def test_an_unexpected_failure_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The failure is recorded from a task's done callback, outside any ``except``:
    ``exc_info=True`` there logs "NoneType: None" instead of the traceback."""
    src, sink = ListSource([lines(1)]), MemorySink(fail_times=1, exc=RuntimeError("sink bug"))
    p, _, _ = make(src, sink)
    await p.start()
    assert not await p.drained()
    await p.aclose()
    [rec] = [r for r in caplog.records if r.getMessage() == "pipeline failed"]
    assert rec.exc_info is not None and isinstance(rec.exc_info[1], RuntimeError)
    assert "sink bug" in caplog.text and "NoneType: None" not in caplog.text
