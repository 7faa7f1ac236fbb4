"""The Kafka sinks' producer path against tansu: partitions, batches, order, size limits."""

from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest

from sidecar.config import load_settings
from sidecar.errors import PermanentError
from sidecar.kafkautil import murmur2
from sidecar.sinks.kafka import KafkaDeadLetterSink
from sidecar.stages import DeadLetter
from sidecar.uris import parse_sink_uri
from tests.support.kafka_io import create_topics, produce, read_all
from tests.support.tansu import Broker

pytestmark = pytest.mark.integration


def letter(i: int, key: str | None, size: int = 2000) -> DeadLetter:
    return DeadLetter(
        reason="not_json",
        detail=f"#{i}",
        source="kafka",
        origin=f"traces/0/{i}",
        raw=f"{i:06d}".encode() + b"x" * size,
        received_at=1.0,
        attrs={"key": key} if key is not None else None,
    )


def sink(broker: Broker, topic: str, **kafka: object) -> KafkaDeadLetterSink:
    settings = load_settings(
        kafka={"enable_idempotence": False, "max_batch_size": 16384, **kafka}
    ).kafka
    spec = parse_sink_uri(f"kafka://{broker.bootstrap}/{topic}")
    return KafkaDeadLetterSink(spec, settings)  # type: ignore[arg-type]


def test_producer_errors_map_onto_the_error_tree() -> None:
    from aiokafka import errors as ke

    from sidecar.errors import RetryableError
    from sidecar.kafkautil import translate

    # The idempotent producer's fatal states: retrying the same producer never recovers.
    for fatal in (ke.OutOfOrderSequenceNumber, ke.ProducerFenced, ke.MessageSizeTooLargeError):
        assert isinstance(translate(fatal(), "produce"), PermanentError), fatal
    for passing in (ke.KafkaTimeoutError, ke.NotLeaderForPartitionError, ConnectionError):
        assert isinstance(translate(passing(), "produce"), RetryableError), passing


def test_murmur2_matches_aiokafka() -> None:
    from aiokafka.partitioner import murmur2 as reference

    for n in range(3000):
        key = os.urandom(n % 67)
        assert murmur2(key) == reference(key), key


async def test_keyed_messages_land_where_the_default_partitioner_puts_them(kafka: Broker) -> None:
    await create_topics(kafka.bootstrap, "dlq", "ref", partitions=5)
    keys = [f"trace-{i:04d}-{os.urandom(4).hex()}" for i in range(300)]
    # ~2 KB each in 16 KB batches: several batches per partition in one write.
    letters = [letter(i, k) for i, k in enumerate(keys)]
    s = sink(kafka, "dlq")
    await s.start()
    try:
        await s.write(letters[:150])
        await s.write(letters[150:])
    finally:
        await s.aclose()
    # The same keys through aiokafka's own send() and default partitioner.
    await produce(kafka.bootstrap, "ref", [b"r"] * len(keys), keys=[k.encode() for k in keys])

    got = await read_all(kafka.bootstrap, "dlq", expect=len(keys))
    ref = await read_all(kafka.bootstrap, "ref", expect=len(keys))
    assert len(got) == len(keys)
    assert {m.key: m.partition for m in got} == {m.key: m.partition for m in ref}
    assert len({m.partition for m in got}) == 5
    # Within each partition, messages keep the order they were written in.
    for part in range(5):
        seq = [int(m.value[:6]) for m in got if m.partition == part]
        assert seq == sorted(seq), (part, seq)
    assert all(dict(m.headers)["dlq_reason"] == b"not_json" for m in got)


async def test_unkeyed_messages_spread_and_oversized_ones_still_go(kafka: Broker) -> None:
    await create_topics(kafka.bootstrap, "dlq", partitions=3)
    letters = [letter(i, None) for i in range(30)]
    letters.insert(10, letter(999, None, size=100_000))  # bigger than a 16 KB batch
    s = sink(kafka, "dlq")
    await s.start()
    try:
        await s.write(letters)
        assert s.written == 31
    finally:
        await s.aclose()
    got = await read_all(kafka.bootstrap, "dlq", expect=31)
    assert sorted(int(m.value[:6]) for m in got) == [*range(30), 999]
    assert [sum(m.partition == p for m in got) for p in range(3)] in (
        [11, 10, 10],
        [10, 11, 10],
        [10, 10, 11],
    )
    assert any(len(m.value) > 100_000 for m in got)


async def test_a_dead_letter_too_large_for_the_topic_is_cut_not_fatal(kafka: Broker) -> None:
    """A 3 MB record (accepted upstream, compressed) must not stop the pipeline on every
    restart: its dead letter keeps the first dead_letter_max_bytes and says so."""
    await create_topics(kafka.bootstrap, "dlq", partitions=1)
    big = letter(0, "k", size=3_000_000)
    s = sink(kafka, "dlq")
    await s.start()
    try:
        await s.write([big, letter(1, "k")])
    finally:
        await s.aclose()
    got = await read_all(kafka.bootstrap, "dlq", expect=2)
    assert [m.value[:6] for m in got] == [b"000000", b"000001"]
    h = dict(got[0].headers)
    assert len(got[0].value) == 1_000_000 and got[0].value == big.raw[:1_000_000]
    assert h["dlq_truncated"] == b"true" and h["dlq_original_bytes"] == b"3000006"
    assert h["dlq_original_sha256"] == hashlib.sha256(big.raw).hexdigest().encode()
    assert h["dlq_origin"] == b"traces/0/0" and got[0].key == b"k"
    assert "dlq_truncated" not in dict(got[1].headers)


async def test_a_message_over_the_request_limit_is_a_permanent_error(kafka: Broker) -> None:
    await create_topics(kafka.bootstrap, "dlq", partitions=1)
    s = sink(kafka, "dlq", dead_letter_max_bytes=4 << 20)
    await s.start()
    try:
        with pytest.raises(PermanentError, match="MessageSizeTooLarge"):
            await s.write([letter(0, "k", size=2 << 20)])
        assert s.written == 0
    finally:
        await s.aclose()


async def test_an_unacknowledged_write_times_out_as_retryable(kafka: Broker) -> None:
    """A broker that stops answering (SIGSTOP) fails the write after delivery_timeout_s, for
    the pipeline to retry, instead of hanging on the acknowledgements; it then recovers."""
    from sidecar.errors import RetryableError

    await create_topics(kafka.bootstrap, "dlq", partitions=1)
    s = sink(kafka, "dlq", delivery_timeout_s=1.0)
    await s.start()
    try:
        await s.write([letter(0, "k")])
        os.kill(kafka.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RetryableError, match="not acknowledged within 1 s"):
                await s.write([letter(1, "k")])
            assert time.monotonic() - started < 5
        finally:
            os.kill(kafka.proc.pid, signal.SIGCONT)
        await s.write([letter(2, "k")])
    finally:
        await s.aclose()
    got = await read_all(kafka.bootstrap, "dlq", expect=3)
    assert {int(m.value[:6]) for m in got} >= {0, 2}
