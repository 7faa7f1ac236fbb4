"""The OTLP source stage: receive spans, assemble RAG requests, emit them as traces.

Acknowledgement: an OTLP response means "accepted into bounded assembly", not
"scored" — a trace is complete only when its root span ended, which can be
seconds after the spans of one export arrived. What bounds memory instead:
pending traces (by count and approximate bytes, :attr:`TraceAssembler.full`)
and traces emitted but not yet written (``otlp.max_in_flight``); above either
limit requests get 429/``RESOURCE_EXHAUSTED`` with ``Retry-After`` and
exporters retry later. Valid spans the assembler did not keep (over the
per-trace limit, late) are reported as ``partial_success``.

Shutdown: the receivers stop, every pending trace that has a query and an
answer is emitted, and everything accepted is handed to the pipeline, waiting
for room in its queue up to ``drain_timeout_s``; what is left then is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from prometheus_client import CollectorRegistry, Counter

from ...config import OtlpSpec
from ...feedback.record import late_feedback_record
from ...http import HttpServer
from ...stages import Batch, Emit, Record
from ...trace import Trace
from .assembly import TraceAssembler
from .metrics import AssemblyCollector
from .outputs import AssemblyOutput
from .receiver import Ack, Saturated, add_http_route, start_grpc_server
from .settings import OtlpSettings

log = logging.getLogger(__name__)

_Items = list[Trace | Record]


class OtlpSource:
    """OTLP/HTTP or OTLP/gRPC receiver feeding the pipeline with assembled traces."""

    def __init__(
        self,
        spec: OtlpSpec,
        settings: OtlpSettings,
        registry: CollectorRegistry,
        *,
        drain_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = "otlp"
        self.spec = spec
        self.settings = settings
        self.drain_timeout_s = drain_timeout_s
        self.assembler = TraceAssembler(settings.assembly)
        self.in_flight = 0
        self.bound_port: int | None = None
        self._clock = clock
        self._emit: Emit | None = None
        self._ready: asyncio.Queue[_Items | None] = asyncio.Queue()  # None: stop
        self._holding = 0
        """Items the pump took from ``_ready`` and has not handed to the pipeline yet."""
        self._pump_task: asyncio.Task[None] | None = None
        self._expire_task: asyncio.Task[None] | None = None
        self._http: HttpServer | None = None
        self._grpc: Any = None
        self._stopped = asyncio.Event()
        self._closing = False
        self.requests = Counter(
            "rag_sidecar_otlp_requests",
            "OTLP export requests, by transport and outcome.",
            ("transport", "outcome"),
            registry=registry,
        )
        self.late_feedback = Counter(
            "rag_sidecar_otlp_late_feedback",
            "Human feedback spans for traces already emitted (passed on as feedback records).",
            registry=registry,
        )
        self.shutdown_dropped = Counter(
            "rag_sidecar_otlp_shutdown_dropped",
            "Assembled traces and feedback not handed to the pipeline within the drain "
            "timeout at shutdown.",
            registry=registry,
        )
        registry.register(AssemblyCollector(self.assembler, lambda: self.in_flight))

    @property
    def saturated(self) -> str | None:
        """Why export requests are refused now (``throttled``: too many traces not yet
        written; ``assembly_full``: pending spans near their memory limit; ``closing``:
        shutting down, so the exporter retries elsewhere or later), else None."""
        if self._closing:
            return "closing"
        if self.in_flight >= self.settings.max_in_flight:
            return "throttled"
        if self.assembler.full:
            return "assembly_full"
        return None

    async def start(self, emit: Emit) -> None:
        """Bind the receiver and start the emit and straggler-expiry tasks."""
        self._emit = emit
        token = self.settings.token.get_secret_value() if self.settings.token else None
        transport = self.spec.transport
        on_error = self._on_error(transport)
        if transport == "http":
            self._http = HttpServer(
                self.spec.host,
                self.spec.port,
                max_body_bytes=self.settings.max_body_bytes,
                body_timeout_s=self.settings.body_timeout_s,
                max_connections=self.settings.max_connections,
            )
            add_http_route(
                self._http,
                self.accept,
                token=token,
                max_body_bytes=self.settings.max_body_bytes,
                on_error=on_error,
            )
            await self._http.start()
            self.bound_port = self._http.bound_port
        else:
            self._grpc, self.bound_port = await start_grpc_server(
                self.spec.host,
                self.spec.port,
                self.accept,
                token=token,
                max_body_bytes=self.settings.max_body_bytes,
                on_error=on_error,
            )
        self._pump_task = asyncio.create_task(self._pump(), name="otlp:emit")
        self._expire_task = asyncio.create_task(self._expire_loop(), name="otlp:expire")
        log.info(
            "otlp receiver listening",
            extra={"fields": {"transport": transport, "port": self.bound_port}},
        )

    def _on_error(self, transport: str) -> Callable[[str], None]:
        def on_error(outcome: str) -> None:
            self.requests.labels(transport, outcome).inc()

        return on_error

    def accept(self, resource_spans: Sequence[ResourceSpans], transport: str) -> Ack:
        """Called by the receivers for each decoded export request; raises
        :class:`Saturated` while :attr:`saturated`."""
        refused = self.saturated
        if refused is not None:
            self.requests.labels(transport, refused).inc()
            raise Saturated(self.settings.retry_after_s)
        out = self.assembler.add(resource_spans, self._clock())
        self.requests.labels(transport, "ok").inc()
        self._take(out)
        return _ack(out)

    def _take(self, out: AssemblyOutput) -> None:
        if out.feedback:
            self.late_feedback.inc(len(out.feedback))
            now = time.time()
            late = [late_feedback_record(f.trace_id, f.feedback, arrival=now) for f in out.feedback]
            self.in_flight += len(late)
            self._ready.put_nowait(_Items(late))
        if out.traces:
            self.in_flight += len(out.traces)
            self._ready.put_nowait(_Items(out.traces))

    async def _pump(self) -> None:
        assert self._emit is not None
        while (items := await self._ready.get()) is not None:
            self._holding = len(items)
            now = time.time()
            records = [
                t if isinstance(t, Record) else Record(b"", f"otlp:{t.trace_id}", now, trace=t)
                for t in items
            ]
            await self._emit(Batch(self.name, records, self._done(len(records))))
            self._holding = 0

    def _done(self, n: int) -> Callable[[bool], None]:
        def done(ok: bool) -> None:
            self.in_flight -= n

        return done

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.expire_interval_s)
            self._take(self.assembler.expire(self._clock()))

    async def drained(self) -> None:
        """A receiver never ends by itself: returns after :meth:`aclose`."""
        await self._stopped.wait()

    async def aclose(self) -> None:
        """Stop receiving, emit what can be assembled, and hand everything accepted to the
        pipeline (waiting for room in its queue up to ``drain_timeout_s``).

        From the start, requests still arriving (a connection accepted just before the
        listener closed) are refused as ``closing``: nothing is acknowledged that would not
        be handed over."""
        self._closing = True
        if self._http is not None:
            await self._http.aclose()
        if self._grpc is not None:
            await self._grpc.stop(1.0)
        if self._expire_task is not None:
            self._expire_task.cancel()
            await asyncio.gather(self._expire_task, return_exceptions=True)
        self._take(self.assembler.drain())
        self._ready.put_nowait(None)
        pump = self._pump_task
        if pump is not None:
            done, _ = await asyncio.wait({pump}, timeout=self.drain_timeout_s)
            if not done:
                lost = self._holding
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
                while not self._ready.empty():
                    lost += len(self._ready.get_nowait() or ())
                self.shutdown_dropped.inc(lost)
                log.warning(
                    "otlp: traces not handed to the pipeline within the drain timeout",
                    extra={"fields": {"lost": lost, "drain_timeout_s": self.drain_timeout_s}},
                )
        self._stopped.set()


def _ack(out: AssemblyOutput) -> Ack:
    """Malformed spans and valid spans not kept, as an OTLP partial success."""
    unused = out.unused
    n = len(out.rejected) + sum(unused.values())
    if not n:
        return Ack()
    parts = []
    if out.rejected:
        reasons = sorted({reason for reason, _ in out.rejected})
        parts.append("rejected spans: " + ", ".join(reasons))
    if unused:
        parts.append("spans not kept: " + ", ".join(f"{k}={v}" for k, v in unused.items()))
    return Ack(n, "; ".join(parts))
