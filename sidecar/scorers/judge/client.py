"""An OpenAI-compatible chat-completions client for the judge (httpx, asyncio).

``POST {url}/chat/completions`` with bounded concurrency, per-phase timeouts,
retries of transient failures with exponential backoff and full jitter (the
peer's ``Retry-After`` wins: seconds or an HTTP date), and a
:class:`~.breaker.CircuitBreaker`. httpx errors and HTTP statuses are
translated into :mod:`sidecar.errors` here and nowhere else:

=====================================  =======================  =============
what happened                          raised (after retries)   outcome label
=====================================  =======================  =============
transport or decoding error, 5xx, 408  JudgeUnavailable         ``error``
a phase timeout or the attempt cap     JudgeUnavailable         ``timeout``
429                                    JudgeUnavailable         ``rate_limited``
breaker open                           JudgeBreakerOpen         (no request)
other 4xx                              JudgeRejected            ``rejected``
200 whose content fails ``parse``      JudgeBadOutput           ``bad_output``
=====================================  =======================  =============

Every HTTP attempt counts once in ``rag_sidecar_judge_requests_total``.

``response_format`` (``judge.json_mode``): ``schema`` sends the reply's JSON
schema (:mod:`.schema`) OpenAI-style, ``inline`` as llama-cpp-python wants it,
``on`` plain ``json_object``, ``off`` nothing. ``auto`` starts with ``schema``
and, each time the endpoint rejects the field (a 400/422, or llama-cpp-python's 500,
whose error names it), steps
down ``schema`` → ``inline`` → ``on`` → ``off``, resending the same request (not
counted as a retry); the form reached stays for this client (logged once).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import orjson

from ...errors import JudgeBadOutput, JudgeBreakerOpen, JudgeRejected, JudgeUnavailable
from .breaker import CircuitBreaker
from .metrics import JudgeMetrics
from .parse import finish_reason, read_envelope
from .schema import response_format
from .settings import JudgeSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
Message = dict[str, str]
_RETRYABLE_STATUS = frozenset({408, 500, 502, 503, 504})
_JSON_MODE_HINTS = ("response_format", "json_object", "json_schema", "json mode", "schema")
_FORMS: dict[str, tuple[str, ...]] = {
    "auto": ("json_schema", "inline", "json_object", "none"),
    "schema": ("json_schema",),
    "inline": ("inline",),
    "on": ("json_object",),
    "off": ("none",),
}


@dataclass(slots=True)
class Completion(Generic[T]):
    """A parsed reply with what it cost."""

    value: T
    content: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    """Wall time of the whole call, retries and backoff included."""
    attempts: int
    usage_estimated: bool = False
    """True when the endpoint sent no ``usage`` and tokens were estimated (4 chars/token)."""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def estimate_tokens(text: str) -> int:
    """The 4-characters-per-token estimate used when ``usage`` is missing."""
    return (len(text) + 3) // 4


class _Retry(Exception):
    """Internal: one attempt failed transiently."""

    def __init__(self, outcome: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.retry_after = retry_after


class JudgeClient:
    """Calls one judge endpoint; safe to share between tasks."""

    def __init__(
        self,
        settings: JudgeSettings,
        *,
        metrics: JudgeMetrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.breaker = CircuitBreaker(
            settings.breaker.failures, settings.breaker.open_s, clock=clock
        )
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._forms = _FORMS[settings.json_mode]
        t = settings.timeouts
        headers = {"content-type": "application/json", "accept": "application/json"}
        if settings.api_key is not None:
            headers["authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool),
            limits=httpx.Limits(
                max_connections=settings.concurrency,
                max_keepalive_connections=settings.concurrency,
            ),
            headers=headers,
            transport=transport,
            trust_env=settings.trust_env,
        )

    def __repr__(self) -> str:
        return f"JudgeClient(name={self.settings.name!r}, url={self.settings.url!r})"

    @property
    def json_mode(self) -> bool:
        """Whether requests currently carry a ``response_format``."""
        return self._forms[0] != "none"

    @property
    def response_form(self) -> str:
        """The ``response_format`` form sent now: json_schema, inline, json_object or none."""
        return self._forms[0]

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    def _count(self, outcome: str, latency: float | None = None) -> None:
        m = self.metrics
        if m is None:
            return
        name = self.settings.name
        m.requests.labels(name, outcome).inc()
        if latency is not None:
            m.latency.labels(name).observe(latency)

    def _body(self, messages: Sequence[Message], schema: dict[str, Any] | None) -> bytes:
        s = self.settings
        doc: dict[str, Any] = {
            "model": s.model,
            "messages": list(messages),
            "temperature": s.temperature,
            "max_tokens": s.max_output_tokens,
        }
        fmt = response_format(self._forms[0], schema)
        if fmt is not None:
            doc["response_format"] = fmt
        return orjson.dumps(doc)

    async def complete(
        self,
        messages: Sequence[Message],
        parse: Callable[[str], T],
        schema: dict[str, Any] | None = None,
    ) -> Completion[T]:
        """Send ``messages``; return the reply's content passed through ``parse``.

        ``schema`` (the reply's JSON schema) goes into ``response_format`` in
        the form the endpoint accepts; without it JSON mode is plain ``json_object``.

        ``parse`` raises ``ValueError`` (pydantic's ``ValidationError`` is one)
        when the content is not what was asked for: that becomes
        :class:`JudgeBadOutput` at once (no transport retry; repairing is the
        caller's business).
        """
        s = self.settings
        started = self._clock()
        attempt = 0
        while True:
            probe = self.breaker.state == "half_open"
            if not self.breaker.allow():
                raise JudgeBreakerOpen(
                    f"judge {s.name}: circuit breaker open", retry_after=self.breaker.retry_in()
                )
            try:
                status, payload, latency = await self._attempt(messages, schema)
            except _Retry as failure:
                self.breaker.record_failure()
                if attempt >= s.max_retries or (
                    failure.retry_after is not None and failure.retry_after > s.retry_after_max_s
                ):
                    raise JudgeUnavailable(
                        f"judge {s.name}: {failure} (after {attempt + 1} attempts)",
                        outcome=failure.outcome,
                        retry_after=failure.retry_after,
                    ) from None
                ceiling = min(s.backoff_max_s, s.backoff_base_s * (2**attempt))
                wait = self._rng.uniform(0.0, ceiling)
                if failure.retry_after is not None:
                    wait = failure.retry_after
                log.warning(
                    "judge attempt failed; retrying",
                    extra={
                        "fields": {
                            "judge": s.name,
                            "outcome": failure.outcome,
                            "error": str(failure),
                            "retry_in_s": round(wait, 3),
                        }
                    },
                )
                attempt += 1
                await self._sleep(wait)
                continue
            except BaseException:
                if probe:
                    self.breaker.release_probe()
                raise
            if 200 <= status < 300:
                self.breaker.record_success()
                return self._completion(messages, payload, parse, started, attempt + 1, latency)
            self.breaker.record_success()  # the endpoint is up; it refused this request
            text = payload.decode("utf-8", "replace")[:500]
            if self._refuses_format(status, payload):
                rejected, self._forms = self._forms[0], self._forms[1:]
                log.warning(
                    "judge endpoint rejects this response_format; stepping down",
                    extra={
                        "fields": {"judge": s.name, "rejected": rejected, "now": self._forms[0]}
                    },
                )
                continue
            log.warning(
                "judge request rejected", extra={"fields": {"judge": s.name, "status": status}}
            )
            # The error body may echo the request (trace contents): debug level only.
            log.debug("judge rejection body", extra={"fields": {"judge": s.name, "body": text}})
            raise JudgeRejected(f"judge {s.name}: HTTP {status}", status=status)

    def _refuses_format(self, status: int, payload: bytes) -> bool:
        """A refusal of the response_format form while ``auto`` can still step down.

        400/422, or the 500 llama-cpp-python sends for a request it cannot
        validate, with an error body naming the field.
        """
        if len(self._forms) < 2 or status not in (400, 422, 500):
            return False
        text = payload[:2000].decode("utf-8", "replace").lower()
        return any(hint in text for hint in _JSON_MODE_HINTS)

    async def _attempt(
        self, messages: Sequence[Message], schema: dict[str, Any] | None
    ) -> tuple[int, bytes, float]:
        """One HTTP attempt: (status, body, latency) or :class:`_Retry` when transient."""
        s = self.settings
        body = self._body(messages, schema)
        async with self._sem:
            t0 = self._clock()
            try:
                async with asyncio.timeout(s.timeouts.total):
                    resp = await self._http.post(s.completions_url, content=body)
                    payload = await resp.aread()
            except (httpx.TimeoutException, TimeoutError) as exc:
                self._count("timeout", self._clock() - t0)
                raise _Retry("timeout", f"timeout ({type(exc).__name__})") from None
            except httpx.RequestError as exc:  # transport, and a body that does not decode
                self._count("error", self._clock() - t0)
                raise _Retry("error", f"{type(exc).__name__}: {exc}") from None
            latency = self._clock() - t0
        status = resp.status_code
        if status == 429:
            self._count("rate_limited", latency)
            after = parse_retry_after(resp.headers.get("retry-after"), self._wall())
            raise _Retry("rate_limited", "HTTP 429", after)
        if status in _RETRYABLE_STATUS and not self._refuses_format(status, payload):
            self._count("error", latency)
            after = parse_retry_after(resp.headers.get("retry-after"), self._wall())
            raise _Retry("error", f"HTTP {status}", after)
        if not 200 <= status < 300:
            self._count("rejected", latency)
        return status, payload, latency

    def _completion(
        self,
        messages: Sequence[Message],
        payload: bytes,
        parse: Callable[[str], T],
        started: float,
        attempts: int,
        latency: float,
    ) -> Completion[T]:
        """Read the envelope, then the content; count the attempt ok or bad_output."""
        try:
            content, prompt_tokens, completion_tokens = read_envelope(payload)
        except ValueError as exc:
            self._count("bad_output", latency)
            raise JudgeBadOutput(str(exc)) from None
        estimated = prompt_tokens is None or completion_tokens is None
        if prompt_tokens is None or completion_tokens is None:
            prompt_tokens = estimate_tokens("".join(m["content"] for m in messages))
            completion_tokens = estimate_tokens(content)
        try:
            value = parse(content)
        except ValueError as exc:
            self._count("bad_output", latency)
            truncated = finish_reason(payload) == "length"
            raise JudgeBadOutput(
                ("cut at max_tokens: " if truncated else "") + _short_error(exc),
                content=content,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                truncated=truncated,
            ) from None
        self._count("ok", latency)
        return Completion(
            value=value,
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=self._clock() - started,
            attempts=attempts,
            usage_estimated=estimated,
        )


def _short_error(exc: ValueError) -> str:
    text = str(exc).strip()
    return text if len(text) <= 600 else text[:600] + "…"
