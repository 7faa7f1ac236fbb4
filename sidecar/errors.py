"""The exception tree of rag-sidecar.

Every error the sidecar raises on purpose derives from :class:`SidecarError`.
Third-party errors (aiokafka, httpx, OS errors) are translated into this tree at
the edge of the stage that talks to them, so the pipeline only ever reasons
about the classes below::

    SidecarError
    ├── ConfigError              bad settings or URIs; raised once, at start
    ├── InvalidInputError        one record cannot become a trace; carries a reason
    │                            code and goes to the dead-letter sink, never fatal
    ├── StageError               a source or sink failed
    │   ├── RetryableError       transient (broker unavailable, timeout, 429/503);
    │   │                        the caller may retry, honouring ``retry_after``
    │   └── PermanentError       retrying will not help (auth, unknown topic, disk full)
    └── PipelineStalledError     a stage made no progress for longer than allowed

The reason codes of :class:`InvalidInputError` are a closed set (``REASONS``) so
that ``rag_sidecar_dead_letters_total{reason}`` has bounded cardinality.
"""

from __future__ import annotations

from typing import Final

REASONS: Final = frozenset(
    {
        "not_json",  # the bytes are not valid UTF-8 JSON
        "not_object",  # valid JSON, but not an object
        "too_large",  # above the configured maximum record size
        "unknown_format",  # an object in none of the accepted trace formats
        "invalid_trace",  # a recognised format with missing or ill-typed fields
    }
)


class SidecarError(Exception):
    """Base class of every error raised by rag-sidecar."""


class ConfigError(SidecarError):
    """Settings or URIs are invalid; raised at start with a one-line message."""


class InvalidInputError(SidecarError):
    """A record cannot be turned into a trace.

    ``reason`` is one of :data:`REASONS`; ``detail`` is a short human-readable
    explanation that never contains the record's content.
    """

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StageError(SidecarError):
    """A source or sink failed to do its work."""


class RetryableError(StageError):
    """A transient failure; ``retry_after`` (seconds) is a hint from the peer."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(StageError):
    """A failure that retrying will not fix."""


class PipelineStalledError(SidecarError):
    """A stage made no progress for longer than the configured stall timeout."""
