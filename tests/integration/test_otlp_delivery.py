"""OTLP through the whole pipeline: nothing accepted is lost at shutdown, traces spread over
services are assembled, full assembly answers 429, spans not kept are reported."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from sidecar.pipeline import Pipeline
from tests.support import otel_services as svc
from tests.support import otel_spans as o
from tests.support.memory import MemoryDLQ, MemorySink

pytestmark = pytest.mark.integration
PROTOBUF = {"content-type": "application/x-protobuf"}


async def start(
    sink: MemorySink, pipeline: dict[str, Any] | None = None, **assembly: Any
) -> tuple[Pipeline, CollectorRegistry, str]:
    settings = load_settings(
        sources=["otlp+http://127.0.0.1:0"],
        otlp={"expire_interval_s": 0.05, "assembly": {"settle_s": 0.2, **assembly}},
        pipeline=pipeline or {},
    )
    registry = CollectorRegistry()
    pipe = build_pipeline(settings, registry, sinks=[sink], dead_letters=MemoryDLQ())
    await pipe.start()
    port = pipe.sources[0].bound_port  # type: ignore[attr-defined]
    return pipe, registry, f"http://127.0.0.1:{port}/v1/traces"


async def post(client: httpx.AsyncClient, url: str, req: ExportTraceServiceRequest) -> Any:
    return await client.post(url, content=req.SerializeToString(), headers=PROTOBUF)


async def test_graceful_shutdown_writes_every_trace_acknowledged_while_busy() -> None:
    sink = MemorySink(delay=0.3)  # slow but healthy: the one-batch score queue stays full
    pipe, _, url = await start(sink, {"queue_size": 1, "drain_timeout_s": 30}, settle_s=0)
    reqs = [o.llama_index_rag(seed=200 + i) for i in range(6)]
    async with httpx.AsyncClient() as client:
        for req in reqs:
            assert (await post(client, url, req.request)).status_code == 200
    await pipe.aclose()
    assert sorted(r.trace.trace_id for r in sink.results) == sorted(r.trace_id for r in reqs)


async def test_a_gateway_root_exported_before_the_workers_spans() -> None:
    sink = MemorySink()
    pipe, registry, url = await start(sink, settle_s=0.2)
    two = svc.gateway_and_worker()
    try:
        async with httpx.AsyncClient() as client:
            assert (await post(client, url, two.gateway)).status_code == 200
            await asyncio.sleep(0.6)  # the plain root settled: closed, provisionally
            assert (await post(client, url, two.worker)).status_code == 200
        async with asyncio.timeout(10):
            while not sink.results:
                await asyncio.sleep(0.05)
        [result] = sink.results
        assert result.trace.trace_id == two.trace_id and len(result.trace.chunks) == 1
        assert registry.get_sample_value("rag_sidecar_otlp_reopened_total") == 1
    finally:
        await pipe.aclose()


async def test_partial_success_for_spans_over_the_limit_and_429_when_full() -> None:
    sink = MemorySink()
    pipe, registry, url = await start(sink, settle_s=30, max_spans_per_trace=4)
    try:
        async with httpx.AsyncClient() as client:
            r = await post(client, url, o.many_chains().request)
            assert r.status_code == 200
            resp = ExportTraceServiceResponse.FromString(r.content)
            assert resp.partial_success.rejected_spans == 5
            assert "span_limit=5" in resp.partial_success.error_message
            source = pipe.sources[0]
            source.assembler.settings.max_pending_traces = 1  # type: ignore[attr-defined]
            r = await post(client, url, o.llama_index_rag().request)
            assert r.status_code == 429 and r.headers["retry-after"] == "2"
        value = registry.get_sample_value
        assert value("rag_sidecar_otlp_spans_dropped_total", {"reason": "span_limit"}) == 5
        refused = {"transport": "http", "outcome": "assembly_full"}
        assert value("rag_sidecar_otlp_requests_total", refused) == 1
    finally:
        await pipe.aclose()
