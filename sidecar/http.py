"""A small asyncio HTTP/1.1 server for /metrics, /healthz and /readyz.

It is deliberately minimal (no framework dependency): request line, headers,
``Content-Length`` bodies with a size cap, keep-alive, and a route table that
later stages (the OTLP/HTTP receiver) extend with :meth:`HttpServer.route`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 16 * 1024
_IDLE_TIMEOUT_S = 30.0


@dataclass(slots=True)
class Request:
    """A parsed HTTP request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""


@dataclass(slots=True)
class Response:
    """An HTTP response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, doc: object) -> Response:
        """A JSON response."""
        return cls(status, orjson.dumps(doc), {"content-type": "application/json"})


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves registered routes; unknown paths get 404, wrong methods 405."""

    def __init__(self, host: str, port: int, *, max_body_bytes: int = 4 << 20) -> None:
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self._routes: dict[str, dict[str, Handler]] = {}
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Register ``handler`` for ``method path``."""
        self._routes.setdefault(path, {})[method.upper()] = handler

    @property
    def bound_port(self) -> int:
        """The port actually bound (useful with port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, limit=_MAX_HEADER_BYTES
        )

    async def aclose(self) -> None:
        """Stop accepting, then close open connections."""
        if self._server is not None:
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE_TIMEOUT_S)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._send(writer, Response(431), close=True)
                    return
                keep = await self._handle(head, reader, writer)
                if not keep:
                    return
        except asyncio.CancelledError:
            pass
        finally:
            self._conns.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
        except ValueError:
            await self._send(writer, Response(400, b"bad request line\n"), close=True)
            return False
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        body = b""
        if "transfer-encoding" in headers:
            await self._send(
                writer, Response(411, b"chunked bodies are not supported\n"), close=True
            )
            return False
        length_s = headers.get("content-length", "0")
        if not length_s.isdigit():
            await self._send(writer, Response(400, b"bad content-length\n"), close=True)
            return False
        length = int(length_s)
        if length > self.max_body_bytes:
            await self._send(writer, Response(413, b"body too large\n"), close=True)
            return False
        if length:
            try:
                body = await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return False
        parts = urlsplit(target)
        req = Request(method.upper(), parts.path, parse_qs(parts.query), headers, body)
        methods = self._routes.get(req.path)
        if methods is None:
            resp = Response(404, b"not found\n")
        elif req.method not in methods and not (req.method == "HEAD" and "GET" in methods):
            resp = Response(405, b"method not allowed\n", {"allow": ", ".join(sorted(methods))})
        else:
            handler = methods.get(req.method) or methods["GET"]
            try:
                resp = await handler(req)
            except Exception:
                log.exception("http handler failed", extra={"fields": {"path": req.path}})
                resp = Response(500, b"internal error\n")
            if req.method == "HEAD":
                resp = Response(resp.status, b"", resp.headers)
        await self._send(writer, resp, close=not keep)
        return keep

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, resp: Response, *, close: bool) -> None:
        reason = (
            HTTPStatus(resp.status).phrase if resp.status in HTTPStatus._value2member_map_ else ""
        )
        head = [f"HTTP/1.1 {resp.status} {reason}"]
        headers = {"content-type": "text/plain; charset=utf-8", **resp.headers}
        headers["content-length"] = str(len(resp.body))
        if close:
            headers["connection"] = "close"
        head.extend(f"{k}: {v}" for k, v in headers.items())
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + resp.body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()


def add_metrics_routes(server: HttpServer, registry: CollectorRegistry) -> None:
    """Serve the registry on /metrics (Prometheus text or OpenMetrics by Accept)."""

    async def metrics(req: Request) -> Response:
        encoder, content_type = choose_encoder(req.headers.get("accept", ""))
        return Response(200, encoder(registry), {"content-type": content_type})

    server.route("GET", "/metrics", metrics)


def add_health_routes(
    server: HttpServer,
    *,
    ready: Callable[[], bool],
    health: Callable[[], tuple[bool, dict[str, object]]],
) -> None:
    """/readyz: every source and sink started; /healthz: no stage failed or stalled."""

    async def readyz(req: Request) -> Response:
        ok = ready()
        return Response.json(200 if ok else 503, {"ready": ok})

    async def healthz(req: Request) -> Response:
        ok, detail = health()
        return Response.json(200 if ok else 503, {"healthy": ok, **detail})

    server.route("GET", "/readyz", readyz)
    server.route("GET", "/healthz", healthz)
