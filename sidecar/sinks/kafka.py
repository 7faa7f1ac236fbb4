"""Kafka sinks: scored events and dead letters to topics (aiokafka producer).

Events are keyed by ``trace_id`` (so one trace's events share a partition) with
the event JSON as value and ``event_id`` / ``event_type`` headers. Dead letters
carry the original bytes as value and the reason, detail and source
topic/partition/offset as headers. A batch counts as written only when the
broker acknowledged every message (``acks=all`` by default).

The producer is used directly rather than through faststream's publisher: batch
publishing there ignores message keys, and per-message awaited publishing is
several times slower than gathering the send futures of a batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from ..config import KafkaSettings, KafkaSpec
from ..errors import PermanentError
from ..kafkautil import producer_kwargs, translate
from ..stages import DeadLetter, Result


class _Producer:
    def __init__(self, spec: KafkaSpec, settings: KafkaSettings) -> None:
        self.topic = spec.topics[0]
        self._kwargs = producer_kwargs(settings, spec.bootstrap)
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(**self._kwargs)
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            raise translate(exc, f"kafka producer for {self.topic}") from exc
        self._producer = producer

    async def send_all(
        self, messages: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> None:
        if self._producer is None:
            raise PermanentError("kafka sink used before start()")
        try:
            futures = [
                await self._producer.send(self.topic, value, key=key, headers=headers)
                for key, value, headers in messages
            ]
            await asyncio.gather(*futures)
        except Exception as exc:
            raise translate(exc, f"produce to {self.topic}") from exc

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

    async def _send(self, msgs: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]) -> None:
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
    """Writes dead letters to a topic: original bytes, reason and origin in headers."""

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Send dead letters and wait for acknowledgements."""
        await self._send([(_key(d), d.raw, dead_letter_headers(d)) for d in letters])


def _key(letter: DeadLetter) -> bytes | None:
    attrs: dict[str, Any] = letter.attrs or {}
    key = attrs.get("key")
    return key.encode() if isinstance(key, str) else None
