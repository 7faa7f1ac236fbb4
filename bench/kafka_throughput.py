"""Kafka → heuristics → metrics + scored events: the sidecar beside the aiokafka limit, one core.

    .venv/bin/python bench/kafka_throughput.py [--n 50000] [--repeat 3] [--latency-s 20]

Needs tansu (``bash scripts/tools.sh tansu``) and two cores. One tansu broker (in-memory storage,
127.0.0.1, free port) is pinned to the second core for the whole run; the measured consumer gets
the first core. N ~4.2 KB traces (5 chunks) are produced, before any timing, into two topics of
3 partitions: one for the limit, one for the sidecar. Then, interleaved ``--repeat`` times (each
time a fresh consumer group, so it re-reads all N):

  limit     this process, pinned to the first core: aiokafka consumer group (manual commit at
            the end) → orjson.loads of each trace → produce a ~100 B result event keyed by
            trace_id, gathering the send futures of each batch (acks=all). No scoring.
            Rate = records after the first batch / time from the first batch to the N-th record.
  sidecar   ``python -m sidecar run --source kafka://…/traces?group=… --events kafka://…/events``
            as a subprocess pinned to the first core (this process moves to the second core and
            only polls). Rate = the sidecar's own ``rag_sidecar_traces_total{source="kafka",
            outcome="scored"}`` from its first non-zero reading to the last reading before N
            (start-up and group join excluded), CPU times over the same window. /metrics is
            read once a second: a scrape costs the sidecar ~30 ms of CPU. Peak RSS = VmHWM of
            the subprocess when it reaches N.

Columns: best and median rate of the runs; for the best run, CPU microseconds per trace of the
measured process (steadier than rates on a shared, loaded machine), its CPU share (1.0 = its
core; less means it waited, on the broker or on other tenants) and tansu's; join = start →
first record. The ratio row compares the best runs (the least disturbed by other tenants), the
medians, and CPU time per trace (limit / sidecar); RSS is the highest VmHWM of all sidecar runs.

  ceiling   before the broker starts, this process (first core) times scoring alone on 5,000 of
            the traces: bench/heuristics_throughput.py's hot path (decode, validate, heuristics,
            sampling, event JSON, Prometheus metrics; no Kafka, drift or feedback). The last line
            prints limit CPU / (limit CPU + scoring CPU): the CPU ratio the sidecar could reach if
            everything besides the limit's own work and scoring cost nothing.

  latency   the last sidecar, kept running after its backlog is scored (warm, steady state, no
            second group join): traces go into the same topic at half of the best sidecar rate
            for ``--latency-s`` seconds, each with ``timestamp`` = wall time at send and a
            trace_id tagged for the run; a consumer of the events topic (fetch_max_wait 10 ms) takes
            receive time − event timestamp. First, the same load goes through the broker alone
            (produce → plain aiokafka consumer with the sidecar's own consumer settings:
            ``fetch_max_wait_ms`` and ``max_records`` of its KafkaSettings, RAG_SIDECAR_KAFKA__*
            overrides included): the floor tansu imposes: it answers a pending fetch when (part
            of) its wait expires, not when data arrives, so latency grows with fetch_max_wait.
            The load generator shares the second core with tansu.

The sidecar runs with its defaults; RAG_SIDECAR_* variables set in this process's environment
reach it (e.g. RAG_SIDECAR_DRIFT__ENABLED=false to see what one component costs).

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
from heuristics_throughput import make_hot_path

from sidecar.config import KafkaSettings, load_settings

RATIO_TARGET = 0.5
P99_TARGET_MS = 250.0
RSS_TARGET_MB = 300.0
PARTITIONS = 3
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 500
# /metrics polling: fast until the first trace is scored, then slow, because one scrape costs
# the sidecar ~30 ms of CPU (~3% of its core at 1 s; a Prometheus scrape every 15 s, 0.2%).
POLL_START_S, POLL_S = 0.1, 1.0

LIMIT_TOPIC, LIMIT_EVENTS = "limit-traces", "limit-events"
SIDECAR_TOPIC, SIDECAR_EVENTS = "traces", "events"
FLOOR_TOPIC = "floor"
FLOOR_MAX_S = 10.0

_TRACES_TOTAL = re.compile(rb"^rag_sidecar_traces_total\{([^}]*)\} (\S+)", re.MULTILINE)


@dataclass
class Run:
    """One timed pass over the N traces."""

    rate: float  # traces/s
    cpu_share: float  # CPU seconds of the measured process per wall second (1.0 = its core)
    broker_share: float  # same for tansu
    join_s: float  # start → first record (consumer-group join and start-up)
    cpu_us: float  # CPU microseconds of the measured process per trace (robust to load)
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
    cpu = cpu_seconds(pid) - cpu0
    return Run(
        rate=(count - first_count) / elapsed,
        cpu_share=cpu / elapsed,
        broker_share=(broker.cpu_seconds() - broker0) / elapsed,
        join_s=t0 - started,
        cpu_us=cpu / (count - first_count) * 1e6,
    )


# --------------------------------------------------------------------------- sidecar


def sidecar_kafka_settings() -> KafkaSettings:
    """The Kafka settings the sidecar subprocess runs with (defaults + RAG_SIDECAR_* env)."""
    return load_settings().kafka


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
    # (perf_counter, scored, sidecar CPU s, tansu CPU s), scored > 0
    readings: list[tuple[float, float, float, float]] = []
    while True:
        sc.check_alive()
        if time.monotonic() > deadline:
            last = readings[-1][1] if readings else 0
            raise BenchError(f"sidecar scored {last:.0f}/{n} in {timeout:.0f}s: {tail(sc.log)}")
        before = time.perf_counter()
        scored = sc.scored()
        now = (before + time.perf_counter()) / 2  # the counter is read during the request
        if scored:
            readings.append((now, scored, cpu_seconds(sc.proc.pid), broker.cpu_seconds()))
            if scored >= n:
                break
        time.sleep(POLL_S if readings else POLL_START_S)
    hwm, rss = status_kib(sc.proc.pid, "VmHWM"), status_kib(sc.proc.pid, "VmRSS")
    # The last reading below N ends the full-speed part (the final one overshoots by up to a
    # poll period, partly idle); fall back to the final one when the run was too short for that.
    full = [r for r in readings if r[1] < n]
    (t0, c0, cpu0, broker0), (t1, c1, cpu1, broker1) = (
        readings[0],
        full[-1] if len(full) >= 2 else readings[-1],
    )
    if c1 <= c0:
        raise BenchError(f"sidecar: too few /metrics readings ({len(readings)}); raise --n")
    return Run(
        rate=(c1 - c0) / (t1 - t0),
        cpu_share=(cpu1 - cpu0) / (t1 - t0),
        broker_share=(broker1 - broker0) / (t1 - t0),
        join_s=t0 - started,
        cpu_us=(cpu1 - cpu0) / (c1 - c0) * 1e6,
        hwm_mb=hwm * 1024 / 1e6,
        rss_mb=rss * 1024 / 1e6,
    )


# --------------------------------------------------------------------------- latency


@dataclass
class Latency:
    """One paced run: what was sent, what came back and how late (ms)."""

    rate: float  # achieved send rate
    sent: int
    ms: list[float]
    target_share: float  # CPU share of the process on the receiving end (sidecar), 0 if none
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
    broker: Broker,
    templates: Sequence[bytes],
    rate: float,
    seconds: float,
    *,
    send_to: str,
    read_from: str,
    fetch_max_wait_ms: int,
    max_records: int | None = None,
    target_pid: int | None = None,
) -> Latency:
    """Send traces to ``send_to`` at ``rate``; time them until they show in ``read_from``.

    Reading a trace (or the event scored from it) back: receive time − its ``timestamp``.
    Trace ids carry a tag unique to this run, so older records on the topics never count.
    """
    total = max(int(rate * seconds), 1)
    tag = f"lat{time.time_ns() % 10**12:012d}-".encode()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    prod = producer(broker.bootstrap, linger_ms=0)
    await asyncio.wait_for(consumer.start(), 20)
    try:
        tps = [TopicPartition(read_from, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve now, not lazily after the first records arrived
            await asyncio.wait_for(consumer.position(tp), 20)
        await asyncio.wait_for(prod.start(), 20)
        try:
            cpu0 = cpu_seconds(target_pid) if target_pid else 0.0
            broker0 = broker.cpu_seconds()
            t0 = time.perf_counter()
            receiver = asyncio.create_task(
                _receive(consumer, tag, total, seconds + 30, max_records)
            )
            sent, send_s = await _send_paced(prod, send_to, tag, templates, rate, total)
            ms = await asyncio.wait_for(receiver, seconds + 60)
            span = time.perf_counter() - t0
            return Latency(
                rate=sent / send_s,
                sent=sent,
                ms=ms,
                target_share=(cpu_seconds(target_pid) - cpu0) / span if target_pid else 0.0,
                broker_share=(broker.cpu_seconds() - broker0) / span,
            )
        finally:
            await prod.stop()
    finally:
        await consumer.stop()


async def _send_paced(
    prod: AIOKafkaProducer,
    topic: str,
    tag: bytes,
    templates: Sequence[bytes],
    rate: float,
    total: int,
) -> tuple[int, float]:
    send = prod.send
    futures = []
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            head = b'{"trace_id":"%s%09d","timestamp":%.6f' % (tag, sent, time.time())
            value = head + templates[sent % len(templates)]
            futures.append(await send(topic, value, partition=sent % PARTITIONS))
            sent += 1
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - start
    await asyncio.wait_for(asyncio.gather(*futures), 60)
    return sent, elapsed


async def _receive(
    consumer: AIOKafkaConsumer, tag: bytes, total: int, within_s: float, max_records: int | None
) -> list[float]:
    """Latency (ms) of each tagged trace or event, first arrival of each trace only."""
    loads = orjson.loads
    prefix = tag.decode()
    seen: set[str] = set()
    ms: list[float] = []
    deadline = time.monotonic() + within_s
    while len(seen) < total and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=100, max_records=max_records)
        now = time.time()
        for msgs in batch.values():
            for msg in msgs:
                doc = loads(msg.value)
                trace_id = doc["trace_id"]
                if trace_id.startswith(prefix) and trace_id not in seen:
                    seen.add(trace_id)
                    ms.append((now - doc["timestamp"]) * 1000)
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
    except TimeoutError:
        raise SystemExit(
            "kafka_throughput: a broker or sidecar wait ran past its bound "
            "(rerun with --keep-logs DIR to see the tansu and sidecar logs)"
        ) from None


def run(args: argparse.Namespace, log_dir: Path, core_a: int, core_b: int) -> None:
    n, repeat = args.n, args.repeat
    load0 = os.getloadavg()[0]
    lines = make_lines(n)
    templates = latency_templates(lines[:5000])
    timeout = 120 + n / 500  # per pass: start-up + group join + a pessimistic 500 traces/s
    pin_self({core_a})
    hot_us = scoring_cpu_us(lines[:5000])
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
        half = max(x.rate for x in sides) / 2
        kafka = sidecar_kafka_settings()
        floor = asyncio.run(
            latency_run(
                broker,
                templates,
                half,
                min(args.latency_s, FLOOR_MAX_S),
                send_to=FLOOR_TOPIC,
                read_from=FLOOR_TOPIC,
                fetch_max_wait_ms=kafka.fetch_max_wait_ms,  # the sidecar's consumer settings
                max_records=kafka.max_records,
            )
        )
        sidecars[-1].check_alive()
        lat = asyncio.run(
            latency_run(
                broker,
                templates,
                half,
                args.latency_s,
                send_to=SIDECAR_TOPIC,
                read_from=SIDECAR_EVENTS,
                fetch_max_wait_ms=10,  # keep the harness's own hop short
                target_pid=sidecars[-1].proc.pid,
            )
        )
    finally:
        for sc in sidecars:
            sc.stop()
        broker.stop()
    report(lines, limits, sides, floor, lat, args.latency_s, kafka, (core_a, core_b), load0)
    report_ceiling(best_of(limits), hot_us)


def scoring_cpu_us(lines: Sequence[bytes], repeat: int = 3) -> float:
    """CPU µs per trace of scoring alone, in this process: decode + validate + heuristics +
    sampling + event JSON + Prometheus metrics (bench/heuristics_throughput.py's hot path)."""
    run = make_hot_path(list(lines))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        n = run()
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


def best_of(rs: Sequence[Run]) -> Run:
    return max(rs, key=lambda x: x.rate)


def report_ceiling(lim: Run, hot_us: float) -> None:
    """What the ratio could be if everything but the limit's own work and scoring were free."""
    ceiling = lim.cpu_us / (lim.cpu_us + hot_us)
    print(
        f"ceiling: scoring alone (decode, heuristics, event, metrics; no I/O) costs {hot_us:.0f} "
        f"us of CPU per trace; with the limit's {lim.cpu_us:.0f} us and nothing else, the CPU "
        f"ratio could reach at most {ceiling:.2f}"
    )


async def prepare(broker: Broker, lines: Sequence[bytes], within_s: float) -> None:
    topics = [LIMIT_TOPIC, LIMIT_EVENTS, SIDECAR_TOPIC, SIDECAR_EVENTS, FLOOR_TOPIC]
    await create_topics(broker.bootstrap, topics, PARTITIONS)
    for topic in (LIMIT_TOPIC, SIDECAR_TOPIC):
        await produce(broker.bootstrap, topic, lines, PARTITIONS, within_s)


def report(
    lines: Sequence[bytes],
    limits: Sequence[Run],
    sides: Sequence[Run],
    floor: Latency,
    lat: Latency,
    latency_s: float,
    kafka: KafkaSettings,
    cores: tuple[int, int],
    load0: float,
) -> None:
    best = best_of

    def med(rs: Sequence[Run]) -> float:
        return statistics.median(x.rate for x in rs)

    def pcts(x: Latency) -> str:
        if not x.ms:
            return "nothing came back"
        p50, p95, p99 = (pct(x.ms, q) for q in (50, 95, 99))
        return (
            f"p50 {p50:4.0f}  p95 {p95:4.0f}  p99 {p99:4.0f}  max {max(x.ms):4.0f} ms"
            f"   ({len(x.ms):,}/{x.sent:,} back at {x.rate:,.0f}/s)"
        )

    lim, side = best(limits), best(sides)
    print(
        f"{len(lines):,} traces x {mean_size(lines):,.0f} B (5 chunks), tansu on 127.0.0.1, "
        f"{PARTITIONS} partitions; measured client on cpu {cores[0]}, tansu on cpu {cores[1]}; "
        f"{len(limits)} interleaved runs each; load avg {load0:.1f} → {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'':46s} {'best/s':>7s} {'median/s':>8s}  {'cpu us/trace':>12s} {'cpu':>5s} "
        f"{'tansu':>5s} {'join':>5s}"
    )
    for name, rs, b in (
        ("limit: aiokafka consume+orjson+produce 100 B", limits, lim),
        ("sidecar: python -m sidecar run, kafka→kafka", sides, side),
    ):
        print(
            f"{name:46s} {b.rate:7,.0f} {med(rs):8,.0f}  {b.cpu_us:12.0f} {b.cpu_share:5.0%} "
            f"{b.broker_share:5.0%} {b.join_s:4.1f}s"
        )
    ratio = side.rate / lim.rate
    print(
        f"{'sidecar / limit':46s} {ratio:7.3f} {med(sides) / med(limits):8.3f}  "
        f"{lim.cpu_us / side.cpu_us:12.3f}   target >= {RATIO_TARGET}: "
        f"{'ok' if ratio >= RATIO_TARGET else 'BELOW'}"
    )
    hwm = max(x.hwm_mb for x in sides)
    print(
        f"sidecar peak RSS (VmHWM, max of runs): {hwm:.0f} MB (VmRSS at N {side.rss_mb:.0f} MB)"
        f"   target <= {RSS_TARGET_MB:.0f} MB: {'ok' if hwm <= RSS_TARGET_MB else 'ABOVE'}"
    )
    print(f"latency at half of the best sidecar rate ({lat.rate:,.0f}/s):")
    floor_name = f"broker floor: one hop, fetch_max_wait {kafka.fetch_max_wait_ms} ms"
    print(f"  {floor_name:46s} {pcts(floor)}")
    print(f"  {f'sidecar: produce → scored event, {latency_s:.0f} s':46s} {pcts(lat)}")
    verdict = "ABOVE"
    if lat.ms and pct(lat.ms, 99) <= P99_TARGET_MS:
        verdict = "ok"
    print(
        f"  target p99 <= {P99_TARGET_MS:.0f} ms: {verdict}   (sidecar cpu {lat.target_share:.0%}, "
        f"tansu cpu {lat.broker_share:.0%} during the run)"
    )


if __name__ == "__main__":
    main()
