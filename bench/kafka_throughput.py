"""Kafka → heuristics → metrics + scored events: the sidecar beside the aiokafka limit, one core.

    .venv/bin/python bench/kafka_throughput.py [--n 50000] [--repeat 3] [--latency-s 20]

Needs tansu (``bash scripts/tools.sh tansu``) and two cores. One tansu broker (in-memory storage,
127.0.0.1, free port) is pinned to the second core for the whole run; the measured consumer has
the first core to itself. N ~4.2 KB traces (5 chunks) are produced, before any timing, into two
topics of 3 partitions: one for the limit, one for the sidecar. Then, interleaved ``--repeat``
times (each repeat a fresh consumer group, so it re-reads all N):

  limit     this process, pinned to the first core: aiokafka consumer group (manual commit at
            the end) → orjson.loads of each trace → produce a ~100 B result event keyed by
            trace_id, gathering the send futures of each batch (acks=all). No scoring.
            Rate = records after the first batch / time from the first batch to the N-th record.
  sidecar   ``python -m sidecar run --source kafka://…/traces?group=… --events kafka://…/events``
            as a subprocess pinned to the first core (this process moves to the second core and
            only polls). Rate = the sidecar's own ``rag_sidecar_traces_total{source="kafka",
            outcome="scored"}`` between its first non-zero reading and the last reading before N
            (group join and start-up excluded). Peak RSS = VmHWM of the subprocess at N.

Best and median of the repeats are printed; the ratio and RSS verdicts use the best run of each
(the machine is shared: the best run is the one least disturbed by others).

  latency   the last sidecar, kept running after its backlog is scored (warm, steady state):
            traces are produced into the same topic at half of the best sidecar rate for
            ``--latency-s`` seconds, each with ``timestamp`` = wall time at send and a
            ``lat-`` trace_id; a consumer of the events topic takes receive time − event
            timestamp. The load generator shares the second core with tansu, so its own delays
            count against the sidecar (the figure is pessimistic, not flattering).

Targets (issue 3): sidecar ≥ 0.5 x limit, p99 ≤ 250 ms at half of max throughput, RSS ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_lines, mean_size
from _kafka import (
    ROOT,
    BenchError,
    Broker,
    cpu_seconds,
    create_topics,
    free_port,
    pin_self,
    pinned,
    produce,
    producer,
    start_broker,
    status_kib,
    stop_process,
    tail,
)

RATIO_TARGET = 0.5
P99_TARGET_MS = 250.0
RSS_TARGET_MB = 300.0
PARTITIONS = 3
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 500
POLL_S = 0.1  # /metrics polling period during the sidecar runs

LIMIT_TOPIC, LIMIT_EVENTS = "limit-traces", "limit-events"
SIDECAR_TOPIC, SIDECAR_EVENTS = "traces", "events"

_TRACES_TOTAL = re.compile(rb"^rag_sidecar_traces_total\{([^}]*)\} (\S+)", re.MULTILINE)


@dataclass
class Run:
    """One timed pass over the N traces."""

    rate: float  # traces/s
    cpu_share: float  # CPU seconds of the measured process per wall second (1.0 = its core)
    broker_share: float  # same for tansu
    join_s: float  # start → first record (consumer-group join and start-up)
    hwm_mb: float = 0.0  # sidecar only: VmHWM
    rss_mb: float = 0.0  # sidecar only: VmRSS at N


# ----------------------------------------------------------------------------- limit


async def limit_run(broker: Broker, group: str, n: int, within_s: float) -> Run:
    """aiokafka consume + orjson.loads + produce a small event per record, no scoring."""
    consumer = AIOKafkaConsumer(
        LIMIT_TOPIC,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
    )
    prod = producer(broker.bootstrap)
    started = time.perf_counter()
    await asyncio.wait_for(prod.start(), 20)
    try:
        await asyncio.wait_for(consumer.start(), 30)
        try:
            return await asyncio.wait_for(_limit_loop(consumer, prod, broker, n, started), within_s)
        finally:
            await consumer.stop()
    finally:
        await prod.stop()


async def _limit_loop(
    consumer: AIOKafkaConsumer, prod: AIOKafkaProducer, broker: Broker, n: int, started: float
) -> Run:
    loads, dumps = orjson.loads, orjson.dumps
    send = prod.send
    count, first_count = 0, 0
    t0 = cpu0 = broker0 = 0.0
    pid = os.getpid()
    while count < n:
        batch = await consumer.getmany(timeout_ms=200, max_records=500)
        futures = []
        for msgs in batch.values():
            for msg in msgs:
                trace = loads(msg.value)
                trace_id = trace["trace_id"]
                event = {
                    "trace_id": trace_id,
                    "app": trace.get("app"),
                    "chunks": len(trace.get("chunks") or ()),
                    "scored_at": time.time(),
                }
                futures.append(await send(LIMIT_EVENTS, dumps(event), key=trace_id.encode()))
        if futures:
            await asyncio.gather(*futures)
            count += len(futures)
            if not first_count:
                first_count = count
                t0, cpu0, broker0 = time.perf_counter(), cpu_seconds(pid), broker.cpu_seconds()
    elapsed = time.perf_counter() - t0
    await consumer.commit()
    if count == first_count:
        raise BenchError(f"limit: all {count} records came in one batch; raise --n")
    return Run(
        rate=(count - first_count) / elapsed,
        cpu_share=(cpu_seconds(pid) - cpu0) / elapsed,
        broker_share=(broker.cpu_seconds() - broker0) / elapsed,
        join_s=t0 - started,
    )


# --------------------------------------------------------------------------- sidecar


@dataclass
class Sidecar:
    """A ``python -m sidecar run`` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def scored(self) -> float | None:
        """``rag_sidecar_traces_total{source="kafka",outcome="scored"}``; None if not serving."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                body: bytes = resp.read()
        except (urllib.error.URLError, OSError):
            return None
        for m in _TRACES_TOTAL.finditer(body):
            labels = m.group(1)
            if b'source="kafka"' in labels and b'outcome="scored"' in labels:
                return float(m.group(2))
        return 0.0

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"sidecar exited with {self.proc.returncode}: {tail(self.log)}")

    def stop(self) -> None:
        stop_process(self.proc, 15.0)


def start_sidecar(broker: Broker, group: str, cpu: int, log_dir: Path) -> Sidecar:
    port = free_port()
    log = log_dir / f"sidecar-{group}.log"
    bootstrap = broker.bootstrap
    cmd = [
        sys.executable,
        "-m",
        "sidecar",
        "run",
        "--source",
        f"kafka://{bootstrap}/{SIDECAR_TOPIC}?group={group}",
        "--events",
        f"kafka://{bootstrap}/{SIDECAR_EVENTS}",
        "--dead-letter",
        f"file:{log_dir / f'dead-letter-{group}.jsonl'}",
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        str(port),
        "--log-level",
        "WARNING",
    ]
    env = {
        **os.environ,
        "RAG_SIDECAR_KAFKA__ENABLE_IDEMPOTENCE": "false",
        "RAG_SIDECAR_KAFKA__SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        "RAG_SIDECAR_KAFKA__HEARTBEAT_INTERVAL_MS": str(HEARTBEAT_MS),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            pinned(cmd, cpu), cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT
        )
    return Sidecar(proc, port, log)


def sidecar_run(sc: Sidecar, broker: Broker, n: int, timeout: float) -> Run:
    """Poll /metrics until the scored counter reaches ``n``; rate over the full-speed part."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    readings: list[tuple[float, float]] = []  # (perf_counter, scored), scored > 0
    cpu0 = broker0 = 0.0
    while True:
        sc.check_alive()
        if time.monotonic() > deadline:
            last = readings[-1][1] if readings else 0
            raise BenchError(f"sidecar scored {last:.0f}/{n} in {timeout:.0f}s: {tail(sc.log)}")
        scored = sc.scored()
        now = time.perf_counter()
        if scored:
            if not readings:
                cpu0, broker0 = cpu_seconds(sc.proc.pid), broker.cpu_seconds()
            readings.append((now, scored))
            if scored >= n:
                break
        time.sleep(POLL_S)
    cpu1, broker1 = cpu_seconds(sc.proc.pid), broker.cpu_seconds()
    hwm, rss = status_kib(sc.proc.pid, "VmHWM"), status_kib(sc.proc.pid, "VmRSS")
    # The last reading below N ends the full-speed part (the final one overshoots by up to a
    # poll period); fall back to the final one when the run was too short for that.
    full = [r for r in readings if r[1] < n]
    (t0, c0), (t1, c1) = readings[0], (full[-1] if len(full) >= 2 else readings[-1])
    if c1 <= c0:
        raise BenchError(f"sidecar: too few /metrics readings ({len(readings)}); raise --n")
    span = readings[-1][0] - t0
    return Run(
        rate=(c1 - c0) / (t1 - t0),
        cpu_share=(cpu1 - cpu0) / span,
        broker_share=(broker1 - broker0) / span,
        join_s=t0 - started,
        hwm_mb=hwm * 1024 / 1e6,
        rss_mb=rss * 1024 / 1e6,
    )


# --------------------------------------------------------------------------- latency


@dataclass
class Latency:
    rate: float  # achieved send rate
    sent: int
    received: int
    ms: list[float]
    sidecar_share: float
    broker_share: float


def latency_templates(lines: Sequence[bytes]) -> list[bytes]:
    """Each trace without trace_id and timestamp, as the JSON text after ``"timestamp":T``."""
    out = []
    for line in lines:
        row = orjson.loads(line)
        row.pop("trace_id")
        row.pop("timestamp")
        out.append(b"," + orjson.dumps(row)[1:])
    return out


async def latency_run(
    broker: Broker, sc: Sidecar, templates: Sequence[bytes], rate: float, seconds: float
) -> Latency:
    total = max(int(rate * seconds), 1)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    prod = producer(broker.bootstrap, linger_ms=0)
    await asyncio.wait_for(consumer.start(), 20)
    try:
        tps = [TopicPartition(SIDECAR_EVENTS, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve now, not lazily after the first events arrived
            await asyncio.wait_for(consumer.position(tp), 20)
        await asyncio.wait_for(prod.start(), 20)
        try:
            cpu0, broker0 = cpu_seconds(sc.proc.pid), broker.cpu_seconds()
            t0 = time.perf_counter()
            receiver = asyncio.create_task(_receive(consumer, total, seconds + 30))
            sent, send_s = await _send_paced(prod, templates, rate, total)
            ms = await asyncio.wait_for(receiver, seconds + 60)
            span = time.perf_counter() - t0
            return Latency(
                rate=sent / send_s,
                sent=sent,
                received=len(ms),
                ms=ms,
                sidecar_share=(cpu_seconds(sc.proc.pid) - cpu0) / span,
                broker_share=(broker.cpu_seconds() - broker0) / span,
            )
        finally:
            await prod.stop()
    finally:
        await consumer.stop()


async def _send_paced(
    prod: AIOKafkaProducer, templates: Sequence[bytes], rate: float, total: int
) -> tuple[int, float]:
    send = prod.send
    futures = []
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            head = b'{"trace_id":"lat-%09d","timestamp":%.6f' % (sent, time.time())
            value = head + templates[sent % len(templates)]
            futures.append(await send(SIDECAR_TOPIC, value, partition=sent % PARTITIONS))
            sent += 1
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - start
    await asyncio.wait_for(asyncio.gather(*futures), 60)
    return sent, elapsed


async def _receive(consumer: AIOKafkaConsumer, total: int, within_s: float) -> list[float]:
    """Latency (ms) of each ``lat-`` event, first arrival of each trace only."""
    loads = orjson.loads
    seen: set[str] = set()
    ms: list[float] = []
    deadline = time.monotonic() + within_s
    while len(seen) < total and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=100)
        now = time.time()
        for msgs in batch.values():
            for msg in msgs:
                event = loads(msg.value)
                trace_id = event["trace_id"]
                if trace_id.startswith("lat-") and trace_id not in seen:
                    seen.add(trace_id)
                    ms.append((now - event["timestamp"]) * 1000)
    return ms


# ------------------------------------------------------------------------------ main


def pct(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000, help="traces per pass (default 50,000)")
    ap.add_argument("--repeat", type=int, default=3, help="passes of each (default 3)")
    ap.add_argument("--latency-s", type=float, default=20.0, help="latency phase length (20)")
    ap.add_argument("--keep-logs", type=Path, help="write tansu/sidecar logs here (kept)")
    args = ap.parse_args()
    if args.n < 2000 or args.repeat < 1:
        ap.error("need --n >= 2000 and --repeat >= 1")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("kafka_throughput: needs 2 cores (measured client | tansu + harness)")
    core_a, core_b = cores[0], cores[1]
    try:
        with tempfile.TemporaryDirectory(prefix="kafka-bench-") as tmp:
            log_dir = args.keep_logs or Path(tmp)
            log_dir.mkdir(parents=True, exist_ok=True)
            run(args, log_dir, core_a, core_b)
    except BenchError as exc:
        raise SystemExit(f"kafka_throughput: {exc}") from None


def run(args: argparse.Namespace, log_dir: Path, core_a: int, core_b: int) -> None:
    n, repeat = args.n, args.repeat
    lines = make_lines(n)
    templates = latency_templates(lines[:5000])
    timeout = 120 + n / 500  # per pass: start-up + group join + a pessimistic 500 traces/s
    broker = start_broker(log_dir, cpu=core_b)
    sidecars: list[Sidecar] = []
    try:
        asyncio.run(prepare(broker, lines, timeout))
        limits: list[Run] = []
        sides: list[Run] = []
        for r in range(repeat):
            pin_self({core_a})
            limits.append(asyncio.run(limit_run(broker, f"limit-{r}", n, timeout)))
            pin_self({core_b})
            sc = start_sidecar(broker, f"bench-{r}", core_a, log_dir)
            sidecars.append(sc)
            sides.append(sidecar_run(sc, broker, n, timeout))
            if r < repeat - 1:
                sc.stop()
        best_side = max(sides, key=lambda x: x.rate)
        lat = asyncio.run(
            latency_run(broker, sidecars[-1], templates, best_side.rate / 2, args.latency_s)
        )
    finally:
        for sc in sidecars:
            sc.stop()
        broker.stop()
    report(lines, limits, sides, lat, args.latency_s, core_a, core_b)


async def prepare(broker: Broker, lines: Sequence[bytes], within_s: float) -> None:
    await create_topics(
        broker.bootstrap, [LIMIT_TOPIC, LIMIT_EVENTS, SIDECAR_TOPIC, SIDECAR_EVENTS], PARTITIONS
    )
    for topic in (LIMIT_TOPIC, SIDECAR_TOPIC):
        await produce(broker.bootstrap, topic, lines, PARTITIONS, within_s)


def report(
    lines: Sequence[bytes],
    limits: Sequence[Run],
    sides: Sequence[Run],
    lat: Latency,
    latency_s: float,
    core_a: int,
    core_b: int,
) -> None:
    def best(rs: Sequence[Run]) -> Run:
        return max(rs, key=lambda x: x.rate)

    def med(rs: Sequence[Run]) -> float:
        return statistics.median(x.rate for x in rs)

    lim, side = best(limits), best(sides)
    print(
        f"traces: {len(lines):,} x {mean_size(lines):,.0f} bytes (5 chunks), tansu 127.0.0.1, "
        f"{PARTITIONS} partitions; measured client on cpu {core_a}, tansu on cpu {core_b}; "
        f"best and median of {len(limits)}"
    )
    print(
        f"{'':44s} {'best/s':>8s} {'median/s':>9s}  {'client cpu':>10s} {'tansu cpu':>9s} "
        f"{'join':>5s}"
    )
    for name, rs, b in (
        ("limit (aiokafka consume+orjson+produce)", limits, lim),
        ("sidecar (python -m sidecar run, kafka→kafka)", sides, side),
    ):
        print(
            f"{name:44s} {b.rate:8,.0f} {med(rs):9,.0f}  {b.cpu_share:10.0%} "
            f"{b.broker_share:9.0%} {b.join_s:4.1f}s"
        )
    ratio = side.rate / lim.rate
    verdict = "ok" if ratio >= RATIO_TARGET else "BELOW"
    print(
        f"{'sidecar / limit':44s} {ratio:8.3f} {med(sides) / med(limits):9.3f}  "
        f"target >= {RATIO_TARGET}: {verdict}"
    )
    hwm = max(x.hwm_mb for x in sides)
    print(
        f"{'sidecar peak RSS (VmHWM, max of runs)':44s} {hwm:6.0f} MB  "
        f"(VmRSS at N: {side.rss_mb:.0f} MB)  target <= {RSS_TARGET_MB:.0f} MB: "
        f"{'ok' if hwm <= RSS_TARGET_MB else 'ABOVE'}"
    )
    if lat.ms:
        p50, p95, p99 = (pct(lat.ms, q) for q in (50, 95, 99))
        print(
            f"latency produce→scored event at {lat.rate:,.0f}/s (half of best) for "
            f"{latency_s:.0f}s: p50 {p50:.0f} ms  p95 {p95:.0f} ms  p99 {p99:.0f} ms  "
            f"max {max(lat.ms):.0f} ms  target p99 <= {P99_TARGET_MS:.0f} ms: "
            f"{'ok' if p99 <= P99_TARGET_MS else 'ABOVE'}"
        )
    print(
        f"latency phase: {lat.received:,}/{lat.sent:,} events back, sidecar cpu "
        f"{lat.sidecar_share:.0%}, tansu+load generator cpu {lat.broker_share:.0%} (tansu only)"
    )


if __name__ == "__main__":
    main()
