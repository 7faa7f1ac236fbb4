"""OTLP/HTTP ingestion on one core, beside the protobuf-parse limit measured in the same run.

    .venv/bin/python bench/otlp_throughput.py [--traces 20000] [--per-request 100]

The sidecar runs as the real CLI (``rag-sidecar run --source otlp+http://...``) pinned to one
core; this process, pinned to the other, POSTs pre-encoded OpenInference requests (6-span
LlamaIndex-style RAG traces: CHAIN root → RETRIEVER (3 documents) + EMBEDDING → RERANKER →
CHAIN → LLM, as tests/support/otel_spans.py makes them) with 4 concurrent keep-alive
connections and polls the sidecar's /metrics until every trace is scored. Prints:

  limit     ExportTraceServiceRequest.ParseFromString of the same bodies, spans/s, one core
  sidecar   spans/s received, assembled, scored and exported as metrics (first POST → last
            trace scored, so assembly's settle time is included once)
and their ratio. Traces are emitted when their root has settled (otlp.assembly.settle_s, 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import free_port  # noqa: E402
from tests.support.otel_spans import llama_index_rag, merge  # noqa: E402


def make_bodies(traces: int, per_request: int) -> list[bytes]:
    """Encoded export requests, each with ``per_request`` distinct 4-span traces."""
    bodies = []
    for start in range(0, traces, per_request):
        reqs = [
            llama_index_rag(seed=1000 + i, reranked=(1, 0))
            for i in range(start, min(start + per_request, traces))
        ]
        merged = merge(*reqs)
        bodies.append(merged.SerializeToString())
    return bodies


def count_spans(body: bytes) -> int:
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def parse_limit(bodies: list[bytes], repeat: int = 3) -> float:
    spans = sum(count_spans(b) for b in bodies)
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        for body in bodies:
            ExportTraceServiceRequest().ParseFromString(body)
        best = max(best, spans / (time.perf_counter() - t0))
    return best


def scored(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('rag_sidecar_traces_total{outcome="scored",source="otlp"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def drive(
    port: int, metrics_port: int, bodies: list[bytes], traces: int, spans: int
) -> float:
    url = f"http://127.0.0.1:{port}/v1/traces"
    headers = {"content-type": "application/x-protobuf"}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            while True:
                r = await client.post(url, content=body, headers=headers)
                if r.status_code == 200:
                    break
                await asyncio.sleep(float(r.headers.get("retry-after", "0.2")))

    async with httpx.AsyncClient(timeout=60) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(client) for _ in range(4)))
        deadline = time.monotonic() + 300
        while True:
            text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            if scored(text) >= traces:
                return spans / (time.perf_counter() - t0)
            if time.monotonic() > deadline:
                raise SystemExit(f"sidecar scored only {scored(text):.0f} of {traces}")
            await asyncio.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--traces", type=int, default=20_000)
    ap.add_argument("--per-request", type=int, default=100)
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    bodies = make_bodies(args.traces, args.per_request)
    os.sched_setaffinity(0, {cpus[0]})
    limit = parse_limit(bodies)
    port, metrics_port = free_port(), free_port()
    sidecar_cpu = cpus[-1]
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(sidecar_cpu),
            sys.executable,
            "-m",
            "sidecar",
            "run",
            "--source",
            f"otlp+http://127.0.0.1:{port}",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(metrics_port),
            "--dead-letter",
            "file:/dev/null",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RAG_SIDECAR_OTLP__MAX_IN_FLIGHT": "20000"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{metrics_port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("sidecar did not start")
            time.sleep(0.1)
        spans = sum(count_spans(b) for b in bodies)
        rate = asyncio.run(drive(port, metrics_port, bodies, args.traces, spans))
    finally:
        proc.terminate()
        proc.wait(30)
    size = sum(len(b) for b in bodies) / len(bodies)
    print(
        f"{args.traces} traces, {spans} spans, {len(bodies)} requests of "
        f"{size / 1024:.0f} KiB; sidecar on cpu {sidecar_cpu}, client on cpu {cpus[0]}"
    )
    print(f"{'limit (protobuf ParseFromString)':40s} {limit:>12,.0f} spans/s")
    print(
        f"{'sidecar (OTLP/HTTP → scored + metrics)':40s} {rate:>12,.0f} spans/s   "
        f"{rate / limit:.3f} of limit   {rate * args.traces / spans:,.0f} traces/s"
    )


if __name__ == "__main__":
    main()
