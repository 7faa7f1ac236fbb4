"""The Kafka source's bookkeeping: per-partition commit points and the lag/in-flight gauges."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _Positions(Protocol):
    in_flight: int
    paused: bool

    def positions(self) -> list[tuple[TopicPartition, int | None, int | None]]: ...


log = logging.getLogger(__name__)


class PartitionOffsets:
    """One partition's batches in read order; commit point = end of the finished prefix."""

    def __init__(self, committed: int | None = None, start: int | None = None) -> None:
        """``start``: where a group without a committed offset began (its reset offset)."""
        self._open: deque[list[Any]] = deque()  # [next_offset, finished]
        self.commit_point: int | None = committed
        self.committed: int | None = committed
        self.start = start

    @property
    def done_to(self) -> int | None:
        """The offset the lag counts from: the committed one, else where the group began."""
        return self.start if self.committed is None else self.committed

    def add(self, next_offset: int) -> list[Any]:
        """Register a batch whose last offset is ``next_offset - 1``; returns its handle."""
        entry = [next_offset, False]
        self._open.append(entry)
        return entry

    def finish(self, entry: list[Any]) -> None:
        """Mark a batch written and advance the commit point over the finished prefix."""
        entry[1] = True
        while self._open and self._open[0][1]:
            self.commit_point = self._open.popleft()[0]

    def due(self) -> int | None:
        """The offset to commit now, if it moved since the last commit."""
        if self.commit_point is not None and self.commit_point != self.committed:
            return self.commit_point
        return None


async def reset_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], reset: str
) -> dict[TopicPartition, int]:
    """Where a group without committed offsets starts reading ``tps`` (``auto_offset_reset``:
    the log start or the log end), in one request per leader; empty when the broker does not
    say."""
    if not tps:
        return {}
    try:
        ask = consumer.beginning_offsets if reset == "earliest" else consumer.end_offsets
        found: dict[TopicPartition, int] = await ask(tps)
    except Exception as exc:
        log.debug("kafka reset offsets unavailable", extra={"fields": {"error": repr(exc)}})
        return {}
    return found


async def log_end_offsets(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    """The assigned partitions' log-end offsets (one ListOffsets request per leader).

    For the lag of paused partitions: aiokafka does not fetch them, so its ``highwater``
    stops where the pause found it. Empty when the broker does not answer (stale until next).
    """
    assigned = list(consumer.assignment())
    if not assigned:
        return {}
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(assigned)
    except Exception as exc:
        log.debug("kafka end offsets unavailable", extra={"fields": {"error": repr(exc)}})
        return {}
    return ends


class LagCollector(Collector):
    """Exports lag per partition, records in flight and the paused state at scrape time."""

    def __init__(self, source: _Positions) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "rag_sidecar_kafka_lag",
            "Records on the partition not yet committed (high watermark − committed offset).",
            labels=["topic", "partition"],
        )
        in_flight = GaugeMetricFamily(
            "rag_sidecar_kafka_in_flight",
            "Records read from Kafka whose results are not yet written.",
        )
        paused = GaugeMetricFamily(
            "rag_sidecar_kafka_paused", "1 while partitions are paused for backpressure."
        )
        for tp, hw, committed in self._source.positions():
            # Before the group's first commit, from where it began (its reset offset): hw - 0
            # showed a whole topic (for ever on an idle partition read from `latest`).
            if hw is not None and committed is not None:
                lag.add_metric([tp.topic, str(tp.partition)], max(hw - committed, 0))
        in_flight.add_metric([], self._source.in_flight)
        paused.add_metric([], 1.0 if self._source.paused else 0.0)
        yield lag
        yield in_flight
        yield paused


class _Assignments(Protocol):
    async def on_revoked(self, revoked: list[TopicPartition]) -> None: ...
    async def on_assigned(self, assigned: list[TopicPartition]) -> None: ...


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands aiokafka's rebalance callbacks to the source."""

    def __init__(self, source: _Assignments) -> None:
        self._source = source

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._source.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._source.on_assigned(list(assigned))
