"""What the Kafka source, sinks and replay share: client options and error translation.

aiokafka errors never leave the Kafka stages: :func:`translate` maps them to
:class:`~sidecar.errors.RetryableError` (the broker or network may recover) or
:class:`~sidecar.errors.PermanentError` (configuration or authorisation).
"""

from __future__ import annotations

import ssl
import struct
from collections.abc import Sequence
from typing import Any

from aiokafka import errors as ke
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from .config import KafkaSettings
from .errors import PermanentError, RetryableError, StageError
from .stages import Record

_PERMANENT = (
    ke.TopicAuthorizationFailedError,
    ke.GroupAuthorizationFailedError,
    ke.ClusterAuthorizationFailedError,
    ke.MessageSizeTooLargeError,
    ke.RecordListTooLargeError,
    ke.InvalidTopicError,
    ke.UnsupportedVersionError,
    ke.UnsupportedSaslMechanismError,
    ke.AuthenticationFailedError,
    ke.UnsupportedCodecError,
    # The idempotent producer's fatal states: aiokafka fails every later send with a copy of
    # the error, so only a new producer (a restart) gets the sink going again.
    ke.OutOfOrderSequenceNumber,
    ke.ProducerFenced,
    ke.InvalidProducerEpoch,
)


def translate(exc: BaseException, what: str) -> StageError:
    """Map an aiokafka (or OS) error to the sidecar's error tree."""
    detail = f"{what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, _PERMANENT):
        return PermanentError(detail)
    # Everything else (timeouts, lost connections, leader elections, even errors the protocol
    # calls non-retriable such as a broker restarting mid-request) is retried with backoff.
    return RetryableError(detail)


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """A TLS context when the protocol asks for one."""
    if settings.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    ctx = ssl.create_default_context(
        cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
    )
    if settings.ssl_certfile is not None:
        ctx.load_cert_chain(
            str(settings.ssl_certfile),
            str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        )
    return ctx


def faststream_security(settings: KafkaSettings) -> BaseSecurity | None:
    """The consumer's security as faststream takes it: the same as :func:`client_kwargs`
    (``security_protocol`` decides whether SASL is used, not ``sasl_mechanism`` alone)."""
    ctx = ssl_context(settings)
    if not settings.security_protocol.startswith("SASL"):
        return BaseSecurity(ssl_context=ctx) if ctx is not None else None
    cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    # The validator guarantees a mechanism and credentials with a SASL protocol.
    mechanism = settings.sasl_mechanism or "PLAIN"
    return cls[mechanism](settings.sasl_username or "", password, ssl_context=ctx)


def client_kwargs(settings: KafkaSettings, bootstrap: tuple[str, ...]) -> dict[str, Any]:
    """Keyword arguments common to aiokafka producers and consumers."""
    kw: dict[str, Any] = {
        "bootstrap_servers": list(bootstrap),
        "client_id": settings.client_id,
        "request_timeout_ms": settings.request_timeout_ms,
        "security_protocol": settings.security_protocol,
    }
    ctx = ssl_context(settings)
    if ctx is not None:
        kw["ssl_context"] = ctx
    if settings.sasl_mechanism is not None:
        kw["sasl_mechanism"] = settings.sasl_mechanism
        kw["sasl_plain_username"] = settings.sasl_username
        kw["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return kw


def producer_kwargs(settings: KafkaSettings, bootstrap: tuple[str, ...]) -> dict[str, Any]:
    """Keyword arguments for an AIOKafkaProducer that writes our events durably."""
    acks: int | str = "all" if settings.acks == "all" else int(settings.acks)
    return {
        **client_kwargs(settings, bootstrap),
        "acks": acks,
        "enable_idempotence": settings.enable_idempotence,
        "linger_ms": settings.linger_ms,
        "compression_type": settings.compression_type,
        "max_batch_size": settings.max_batch_size,
        "max_request_size": max(settings.max_batch_size, 1 << 20),
    }


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of a key (the Java client's ``Utils.murmur2``, as unsigned 32 bits).

    Same values as aiokafka's pure-Python version, about twice as fast: the 4-byte words are
    unpacked in one call instead of assembled byte by byte.
    """
    length = len(data)
    m = 0x5BD1E995
    h = 0x9747B28C ^ length
    n4 = length >> 2
    for k in struct.unpack_from(f"<{n4}I", data):
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        h = ((h * m) & 0xFFFFFFFF) ^ ((k * m) & 0xFFFFFFFF)
    extra = length & 3
    if extra:
        tail = data[n4 << 2 :]
        if extra == 3:
            h ^= tail[2] << 16
        if extra >= 2:
            h ^= tail[1] << 8
        h = ((h ^ tail[0]) * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: Sequence[int]) -> int:
    """The partition Kafka's default partitioner gives ``key`` (``partitions`` sorted)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


def to_record(msg: Any, now: float) -> Record:
    """A consumed Kafka message as a pipeline :class:`Record` (per message: kept lean).

    ``attrs`` are what dead letters keep (topic, partition, offset, and the key when it is
    text); the record timestamp (-1: none, old message format) becomes ``Record.timestamp``.
    """
    topic, partition, offset = msg.topic, msg.partition, msg.offset
    attrs = {"topic": topic, "partition": str(partition), "offset": str(offset)}
    key = msg.key
    if key:
        # Per record: a plain try costs 0.08 µs, contextlib.suppress 0.34.
        try:  # noqa: SIM105
            attrs["key"] = key.decode()
        except UnicodeDecodeError:
            pass
    at = msg.timestamp / 1000 if msg.timestamp >= 0 else None
    return Record(msg.value or b"", f"{topic}/{partition}@{offset}", now, attrs, None, at)
