"""Canaries: traces with known verdicts, judged like any other, to catch a judge that drifts.

A small set ships in ``canaries/default.jsonl`` (faithful answers, hallucinated
numbers and names, answers that ignore the question, chunks that miss it), one
JSON object per line::

    {"id": "...", "kind": "faithful", "query": "...", "answer": "...", "chunks": ["..."],
     "expect": {"faithfulness": {"min": 0.8}, "answer_relevance": {"min": 0.6}}}

A canary passes when every expected score is present and within its bounds.

:class:`CanaryRunner` (one per judge) offers the next canary, round robin, to its
judge's :meth:`~.stage.JudgeStage.offer` every ``every_s`` seconds and/or every
``every_judged`` real traces admitted. Canaries take the same path as real
samples — queue, breaker, **budget** (as priority samples, so a daily cap stays
a hard cap; a refused canary counts ``outcome="skipped"``) — but bypass the
cache (``fresh``), since a cached verdict would say nothing about the model now.

Their events are marked so that they never mix with real apps: ``trace_id``
``rag-sidecar-canary:<judge>:<id>:<epoch>-<n>``, ``labels.app = "rag-sidecar-canary"``,
``detail.canary = {id, kind, passed, failures}``, and the flag
``judge_canary_failed`` for human review when the judge got it wrong.

Metrics: ``rag_sidecar_judge_canary_total{judge,outcome}`` (``pass``, ``fail``,
``error``: judged but no verdict, ``skipped``: refused by queue, breaker or
budget) and ``rag_sidecar_judge_canary_accuracy{judge}`` (passes over the last
``window`` canaries with a verdict).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...errors import ConfigError
from ...events import Labels, Sampling, ScoredEvent, make_event_id
from ...stages import Result
from ...trace import Chunk, Trace
from .settings import CanarySettings

log = logging.getLogger(__name__)

CANARY_APP: Final = "rag-sidecar-canary"
CANARY_PREFIX: Final = "rag-sidecar-canary:"
CANARY_FLAG: Final = "judge_canary_failed"
CANARY_OUTCOMES: Final = ("pass", "fail", "error", "skipped")
_MAX_PENDING: Final = 256


def is_canary(trace_id: str) -> bool:
    """Whether a trace id belongs to a canary."""
    return trace_id.startswith(CANARY_PREFIX)


class Bounds(BaseModel):
    """Where an expected score must lie (inclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = Field(None, ge=0, le=1)
    max: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _some_bound(self) -> Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self

    def holds(self, value: float) -> bool:
        """Whether ``value`` is within the bounds."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Canary(BaseModel):
    """One canary trace and the scores a sound judge gives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    kind: Literal["faithful", "hallucination", "irrelevant_answer", "irrelevant_context"]
    note: str = ""
    query: str = Field(min_length=1)
    answer: str
    chunks: list[str]
    reference: str | None = None
    expect: dict[str, Bounds] = Field(min_length=1)

    def failures(self, scores: Mapping[str, float]) -> list[dict[str, Any]]:
        """The expectations ``scores`` miss (empty when the canary passes)."""
        out: list[dict[str, Any]] = []
        for metric, bounds in self.expect.items():
            got = scores.get(metric)
            if got is None or not bounds.holds(got):
                out.append({"metric": metric, "min": bounds.min, "max": bounds.max, "got": got})
        return out


def load_canaries(path: str | Path | None = None) -> tuple[str, list[Canary]]:
    """(set name, canaries) from a JSONL file, or the shipped set; :class:`ConfigError` if bad."""
    if path is None:
        name = "default"
        text = resources.files(__package__).joinpath("canaries", "default.jsonl").read_text("utf-8")
    else:
        name = Path(path).stem
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read canary file {path}: {exc.strerror}") from None
    canaries: list[Canary] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            canaries.append(Canary.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "<line>"
            raise ConfigError(f"canary file {name}, line {n}: {where}: {first['msg']}") from None
    if not canaries:
        raise ConfigError(f"canary file {name} holds no canary")
    if len({c.id for c in canaries}) != len(canaries):
        raise ConfigError(f"canary file {name}: canary ids must be unique")
    return name, canaries


class CanaryMetrics:
    """The canary metric families (one per registry, shared by all judges)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter(
            "rag_sidecar_judge_canary",
            "Canaries by outcome (pass, fail, error: no verdict, skipped: refused).",
            ("judge", "outcome"),
            registry=registry,
        )
        self.accuracy = Gauge(
            "rag_sidecar_judge_canary_accuracy",
            "Share of the judge's recent canaries (with a verdict) that passed.",
            ("judge",),
            registry=registry,
        )

    def bind(self, judge: str) -> None:
        """Pre-create a judge's counters at zero."""
        for outcome in CANARY_OUTCOMES:
            self.total.labels(judge, outcome)


Offer = Callable[[Result], bool]


class CanaryRunner:
    """Injects one judge's canaries and checks their verdicts."""

    def __init__(
        self,
        judge: str,
        settings: CanarySettings,
        metrics: CanaryMetrics,
        *,
        canaries: tuple[str, list[Canary]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.judge = judge
        self.settings = settings
        self.metrics = metrics
        self.set_name, self.canaries = canaries or load_canaries(settings.path)
        self._clock = clock
        self._wall = wall
        self._cycle = itertools.cycle(self.canaries)
        self._seq = itertools.count(1)
        self._last = clock()
        self._admitted = 0
        self._recent: deque[bool] = deque(maxlen=settings.window)
        self._pending: OrderedDict[str, Canary] = OrderedDict()
        metrics.bind(judge)

    def admitted(self) -> None:
        """Count one real trace admitted to this judge (for ``every_judged``)."""
        self._admitted += 1

    def due(self) -> bool:
        """Whether the next canary is due."""
        s = self.settings
        by_count = s.every_judged is not None and self._admitted >= s.every_judged
        by_time = s.every_s is not None and self._clock() - self._last >= s.every_s
        return by_count or by_time

    def maybe_inject(self, offer: Offer) -> bool:
        """Offer the next canary when due; True when one was queued."""
        if not self.due():
            return False
        self._last = self._clock()
        self._admitted = 0
        canary = next(self._cycle)
        result = self.result_for(canary)
        if not offer(result):
            self.metrics.total.labels(self.judge, "skipped").inc()
            return False
        self._pending[result.trace.trace_id] = canary
        while len(self._pending) > _MAX_PENDING:
            self._pending.popitem(last=False)
        return True

    def result_for(self, canary: Canary) -> Result:
        """A canary as the pipeline would offer a sampled trace (with a bare heuristic event)."""
        now = self._wall()
        trace_id = f"{CANARY_PREFIX}{self.judge}:{canary.id}:{int(now)}-{next(self._seq)}"
        trace = Trace(
            trace_id=trace_id,
            timestamp=now,
            app=CANARY_APP,
            model="canary",
            prompt_version=self.set_name,
            query=canary.query,
            answer=canary.answer,
            chunks=[Chunk(id=str(i), text=t) for i, t in enumerate(canary.chunks)],
            reference=canary.reference,
            metadata={"canary": canary.id},
        )
        event = ScoredEvent(
            event_id=make_event_id(trace_id, "heuristic", "canary"),
            trace_id=trace_id,
            type="heuristic",
            timestamp=now,
            scored_at=now,
            scorer_version="canary",
            source="canary",
            labels=Labels(CANARY_APP, "canary", self.set_name, None),
            scores={},
            flags=[],
            sampled=Sampling(selected=True, reasons=["canary"]),
        )
        return Result(trace, event)

    def judged(self, event: ScoredEvent, scores: Mapping[str, float]) -> list[str]:
        """Check a canary's verdict, note it in ``event.detail``; the flags to raise."""
        canary = self._pending.pop(event.trace_id, None)
        if canary is None:
            return []
        failures = canary.failures(scores)
        passed = not failures
        if not passed:
            log.warning(
                "judge failed a canary",
                extra={"fields": {"judge": self.judge, "canary": canary.id, "kind": canary.kind}},
            )
        detail = event.detail if event.detail is not None else {}
        detail["canary"] = {
            "id": canary.id,
            "kind": canary.kind,
            "set": self.set_name,
            "passed": passed,
            "failures": failures,
        }
        event.detail = detail
        self.metrics.total.labels(self.judge, "pass" if passed else "fail").inc()
        self._recent.append(passed)
        self.metrics.accuracy.labels(self.judge).set(sum(self._recent) / len(self._recent))
        return [] if passed else [CANARY_FLAG]

    def failed(self, trace_id: str) -> None:
        """A queued canary got no verdict (judge failure, bad output, write failure)."""
        if self._pending.pop(trace_id, None) is not None:
            self.metrics.total.labels(self.judge, "error").inc()

    @property
    def accuracy(self) -> float | None:
        """Rolling accuracy (None before the first verdict)."""
        return sum(self._recent) / len(self._recent) if self._recent else None
