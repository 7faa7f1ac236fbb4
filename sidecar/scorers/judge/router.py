"""Several judges behind the pipeline's one judge interface (``start``/``offer``/``aclose``).

Each configured judge (:class:`JudgeStage`) has a ``role``:

* ``primary`` (exactly one) — judges every sampled trace;
* ``shadow`` — judges the same samples at ``share`` (a hash of the trace id, so
  replicas and replays agree), for agreement;
* ``escalation`` — judges a trace only after the primary's verdict, when the
  primary and the heuristics disagree strongly (faithfulness ≥ ``judge_high``
  but ``groundedness_lexical`` < ``lexical_low``: ``faithful_but_ungrounded``;
  faithfulness ≤ ``judge_low`` but groundedness ≥ ``lexical_high``:
  ``unfaithful_but_grounded``) or the primary is ``borderline``.

Every judge event passes through the router on its way to the sinks. It gets
``detail.role``; canary events are checked (:mod:`.canary`); real ones feed
:class:`~.agreement.AgreementTracker`, whose disagreement flags are added.
Only the primary's verdicts are measurements: a shadow or escalation judge's
event keeps its scores and own flags in ``detail.scores`` / ``detail.judge_flags``
and carries only review flags, so ``rag_sidecar_score`` and
``rag_sidecar_flags_total`` are never mixed across judges nor biased by
escalation's selection. Escalation events also get ``detail.escalation``.

The judges share one :class:`JudgeMetrics` (label ``judge``); each keeps its
own budget, queue, cache and breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from ...events import Sampling
from ...stages import Result
from .agreement import AgreementTracker
from .canary import CanaryMetrics, CanaryRunner, is_canary
from .metrics import JudgeMetrics
from .scoring import JUDGE_METRICS
from .settings import EscalationSettings, JudgeSettings
from .stage import JudgeStage, Write

log = logging.getLogger(__name__)

_TICK_MAX_S = 30.0


def judge_list(value: JudgeSettings | Sequence[JudgeSettings] | None) -> list[JudgeSettings]:
    """``Settings.judge`` as a list (one object, a list, or None)."""
    if value is None:
        return []
    return [value] if isinstance(value, JudgeSettings) else list(value)


def check_judges(judges: Sequence[JudgeSettings]) -> None:
    """``ValueError`` unless names are unique, one judge is ``primary``, metrics are known
    and a daily cap has prices."""
    if not judges:
        return
    names = [j.name for j in judges]
    if len(set(names)) != len(names):
        raise ValueError(f"judge names must be unique, got {names}")
    primaries = [j.name for j in judges if j.role == "primary"]
    if len(primaries) != 1:
        raise ValueError(f"exactly one judge must have role 'primary', got {primaries or 'none'}")
    for j in judges:
        unknown = sorted(set(j.agreement.metrics) - set(JUDGE_METRICS))
        if unknown:
            raise ValueError(f"judge {j.name}: unknown agreement metrics {unknown}")
        if (problem := j.cap_problem()) is not None:
            raise ValueError(problem)


def escalation_reasons(
    s: EscalationSettings, faithfulness: float | None, lexical: float | None
) -> list[str]:
    """Why the primary's ``faithfulness`` on a trace needs a second opinion (empty: it does not)."""
    if faithfulness is None:
        return []
    reasons = []
    if lexical is not None:
        if faithfulness >= s.judge_high and lexical < s.lexical_low:
            reasons.append("faithful_but_ungrounded")
        if faithfulness <= s.judge_low and lexical >= s.lexical_high:
            reasons.append("unfaithful_but_grounded")
    if s.borderline is not None and s.borderline[0] <= faithfulness <= s.borderline[1]:
        reasons.append("borderline")
    return reasons


def in_share(judge: str, trace_id: str, share: float) -> bool:
    """Deterministic: whether ``trace_id`` falls in ``judge``'s ``share`` of traces."""
    if share >= 1.0:
        return True
    digest = hashlib.blake2b(f"{judge}\x1f{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


class JudgeRouter:
    """Routes sampled traces to the configured judges and reviews their events."""

    def __init__(
        self,
        stages: Sequence[JudgeStage],
        registry: CollectorRegistry,
        *,
        max_apps: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_apps`` caps the app label of the agreement metrics; ``clock`` paces canaries."""
        check_judges([st.settings for st in stages])
        self.stages = list(stages)
        self.primary = next(st for st in stages if st.settings.role == "primary")
        self.shadows = [st for st in stages if st.settings.role == "shadow"]
        self.escalations = [st for st in stages if st.settings.role == "escalation"]
        primary = self.primary.settings
        self._pending_cap = primary.agreement.pending
        self.agreement = AgreementTracker(
            primary.agreement, self.primary.name, registry, max_apps=max_apps
        )
        canary_judges = [st for st in stages if st.settings.canary.enabled]
        canary_metrics = CanaryMetrics(registry) if canary_judges else None
        self.canaries: dict[str, CanaryRunner] = {}
        for st in canary_judges:
            assert canary_metrics is not None
            self.canaries[st.name] = CanaryRunner(
                st.name, st.settings.canary, canary_metrics, clock=clock
            )
        self._lexical: OrderedDict[str, float | None] = OrderedDict()
        """groundedness_lexical of traces awaiting the primary (only with escalation judges)."""
        self._escalated: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._write: Write | None = None
        self._ticker: asyncio.Task[None] | None = None
        for st in stages:
            st.on_failed = functools.partial(self._failed, st)

    @classmethod
    def from_settings(
        cls,
        settings: JudgeSettings | Sequence[JudgeSettings],
        registry: CollectorRegistry,
        *,
        max_apps: int = 100,
    ) -> JudgeRouter:
        """One :class:`JudgeStage` per configured judge, sharing one :class:`JudgeMetrics`."""
        judges = judge_list(settings)
        check_judges(judges)
        metrics = JudgeMetrics(registry)
        stages = [JudgeStage(s, registry, metrics=metrics) for s in judges]
        return cls(stages, registry, max_apps=max_apps)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, write: Write) -> None:
        """Start every judge; their events go through the router to ``write``."""
        self._write = write
        for st in self.stages:
            await st.start(functools.partial(self._written, st))
        periods = [
            r.settings.every_s for r in self.canaries.values() if r.settings.every_s is not None
        ]
        if periods:
            tick = min(_TICK_MAX_S, *periods)
            self._ticker = asyncio.create_task(self._tick(tick), name="judge:canary")

    async def aclose(self) -> None:
        """Stop canaries, then the primary (which may still escalate), then the others."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.primary.aclose()
        await asyncio.gather(*(st.aclose() for st in self.stages if st is not self.primary))

    async def _tick(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            self.inject_due()

    # ---------------------------------------------------------------------- offer

    async def room_for(self, result: Result) -> None:
        """Wait until the primary would take ``result`` without refusing it for backpressure
        (shadows and escalations are second opinions: they may still skip it)."""
        await self.primary.room_for(result)

    def offer(self, result: Result) -> bool:
        """Offer a sampled trace to the primary and the shadows; the primary's answer."""
        trace_id = result.trace.trace_id
        accepted = self._offer_to(self.primary, result)
        if accepted and self.escalations:
            self._remember(self._lexical, trace_id, result.event.scores.get("groundedness_lexical"))
        for shadow in self.shadows:
            if in_share(shadow.name, trace_id, shadow.settings.share):
                self._offer_to(shadow, result)
        self.inject_due()
        return accepted

    def _offer_to(self, stage: JudgeStage, result: Result) -> bool:
        accepted = stage.offer(result)
        runner = self.canaries.get(stage.name)
        if accepted and runner is not None:
            runner.admitted()
        return accepted

    def inject_due(self) -> None:
        """Offer each judge its next canary if one is due (also run by a timer)."""
        for st in self.stages:
            runner = self.canaries.get(st.name)
            if runner is not None:
                runner.maybe_inject(functools.partial(st.offer, fresh=True))

    def _remember(self, store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > self._pending_cap:
            store.popitem(last=False)

    def _failed(self, stage: JudgeStage, result: Result, reason: str) -> None:
        trace_id = result.trace.trace_id
        runner = self.canaries.get(stage.name)
        if runner is not None and is_canary(trace_id):
            runner.failed(trace_id)
        if stage is self.primary:
            self._lexical.pop(trace_id, None)
        self._escalated.pop((stage.name, trace_id), None)

    # --------------------------------------------------------------------- review

    async def _written(self, stage: JudgeStage, results: list[Result]) -> None:
        """Review one judge's events, write them, then escalate what needs it."""
        escalate: list[tuple[Result, dict[str, float]]] = []
        for r in results:
            try:
                scores = self._review(stage, r)
            except Exception:  # a review bug must never cost the judge event
                log.exception("judge event review failed", extra={"fields": {"judge": stage.name}})
                continue
            if stage is self.primary and self.escalations and not is_canary(r.trace.trace_id):
                escalate.append((r, scores))
        assert self._write is not None
        await self._write(results)
        for r, scores in escalate:
            self._escalate(r, scores)

    def _review(self, stage: JudgeStage, r: Result) -> dict[str, float]:
        ev = r.event
        scores = dict(ev.scores)
        detail = ev.detail if ev.detail is not None else {}
        ev.detail = detail
        detail["role"] = stage.settings.role
        if stage is not self.primary:  # first, so that a failing review cannot undo it
            detail["scores"] = scores
            detail["judge_flags"] = ev.flags
            ev.scores, ev.flags = {}, []
        trace_id = r.trace.trace_id
        runner = self.canaries.get(stage.name)
        if is_canary(trace_id):
            review_flags = runner.judged(ev, scores) if runner is not None else []
        else:
            thumbs = r.trace.feedback.thumbs if r.trace.feedback is not None else None
            review = self.agreement.observe(stage.name, trace_id, ev.labels.app, scores, thumbs)
            detail.update(review.detail)
            review_flags = review.flags
            escalation = self._escalated.pop((stage.name, trace_id), None)
            if escalation is not None:
                detail["escalation"] = escalation
        ev.flags.extend(review_flags)
        return scores

    def _escalate(self, r: Result, scores: dict[str, float]) -> None:
        trace_id = r.trace.trace_id
        if trace_id not in self._lexical:
            return  # forgotten (cap) or already escalated
        lexical = self._lexical.pop(trace_id)
        faithfulness = scores.get("faithfulness")
        detail = r.event.detail or {}
        reasons_sampled = [str(x) for x in detail.get("sample_reasons", [])]
        offer = dataclasses.replace(
            r.event,
            type="heuristic",
            scores={},
            flags=[],
            sampled=Sampling(selected=True, reasons=reasons_sampled),
            detail=None,
        )
        for st in self.escalations:
            reasons = escalation_reasons(st.settings.escalation, faithfulness, lexical)
            if not reasons:
                continue
            key = (st.name, trace_id)
            self._remember(
                self._escalated,
                key,
                {
                    "from": self.primary.name,
                    "reasons": reasons,
                    "faithfulness": faithfulness,
                    "groundedness_lexical": lexical,
                },
            )
            if not self._offer_to(st, Result(r.trace, offer)):
                self._escalated.pop(key, None)


def build_judge(
    settings: JudgeSettings | Sequence[JudgeSettings] | None,
    registry: CollectorRegistry,
    *,
    max_apps: int = 100,
) -> JudgeRouter | None:
    """The pipeline's judge from ``Settings.judge`` (None when no judge is configured)."""
    judges = judge_list(settings)
    if not judges:
        return None
    return JudgeRouter.from_settings(judges, registry, max_apps=max_apps)
