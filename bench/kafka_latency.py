"""Produce → scored event latency at a fixed rate, each run on a fresh broker; A/B of source trees.

    .venv/bin/python bench/kafka_latency.py [--rate 4000] [--seconds 15] [--rounds 3] [TREE ...]

Needs tansu (``bash scripts/tools.sh tansu``) and two cores. kafka_throughput.py measures latency
at half of the rate it just measured, on the broker that already holds its throughput passes;
tansu's in-memory storage slows down as topics grow, so that figure drifts with what ran before.
Here every run gets a fresh tansu (second core) and an idle sidecar (first core, its defaults),
then ``--seconds`` of traces at ``--rate`` (same harness as kafka_throughput.py's latency phase:
timestamp at send, time until the scored event is read back).

TREE: checkouts of this repository to compare (e.g. ``git worktree add /tmp/old <commit>``); the
sidecar runs from each in turn, alternating, ``--rounds`` times. Default: this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kafka_throughput as kt
from _data import make_lines
from _kafka import BenchError, create_topics, pin_self, start_broker


def one_run(tree: Path, rate: float, seconds: float, log_dir: Path, cores: list[int]) -> str:
    broker = start_broker(log_dir, cpu=cores[1])
    try:
        asyncio.run(
            create_topics(broker.bootstrap, [kt.SIDECAR_TOPIC, kt.SIDECAR_EVENTS], kt.PARTITIONS)
        )
        kt.ROOT = tree  # start_sidecar runs `python -m sidecar` from ROOT
        sc = kt.start_sidecar(broker, "latency", cores[0], log_dir)
        try:
            deadline = time.monotonic() + 60
            while sc.scored() is None:
                sc.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError("sidecar did not serve /metrics within 60 s")
                time.sleep(0.1)
            time.sleep(8)  # consumer-group join
            templates = kt.latency_templates(make_lines(5000))
            lat = asyncio.run(
                kt.latency_run(
                    broker,
                    templates,
                    rate,
                    seconds,
                    send_to=kt.SIDECAR_TOPIC,
                    read_from=kt.SIDECAR_EVENTS,
                    fetch_max_wait_ms=10,
                    target_pid=sc.proc.pid,
                )
            )
        finally:
            sc.stop()
    finally:
        broker.stop()
    ms = lat.ms
    if not ms:
        return f"{tree!s:30s} nothing came back ({lat.sent} sent)"
    p50, p95, p99 = (kt.pct(ms, q) for q in (50, 95, 99))
    return (
        f"{tree!s:30s} {lat.rate:6,.0f}/s  {len(ms):,}/{lat.sent:,} back  p50 {p50:4.0f}  "
        f"p95 {p95:4.0f}  p99 {p99:4.0f}  max {max(ms):4.0f} ms  sidecar cpu {lat.target_share:.0%}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rate", type=float, default=4000.0, help="traces per second (4000)")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each run (15)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per tree (3)")
    ap.add_argument("trees", nargs="*", type=Path, help="checkouts to compare (default: this one)")
    args = ap.parse_args()
    trees = [t.resolve() for t in args.trees] or [kt.ROOT]
    for tree in trees:
        if not (tree / "sidecar" / "__main__.py").is_file():
            ap.error(f"{tree} is not a checkout of this repository")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("kafka_latency: needs 2 cores (sidecar | tansu + harness)")
    pin_self({cores[1]})
    try:
        with tempfile.TemporaryDirectory(prefix="kafka-latency-") as tmp:
            for _ in range(args.rounds):
                for tree in trees:
                    print(one_run(tree, args.rate, args.seconds, Path(tmp), cores), flush=True)
    except BenchError as exc:
        raise SystemExit(f"kafka_latency: {exc}") from None


if __name__ == "__main__":
    main()
