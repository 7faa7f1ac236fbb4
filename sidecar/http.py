"""A small asyncio HTTP/1.1 server for /metrics, /healthz, /readyz and OTLP/HTTP.

Deliberately minimal (no framework dependency): request line, headers, bodies by
``Content-Length`` or ``Transfer-Encoding: chunked`` (size cap enforced while reading, a
deadline for the whole body), keep-alive, a cap on open connections, and a route table that
later stages (the OTLP/HTTP receiver) extend with :meth:`HttpServer.route`. Requests the
server answers itself (400, 408, 413, 431, 501, 503) are reported to
:attr:`HttpServer.on_reject`, then the connection is half-closed and what the client still
sends is discarded for a bounded time, so that it reads the response rather than a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 16 * 1024
_MAX_CHUNK_LINE = 4096  # chunk-size line with extensions, or one trailer line
_FEW_CHUNKS = 1024  # beyond this many chunks in one body ...
_MIN_CHUNK_AVG = 256  # ... they must average this many bytes
_IDLE_TIMEOUT_S = 30.0
_LINGER_S = 2.0  # after an early reject: how long to discard what the client still sends
_LINGER_BYTES = 32 << 20
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_OUTCOMES = {
    400: "bad_request",
    408: "timeout",
    413: "too_large",
    431: "bad_request",
    501: "unsupported_transfer_encoding",
    503: "overloaded",
}


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


class _Reject(Exception):
    """A request the server answers itself, then closes the connection."""

    def __init__(self, status: int, message: str, *, linger: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.linger = linger


class HttpServer:
    """Serves registered routes; unknown paths get 404, wrong methods 405.

    ``body_timeout_s`` bounds reading one request body (408 after it), ``max_connections``
    the connections served at once (503 + ``Retry-After`` beyond it). ``on_reject`` is
    called with an outcome (``bad_request``, ``timeout``, ``too_large``,
    ``unsupported_transfer_encoding``, ``overloaded``) for each request rejected here.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_body_bytes: int = 4 << 20,
        body_timeout_s: float = 10.0,
        max_connections: int = 256,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.max_connections = max_connections
        self.on_reject = on_reject
        self._routes: dict[str, dict[str, Handler]] = {}
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._idle: dict[asyncio.Task[None], float] = {}  # waiting for a request, since
        self._serving = 0

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
            if self._serving >= self.max_connections and not self._evict_idle():
                await self._reject(reader, writer, _Reject(503, "too many connections\n"), 0.5)
                return
            self._serving += 1
            try:
                await self._serve(reader, writer)
            finally:
                self._serving -= 1
        except asyncio.CancelledError:
            pass
        finally:
            self._conns.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    def _evict_idle(self) -> bool:
        """At the cap, close the connection idle the longest (a keep-alive between exports,
        or a socket opened and left silent) to make room; False when none is idle."""
        if not self._idle:
            return False
        oldest = min(self._idle, key=self._idle.__getitem__)
        del self._idle[oldest]
        oldest.cancel()
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            self._idle[task] = time.monotonic()
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE_TIMEOUT_S)
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                return
            except asyncio.LimitOverrunError:
                await self._reject(reader, writer, _Reject(431, "headers too large\n"))
                return
            finally:
                self._idle.pop(task, None)
            try:
                keep = await self._handle(head, reader, writer)
            except _Reject as rej:
                await self._reject(reader, writer, rej)
                return
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the client went away mid-body
            if not keep:
                return

    async def _handle(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise _Reject(400, "bad request line\n") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        body = await self._read_body(headers, version, reader, writer)
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

    async def _read_body(
        self,
        headers: dict[str, str],
        version: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bytes:
        """The body framed by Content-Length or chunked (RFC 9112 §6), within the limits."""
        chunked = "transfer-encoding" in headers
        length = 0
        if chunked:
            codings = [c.strip().lower() for c in headers["transfer-encoding"].split(",")]
            codings = [c for c in codings if c]
            if "content-length" in headers or version != "HTTP/1.1":
                raise _Reject(400, "Transfer-Encoding with Content-Length or HTTP/1.0\n")
            if not codings or codings[-1] != "chunked" or "chunked" in codings[:-1]:
                raise _Reject(400, "chunked must be the final transfer coding, once\n")
            if len(codings) > 1:
                raise _Reject(501, f"transfer coding {codings[0]!r} not implemented\n")
        else:
            length_s = headers.get("content-length", "0")
            if not (length_s.isascii() and length_s.isdigit()):
                raise _Reject(400, "bad content-length\n")
            length = int(length_s) if len(length_s) <= 18 else self.max_body_bytes + 1
            if length > self.max_body_bytes:
                raise _Reject(413, "body too large\n")
            if not length:
                return b""
        if headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            async with asyncio.timeout(self.body_timeout_s):
                if chunked:
                    return await self._read_chunked(reader)
                return await reader.readexactly(length)
        except TimeoutError:
            raise _Reject(408, "request body not received in time\n", linger=False) from None

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        body = bytearray()  # not a list of chunks: tiny chunks would cost ~60 bytes each
        total = chunks = 0
        while True:
            size_s = (await self._line(reader)).split(b";", 1)[0].strip(b" \t")
            if not _HEX.fullmatch(size_s):
                raise _Reject(400, "bad chunk size\n")
            size = int(size_s, 16)
            if total + size > self.max_body_bytes:
                raise _Reject(413, "body too large\n")
            if size == 0:
                break
            chunks += 1
            if chunks > _FEW_CHUNKS and total < chunks * _MIN_CHUNK_AVG:
                raise _Reject(400, "chunks too small\n")  # each costs a parse round
            body += await reader.readexactly(size)
            total += size
            if await reader.readexactly(2) != b"\r\n":
                raise _Reject(400, "chunk data not followed by CRLF\n")
        trailers = 0  # trailer fields are read and ignored
        while line := await self._line(reader):
            trailers += len(line)
            if trailers > _MAX_HEADER_BYTES:
                raise _Reject(431, "trailers too large\n")
        return bytes(body)

    @staticmethod
    async def _line(reader: asyncio.StreamReader) -> bytes:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError:
            raise _Reject(400, "chunk line too long\n") from None
        if len(line) > _MAX_CHUNK_LINE:
            raise _Reject(400, "chunk line too long\n")
        return line[:-2]

    async def _reject(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rej: _Reject,
        linger_s: float = _LINGER_S,
    ) -> None:
        """Answer ``rej`` with ``Connection: close``, half-close, discard what follows."""
        fields = {"status": rej.status, "reason": rej.message.strip()}
        if self.on_reject is None:
            log.info("http request rejected", extra={"fields": fields})
        else:  # counted by the owner: keep floods out of the log
            log.debug("http request rejected", extra={"fields": fields})
            self.on_reject(_OUTCOMES.get(rej.status, "bad_request"))
        headers = {"retry-after": "1"} if rej.status == 503 else {}
        await self._send(writer, Response(rej.status, rej.message.encode(), headers), close=True)
        if not rej.linger:
            return
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
        drained = 0
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(linger_s):
                while drained < _LINGER_BYTES and (data := await reader.read(1 << 16)):
                    drained += len(data)

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


class _Collected(Collector):
    """Metric families already collected, for an encoder to format in another thread."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def add_metrics_routes(server: HttpServer, registry: CollectorRegistry) -> None:
    """Serve the registry on /metrics (Prometheus text or OpenMetrics by Accept).

    Collection reads live state, so it runs on the event loop; formatting (most of a
    scrape: over a second for a thousand label sets) runs in a thread, so that a scrape
    does not stall the pipeline, Kafka heartbeats or the OTLP receiver meanwhile."""

    async def metrics(req: Request) -> Response:
        encoder, content_type = choose_encoder(req.headers.get("accept", ""))
        families = _Collected(list(registry.collect()))
        body = await asyncio.to_thread(encoder, families)
        return Response(200, body, {"content-type": content_type})

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
