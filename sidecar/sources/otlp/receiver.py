"""OTLP trace receivers: OTLP/HTTP (protobuf and JSON, gzip) and OTLP/gRPC.

Both decode an ``ExportTraceServiceRequest`` and hand its ``ResourceSpans`` to
one :data:`Accept` callback, which answers how many spans it rejected. The
protocol rules live here, nothing else:

* HTTP ``POST /v1/traces``: ``application/x-protobuf`` or ``application/json``
  (OTLP/JSON: hex trace and span ids), optional ``Content-Encoding: gzip``. The
  response is an ``ExportTraceServiceResponse`` in the request's encoding, with
  ``partial_success`` when spans were rejected. Garbage → 400, wrong media type
  → 415, body over the cap (compressed or not) → 413, bad token → 401, pipeline
  saturated → 429 with ``Retry-After`` (never unbounded buffering). Framing errors
  the HTTP server rejects itself (400/408/413/501/503) are counted the same way.
* gRPC ``TraceService/Export``: the request is decoded here (raw bytes in), so garbage
  and oversize bodies → ``INVALID_ARGUMENT``, bad token → ``UNAUTHENTICATED``,
  saturated → ``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo``, which makes the
  Collector's and the SDKs' exporters retry after that delay.

Rejections are reported to ``on_error(outcome)``; throttling is counted by ``accept``.
"""

from __future__ import annotations

import base64
import hmac
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2  # shipped with googleapis-common-protos
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from ...http import HttpServer, Request, Response

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_GRPC_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
_GZIP_SLICE = 64 << 10  # input fed per step: a member's end copies at most this much
_GZIP_MAX_MEMBERS = 1024


@dataclass(slots=True)
class Ack:
    """What the consumer of the spans answers: rejected span count and why."""

    rejected: int = 0
    message: str = ""


class Saturated(Exception):
    """Raised by the accept callback when the pipeline cannot take more now."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"saturated; retry after {retry_after_s:g}s")
        self.retry_after_s = retry_after_s


Accept = Callable[[Sequence[ResourceSpans], str], Ack]
"""``accept(resource_spans, transport)``; may raise :class:`Saturated`."""


class BadRequest(ValueError):
    """The body is not a valid OTLP trace export request."""


def _hex_to_b64(value: Any) -> Any:
    if isinstance(value, str) and value:
        try:
            return base64.b64encode(bytes.fromhex(value)).decode("ascii")
        except ValueError:
            raise BadRequest(f"ids must be hex in OTLP/JSON, got {value[:40]!r}") from None
    return value


def _items(parent: dict[str, Any], key: str, what: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{what} must be a list")
    return value


def _fix_json_ids(doc: Any) -> None:
    """OTLP/JSON writes trace/span ids as hex; protobuf's JSON mapping expects base64.

    Checks the shape on the way down, so that a wrong type is a :class:`BadRequest`.
    """
    if not isinstance(doc, dict):
        raise BadRequest("OTLP/JSON body must be an object")
    for rs in _items(doc, "resourceSpans", "resourceSpans"):
        if not isinstance(rs, dict):
            raise BadRequest("resourceSpans items must be objects")
        for ss in _items(rs, "scopeSpans", "scopeSpans"):
            if not isinstance(ss, dict):
                raise BadRequest("scopeSpans items must be objects")
            for span in _items(ss, "spans", "spans"):
                if not isinstance(span, dict):
                    raise BadRequest("spans must be objects")
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = _hex_to_b64(span[key])
                for link in _items(span, "links", "links"):
                    if not isinstance(link, dict):
                        raise BadRequest("links must be objects")
                    for key in ("traceId", "spanId"):
                        if key in link:
                            link[key] = _hex_to_b64(link[key])


def decode_request(body: bytes, content_type: str) -> trace_service_pb2.ExportTraceServiceRequest:
    """Parse an export request body (protobuf or OTLP/JSON); raises :class:`BadRequest`."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    if content_type == PROTOBUF:
        try:
            req.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise BadRequest(f"invalid protobuf: {exc}") from None
        return req
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("invalid JSON") from None
    try:
        _fix_json_ids(doc)
        json_format.ParseDict(doc, req, ignore_unknown_fields=True)
    except BadRequest:
        raise
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise BadRequest(f"invalid OTLP/JSON: {str(exc)[:200]}") from None
    return req


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decode every gzip (or zlib) member; truncated or corrupt → :class:`BadRequest`.

    Raises :class:`OverflowError` once the output passes ``limit``.
    """
    out: list[bytes] = []
    size, members, pos = 0, 1, 0
    d = zlib.decompressobj(wbits=47)  # gzip or zlib header
    data = b""
    while data or pos < len(body):
        if not data:
            data, pos = body[pos : pos + _GZIP_SLICE], pos + _GZIP_SLICE
        try:
            chunk = d.decompress(data, limit + 1 - size)
        except zlib.error:
            raise BadRequest("invalid gzip body") from None
        size += len(chunk)
        if size > limit:  # output stopped at limit + 1: more was pending
            raise OverflowError("decompressed body too large")
        out.append(chunk)
        data = b""
        if d.eof and (d.unused_data or pos < len(body)):
            data, members = d.unused_data, members + 1
            if members > _GZIP_MAX_MEMBERS:
                raise BadRequest(f"more than {_GZIP_MAX_MEMBERS} gzip members")
            d = zlib.decompressobj(wbits=47)
    if not d.eof:
        raise BadRequest("truncated gzip body")
    return b"".join(out)


def _response(ack: Ack, content_type: str) -> bytes:
    resp = trace_service_pb2.ExportTraceServiceResponse()
    if ack.rejected:
        resp.partial_success.rejected_spans = ack.rejected
        resp.partial_success.error_message = ack.message[:1000]
    if content_type == PROTOBUF:
        return bytes(resp.SerializeToString())
    return str(json_format.MessageToJson(resp, indent=None)).encode()


def _status(code: int, message: str, content_type: str) -> Response:
    # google.rpc.Status: code 3 INVALID_ARGUMENT, 16 UNAUTHENTICATED, 8 RESOURCE_EXHAUSTED
    rpc = {400: 3, 401: 16, 413: 3, 415: 3, 429: 8}.get(code, 2)
    if content_type == PROTOBUF:
        body = bytes(status_pb2.Status(code=rpc, message=message).SerializeToString())
        return Response(code, body, {"content-type": PROTOBUF})
    return Response(code, orjson.dumps({"code": rpc, "message": message}), {"content-type": JSON})


def _authorized(token: str | None, header: str | None) -> bool:
    if token is None:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def add_http_route(
    server: HttpServer,
    accept: Accept,
    *,
    token: str | None,
    max_body_bytes: int,
    on_error: Callable[[str], None],
) -> None:
    """Serve OTLP/HTTP ``POST /v1/traces`` on ``server``; its own rejections count too."""
    server.on_reject = on_error

    async def export(req: Request) -> Response:
        ctype = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        reply_type = PROTOBUF if ctype == PROTOBUF else JSON
        if not _authorized(token, req.headers.get("authorization")):
            on_error("unauthorized")
            return _status(401, "missing or invalid bearer token", reply_type)
        if ctype not in (PROTOBUF, JSON):
            on_error("unsupported_media_type")
            return _status(415, f"unsupported content type {ctype!r}", JSON)
        body = req.body
        encoding = req.headers.get("content-encoding", "identity").lower()
        try:
            if encoding == "gzip":
                body = _gunzip(body, max_body_bytes)
            elif encoding not in ("identity", ""):
                on_error("unsupported_encoding")
                return _status(415, f"unsupported content encoding {encoding!r}", reply_type)
            request = decode_request(body, ctype)
            ack = accept(request.resource_spans, "http")
        except OverflowError:
            on_error("too_large")
            return _status(413, "body too large", reply_type)
        except BadRequest as exc:
            on_error("bad_request")
            return _status(400, str(exc), reply_type)
        except Saturated as exc:
            resp = _status(429, str(exc), reply_type)
            resp.headers["retry-after"] = str(max(1, round(exc.retry_after_s)))
            return resp
        return Response(200, _response(ack, reply_type), {"content-type": reply_type})

    server.route("POST", "/v1/traces", export)


def _retry_trailers(delay_s: float, message: str) -> tuple[tuple[str, bytes], ...]:
    """``google.rpc.RetryInfo`` in the status details (Go exporters, the Collector) and
    in ``google.rpc.retryinfo-bin`` (the Python SDK's exporter)."""
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromNanoseconds(int(delay_s * 1e9))
    status = status_pb2.Status(code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message=message)
    status.details.add().Pack(info)
    return (
        ("grpc-status-details-bin", bytes(status.SerializeToString())),
        ("google.rpc.retryinfo-bin", bytes(info.SerializeToString())),
    )


class _TraceService:
    """``TraceService/Export`` taking raw bytes, so that decoding errors are ours to answer."""

    def __init__(
        self,
        accept: Accept,
        token: str | None,
        max_body_bytes: int,
        on_error: Callable[[str], None],
    ) -> None:
        self._accept = accept
        self._token = token
        self._max_body_bytes = max_body_bytes
        self._on_error = on_error

    async def export(self, raw: bytes, context: Any) -> bytes:
        meta = dict(context.invocation_metadata() or ())
        if not _authorized(self._token, meta.get("authorization")):
            self._on_error("unauthorized")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        if len(raw) > self._max_body_bytes:
            self._on_error("too_large")
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request of {len(raw)} bytes is over the {self._max_body_bytes} byte limit",
            )
        try:
            ack = self._accept(decode_request(raw, PROTOBUF).resource_spans, "grpc")
        except BadRequest as exc:
            self._on_error("bad_request")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)[:1000])
        except Saturated as exc:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                str(exc),
                trailing_metadata=_retry_trailers(exc.retry_after_s, str(exc)),
            )
        return _response(ack, PROTOBUF)


async def start_grpc_server(
    host: str,
    port: int,
    accept: Accept,
    *,
    token: str | None,
    max_body_bytes: int,
    on_error: Callable[[str], None],
) -> tuple[Any, int]:
    """Start an OTLP/gRPC server; returns (server, bound port).

    gRPC itself refuses messages over twice ``max_body_bytes`` (``RESOURCE_EXHAUSTED``,
    before any handler runs, so uncounted); between the two the handler answers
    ``INVALID_ARGUMENT`` and counts ``too_large``.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 2 * max_body_bytes),
            ("grpc.so_reuseport", 0),
        ]
    )
    service = _TraceService(accept, token, max_body_bytes, on_error)
    export = grpc.unary_unary_rpc_method_handler(service.export)  # bytes in, bytes out
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_GRPC_SERVICE, {"Export": export}),)
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind OTLP/gRPC on {host}:{port}")
    await server.start()
    return server, int(bound)
