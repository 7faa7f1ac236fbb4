"""OTLP transport edge cases against the running receiver: chunked bodies (httpx, Node.js),
malformed OTLP/JSON shapes, multi-member and truncated gzip, framing errors the HTTP server
rejects itself, and gRPC garbage, oversize and backpressure (with the SDK's gRPC exporter)."""

from __future__ import annotations

import asyncio
import gzip
import shutil
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.integration.test_otlp_receiver import (
    Running,
    openinference_request,
    rag_app,
    start_sidecar,
    wait_for,
)
from tests.support.otel_spans import genai_rag, llama_index_rag

pytestmark = pytest.mark.integration

PROTOBUF = {"content-type": "application/x-protobuf"}
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

# Mirrors @opentelemetry/otlp-exporter-base (sendWithHttp): the body is piped into the
# request, so Node.js sends it chunked, with no Content-Length, gzip or not.
NODE_EXPORTER = """
const http = require('http'); const zlib = require('zlib'); const { Readable } = require('stream');
const [port, file, gz] = [process.argv[2], process.argv[3], process.argv[4] === 'gzip'];
const req = http.request({hostname: '127.0.0.1', port, path: '/v1/traces', method: 'POST',
  headers: {'Content-Type': 'application/x-protobuf'}}, res => {
  res.resume(); res.on('end', () => console.log(res.statusCode)); });
req.on('error', e => console.log('error', e.code));
let s = Readable.from([require('fs').readFileSync(file)]);
if (gz) { req.setHeader('Content-Encoding', 'gzip'); s = s.pipe(zlib.createGzip()); }
s.pipe(req);
"""


@pytest.fixture
async def http_sidecar() -> AsyncIterator[Running]:
    run = await start_sidecar("http")
    yield run
    await run.pipe.aclose()


def count(run: Running, transport: str, outcome: str) -> float:
    value = run.registry.get_sample_value(
        "rag_sidecar_otlp_requests_total", {"transport": transport, "outcome": outcome}
    )
    return value or 0.0


async def test_chunked_bodies_plain_and_gzip(http_sidecar: Running, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"http://127.0.0.1:{http_sidecar.port}/v1/traces"
    reqs = [llama_index_rag(seed=31), genai_rag(seed=32)]

    async def stream(body: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(body), 700):  # several chunks, no Content-Length
            yield body[i : i + 700]

    async with httpx.AsyncClient() as client:
        plain = reqs[0].request.SerializeToString()
        r = await client.post(url, content=stream(plain), headers=PROTOBUF)
        assert r.status_code == 200 and r.request.headers["transfer-encoding"] == "chunked"
        packed = gzip.compress(reqs[1].request.SerializeToString())  # what OkHttp does with gzip
        r = await client.post(
            url, content=stream(packed), headers={**PROTOBUF, "content-encoding": "gzip"}
        )
        assert r.status_code == 200
    expected = {r.trace_id for r in reqs}
    node = shutil.which("node")
    if node is not None:
        script, body = tmp_path / "exporter.js", tmp_path / "body.pb"
        script.write_text(NODE_EXPORTER)
        for seed, gz in ((33, "none"), (34, "gzip")):
            req = llama_index_rag(seed=seed)
            body.write_bytes(req.request.SerializeToString())
            proc = await asyncio.create_subprocess_exec(
                node, str(script), str(http_sidecar.port), str(body), gz, stdout=-1
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
            assert out.decode().strip() == "200", out
            expected.add(req.trace_id)
    await wait_for(lambda: len(http_sidecar.sink.results) >= len(expected))
    assert {r.trace.trace_id for r in http_sidecar.sink.results} == expected
    assert count(http_sidecar, "http", "ok") == len(expected)


async def test_malformed_json_shapes_get_400_and_are_counted(http_sidecar: Running) -> None:
    bodies = [
        b'{"resourceSpans": "abc"}',
        b'{"resourceSpans": 5}',
        b'{"resourceSpans": [[1]]}',
        b'{"resourceSpans": [{"scopeSpans": ["x"]}]}',
        b'{"resourceSpans": [{"scopeSpans": {"spans": []}}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": 3}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"links": 7}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"links": ["x"]}]}]}]}',
        b"[1, 2]",
    ]
    url = f"http://127.0.0.1:{http_sidecar.port}/v1/traces"
    async with httpx.AsyncClient() as client:
        for body in bodies:
            r = await client.post(url, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400 and r.json()["code"] == 3, body
    assert count(http_sidecar, "http", "bad_request") == len(bodies)
    assert http_sidecar.pipe.failure is None


async def test_gzip_all_members_decoded_truncated_rejected(http_sidecar: Running) -> None:
    url = f"http://127.0.0.1:{http_sidecar.port}/v1/traces"
    a, b = llama_index_rag(seed=21), genai_rag(seed=22)
    gz = {**PROTOBUF, "content-encoding": "gzip"}
    two = gzip.compress(a.request.SerializeToString()) + gzip.compress(
        b.request.SerializeToString()
    )
    whole = gzip.compress(genai_rag(seed=23).request.SerializeToString())
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, content=two, headers=gz)).status_code == 200
        for bad in (whole[: len(whole) * 2 // 3], whole[:-4], whole + b"\x00\x00", b""):
            r = await client.post(url, content=bad, headers=gz)
            assert r.status_code == 400, bad[-8:]
    await wait_for(lambda: len(http_sidecar.sink.results) >= 2)
    await asyncio.sleep(0.5)
    assert {r.trace.trace_id for r in http_sidecar.sink.results} == {a.trace_id, b.trace_id}
    assert count(http_sidecar, "http", "bad_request") == 4


async def test_framing_errors_get_4xx_and_are_counted(http_sidecar: Running) -> None:
    port = http_sidecar.port
    http_sidecar.pipe.sources[0]._http.body_timeout_s = 0.3  # type: ignore[attr-defined]
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"

    async def raw(data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()

    assert (await raw(head + b"Content-Length: \xb2\r\n\r\n")).startswith(b"HTTP/1.1 400")
    assert (await raw(head + b"Content-Length: 99\r\n\r\nx")).startswith(b"HTTP/1.1 408")
    async with httpx.AsyncClient() as client:  # over the 8 MiB cap: the client reads the 413
        r = await client.post(
            f"http://127.0.0.1:{port}/v1/traces", content=b"\0" * (9 << 20), headers=PROTOBUF
        )
        assert r.status_code == 413
        assert (await client.get(f"http://127.0.0.1:{port}/v1/traces")).status_code == 405
    assert count(http_sidecar, "http", "bad_request") == 1
    assert count(http_sidecar, "http", "timeout") == 1
    assert count(http_sidecar, "http", "too_large") == 1
    assert http_sidecar.pipe.failure is None


async def test_grpc_garbage_and_oversize_are_invalid_argument_and_counted() -> None:
    run = await start_sidecar("grpc", max_body_bytes=16384)
    big = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(spans=[Span(trace_id=b"\1" * 16, span_id=b"\2" * 8, name="x" * n)])
                ]
            )
            for n in (20_000, 36_000)  # 1.2x and 2.2x the cap
        ]
    )
    over, far_over = (
        trace_service_pb2.ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()
        for rs in big.resource_spans
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{run.port}") as channel:
            call = channel.unary_unary(EXPORT)
            for body, code in (
                (b"\x0a\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT),
                (over, grpc.StatusCode.INVALID_ARGUMENT),
                (far_over, grpc.StatusCode.RESOURCE_EXHAUSTED),  # refused by grpc itself
            ):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call(body)
                assert err.value.code() == code, err.value.details()
            ok = await call(llama_index_rag().request.SerializeToString())
            assert ok == b""  # an empty ExportTraceServiceResponse
        assert count(run, "grpc", "bad_request") == 1
        assert count(run, "grpc", "too_large") == 1
        assert count(run, "grpc", "ok") == 1
        assert run.pipe.failure is None
    finally:
        await run.pipe.aclose()


async def test_grpc_backpressure_carries_retry_info_and_exporter_retries() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    run = await start_sidecar("grpc", max_in_flight=1, retry_after_s=0.1)
    source = run.pipe.sources[0]
    source.in_flight = 1  # type: ignore[attr-defined]  # pipeline saturated
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{run.port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Export(llama_index_rag().request)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(err.value.trailing_metadata() or ())
        # What the Collector's exporter reads: RetryInfo in the google.rpc.Status details.
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        info = error_details_pb2.RetryInfo()
        assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert status.details[0].Unpack(info) and info.retry_delay.ToMilliseconds() == 100
        # The Python SDK's exporter retries after that delay (its own backoff: 1 s, 2 s, 4 s…).
        provider = rag_app(OTLPSpanExporter(endpoint=f"127.0.0.1:{run.port}", insecure=True))
        trace_id = openinference_request(provider, 0)
        flushed = asyncio.create_task(asyncio.to_thread(provider.force_flush))
        await wait_for(lambda: count(run, "grpc", "throttled") >= 5, timeout=4)
        source.in_flight = 0  # type: ignore[attr-defined]
        assert await flushed
        await wait_for(lambda: len(run.sink.results) >= 1)
        assert run.sink.results[0].trace.trace_id == trace_id
        await asyncio.to_thread(provider.shutdown)
    finally:
        await run.pipe.aclose()
