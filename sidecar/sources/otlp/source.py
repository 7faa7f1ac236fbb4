"""The OTLP source stage: receive spans, assemble RAG requests, emit them as traces.

Acknowledgement: an OTLP response means "accepted into bounded assembly", not
"scored" — a trace is complete only when its root span ended, which can be
seconds after the spans of one export arrived. What bounds memory instead:
pending traces (LRU, counted when evicted) and traces emitted but not yet
written (``otlp.max_in_flight``); above that limit requests get 429/
``RESOURCE_EXHAUSTED`` with ``Retry-After`` and exporters retry later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ...config import OtlpSettings, OtlpSpec
from ...feedback.record import late_feedback_record
from ...http import HttpServer
from ...stages import Batch, Emit, Record
from ...trace import Trace
from .assembly import TraceAssembler
from .outputs import AssemblyOutput
from .receiver import Ack, Saturated, add_http_route, start_grpc_server

log = logging.getLogger(__name__)


class _AssemblyCollector(Collector):
    def __init__(self, source: OtlpSource) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        a = self._source.assembler
        pending = GaugeMetricFamily(
            "rag_sidecar_otlp_pending_traces", "Traces being assembled from spans."
        )
        pending.add_metric([], a.pending_traces)
        yield pending
        incomplete = CounterMetricFamily(
            "rag_sidecar_otlp_incomplete",
            "Traces given up after the straggler timeout or eviction, by what was missing.",
            labels=["missing"],
        )
        for missing, n in sorted(a.incomplete.items()):
            incomplete.add_metric([missing], n)
        yield incomplete
        for name, doc, value in (
            ("rag_sidecar_otlp_evicted", "Pending traces evicted at the memory cap.", a.evicted),
            ("rag_sidecar_otlp_late_spans", "Spans for traces already emitted.", a.late_spans),
            ("rag_sidecar_otlp_spans", "Spans received.", a.spans_seen),
            ("rag_sidecar_otlp_assembled", "Traces assembled and emitted.", a.emitted),
        ):
            fam = CounterMetricFamily(name, doc)
            fam.add_metric([], value)
            yield fam
        in_flight = GaugeMetricFamily(
            "rag_sidecar_otlp_in_flight", "Assembled traces emitted but not yet written."
        )
        in_flight.add_metric([], self._source.in_flight)
        yield in_flight


class OtlpSource:
    """OTLP/HTTP or OTLP/gRPC receiver feeding the pipeline with assembled traces."""

    def __init__(
        self,
        spec: OtlpSpec,
        settings: OtlpSettings,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = "otlp"
        self.spec = spec
        self.settings = settings
        self.assembler = TraceAssembler(settings.assembly)
        self.in_flight = 0
        self.bound_port: int | None = None
        self._clock = clock
        self._emit: Emit | None = None
        self._ready: asyncio.Queue[list[Trace | Record]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: HttpServer | None = None
        self._grpc: Any = None
        self._stopped = asyncio.Event()
        self.requests = Counter(
            "rag_sidecar_otlp_requests",
            "OTLP export requests, by transport and outcome.",
            ("transport", "outcome"),
            registry=registry,
        )
        self.rejected_spans = Counter(
            "rag_sidecar_otlp_rejected_spans",
            "Spans rejected as malformed (reported to the client as partial success).",
            registry=registry,
        )
        self.late_feedback = Counter(
            "rag_sidecar_otlp_late_feedback",
            "Human feedback spans for traces already emitted (passed on as feedback records).",
            registry=registry,
        )
        registry.register(_AssemblyCollector(self))

    async def start(self, emit: Emit) -> None:
        """Bind the receiver and start the emit and straggler-expiry tasks."""
        self._emit = emit
        token = self.settings.token.get_secret_value() if self.settings.token else None
        transport = self.spec.transport
        on_error = self._on_error(transport)
        if transport == "http":
            self._http = HttpServer(
                self.spec.host, self.spec.port, max_body_bytes=self.settings.max_body_bytes
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
        self._tasks = [
            asyncio.create_task(self._pump(), name="otlp:emit"),
            asyncio.create_task(self._expire_loop(), name="otlp:expire"),
        ]
        log.info(
            "otlp receiver listening",
            extra={"fields": {"transport": transport, "port": self.bound_port}},
        )

    def _on_error(self, transport: str) -> Callable[[str], None]:
        def on_error(outcome: str) -> None:
            self.requests.labels(transport, outcome).inc()

        return on_error

    def accept(self, resource_spans: Sequence[ResourceSpans], transport: str) -> Ack:
        """Called by the receivers for each decoded export request."""
        if self.in_flight >= self.settings.max_in_flight:
            self.requests.labels(transport, "throttled").inc()
            raise Saturated(self.settings.retry_after_s)
        out = self.assembler.add(resource_spans, self._clock())
        self.requests.labels(transport, "ok").inc()
        self._take(out)
        if out.rejected:
            self.rejected_spans.inc(len(out.rejected))
            reasons = sorted({reason for reason, _ in out.rejected})
            return Ack(len(out.rejected), "rejected spans: " + ", ".join(reasons))
        return Ack()

    def _take(self, out: AssemblyOutput) -> None:
        if out.feedback:
            self.late_feedback.inc(len(out.feedback))
            now = time.time()
            late = [late_feedback_record(f.trace_id, f.feedback, arrival=now) for f in out.feedback]
            self.in_flight += len(late)
            self._ready.put_nowait(list[Trace | Record](late))
        if out.traces:
            self.in_flight += len(out.traces)
            self._ready.put_nowait(list[Trace | Record](out.traces))

    async def _pump(self) -> None:
        assert self._emit is not None
        while True:
            items = await self._ready.get()
            now = time.time()
            records = [
                t if isinstance(t, Record) else Record(b"", f"otlp:{t.trace_id}", now, trace=t)
                for t in items
            ]
            await self._emit(Batch(self.name, records, self._done(len(records))))

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
        """Stop receiving, emit what can be assembled, then stop the tasks once emitted."""
        if self._http is not None:
            await self._http.aclose()
        if self._grpc is not None:
            await self._grpc.stop(1.0)
        self._take(self.assembler.drain())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                while not self._ready.empty():  # noqa: ASYNC110 (the pump empties it)
                    await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._stopped.set()
