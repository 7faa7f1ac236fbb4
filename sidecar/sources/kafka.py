"""Kafka source: a faststream batch subscriber in a consumer group, at-least-once.

* faststream's :class:`~faststream.kafka.KafkaBroker` (aiokafka underneath) runs a
  batch subscriber with ``AckPolicy.MANUAL``; its handler only turns the batch
  into :class:`~sidecar.stages.Record` s and emits them.
* Offsets are committed only up to the first record whose results are not yet
  written: each partition keeps the batches it emitted in order, and a batch's
  ``done(True)`` lets the commit point advance past it. A periodic task commits
  (``kafka.commit_interval_s``), and so do rebalances and shutdown.
* Rebalance: revoked partitions commit what is finished, then forget their
  in-flight batches (their late completions are ignored; the new owner re-reads
  them: duplicates, never loss); their batches not yet handed to the pipeline are
  dropped unscored (``rag_sidecar_kafka_revoked_records_total``).
* Backpressure: the handler never waits on the pipeline. It queues the batch for a
  forwarding task (which does wait when the pipeline's queue is full) and returns,
  so the consumer keeps polling: a long sink outage never exceeds
  ``max_poll_interval_ms`` and never drops the replica from the group. Above
  ``kafka.max_in_flight`` records read but not written (queued here included), every
  assigned partition is paused; below half of it they resume.
* ``rag_sidecar_kafka_lag{topic,partition}`` = high watermark − committed offset (before
  the group's first commit, − its reset offset; while paused, the log-end offsets are
  asked for every commit interval: nothing is fetched).
* Headers are never read (faststream's parser, which fails a batch on one binary header,
  is replaced); ``?pattern=`` must match a whole topic name, as in Kafka's Java clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from prometheus_client import CollectorRegistry, Counter

from ..config import KafkaSettings, KafkaSpec
from ..kafkautil import faststream_security, to_record
from ..stages import Batch, Emit, Record
from .kafka_faststream import counting_logger, raw_decoder, raw_parser, topic_pattern
from .kafka_offsets import (
    LagCollector,
    PartitionOffsets,
    Rebalance,
    log_end_offsets,
    reset_offsets,
)

log = logging.getLogger(__name__)


class KafkaSource:
    """Consumes traces from Kafka topics (or a pattern) in a consumer group."""

    def __init__(
        self,
        spec: KafkaSpec,
        settings: KafkaSettings,
        registry: CollectorRegistry,
        *,
        drain_timeout_s: float = 30.0,
    ) -> None:
        self.name = "kafka"
        self.spec = spec
        self.settings = settings
        self.group_id = spec.group or settings.group_id
        self.drain_timeout_s = drain_timeout_s
        self.in_flight = 0
        self.paused = False
        self._parts: dict[TopicPartition, PartitionOffsets] = {}
        self._ends: dict[TopicPartition, int] = {}
        """Log-end offsets asked for while paused (paused partitions are not fetched, so
        aiokafka's highwater stops moving and the lag would stay at its pre-pause value)."""
        self._subscriber: Any = None
        self._broker: KafkaBroker | None = None
        self._emit: Emit | None = None
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = asyncio.Event()
        self._commit_task: asyncio.Task[None] | None = None
        self._backlog: deque[tuple[Batch, frozenset[TopicPartition]]] = deque()
        """Batches read but not yet handed to the pipeline, with the partitions they hold."""
        self._commit_pending: asyncio.Future[None] | None = None
        self._backlog_ready = asyncio.Event()
        self._forward_task: asyncio.Task[None] | None = None
        self.commits = Counter(
            "rag_sidecar_kafka_commits",
            "Offset commits, by outcome (ok, failed).",
            ("outcome",),
            registry=registry,
        )
        self.revoked_records = Counter(
            "rag_sidecar_kafka_revoked_records",
            "Records read but not yet scored when their partition was revoked: dropped, "
            "re-read by the next owner.",
            registry=registry,
        )
        self.rebalances = Counter(
            "rag_sidecar_kafka_rebalances",
            "Partition assignment changes, by kind (assigned, revoked).",
            ("kind",),
            registry=registry,
        )
        self.consumer_errors = Counter(
            "rag_sidecar_kafka_consumer_errors",
            "Errors of the Kafka consumer (retried every 5 s), by exception class.",
            ("error",),
            registry=registry,
        )
        registry.register(LagCollector(self))

    # ------------------------------------------------------------------ lifecycle

    def build(self, emit: Emit) -> KafkaBroker:
        """Create the faststream broker and subscriber without connecting (tests patch it)."""
        s = self.settings
        self._emit = emit
        broker = KafkaBroker(
            list(self.spec.bootstrap),
            client_id=s.client_id,
            request_timeout_ms=s.request_timeout_ms,
            security=faststream_security(s),
            logger=counting_logger(self.consumer_errors),
            log_level=logging.DEBUG,  # per-message logs only at DEBUG
            graceful_timeout=self.drain_timeout_s,
        )
        topics = () if self.spec.pattern else self.spec.topics
        subscriber = broker.subscriber(
            *topics,
            pattern=topic_pattern(self.spec.pattern),
            group_id=self.group_id,
            batch=True,
            max_records=s.max_records,
            batch_timeout_ms=s.batch_timeout_ms,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            # Range assignment co-assigns partition i of every subscribed topic to one member,
            # so feedback on a co-partitioned topic reaches the replica holding its traces.
            partition_assignment_strategy=(RangePartitionAssignor,),
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset=s.auto_offset_reset,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            listener=Rebalance(self),
            parser=raw_parser,
            decoder=raw_decoder,
        )

        # The decoder hands over the message itself: asking for it through faststream's
        # Context instead resolves a sync dependency in a worker thread, one hop per batch.
        async def handle(msg: Any) -> None:
            await self._handle(msg)

        subscriber(handle)
        self._subscriber = subscriber
        self._broker = broker
        return broker

    async def start(self, emit: Emit) -> None:
        """Join the group and start consuming (reusing a broker made by :meth:`build`)."""
        if self._broker is None:
            broker = self.build(emit)
        else:
            broker, self._emit = self._broker, emit
        await broker.start()
        self._commit_task = asyncio.create_task(self._commit_loop(), name="kafka:commit")
        log.info(
            "kafka source started",
            extra={
                "fields": {
                    "group": self.group_id,
                    "topics": list(self.spec.topics),
                    "pattern": self.spec.pattern,
                }
            },
        )

    async def drained(self) -> None:
        """A Kafka topic never ends: returns only after :meth:`aclose`."""
        await self._stopped.wait()

    async def aclose(self) -> None:
        """Stop reading, wait for in-flight records to be written, commit, leave the group."""
        self._closing = True
        self._pause_all()
        try:
            await asyncio.wait_for(self._idle.wait(), self.drain_timeout_s)
        except TimeoutError:
            log.warning(
                "kafka in-flight records not written in time; they will be re-read",
                extra={"fields": {"in_flight": self.in_flight}},
            )
        for task in (self._commit_task, self._forward_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._backlog.clear()  # never emitted: not committed, re-read
        await self._commit()
        if self._broker is not None:
            await self._broker.stop()
        self._stopped.set()

    # ---------------------------------------------------------------- consumption

    @property
    def _consumer(self) -> AIOKafkaConsumer | None:
        consumer = getattr(self._subscriber, "consumer", None)
        return consumer if isinstance(consumer, AIOKafkaConsumer) else None

    async def _handle(self, msg: KafkaMessage) -> None:
        raws = msg.raw_message
        records_in: Sequence[Any] = raws if isinstance(raws, (tuple, list)) else (raws,)
        if self._closing or not records_in or self._emit is None:
            return  # not emitted → not committed → re-read by the next owner
        now = time.time()
        records: list[Record] = []
        last: dict[TopicPartition, int] = {}
        for rec in records_in:
            records.append(to_record(rec, now))
            last[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
        handles = []
        for tp, next_offset in last.items():
            part = self._parts.get(tp)
            if part is None:  # assigned before our listener saw it (or a test broker)
                part = self._parts[tp] = PartitionOffsets()
            handles.append((part, part.add(next_offset)))
        self.in_flight += len(records)
        self._idle.clear()
        if self.in_flight >= self.settings.max_in_flight:
            self._pause_all()
        batch = Batch(self.name, records, self._completion(handles, len(records)))
        self._backlog.append((batch, frozenset(last)))
        self._backlog_ready.set()
        if self._forward_task is None:
            self._forward_task = asyncio.create_task(self._forward(), name="kafka:forward")

    async def _forward(self) -> None:
        """Hand queued batches to the pipeline in read order, waiting when it is full."""
        backlog, ready = self._backlog, self._backlog_ready
        while True:
            while not backlog:
                ready.clear()
                await ready.wait()
            batch, _ = backlog.popleft()
            assert self._emit is not None
            await self._emit(batch)

    def _completion(self, handles: list[tuple[PartitionOffsets, list[Any]]], n: int) -> Any:
        def done(ok: bool) -> None:
            self.in_flight -= n
            if ok:
                for part, entry in handles:
                    part.finish(entry)
            if self.in_flight <= 0:
                self.in_flight = 0
                self._idle.set()
            if (
                self.paused
                and not self._closing
                and self.in_flight <= self.settings.max_in_flight // 2
            ):
                self._resume_all()

        return done

    def _pause_all(self) -> None:
        if self.paused:
            return
        self.paused = True
        if self._consumer is not None:
            assigned = list(self._consumer.assignment())
            if assigned:
                self._consumer.pause(*assigned)

    def _resume_all(self) -> None:
        if self._consumer is not None:
            assigned = list(self._consumer.assignment())
            if assigned:
                self._consumer.resume(*assigned)
        self.paused = False
        self._ends.clear()  # fetching again: aiokafka's highwater is current

    # ------------------------------------------------------------------- commits

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.commit_interval_s)
            await self._commit()
            if self.paused and not self._closing and self._consumer is not None:
                ends = await log_end_offsets(self._consumer)
                if self.paused:  # not resumed meanwhile
                    self._ends.update(ends)

    async def _commit(self, only: Sequence[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        assigned = consumer.assignment()  # commit() refuses the lot if one is not assigned
        due = {
            tp: off
            for tp, part in self._parts.items()
            if (only is None or tp in only) and tp in assigned and (off := part.due()) is not None
        }
        if not due:
            return
        if self._commit_pending is not None and not self._commit_pending.done():
            return  # an earlier commit is still trying: never race it (offsets could go back)
        # aiokafka retries a commit for as long as the coordinator is unreachable: the wait is
        # bounded here, so a broker outage cannot hang a rebalance or the shutdown. The commit
        # itself is not cancelled (aiokafka shields an inner task that would then fail with
        # nobody to read its error); it finishes or fails on its own, or with the consumer.
        task = self._commit_pending = asyncio.ensure_future(consumer.commit(due))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.settings.request_timeout_ms / 1000)
            if not done:
                task.add_done_callback(_retrieve)
                raise TimeoutError(f"no answer within {self.settings.request_timeout_ms} ms")
            task.result()
        except Exception as exc:  # rebalance in progress, coordinator moved, broker down
            self.commits.labels("failed").inc()
            log.warning(
                "offset commit failed; will retry",
                extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}},
            )
            return
        self.commits.labels("ok").inc()
        for tp, off in due.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = off

    def positions(self) -> list[tuple[TopicPartition, int | None, int | None]]:
        """(partition, high watermark, committed offset) for assigned partitions."""
        consumer = self._consumer
        assigned = consumer.assignment() if consumer is not None else set()
        out = []
        for tp, part in list(self._parts.items()):
            hw = consumer.highwater(tp) if consumer is not None and tp in assigned else None
            end = self._ends.get(tp) if tp in assigned else None
            if end is not None:
                hw = end if hw is None else max(hw, end)
            out.append((tp, hw, part.done_to))
        return out

    async def on_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """Commit what is finished on revoked partitions, then forget their in-flight work."""
        self.rebalances.labels("revoked").inc(len(revoked))
        await self._commit(revoked)
        for tp in revoked:
            self._parts.pop(tp, None)
            self._ends.pop(tp, None)
        # Batches of revoked partitions still waiting here are not scored: whoever owns the
        # partitions next (often this member again) re-reads them from the committed offset.
        gone = frozenset(revoked)
        dropped = [b for b, parts in self._backlog if parts <= gone]
        if dropped:
            kept = [(b, parts) for b, parts in self._backlog if not parts <= gone]
            self._backlog.clear()  # in place: the forwarding task holds this deque
            self._backlog.extend(kept)
            n = sum(len(b.records) for b in dropped)
            self.revoked_records.inc(n)
            for b in dropped:
                b.done(False)
            log.info(
                "kafka: dropped unscored records of revoked partitions",
                extra={"fields": {"records": n}},
            )

    async def on_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """Track newly assigned partitions (entries first: records arriving while the
        committed offsets are asked for go into them), from their committed offsets."""
        self.rebalances.labels("assigned").inc(len(assigned))
        parts = {tp: self._parts.setdefault(tp, PartitionOffsets()) for tp in assigned}
        if (consumer := self._consumer) is not None:
            for tp, part in parts.items():
                with contextlib.suppress(Exception):
                    committed = await consumer.committed(tp)
                    if part.committed is None:
                        part.committed = committed
            fresh = {tp: part for tp, part in parts.items() if part.committed is None}
            starts = await reset_offsets(consumer, list(fresh), self.settings.auto_offset_reset)
            for tp, start in starts.items():
                fresh[tp].start = start
        if self.paused and self._consumer is not None and assigned:
            self._consumer.pause(*assigned)


def _retrieve(task: asyncio.Future[None]) -> None:
    """Read a detached commit's outcome (it was already counted as failed)."""
    if not task.cancelled():
        task.exception()
