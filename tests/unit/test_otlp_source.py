"""The OTLP source stage: shutdown hand-over, backpressure and drop reporting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from sidecar.config import OtlpSettings
from sidecar.sources.otlp.receiver import Saturated
from sidecar.sources.otlp.source import OtlpSource
from sidecar.stages import Batch
from sidecar.uris import OtlpSpec
from tests.support import otel_services as svc
from tests.support import otel_spans as o

SPEC = OtlpSpec("http", "127.0.0.1", 0, "otlp+http://127.0.0.1:0")


class Pipeline:
    """An emit that waits for room, like a full score queue (``Pipeline._emit``)."""

    def __init__(self) -> None:
        self.room = asyncio.Event()
        self.batches: list[Batch] = []
        self.waiting = 0

    async def emit(self, batch: Batch) -> None:
        self.waiting += 1
        await self.room.wait()
        self.waiting -= 1
        self.batches.append(batch)
        batch.done(True)

    @property
    def trace_ids(self) -> list[str]:
        return [r.trace.trace_id for b in self.batches for r in b.records if r.trace is not None]


def source(registry: CollectorRegistry, **settings: Any) -> OtlpSource:
    assembly = {"settle_s": 0, **settings.pop("assembly", {})}
    drain_timeout_s = settings.pop("drain_timeout_s", 5.0)
    return OtlpSource(
        SPEC,
        OtlpSettings(expire_interval_s=0.05, assembly=assembly, **settings),
        registry,
        drain_timeout_s=drain_timeout_s,
    )


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def pipeline() -> AsyncIterator[Pipeline]:
    yield Pipeline()


async def until(cond: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def test_aclose_hands_over_the_batch_the_pump_holds(
    registry: CollectorRegistry, pipeline: Pipeline
) -> None:
    src = source(registry)
    await src.start(pipeline.emit)
    req = o.llama_index_rag()
    src.accept(req.resource_spans, "http")
    await until(lambda: pipeline.waiting == 1)  # the pump holds the batch: the queue is full
    close = asyncio.create_task(src.aclose())
    await asyncio.sleep(0.2)
    assert not close.done()  # waits for the pipeline to take what was accepted
    pipeline.room.set()
    await close
    assert pipeline.trace_ids == [req.trace_id]
    assert src.in_flight == 0
    assert registry.get_sample_value("rag_sidecar_otlp_shutdown_dropped_total") == 0


async def test_aclose_flushes_pending_traces_to_the_pipeline(
    registry: CollectorRegistry, pipeline: Pipeline
) -> None:
    src = source(registry, assembly={"settle_s": 30})
    await src.start(pipeline.emit)
    req = o.llama_index_rag()
    src.accept(req.resource_spans, "http")
    pipeline.room.set()
    await src.aclose()
    assert pipeline.trace_ids == [req.trace_id]
    assert pipeline.batches[0].records[0].trace.metadata["assembled"] == "drain"  # type: ignore[union-attr]


async def test_aclose_counts_what_the_pipeline_did_not_take_in_time(
    registry: CollectorRegistry, pipeline: Pipeline
) -> None:
    src = source(registry, drain_timeout_s=0.3)
    await src.start(pipeline.emit)
    for s in range(3):
        src.accept(o.llama_index_rag(seed=s).resource_spans, "http")
    await until(lambda: pipeline.waiting == 1)
    async with asyncio.timeout(3):
        await src.aclose()  # the pipeline never makes room: bounded by the drain timeout
    assert registry.get_sample_value("rag_sidecar_otlp_shutdown_dropped_total") == 3
    await asyncio.wait_for(src.drained(), 1)


async def test_accept_refuses_while_the_assembly_is_full(registry: CollectorRegistry) -> None:
    src = source(registry, assembly={"settle_s": 30, "max_pending_traces": 10})
    for s in range(9):
        src.accept(o.llama_index_rag(seed=s).resource_spans, "http")
    assert src.saturated == "assembly_full"
    with pytest.raises(Saturated):
        src.accept(o.llama_index_rag(seed=99).resource_spans, "grpc")
    refused = {"transport": "grpc", "outcome": "assembly_full"}
    assert registry.get_sample_value("rag_sidecar_otlp_requests_total", refused) == 1
    assert src.assembler.pending == 9 and src.assembler.evicted == 0
    src.in_flight = src.settings.max_in_flight
    assert src.saturated == "throttled"


async def test_spans_not_kept_are_reported_as_partial_success(registry: CollectorRegistry) -> None:
    src = source(registry, assembly={"settle_s": 30, "max_spans_per_trace": 4})
    req = o.many_chains()
    req.request.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x00" * 3
    ack = src.accept(req.resource_spans, "http")  # 8 kept (LLM, retriever… up to twice the limit)
    assert ack.rejected == 1 + 4
    assert ack.message == "rejected spans: bad_span_id; spans not kept: span_limit=4"
    assert src.accept(req.resource_spans, "http").rejected == 1 + 4  # duplicates not reported
    dropped = "rag_sidecar_otlp_spans_dropped_total"
    assert registry.get_sample_value(dropped, {"reason": "span_limit"}) == 8
    assert registry.get_sample_value(dropped, {"reason": "duplicate"}) == 8
    rejected = "rag_sidecar_otlp_rejected_spans_total"
    assert registry.get_sample_value(rejected, {"reason": "bad_span_id"}) == 2


async def test_assembly_counters_are_exported(registry: CollectorRegistry) -> None:
    src = source(registry, assembly={"settle_s": 1.0, "not_rag_window_s": 10})
    value = registry.get_sample_value
    for reason in ("span_limit", "late_retrieval", "late_ai", "late_other", "duplicate"):
        assert value("rag_sidecar_otlp_spans_dropped_total", {"reason": reason}) == 0
    for reason in ("bad_trace_id", "bad_span_id", "bad_parent_span_id", "malformed_span"):
        assert value("rag_sidecar_otlp_rejected_spans_total", {"reason": reason}) == 0
    two = svc.gateway_and_worker()
    src.accept(list(two.gateway.resource_spans), "http")
    assert src.assembler.expire(1e12).traces == []  # settled: closed provisionally
    src.accept(list(two.worker.resource_spans), "http")
    assert value("rag_sidecar_otlp_reopened_total") == 1
    assert value("rag_sidecar_otlp_not_rag_total") == 0
    assert value("rag_sidecar_otlp_pending_spans") == 3
    assert 0 < (value("rag_sidecar_otlp_pending_bytes") or 0) < 10_000
    src.assembler.drain()
    assert value("rag_sidecar_otlp_assembled_total") == 1


async def test_a_request_arriving_while_closing_is_refused_not_lost(
    registry: CollectorRegistry, pipeline: Pipeline
) -> None:
    """A connection accepted just before the listener closed still delivers its request
    during aclose: it must get a retryable refusal, not a 200 for traces nobody writes."""
    src = source(registry)
    await src.start(pipeline.emit)
    src.accept(o.llama_index_rag(seed=1).resource_spans, "http")
    await until(lambda: pipeline.waiting == 1)
    close = asyncio.create_task(src.aclose())
    await asyncio.sleep(0.05)  # aclose is waiting for the pump
    with pytest.raises(Saturated):
        src.accept(o.llama_index_rag(seed=2).resource_spans, "http")
    refused = {"transport": "http", "outcome": "closing"}
    assert registry.get_sample_value("rag_sidecar_otlp_requests_total", refused) == 1
    pipeline.room.set()
    await close
    assert len(pipeline.trace_ids) == 1 and src.in_flight == 0
