"""Stage contracts: what flows between sources, scorers and sinks.

Data flows one way::

    Source --Batch--> [queue] --> scoring --> [queue] --> sinks --> Batch.done()

A :class:`Source` delivers :class:`Batch` es of raw :class:`Record` s through the
``emit`` callable the pipeline gives it, and learns that a batch's results were
written (or deliberately dropped) only through ``Batch.done``. That single
completion callback is how acknowledgements (file progress, Kafka offsets, OTLP
responses) travel back; no stage shares state with another.

A :class:`Sink` receives :class:`Result` s (the trace and its scored event) and
raises :class:`~sidecar.errors.RetryableError` or
:class:`~sidecar.errors.PermanentError` when it cannot write. Dead letters go to
a :class:`DeadLetterSink` of the same shape.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .events import ScoredEvent
from .trace import Trace


@dataclass(slots=True)
class Record:
    """One raw input record, before decoding."""

    value: bytes
    origin: str
    """Where it came from, for dead letters: ``path:line``, ``topic/partition@offset``."""
    arrival: float = field(default_factory=time.time)
    attrs: dict[str, str] | None = None
    """Source-specific facts kept with dead letters (Kafka: topic, partition, offset, key)."""
    trace: Trace | None = None
    """Set when the source already built the trace (OTLP assembly); ``value`` is then unused."""
    timestamp: float | None = None
    """The transport's own time for the record (Kafka: the record timestamp), epoch seconds:
    the timestamp of a trace or feedback record that carries none (else ``arrival``)."""


def _noop(ok: bool) -> None:
    return None


@dataclass(slots=True)
class Batch:
    """Records from one source, acknowledged together."""

    source: str
    """The source's metrics label (``file``, ``stdin``, ``kafka``, ``otlp``)."""
    records: list[Record]
    done: Callable[[bool], None] = _noop
    """Called once: ``True`` when every result is written, ``False`` when dropped."""


Emit = Callable[[Batch], Awaitable[None]]


@dataclass(slots=True)
class Result:
    """A scored trace: what sinks write."""

    trace: Trace
    event: ScoredEvent


@dataclass(slots=True)
class DeadLetter:
    """A record that could not become a trace, with the reason."""

    reason: str
    detail: str
    source: str
    origin: str
    raw: bytes
    received_at: float
    attrs: dict[str, str] | None = None
    at: float | None = None
    """The record's transport time (:attr:`Record.timestamp`), when it has one."""

    @classmethod
    def of(cls, record: Record, source: str, reason: str, detail: str) -> DeadLetter:
        """The dead letter of ``record`` (a pre-decoded trace's JSON when it has no bytes)."""
        raw = record.value if record.trace is None else record.trace.model_dump_json().encode()
        at = record.timestamp
        return cls(reason, detail, source, record.origin, raw, record.arrival, record.attrs, at)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: raw bytes as UTF-8 text when possible, else base64."""
        doc: dict[str, Any] = {
            "reason": self.reason,
            "detail": self.detail,
            "source": self.source,
            "origin": self.origin,
            "received_at": self.received_at,
        }
        if self.attrs:
            doc["attrs"] = self.attrs
        try:
            doc["raw"] = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            doc["raw"] = base64.b64encode(self.raw).decode("ascii")
            doc["raw_encoding"] = "base64"
        return doc


class Source(Protocol):
    """Produces batches of raw records and owns their acknowledgement."""

    name: str

    async def start(self, emit: Emit) -> None:
        """Begin delivering batches through ``emit`` (returns once started)."""
        ...

    async def drained(self) -> None:
        """Return when the source is exhausted and every batch is done (never, if unbounded).

        Raises when the source cannot finish its input (the pipeline then fails)."""
        ...

    async def aclose(self) -> None:
        """Stop reading; batches already emitted may still complete."""
        ...


class Sink(Protocol):
    """Writes scored results somewhere (metrics, files, topics)."""

    name: str

    async def start(self) -> None:
        """Open connections or files."""
        ...

    async def write(self, results: Sequence[Result]) -> None:
        """Write a batch; raise RetryableError or PermanentError on failure."""
        ...

    async def flush(self) -> None:
        """Make everything written so far durable."""
        ...

    async def aclose(self) -> None:
        """Flush and release resources."""
        ...


class DeadLetterSink(Protocol):
    """Writes records that could not be scored, with their reason."""

    name: str

    async def start(self) -> None:
        """Open connections or files."""
        ...

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Write dead letters; raise RetryableError or PermanentError on failure."""
        ...

    async def flush(self) -> None:
        """Make everything written so far durable."""
        ...

    async def aclose(self) -> None:
        """Flush and release resources."""
        ...
