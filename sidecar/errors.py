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
    │   ├── PermanentError       retrying will not help (auth, unknown topic, disk full)
    │   └── JudgeError           the LLM judge endpoint failed one judged trace; caught
    │       │                    by the judge stage, never fatal (heuristics go on)
    │       ├── JudgeUnavailable     transient, also a RetryableError: transport error,
    │       │   │                    timeout, 429, 5xx (``outcome`` says which)
    │       │   └── JudgeBreakerOpen the circuit breaker refused the call
    │       ├── JudgeRejected        a 4xx other than 408/429, also a PermanentError
    │       └── JudgeBadOutput       a reply that does not parse into the judge's schema
    ├── Terminated               SIGTERM stopped a finite run (score, replay): exit 143
    └── PipelineStalledError     a stage made no progress for longer than allowed

The reason codes of dead letters (:class:`InvalidInputError`'s, and the pipeline's
``scoring_error``) are a closed set (``REASONS``) so that
``rag_sidecar_dead_letters_total{reason}`` has bounded cardinality.
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
        "scoring_error",  # a scorer raised on it (a bug: the log has the traceback)
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


class Terminated(SidecarError):
    """A finite run (``score``, ``replay``) was stopped by SIGTERM before its end."""


class PipelineStalledError(SidecarError):
    """A stage made no progress for longer than the configured stall timeout."""


class JudgeError(StageError):
    """The LLM judge failed on one trace; ``outcome`` is its requests-metric label."""

    outcome: str = "error"


class JudgeUnavailable(JudgeError, RetryableError):
    """The judge endpoint is unreachable, slow or overloaded (transient).

    ``outcome`` is ``error`` (transport error, 5xx), ``timeout`` or
    ``rate_limited`` (429); ``retry_after`` carries the peer's hint, if any.
    """

    def __init__(
        self, message: str, *, outcome: str = "error", retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.outcome = outcome


class JudgeBreakerOpen(JudgeUnavailable):
    """The judge's circuit breaker is open: the call was not attempted."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, outcome="breaker_open", retry_after=retry_after)


class JudgeRejected(JudgeError, PermanentError):
    """The endpoint refused the request (4xx): auth, unknown model, bad request."""

    outcome = "rejected"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class JudgeBadOutput(JudgeError):
    """The judge replied, but not with the JSON its prompt asks for.

    Carries the tokens the failed reply cost and, for the repair prompt, the
    reply itself (``content``) and the validation error (``detail``).
    ``truncated``: the endpoint stopped at ``max_tokens`` (``finish_reason``
    ``length``); a repair would most likely run long again, so none is asked.
    """

    outcome = "bad_output"

    def __init__(
        self,
        message: str,
        *,
        content: str = "",
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        truncated: bool = False,
    ) -> None:
        super().__init__(message)
        self.detail = message
        self.truncated = truncated
        self.content = content
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
