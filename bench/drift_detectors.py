"""Drift detectors on synthetic streams: detection delay and false alarms.

    .venv/bin/python bench/drift_detectors.py [--streams 10] [--n 100000] [--rate 2] [--quick]

Prints, with the default settings of ``sidecar.drift``:

1. online detectors (Page-Hinkley, CUSUM) on a sudden drop — faithfulness ~ Beta
   with mean 0.85 falling to 0.70 (and a small 0.85 → 0.80) at value n/2 —
   detection delay in values, and in minutes at ``--rate`` judged traces/s and
   at a 5 % judge sample of it;
2. false alarms of the online detectors on no-change streams of several shapes
   (``--streams`` × ``--n`` values each);
3. the whole monitor (window tests every 15 min against the trailing day, plus
   the online detector) at ``--rate`` traces/s: first alarm per test after the
   change, and alarms per test on the no-change streams;
4. throughput (the monitor alone; the sink on realistic heuristic events) and
   memory per series.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry

from sidecar.drift import DriftMonitor, DriftSettings, DriftSink
from sidecar.drift.online import OnlineDetector
from sidecar.events import FeedbackView, Labels, Sampling, ScoredEvent
from sidecar.stages import Result
from sidecar.trace import trace_from_object

T0 = 1_795_003_200.0  # a window boundary (multiple of 900 s)
Gen = Callable[[random.Random], float]
HEURISTIC_SCORES = ("groundedness_lexical", "answer_query_overlap", "context_query_overlap")


def beta(mean: float, conc: float = 6.0) -> Gen:
    """Beta with this mean and concentration a + b (σ ≈ 0.135 at 0.85, conc 6)."""
    return lambda rng: rng.betavariate(mean * conc, (1.0 - mean) * conc)


def grades(rng: random.Random) -> float:
    """answer_relevance-like: 0-3 grades / 3."""
    return rng.choices((0.0, 1 / 3, 2 / 3, 1.0), (0.05, 0.1, 0.25, 0.6))[0]


def mostly_one(rng: random.Random) -> float:
    """faithfulness-like with mass at 1 (all claims supported) and rare zeros."""
    u = rng.random()
    return 1.0 if u < 0.6 else 0.0 if u < 0.62 else rng.betavariate(4.0, 2.0)


SHAPES: dict[str, Gen] = {
    "beta(0.85, conc 6)": beta(0.85),
    "beta(0.70, conc 20)": beta(0.70, 20.0),
    "grades 0..3": grades,
    "mass at 1 + rare 0": mostly_one,
}


def stream(rng: random.Random, n: int, before: Gen, after: Gen, change: int) -> Iterator[float]:
    for i in range(n):
        yield (before if i < change else after)(rng)


def online_detectors(s: DriftSettings) -> dict[str, Callable[[], OnlineDetector]]:
    """Factories of both online detectors with the settings' parameters."""
    online = s.online.model_copy(update={"detectors": ["page_hinkley", "cusum"]})
    monitor = DriftMonitor(s.model_copy(update={"online": online}))
    return {
        name: lambda name=name: monitor.make_online()[name]  # type: ignore[misc]
        for name in ("page_hinkley", "cusum")
    }


def fmt_delays(delays: list[int], rate: float) -> str:
    d = sorted(delays)
    med, p90, worst = d[len(d) // 2], d[int(0.9 * (len(d) - 1))], d[-1]
    return (
        f"median {med:5d}  p90 {p90:5d}  max {worst:5d} values | "
        f"median {med / rate / 60:5.2f} min at {rate:g}/s, "
        f"{med / (rate * 0.05) / 60:5.1f} min at {rate * 0.05:g}/s (5% judged)"
    )


def bench_online_delay(s: DriftSettings, runs: int, n: int, rate: float) -> None:
    print(f"\n1. Online detection delay ({runs} streams, change at value {n // 2})")
    for label, after in (("0.85 -> 0.70", beta(0.70)), ("0.85 -> 0.80", beta(0.80))):
        for name, make in online_detectors(s).items():
            delays, early = [], 0
            for r in range(runs):
                rng, det = random.Random(10_000 + r), make()
                for i, x in enumerate(stream(rng, n, beta(0.85), after, n // 2)):
                    if det.update(x) is not None:
                        if i < n // 2:
                            early += 1
                            continue
                        delays.append(i - n // 2)
                        break
            missed = runs - len(delays)
            print(
                f"  {label}  {name:13s} {fmt_delays(delays, rate)}  missed {missed}, "
                f"pre-change alarms {early}"
            )


def bench_online_false_alarms(s: DriftSettings, streams: int, n: int) -> None:
    print(f"\n2. Online false alarms: {streams} no-change streams x {n} values per shape")
    for shape, gen in SHAPES.items():
        counts = dict.fromkeys(online_detectors(s), 0)
        for name, make in online_detectors(s).items():
            for r in range(streams):
                rng, det = random.Random(r), make()
                for _ in range(n):
                    if det.update(gen(rng)) is not None:
                        counts[name] += 1
        per = ", ".join(f"{k} {v}" for k, v in counts.items())
        print(f"  {shape:22s} alarms: {per}  (over {streams * n:,} values)")


def bench_tradeoff(s: DriftSettings, streams: int, n: int, rate: float) -> None:
    print(f"\n2b. Threshold trade-off (λ = h), {streams} x {n} no-change values per shape")
    for lam in (12.0, 15.0, 18.0, 21.0):
        o = s.online.model_copy(update={"ph_lambda": lam, "cusum_h": lam})
        tuned = s.model_copy(update={"online": o})
        for name, make in online_detectors(tuned).items():
            alarms = 0
            for gen in SHAPES.values():
                for r in range(streams):
                    rng, det = random.Random(r), make()
                    alarms += sum(det.update(gen(rng)) is not None for _ in range(n))
            delays = []
            for r in range(20):
                rng, det = random.Random(30_000 + r), make()
                for i, x in enumerate(stream(rng, 6000, beta(0.85), beta(0.70), 3000)):
                    if det.update(x) is not None and i >= 3000:
                        delays.append(i - 3000)
                        break
            total = len(SHAPES) * streams * n
            print(
                f"  λ {lam:4.1f} {name:13s} false alarms {alarms:3d} / {total:,} values"
                f" | 0.85 -> 0.70: {fmt_delays(delays, rate)}"
            )


def event(ts: float, value: float) -> ScoredEvent:
    return ScoredEvent(
        "e",
        "t",
        "judge",
        ts,
        ts,
        "v",
        "bench",
        Labels("app", "m", "v1", None),
        {"faithfulness": value},
        [],
        Sampling(),
    )


def run_monitor(
    s: DriftSettings, values: Iterator[float], rate: float
) -> tuple[DriftMonitor, float]:
    m = DriftMonitor(s)
    t = time.perf_counter()
    for i, x in enumerate(values):
        ts = T0 + i / rate
        m.observe(event(ts, x), "app", "m", "v1", ts)
        if i % 256 == 255:
            m.end_batch(ts)
    return m, time.perf_counter() - t


def bench_monitor(s: DriftSettings, streams: int, n: int, rate: float) -> None:
    print(f"\n3. Whole monitor at {rate:g} traces/s ({n / rate / 3600:.1f} h per stream)")
    change = n // 2
    first: dict[str, list[float]] = {}
    for r in range(max(3, streams // 3)):
        m, _ = run_monitor(
            s, stream(random.Random(20_000 + r), n, beta(0.85), beta(0.70), change), rate
        )
        seen: set[str] = set()
        for f in m.take_findings():
            delay = f.at - (T0 + change / rate)
            if f.state == "detected" and delay >= 0 and f.test not in seen:
                seen.add(f.test)
                first.setdefault(f.test, []).append(delay / 60)
    for test, mins in sorted(first.items()):
        print(
            f"  drop 0.85 -> 0.70, first '{test}' alarm after the change: "
            f"median {statistics.median(mins):6.2f} min (runs {len(mins)})"
        )
    alarms: Counter[str] = Counter()
    elapsed = 0.0
    for r in range(streams):
        m, dt = run_monitor(s, stream(random.Random(r), n, beta(0.85), beta(0.85), n), rate)
        elapsed += dt
        alarms.update(f.test for f in m.take_findings() if f.state == "detected")
    windows = int(n / rate / s.window_s)
    print(
        f"  no change, {streams} streams x {n} values (~{windows} windows each): "
        f"alarms {dict(alarms) or 0}"
    )
    print(f"\n4. Monitor: {streams * n / elapsed:,.0f} judge events/s (1 score each, one core)")


async def bench_sink(s: DriftSettings, n: int) -> None:
    """DriftSink.write on heuristic events: 3 monitored scores, 3 flag rates, thumbs on 10 %."""
    rng = random.Random(3)
    trace = trace_from_object({"trace_id": "t", "query": "q", "answer": "a"})
    results = []
    for i in range(n):
        scores = {m: rng.random() for m in HEURISTIC_SCORES}
        scores.update(answer_length=42.0, retrieval_count=5.0, conciseness=1.0)
        fb = FeedbackView("down" if i % 3 == 0 else "up", None) if i % 10 == 0 else None
        flags = ["refusal"] if i % 20 == 0 else []
        labels = Labels(f"app{i % 4}", "m", "v1", None)
        ev = ScoredEvent(
            "e", "t", "heuristic", T0 + i / 50, 0.0, "v", "bench", labels, scores, flags,
            Sampling(), fb,
        )  # fmt: skip
        results.append(Result(trace, ev))
    sink = DriftSink(s, CollectorRegistry(), clock=lambda: T0 + n / 50)
    t = time.perf_counter()
    for i in range(0, n, 256):
        await sink.write(results[i : i + 256])
    dt = time.perf_counter() - t
    print(
        f"   DriftSink.write on heuristic events (3 scores, 3 flag rates, thumbs on 10%): "
        f"{n / dt:,.0f} traces/s, {dt / n * 1e6:.1f} µs a trace"
    )


def bench_memory(s: DriftSettings) -> None:
    m = DriftMonitor(s.model_copy(update={"flags": []}))
    rng = random.Random(7)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    series = 200
    for i in range(int(s.baseline_s / s.window_s) + 1):
        ts = T0 + i * s.window_s
        for k in range(series):
            ev = event(ts, rng.random())
            m.observe(ev, f"app{k}", "m", "v1", ts)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    print(
        f"   memory per score series with a full day of baseline: ~{used / series / 1024:.1f} KiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=2.0, help="traces per second")
    ap.add_argument("--quick", action="store_true", help="3 streams x 20k values")
    ap.add_argument("--tradeoff", action="store_true", help="also sweep the online threshold")
    a = ap.parse_args()
    streams, n = (3, 20_000) if a.quick else (a.streams, a.n)
    s = DriftSettings()
    o = s.online
    print(
        f"defaults: burn_in {o.burn_in}, PH delta {o.ph_delta} lambda {o.ph_lambda}, "
        f"CUSUM k {o.cusum_k} h {o.cusum_h}, z_clip {o.z_clip}, window {s.window_s:g} s, "
        f"tests alpha {s.tests.alpha}"
    )
    bench_online_delay(s, max(20, streams * 2), n, a.rate)
    bench_online_false_alarms(s, streams, n)
    if a.tradeoff:
        bench_tradeoff(s, streams, n, a.rate)
    bench_monitor(s, streams, n, a.rate)
    asyncio.run(bench_sink(s, 50_000))
    bench_memory(s)


if __name__ == "__main__":
    main()
