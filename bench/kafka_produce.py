"""Producing scored events: one aiokafka ``send()`` per message vs the sidecar's event sink.

    .venv/bin/python bench/kafka_produce.py [--n 30000] [--repeat 3]

Needs tansu (``bash scripts/tools.sh tansu``) and two cores: tansu is pinned to the second, this
process to the first. N real scored events (the heuristic events of N synthetic ~4 KB traces) are
written to a 3-partition topic in writes of 500, each write waiting for every acknowledgement
(acks=all), the way the pipeline's writer calls its sinks:

  send()    ``await producer.send(topic, value, key=trace_id, headers=…)`` per message, then
            ``gather`` of the futures (the sink's code before it built batches itself);
  sink      ``KafkaEventSink.write`` (one record batch per partition through ``send_batch``,
            keys hashed like the default partitioner).

Both runs are interleaved ``--repeat`` times into fresh topics. Printed: CPU microseconds per
event of this process (median of the runs), wall time, and the ratio sink / send().
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_lines
from _kafka import BenchError, create_topics, pin_self, producer, start_broker

from sidecar.app import build_engine
from sidecar.config import Settings, load_settings
from sidecar.sinks.kafka import KafkaEventSink
from sidecar.stages import Record, Result
from sidecar.uris import KafkaSpec, parse_sink_uri

WRITE = 500
PARTITIONS = 3


def scored(n: int) -> list[Result]:
    engine = build_engine(Settings())
    out = []
    for line in make_lines(n):
        result = engine.process(Record(line, "bench"), "bench")
        assert isinstance(result, Result)
        out.append(result)
    return out


async def via_send(bootstrap: str, topic: str, results: Sequence[Result]) -> None:
    prod = producer(bootstrap)
    await prod.start()
    try:
        for start in range(0, len(results), WRITE):
            futures = [
                await prod.send(
                    topic,
                    orjson.dumps(r.event),
                    key=r.event.trace_id.encode(),
                    headers=[
                        ("event_id", r.event.event_id.encode()),
                        ("event_type", r.event.type.encode()),
                    ],
                )
                for r in results[start : start + WRITE]
            ]
            await asyncio.gather(*futures)
    finally:
        await prod.stop()


async def via_sink(bootstrap: str, topic: str, results: Sequence[Result]) -> None:
    settings = load_settings(kafka={"enable_idempotence": False}).kafka
    spec = parse_sink_uri(f"kafka://{bootstrap}/{topic}")
    assert isinstance(spec, KafkaSpec)
    sink = KafkaEventSink(spec, settings)
    await sink.start()
    try:
        for start in range(0, len(results), WRITE):
            await sink.write(results[start : start + WRITE])
    finally:
        await sink.aclose()


async def measure(
    name: str,
    fn: Callable[[str, str, Sequence[Result]], Awaitable[None]],
    bootstrap: str,
    results: Sequence[Result],
    run: int,
) -> tuple[float, float]:
    topic = f"{name}-{run}"
    await create_topics(bootstrap, [topic], PARTITIONS)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await fn(bootstrap, topic, results)
    n = len(results)
    return (time.process_time() - cpu0) / n * 1e6, (time.perf_counter() - wall0) / n * 1e6


async def main_async(n: int, repeat: int, log_dir: Path, cores: list[int]) -> None:
    results = scored(n)
    size = statistics.mean(len(orjson.dumps(r.event)) for r in results)
    broker = start_broker(log_dir, cpu=cores[1])
    try:
        runs: dict[str, list[tuple[float, float]]] = {"send()": [], "sink": []}
        for i in range(repeat):
            runs["send()"].append(await measure("send", via_send, broker.bootstrap, results, i))
            runs["sink"].append(await measure("sink", via_sink, broker.bootstrap, results, i))
    finally:
        broker.stop()
    print(f"{n} events of {size:.0f} B mean, writes of {WRITE}, {PARTITIONS} partitions")
    print(f"{'path':8s} {'CPU us/event':>14s} {'wall us/event':>14s}   runs (CPU)")
    med = {}
    for name, rs in runs.items():
        cpu = statistics.median(r[0] for r in rs)
        wall = statistics.median(r[1] for r in rs)
        med[name] = cpu
        print(f"{name:8s} {cpu:14.2f} {wall:14.2f}   {', '.join(f'{r[0]:.2f}' for r in rs)}")
    print(f"ratio sink / send(): {med['sink'] / med['send()']:.2f} of the CPU per event")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=30_000, help="events per run (default 30,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each path (default 3)")
    args = ap.parse_args()
    import os

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("kafka_produce: needs 2 cores (this process | tansu)")
    pin_self({cores[0]})
    try:
        with tempfile.TemporaryDirectory(prefix="kafka-produce-") as tmp:
            asyncio.run(main_async(args.n, args.repeat, Path(tmp), cores))
    except BenchError as exc:
        raise SystemExit(f"kafka_produce: {exc}") from None


if __name__ == "__main__":
    main()
