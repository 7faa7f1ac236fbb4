"""How the Kafka source hands faststream its subscription and takes its batches back."""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaMessage
from faststream.kafka.message import FAKE_CONSUMER
from prometheus_client import Counter

LOGGER_NAME = "sidecar.kafka.faststream"


class _ErrorCounting(logging.Handler):
    """Hands faststream's log records to the sidecar's logger, counting its errors."""

    def __init__(self, errors: Counter) -> None:
        super().__init__(logging.DEBUG)
        self._errors = errors
        self._target = logging.getLogger(LOGGER_NAME)

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            exc = record.exc_info[1] if record.exc_info else None
            self._errors.labels(type(exc).__name__ if exc is not None else "unknown").inc()
        if self._target.isEnabledFor(record.levelno):
            self._target.handle(record)


def counting_logger(errors: Counter) -> logging.Logger:
    """A logger of this source's own for faststream: its consume loop catches every Kafka
    error (an authorisation failure, an unreachable broker), logs it and retries every 5 s
    for ever, so the errors are counted in ``errors{error}`` (the exception class) where an
    alert sees them. Records go on to the ``sidecar.kafka.faststream`` logger."""
    logger = logging.Logger(LOGGER_NAME, logging.DEBUG)  # not in the global registry
    logger.addHandler(_ErrorCounting(errors))
    return logger


def topic_pattern(pattern: str | None) -> str | None:
    """``?pattern=`` as faststream must be given it to subscribe to exactly that regex.

    Anchored at the end: aiokafka matches a prefix (``re.match``) where Kafka's Java clients
    match the whole name, so ``traces-(eu|us)`` would also subscribe to ``traces-eu-dlq``.
    Braces doubled: faststream reads ``{name}`` as a path parameter, so a quantifier such as
    ``\\d{2}`` failed the start with ``re.error``.
    """
    if pattern is None:
        return None
    anchored = f"(?:{pattern})\\Z"
    return anchored.replace("{", "{{").replace("}", "}}")


async def raw_parser(records: Any) -> KafkaMessage:
    """The batch as a :class:`KafkaMessage` without reading its headers.

    faststream's parser decodes every header value as UTF-8: one binary or null value failed
    the whole batch, which faststream then dropped with only a log line (and later commits
    moved past it: the records were never scored). Also a loop per record saved.
    """
    first = records[0] if isinstance(records, (tuple, list)) else records
    ident = f"{first.topic}-{first.partition}-{first.offset}"
    return KafkaMessage(
        records, b"", consumer=FAKE_CONSUMER, message_id=ident, correlation_id=ident
    )


async def raw_decoder(msg: Any) -> Any:
    """Skip faststream's body decoding (the pipeline decodes the raw bytes itself): the
    handler's argument is the :class:`KafkaMessage` (its ``raw_message`` holds the records)."""
    return msg
