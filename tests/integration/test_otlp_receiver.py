"""OTLP ingestion with real clients: the opentelemetry-sdk exporters (HTTP and gRPC), a real
collector (rotel) in between, and garbage bodies (hypothesis)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from sidecar.pipeline import Pipeline
from tests.support.memory import MemoryDLQ, MemorySink

pytestmark = pytest.mark.integration


@dataclass
class Running:
    pipe: Pipeline
    sink: MemorySink
    registry: CollectorRegistry
    port: int


async def start_sidecar(transport: str, **otlp: object) -> Running:
    settings = load_settings(
        sources=[f"otlp+{transport}://127.0.0.1:0"],
        otlp={"expire_interval_s": 0.05, "assembly": {"settle_s": 0.2}, **otlp},
    )
    registry = CollectorRegistry()
    sink = MemorySink()
    pipe = build_pipeline(settings, registry, sinks=[sink], dead_letters=MemoryDLQ())
    # The Prometheus sink is replaced by a memory sink: keep metrics by adding it back.
    from sidecar.sinks.prometheus import PrometheusSink

    pipe.sinks.append(PrometheusSink(registry))
    await pipe.start()
    src = pipe.sources[0]
    return Running(pipe, sink, registry, src.bound_port)  # type: ignore[attr-defined]


@pytest.fixture
async def http_sidecar() -> AsyncIterator[Running]:
    run = await start_sidecar("http")
    yield run
    await run.pipe.aclose()


def rag_app(exporter: SpanExporter, service: str = "support-bot") -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    return provider


def openinference_request(provider: TracerProvider, i: int) -> str:
    """A LlamaIndex-style RAG request, instrumented the OpenInference way; returns its trace id."""
    tracer = provider.get_tracer("openinference.instrumentation.llama_index")
    query = f"How do I reset my password (case {i})?"
    with tracer.start_as_current_span(
        "query",
        attributes={
            "openinference.span.kind": "CHAIN",
            "input.value": query,
            "prompt.version": "v7",
        },
    ) as root:
        with tracer.start_as_current_span(
            "retrieve",
            attributes={
                "openinference.span.kind": "RETRIEVER",
                "input.value": query,
                "retrieval.documents.0.document.id": "kb-1",
                "retrieval.documents.0.document.content": "To reset your password open Settings.",
                "retrieval.documents.0.document.score": 0.82,
                "retrieval.documents.1.document.id": "kb-2",
                "retrieval.documents.1.document.content": "Billing runs monthly.",
                "retrieval.documents.1.document.score": 0.31,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "llm",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "Open Settings to reset your password.",
            },
        ):
            pass
        root.set_attribute("output.value", "Open Settings to reset your password.")
        return f"{root.get_span_context().trace_id:032x}"


def genai_request(provider: TracerProvider, i: int) -> str:
    """The same request under the OTel GenAI conventions."""
    tracer = provider.get_tracer("my-rag")
    with tracer.start_as_current_span(
        "rag", attributes={"gen_ai.operation.name": "invoke_agent"}
    ) as root:
        with tracer.start_as_current_span(
            "retrieval kb",
            attributes={
                "gen_ai.operation.name": "retrieval",
                "gen_ai.data_source.id": "kb",
                "gen_ai.retrieval.query.text": f"refund window {i}?",
                "gen_ai.retrieval.documents": json.dumps(
                    [{"id": "r1", "score": 0.9, "content": "Refunds are possible within 30 days."}]
                ),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "chat",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "llama-3.1-8b",
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": "Within 30 days."}],
                        }
                    ]
                ),
            },
        ):
            pass
        return f"{root.get_span_context().trace_id:032x}"


async def wait_for(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_sdk_exporters_deliver_assembled_traces(transport: str) -> None:
    run = await start_sidecar(transport)
    try:
        if transport == "http":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter: SpanExporter = OTLPSpanExporter(
                endpoint=f"http://127.0.0.1:{run.port}/v1/traces"
            )
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )

            exporter = GrpcExporter(endpoint=f"127.0.0.1:{run.port}", insecure=True)
        provider = rag_app(exporter)
        ids = [openinference_request(provider, i) for i in range(5)]
        ids += [genai_request(provider, i) for i in range(5)]
        await asyncio.to_thread(provider.force_flush)
        await wait_for(lambda: len(run.sink.results) >= 10)
        await asyncio.to_thread(provider.shutdown)
        got = {r.trace.trace_id: r.trace for r in run.sink.results}
        assert set(got) == set(ids)
        oi = got[ids[0]]
        assert oi.app == "support-bot" and oi.model == "gpt-4o-mini" and oi.prompt_version == "v7"
        assert [c.id for c in oi.chunks] == ["kb-1", "kb-2"] and oi.chunks[0].score == 0.82
        assert oi.answer == "Open Settings to reset your password."
        ga = got[ids[5]]
        assert ga.model == "llama-3.1-8b" and ga.answer == "Within 30 days."
        assert ga.chunks[0].id == "r1" and ga.retriever == "kb"
        n = run.registry.get_sample_value(
            "rag_sidecar_score_count",
            {
                "app": "support-bot",
                "model": "gpt-4o-mini",
                "prompt_version": "v7",
                "metric": "groundedness_lexical",
            },
        )
        assert n == 5
        assert (
            run.registry.get_sample_value(
                "rag_sidecar_traces_total", {"source": "otlp", "outcome": "scored"}
            )
            == 10
        )
    finally:
        await run.pipe.aclose()


async def test_http_protocol_details(http_sidecar: Running) -> None:
    url = f"http://127.0.0.1:{http_sidecar.port}/v1/traces"
    from tests.support.otel_spans import llama_index_rag

    req = llama_index_rag()
    body = req.request.SerializeToString()
    async with httpx.AsyncClient() as client:
        ok = await client.post(
            url,
            content=gzip.compress(body),
            headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
        )
        assert ok.status_code == 200 and ok.headers["content-type"] == "application/x-protobuf"
        # OTLP/JSON with hex ids
        from google.protobuf import json_format

        doc = json.loads(json_format.MessageToJson(req.request))
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in sp:
                            import base64

                            sp[key] = base64.b64decode(sp[key]).hex()
        js = await client.post(url, json=doc)
        assert js.status_code == 200 and js.json() == {}
        bad = await client.post(
            url, content=b"\x0a\xff\xff", headers={"content-type": "application/x-protobuf"}
        )
        assert bad.status_code == 400
        assert (
            await client.post(url, content=b"x", headers={"content-type": "text/plain"})
        ).status_code == 415
        bomb = gzip.compress(b"\x00" * (9 << 20))
        assert (
            await client.post(
                url,
                content=bomb,
                headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
            )
        ).status_code == 413
    await wait_for(lambda: len(http_sidecar.sink.results) >= 1)
    assert http_sidecar.sink.results[0].trace.trace_id == req.trace_id
    assert (
        http_sidecar.registry.get_sample_value(
            "rag_sidecar_otlp_requests_total", {"transport": "http", "outcome": "bad_request"}
        )
        == 1
    )


async def test_bearer_token_and_saturation() -> None:
    run = await start_sidecar("http", token="s3cret", max_in_flight=1, retry_after_s=3)
    url = f"http://127.0.0.1:{run.port}/v1/traces"
    from tests.support.otel_spans import llama_index_rag

    body = llama_index_rag().request.SerializeToString()
    headers = {"content-type": "application/x-protobuf"}
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.post(url, content=body, headers=headers)).status_code == 401
            auth = {**headers, "authorization": "Bearer s3cret"}
            run.pipe.sources[0].in_flight = 1  # type: ignore[attr-defined]  # pipeline saturated
            r = await client.post(url, content=body, headers=auth)
            assert r.status_code == 429 and r.headers["retry-after"] == "3"
            run.pipe.sources[0].in_flight = 0  # type: ignore[attr-defined]
            assert (await client.post(url, content=body, headers=auth)).status_code == 200
    finally:
        await run.pipe.aclose()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=2048), as_json=st.booleans())
def test_fuzzed_bodies_never_crash(body: bytes, as_json: bool) -> None:
    from sidecar.sources.otlp.receiver import BadRequest, decode_request

    ctype = "application/json" if as_json else "application/x-protobuf"
    with contextlib.suppress(BadRequest):
        decode_request(body, ctype)


async def test_fuzzed_requests_get_4xx_and_server_survives(http_sidecar: Running) -> None:
    import random

    from tests.support.otel_spans import genai_rag

    url = f"http://127.0.0.1:{http_sidecar.port}/v1/traces"
    good = genai_rag().request.SerializeToString()
    rng = random.Random(7)
    codes: dict[int, int] = {}
    async with httpx.AsyncClient() as client:
        for i in range(200):
            cut = (
                good[: rng.randrange(len(good))]
                if i % 2
                else bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
            )
            ctype = "application/json" if i % 5 == 0 else "application/x-protobuf"
            r = await client.post(url, content=cut, headers={"content-type": ctype})
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            assert r.status_code in (200, 400), r.status_code
        assert (
            await client.post(url, content=good, headers={"content-type": "application/x-protobuf"})
        ).status_code == 200
    assert codes.get(400, 0) > 50
    bad = http_sidecar.registry.get_sample_value(
        "rag_sidecar_otlp_requests_total", {"transport": "http", "outcome": "bad_request"}
    )
    assert bad == codes[400]
    assert http_sidecar.pipe.failure is None


async def test_through_a_real_collector_rotel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """app --OTLP/HTTP--> rotel-agent (batches, forwards over gRPC) --> sidecar."""
    import subprocess
    from pathlib import Path

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from tests.conftest import free_port

    agent = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "rotel-agent"
    if not agent.is_file():
        import os

        msg = "rotel-agent not installed (scripts/tools.sh rotel)"
        if os.environ.get("RAG_SIDECAR_REQUIRE_TOOLS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    run = await start_sidecar("grpc")
    grpc_in, http_in = free_port(), free_port()
    log = (tmp_path / "rotel.log").open("wb")
    proc = subprocess.Popen(
        [
            str(agent),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{grpc_in}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{http_in}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            f"http://127.0.0.1:{run.port}",
            "--otlp-exporter-protocol",
            "grpc",
            "--batch-timeout",
            "100ms",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 10
            while True:
                try:
                    await client.post(
                        f"http://127.0.0.1:{http_in}/v1/traces",
                        content=b"",
                        headers={"content-type": "application/x-protobuf"},
                    )
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None, (
                        tmp_path / "rotel.log"
                    ).read_text()
                    await asyncio.sleep(0.05)
        provider = rag_app(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{http_in}/v1/traces"))
        ids = [openinference_request(provider, i) for i in range(20)]
        await asyncio.to_thread(provider.shutdown)
        await wait_for(lambda: len(run.sink.results) >= 20, timeout=30)
        assert {r.trace.trace_id for r in run.sink.results} == set(ids)
        assert all(len(r.trace.chunks) == 2 for r in run.sink.results)
    finally:
        proc.terminate()
        proc.wait(10)
        await run.pipe.aclose()
