"""Heuristics path throughput on one core, beside the parse-only limit measured in the same run.

    .venv/bin/python bench/heuristics_throughput.py [--n 20000] [--repeat 3]

Prints, for ~4 KB traces with 5 chunks (chunks recur across traces, as in production):
  limit     orjson.loads of the same lines (the floor any JSON pipeline pays)
  hot path  decode + validate + all heuristics + sampling + Prometheus metrics + event JSON
  pipeline  the real asyncio pipeline: file source → scoring → Prometheus + JSONL event sinks
and each one's ratio to the limit. The spine's target is >= 10,000 traces/s for the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_lines

from sidecar.app import build_engine, build_pipeline
from sidecar.config import FileSpec, Settings
from sidecar.scorers.heuristics.registry import METRICS
from sidecar.sinks.jsonl import JsonlEventSink
from sidecar.sinks.prometheus import PrometheusSink
from sidecar.sources.file import FileSource
from sidecar.stages import Record, Result

TARGET = 10_000.0


def best_rate(fn: Callable[[], int], repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return max(rates)


def run_limit(lines: list[bytes]) -> int:
    loads = orjson.loads
    for line in lines:
        loads(line)
    return len(lines)


def make_hot_path(lines: list[bytes]) -> Callable[[], int]:
    settings = Settings()
    engine = build_engine(settings)
    sink = PrometheusSink(CollectorRegistry(), metric_kinds={k: v.kind for k, v in METRICS.items()})
    records = [Record(line, f"bench:{i}") for i, line in enumerate(lines)]
    dumps = orjson.dumps

    def run() -> int:
        results: list[Result] = []
        out = []
        for rec in records:
            r = engine.process(rec, "bench")
            if isinstance(r, Result):
                results.append(r)
                out.append(dumps(r.event))
            if len(results) >= 256:
                _write_sync(sink, results)
                results = []
        _write_sync(sink, results)
        return len(records)

    return run


def _write_sync(sink: PrometheusSink, results: list[Result]) -> None:
    """Drive the sink's coroutine without an event loop: it never awaits anything."""
    coro = sink.write(results)
    with contextlib.suppress(StopIteration):
        coro.send(None)


def run_pipeline(path: Path, n: int) -> float:
    async def main() -> float:
        settings = Settings()
        registry = CollectorRegistry()
        with tempfile.TemporaryDirectory() as tmp:
            events = JsonlEventSink(FileSpec(Path(tmp) / "events.jsonl", "bench"))
            prom = PrometheusSink(registry, metric_kinds={k: v.kind for k, v in METRICS.items()})
            pipe = build_pipeline(
                settings,
                registry,
                sources=[FileSource(FileSpec(path, str(path)), batch_size=256)],
                sinks=[prom, events],
            )
            t0 = time.perf_counter()
            await pipe.start()
            await pipe.drained()
            elapsed = time.perf_counter() - t0
            await pipe.aclose()
            assert events.written == n, (events.written, n)
        return n / elapsed

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    lines = make_lines(args.n)
    size = statistics.mean(len(x) for x in lines)
    limit = best_rate(lambda: run_limit(lines), args.repeat)
    hot = best_rate(make_hot_path(lines), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traces.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        pipe = max(run_pipeline(path, len(lines)) for _ in range(args.repeat))
    print(f"traces: {len(lines)} x {size:,.0f} bytes (5 chunks), best of {args.repeat}, one core")
    print(f"{'limit (orjson.loads)':34s} {limit:>10,.0f} traces/s")
    for name, rate in (
        ("hot path (parse+heuristics+metrics+event)", hot),
        ("pipeline (file→sinks, asyncio)", pipe),
    ):
        print(
            f"{name:34s} {rate:>10,.0f} traces/s   {rate / limit:6.3f} of limit   "
            f"{rate / TARGET:5.2f} x target {TARGET:,.0f}/s"
        )


if __name__ == "__main__":
    main()
