"""Feedback joiner memory: stream traces and feedback through it and watch RSS stay flat.

    .venv/bin/python bench/feedback_memory.py [--n 1000000] [--rate 100] [--feedback 0.1]

Streams ``--n`` scored ~4 KB traces (``--rate`` per second of event time, each
its own record bytes, kept for late judging as with a judge configured) and, for
a ``--feedback`` share of them, a feedback record arriving after an exponential
delay (mean ``--delay`` s); 2% of the feedback comes before its trace, 5% is
sent twice, 1% names a trace that never comes; every 20th trace gets a judge
event. The sweeper runs once per second of event time. Prints RSS, what the
store accounts for, and the join counters at checkpoints, then the throughput.
Scoring itself is not measured: a pool of traces is scored once and re-keyed.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import random
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import START, make_lines

from sidecar.app import build_engine
from sidecar.config import Settings
from sidecar.feedback import FeedbackJoiner, FeedbackRecord, FeedbackSettings
from sidecar.stages import Record, Result


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Clock:
    now = float(START)

    def __call__(self) -> float:
        return self.now


def counter(reg: CollectorRegistry, name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for fam in reg.collect():
        for s in fam.samples:
            if s.name == name:
                out[next(iter(s.labels.values()), "")] = int(s.value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=100.0, help="traces per event-time second")
    ap.add_argument("--feedback", type=float, default=0.1, help="share of traces with feedback")
    ap.add_argument("--delay", type=float, default=120.0, help="mean seconds to feedback")
    ap.add_argument("--window", type=float, default=3600.0)
    ap.add_argument("--max-traces", type=int, default=50_000)
    ap.add_argument("--max-mib", type=int, default=32, help="entries and full traces, each")
    args = ap.parse_args()

    pool_lines = make_lines(2000)
    engine = build_engine(Settings(sampling={"rate": 0.05}))
    pool: list[tuple[Result, bytes]] = []
    for line in pool_lines:
        out = engine.process(Record(line, "bench"), "bench")
        assert isinstance(out, Result)
        pool.append((out, line))
    clock = Clock()
    registry = CollectorRegistry()
    settings = FeedbackSettings(
        window_s=args.window,
        max_traces=args.max_traces,
        max_bytes=args.max_mib << 20,
        max_trace_bytes=args.max_mib << 20,
    )
    j = FeedbackJoiner(settings, registry, keep_traces=True, clock=clock)
    rng = random.Random(1)
    due: list[tuple[int, int, str, str]] = []  # (at index, seq, trace_id, thumbs)
    judge_due: list[tuple[int, Result]] = []
    base = rss_mib()
    print(f"baseline RSS (imports + a pool of 2000 scored traces): {base:.0f} MiB")
    print(f"{'traces':>9} {'RSS MiB':>8} {'entries':>8} {'acc MiB':>8} {'bodies':>7} "
          f"{'body MiB':>8} {'pending':>7}  joined / unjoined / duplicates")  # fmt: skip
    marks = {int(args.n * f) for f in (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)}
    seq, offered = 0, 0
    t0 = time.perf_counter()

    def send(trace_id: str, thumbs: str) -> None:
        rec = FeedbackRecord(type="feedback", trace_id=trace_id, timestamp=clock.now, thumbs=thumbs)
        j.feedback(rec, "bench", clock.now)

    for i in range(args.n):
        clock.now = START + i / args.rate
        res, line = pool[i % len(pool)]
        trace_id = f"tr-{i:09d}"
        raw = line.replace(res.event.trace_id.encode(), trace_id.encode(), 1)
        event = dataclasses.replace(res.event, trace_id=trace_id, timestamp=clock.now)
        j.scored(Result(res.trace, event), raw)
        if rng.random() < args.feedback:
            thumbs = "down" if rng.random() < 0.3 else "up"
            r = rng.random()
            if r < 0.02:
                send(f"tr-{i + 50:09d}", thumbs)  # before its trace
            elif r < 0.03:
                send(f"never-{i}", thumbs)
            else:
                at = i + int(rng.expovariate(1 / args.delay) * args.rate) + 1
                seq += 1
                heapq.heappush(due, (at, seq, trace_id, thumbs))
                if r < 0.08:
                    heapq.heappush(due, (at + 10, seq, trace_id, thumbs))  # sent twice
        while due and due[0][0] <= i:
            _, _, tid, thumbs = heapq.heappop(due)
            send(tid, thumbs)
        if i % 20 == 0:
            ev = dataclasses.replace(event, type="judge", scores={"faithfulness": rng.random()})
            judge_due.append((i + 256, Result(res.trace, ev)))
        if i % 256 == 255:
            _, late = j.take()
            j.offer_late(late, lambda r: True)
            offered += len(late)
            ready = [r for at, r in judge_due if at <= i]
            judge_due = [(at, r) for at, r in judge_due if at > i]
            j.judged(ready)
        if i % int(args.rate) == 0:
            j.expire(clock.now)
        if i + 1 in marks:
            st = j.store
            joined = sum(counter(registry, "rag_sidecar_feedback_joined_total").values())
            unjoined = sum(counter(registry, "rag_sidecar_feedback_unjoined_total").values())
            dups = sum(counter(registry, "rag_sidecar_feedback_duplicates_total").values())
            print(
                f"{i + 1:>9} {rss_mib():>8.0f} {len(st):>8} {st.bytes / 2**20:>8.1f} "
                f"{st.bodies:>7} {st.body_bytes / 2**20:>8.1f} {len(j.pending):>7}  "
                f"{joined} / {unjoined} / {dups}",
                flush=True,
            )
    elapsed = time.perf_counter() - t0
    offers = counter(registry, "rag_sidecar_feedback_judge_offers_total")
    print(f"{args.n / elapsed:,.0f} traces/s through the joiner (one core, incl. the driver)")
    print(f"late thumbs-down offers: {offers}")
    print(f"store evictions: {dict(j.store.evicted)}")


if __name__ == "__main__":
    main()
