"""The HTTP server against a real client (httpx) on loopback."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import CollectorRegistry, Counter

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
