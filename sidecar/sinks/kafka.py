"""Kafka sinks: scored events and dead letters to topics (aiokafka producer).

Events are keyed by ``trace_id`` (so one trace's events share a partition) with
the event JSON as value and ``event_id`` / ``event_type`` headers. Dead letters
carry the original bytes as value and the reason, detail and source
topic/partition/offset as headers. A batch counts as written only when the
broker acknowledged every message (``acks=all`` by default).

The producer is used directly rather than through faststream's publisher: batch
publishing there ignores message keys, and per-message awaited publishing is
several times slower. Each write builds one record batch per partition (keys
hashed as the default partitioner does) instead of one ``send()`` per message.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

from ..config import KafkaSettings, KafkaSpec
from ..errors import PermanentError, RetryableError, StageError
from ..kafkautil import key_partition, producer_kwargs, translate
from ..stages import DeadLetter, Result

Message = tuple[bytes | None, bytes, list[tuple[str, bytes]]]
"""(key, value, headers) of one message to produce."""


class _Producer:
    def __init__(self, spec: KafkaSpec, settings: KafkaSettings) -> None:
        self.topic = spec.topics[0]
        self._kwargs = producer_kwargs(settings, spec.bootstrap)
        self._batch_bytes: int = settings.max_batch_size
        self._delivery_timeout_s = settings.delivery_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._next = -1  # round robin for messages without a key

    async def start(self) -> None:
        producer = AIOKafkaProducer(**self._kwargs)
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            raise translate(exc, f"kafka producer for {self.topic}") from exc
        self._producer = producer

    async def send_all(self, messages: list[Message]) -> None:
        """Send ``messages`` and wait until the broker acknowledged all of them.

        Messages are partitioned like the default partitioner does (murmur2 of the key; no key:
        round robin over partitions with a leader) and appended to one batch per partition,
        closed and submitted with ``send_batch``: about half the CPU of one ``send()`` per
        message (bench/kafka_produce.py). A message larger than a batch goes through ``send()``,
        which applies the request-size limit. Not acknowledged within ``delivery_timeout_s``:
        :class:`RetryableError` (the pipeline retries the write; duplicates only).
        """
        producer = self._producer
        if producer is None:
            raise PermanentError("kafka sink used before start()")
        topic = self.topic
        try:
            partitions = sorted(await producer.partitions_for(topic))
            if not partitions:
                raise RetryableError(f"produce to {topic}: no partitions known yet")
            # Without a key, like the default partitioner: partitions with a leader only.
            available = sorted(producer.client.cluster.available_partitions_for_topic(topic))
            unkeyed = available or partitions
            open_batches: dict[int, BatchBuilder] = {}
            futures: list[asyncio.Future[Any]] = []
            for key, value, headers in messages:
                if key is None:
                    self._next = (self._next + 1) % len(unkeyed)
                    part = unkeyed[self._next]
                else:
                    part = key_partition(key, partitions)
                if len(value) + len(key or b"") >= self._batch_bytes:
                    pending = open_batches.pop(part, None)
                    if pending is not None:
                        pending.close()
                        futures.append(await producer.send_batch(pending, topic, partition=part))
                    futures.append(
                        await producer.send(topic, value, key=key, headers=headers, partition=part)
                    )
                    continue
                batch = open_batches.get(part)
                if batch is None:
                    batch = open_batches[part] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    # Full (and closed by append): submit it, start the next with this message.
                    futures.append(await producer.send_batch(batch, topic, partition=part))
                    batch = open_batches[part] = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None, headers=headers)
            for part, batch in open_batches.items():
                batch.close()  # complete: the sender need not wait linger_ms for more
                futures.append(await producer.send_batch(batch, topic, partition=part))
            async with asyncio.timeout(self._delivery_timeout_s):
                await asyncio.gather(*futures)
        except TimeoutError:
            raise RetryableError(
                f"produce to {topic}: not acknowledged within {self._delivery_timeout_s:g} s"
            ) from None
        except StageError:
            raise
        except Exception as exc:
            raise translate(exc, f"produce to {topic}") from exc

    async def flush(self) -> None:
        if self._producer is not None:
            try:
                await self._producer.flush()
            except Exception as exc:
                raise translate(exc, f"flush {self.topic}") from exc

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class _KafkaSink:
    """Shared lifecycle of the Kafka sinks; subclasses turn a batch into messages."""

    def __init__(self, spec: KafkaSpec, settings: KafkaSettings) -> None:
        self.name = "kafka"
        self._p = _Producer(spec, settings)
        self.written = 0

    async def start(self) -> None:
        """Connect the producer."""
        await self._p.start()

    async def _send(self, msgs: list[Message]) -> None:
        if msgs:
            await self._p.send_all(msgs)
            self.written += len(msgs)

    async def flush(self) -> None:
        """Wait for buffered sends."""
        await self._p.flush()

    async def aclose(self) -> None:
        """Flush and disconnect."""
        await self._p.stop()


class KafkaEventSink(_KafkaSink):
    """Writes scored events to a topic, keyed by trace_id."""

    async def write(self, results: Sequence[Result]) -> None:
        """Send the batch and wait for every acknowledgement."""
        dumps = orjson.dumps
        await self._send(
            [
                (
                    r.event.trace_id.encode(),
                    dumps(r.event),
                    [
                        ("event_id", r.event.event_id.encode()),
                        ("event_type", r.event.type.encode()),
                    ],
                )
                for r in results
            ]
        )


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Headers describing why and where a record was dead-lettered."""
    headers = [
        ("dlq_reason", letter.reason.encode()),
        ("dlq_detail", letter.detail.encode()[:1000]),
        ("dlq_source", letter.source.encode()),
        ("dlq_origin", letter.origin.encode()),
        ("dlq_received_at", repr(letter.received_at).encode()),
    ]
    headers.extend((f"dlq_{k}", v.encode()) for k, v in (letter.attrs or {}).items())
    return headers


class KafkaDeadLetterSink(_KafkaSink):
    """Writes dead letters to a topic: original bytes, reason and origin in headers.

    A value longer than ``kafka.dead_letter_max_bytes`` is cut to that length, with headers
    ``dlq_truncated``, ``dlq_original_bytes`` and ``dlq_original_sha256``: a record too large
    for the dead-letter topic would otherwise fail the pipeline on every restart (the whole
    record is still at its source topic/partition/offset, in the headers).
    """

    def __init__(self, spec: KafkaSpec, settings: KafkaSettings) -> None:
        super().__init__(spec, settings)
        self.max_bytes = settings.dead_letter_max_bytes

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Send dead letters and wait for acknowledgements."""
        await self._send([self._message(d) for d in letters])

    def _message(self, letter: DeadLetter) -> Message:
        raw, headers = letter.raw, dead_letter_headers(letter)
        if len(raw) > self.max_bytes:
            headers += [
                ("dlq_truncated", b"true"),
                ("dlq_original_bytes", str(len(raw)).encode()),
                ("dlq_original_sha256", hashlib.sha256(raw).hexdigest().encode()),
            ]
            raw = raw[: self.max_bytes]
        return _key(letter), raw, headers


def _key(letter: DeadLetter) -> bytes | None:
    attrs: dict[str, Any] = letter.attrs or {}
    key = attrs.get("key")
    return key.encode() if isinstance(key, str) else None
