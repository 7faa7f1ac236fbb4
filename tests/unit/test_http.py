"""The HTTP server against a real client (httpx) on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

import sidecar.http as http_mod
from sidecar.http import HttpServer, Request, Response, add_health_routes, add_metrics_routes


async def test_routes_status_codes_and_keepalive() -> None:
    registry = CollectorRegistry()
    Counter("demo_things", "Things.", registry=registry).inc(3)
    server = HttpServer("127.0.0.1", 0, max_body_bytes=100)
    add_metrics_routes(server, registry)
    state = {"ready": False}
    add_health_routes(server, ready=lambda: state["ready"], health=lambda: (True, {"queues": {}}))

    async def echo(req: Request) -> Response:
        return Response(200, req.body[::-1])

    server.route("POST", "/echo", echo)
    await server.start()
    base = f"http://127.0.0.1:{server.bound_port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            r = await client.get("/metrics")
            assert r.status_code == 200 and "demo_things_total 3.0" in r.text
            assert r.headers["content-type"].startswith("text/plain")
            om = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
            assert om.headers["content-type"].startswith("application/openmetrics-text")
            assert om.text.rstrip().endswith("# EOF")
            assert (await client.get("/readyz")).status_code == 503
            state["ready"] = True
            assert (await client.get("/readyz")).json() == {"ready": True}
            assert (await client.get("/healthz")).json()["healthy"] is True
            assert (await client.get("/nope")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
            assert (await client.post("/echo", content=b"abc")).text == "cba"
            assert (await client.post("/echo", content=b"x" * 101)).status_code == 413
            assert (await client.head("/metrics")).status_code == 200
    finally:
        await server.aclose()


async def test_garbage_request_gets_400_and_server_survives() -> None:
    server = HttpServer("127.0.0.1", 0)
    add_health_routes(server, ready=lambda: True, health=lambda: (True, {}))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
        writer.write(b"GARBAGE\r\n\r\n")
        await writer.drain()
        assert (await reader.read(100)).startswith(b"HTTP/1.1 400")
        writer.close()
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{server.bound_port}/healthz")
            assert r.status_code == 200
    finally:
        await server.aclose()


async def _raw(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection; everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()


async def _echo_server(**kw: object) -> tuple[HttpServer, list[str]]:
    outcomes: list[str] = []
    server = HttpServer("127.0.0.1", 0, on_reject=outcomes.append, **kw)  # type: ignore[arg-type]

    async def echo(req: Request) -> Response:
        return Response(200, req.body)

    server.route("POST", "/echo", echo)
    await server.start()
    return server, outcomes


POST = b"POST /echo HTTP/1.1\r\nHost: x\r\n"


async def test_chunked_bodies_are_decoded_with_limits() -> None:
    server, outcomes = await _echo_server(max_body_bytes=100)
    port = server.bound_port
    try:
        # extensions and trailers are skipped; the connection stays usable afterwards
        chunked = POST + b"Transfer-Encoding: chunked\r\n\r\n"
        body = b"5;ext=1\r\nhello\r\n1 ; x\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: 1\r\n\r\n"
        again = POST + b"Content-Length: 2\r\nConnection: close\r\n\r\nok"
        out = await _raw(port, chunked + body + again)
        assert out.startswith(b"HTTP/1.1 200") and out.count(b"HTTP/1.1 200") == 2
        assert b"\r\n\r\nhello world!HTTP/1.1 200" in out and out.endswith(b"\r\n\r\nok")
        async with httpx.AsyncClient() as client:  # httpx streams an iterator as chunked

            async def parts() -> AsyncIterator[bytes]:
                for _ in range(4):
                    yield b"x" * 20

            r = await client.post(f"http://127.0.0.1:{port}/echo", content=parts())
            assert r.status_code == 200 and r.content == b"x" * 80
        cases = {
            b"65\r\n" + b"x" * 101 + b"\r\n0\r\n\r\n": b"413",  # over the cap while reading
            b"40\r\n" + b"x" * 64 + b"\r\n40\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n": b"413",
            b"zz\r\nhello\r\n0\r\n\r\n": b"400",  # not hex
            b"5\r\nhelloXX0\r\n\r\n": b"400",  # no CRLF after the data
            b"1;" + b"e" * 5000 + b"\r\nx\r\n0\r\n\r\n": b"400",  # chunk line too long
        }
        for bad, status in cases.items():
            assert (await _raw(port, chunked + bad)).startswith(b"HTTP/1.1 " + status), bad
        framing = {
            b"Transfer-Encoding: gzip, chunked\r\n\r\n": b"501",  # coding not implemented
            b"Transfer-Encoding: gzip\r\n\r\n": b"400",  # chunked not final
            b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n": b"400",  # smuggling
        }
        for head, status in framing.items():
            assert (await _raw(port, POST + head + b"0\r\n\r\n")).startswith(
                b"HTTP/1.1 " + status
            ), head
        assert outcomes == ["too_large"] * 2 + ["bad_request"] * 3 + [
            "unsupported_transfer_encoding",
            "bad_request",
            "bad_request",
        ]
    finally:
        await server.aclose()


async def test_content_length_must_be_ascii_digits() -> None:
    server, outcomes = await _echo_server()
    try:
        for value in (b"\xb2", b"\xd9\xa1", b"-1", b"5, 6"):  # '²', Arabic-Indic one, ...
            out = await _raw(server.bound_port, POST + b"Content-Length: " + value + b"\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 400"), value
        out = await _raw(server.bound_port, POST + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 413")
        assert outcomes == ["bad_request"] * 4 + ["too_large"]
    finally:
        await server.aclose()


async def test_oversized_body_gets_413_not_a_reset() -> None:
    server, outcomes = await _echo_server(max_body_bytes=1 << 20)
    try:
        async with httpx.AsyncClient() as client:
            r = await client.post(
                f"http://127.0.0.1:{server.bound_port}/echo", content=b"x" * (9 << 20)
            )
        assert r.status_code == 413 and r.headers["connection"] == "close"
        assert outcomes == ["too_large"]
    finally:
        await server.aclose()


async def test_slow_body_times_out_and_connections_are_capped() -> None:
    server, outcomes = await _echo_server(body_timeout_s=0.3, max_connections=2)
    port = server.bound_port
    try:
        start = asyncio.get_running_loop().time()
        out = await _raw(port, POST + b"Content-Length: 1000\r\n\r\nx")
        assert out.startswith(b"HTTP/1.1 408")
        assert asyncio.get_running_loop().time() - start < 3
        # two slow clients hold both slots: the third is answered 503 + Retry-After
        slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for _, w in slow:
            w.write(POST + b"Content-Length: 1000\r\n\r\nx")
        await asyncio.sleep(0.05)
        out = await _raw(port, POST + b"Content-Length: 2\r\n\r\nok")
        assert out.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in out
        for r, w in slow:  # their bodies time out, the slots free up
            assert (await asyncio.wait_for(r.read(), 3)).startswith(b"HTTP/1.1 408")
            w.close()
        out = await _raw(port, POST + b"Content-Length: 2\r\nConnection: close\r\n\r\nok")
        assert out.startswith(b"HTTP/1.1 200")
        assert outcomes == ["timeout", "overloaded", "timeout", "timeout"]
    finally:
        await server.aclose()


async def test_tiny_chunks_are_refused_before_they_cost_memory_and_time() -> None:
    """2-byte chunks held as a list cost ~60 bytes each (a 28 MiB body: +525 MiB) and a
    parse round each; beyond 1024 chunks they must average 256 bytes."""
    server, outcomes = await _echo_server(max_body_bytes=8 << 20)
    port = server.bound_port
    try:
        chunked = POST + b"Transfer-Encoding: chunked\r\n\r\n"
        tiny = b"2\r\nxx\r\n" * 5000 + b"0\r\n\r\n"
        assert (await _raw(port, chunked + tiny)).startswith(b"HTTP/1.1 400")
        fine = b"400\r\n" + b"y" * 1024 + b"\r\n"  # 2000 chunks of 1 KiB: accepted
        closing = POST + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        out = await _raw(port, closing + fine * 2000 + b"0\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"y" * 1024)
        assert outcomes == ["bad_request"]
    finally:
        await server.aclose()


async def test_silent_connections_give_way_at_the_cap() -> None:
    """Sockets opened and left silent must not shut exporters out: at the cap the one idle
    the longest is closed to make room (503 only when every connection is mid-request)."""
    server, _ = await _echo_server(max_connections=3)
    port = server.bound_port
    try:
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.05)
        out = await _raw(port, POST + b"Content-Length: 2\r\nConnection: close\r\n\r\nok")
        assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"ok")
        closed = 0
        for r, w in silent:
            with contextlib.suppress(TimeoutError):
                closed += await asyncio.wait_for(r.read(), 0.5) == b""
            w.close()
        assert closed == 1  # the oldest one only
    finally:
        await server.aclose()


async def test_metrics_are_formatted_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Formatting a large registry takes seconds of CPU: on the loop, every scrape would
    stall the pipeline, Kafka heartbeats and OTLP clients for that long."""
    registry = CollectorRegistry()
    Counter("demo_things", "Things.", ("k",), registry=registry).labels("a").inc(2)
    threads: list[int] = []

    def encoder(collected: object) -> bytes:
        threads.append(threading.get_ident())
        return generate_latest(collected)  # type: ignore[arg-type]

    monkeypatch.setattr(http_mod, "choose_encoder", lambda accept: (encoder, "text/plain"))
    server = HttpServer("127.0.0.1", 0)
    add_metrics_routes(server, registry)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.bound_port}") as c:
            r = await c.get("/metrics")
    finally:
        await server.aclose()
    assert r.status_code == 200 and r.content == generate_latest(registry)
    assert threads and threads[0] != threading.get_ident()
