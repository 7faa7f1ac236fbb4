"""Which events need human review, and the Label Studio task written for each.

A task is Label Studio's JSON import format::

    {"data": {"trace_id", "app", "model", "prompt_version", "query", "answer",
              "context", "reasons", "judge"},          # strings: the labeling config shows them
     "meta": {"event_id", "event_type", "reasons": [...], "judge_scores", "heuristic_scores",
              "flags", "scorer_version", "exported_at"},
     "predictions": [{"model_version": <judge version>, "score": <worst judge score>,
                      "result": [<one item per control the judge can fill>]}]}

Predictions pre-fill the shipped labeling config (``labeling_config.xml``):
faithfulness (choices and a 1–5 rating), answer relevance and context
relevance. Label Studio does not check predictions against the config, so
:func:`config_problems` does, here and in the tests.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Final

from ...events import ScoredEvent
from ...trace import Feedback, Trace
from .settings import ReviewSettings

CONFIG_FILE: Final = "labeling_config.xml"
DATA_FIELDS: Final = (
    "trace_id",
    "app",
    "model",
    "prompt_version",
    "query",
    "answer",
    "context",
    "reasons",
    "judge",
)
FAITHFULNESS: Final = ("Faithful", "Partially faithful", "Unfaithful")
RELEVANCE: Final = ("Relevant", "Partially relevant", "Irrelevant")
_CONTROLS: Final = {"Choices": "choices", "Rating": "rating", "TextArea": "textarea"}
_MAX_CLAIMS: Final = 20


@cache
def labeling_config() -> str:
    """The shipped labeling config (XML)."""
    return (resources.files(__package__) / CONFIG_FILE).read_text(encoding="utf-8")


def judge_scores(event: ScoredEvent) -> dict[str, float]:
    """A judge event's scores (shadow and escalation judges keep them in ``detail.scores``)."""
    if event.scores:
        return dict(event.scores)
    detail = event.detail or {}
    held = detail.get("scores") if event.type == "judge" else detail.get("judge_scores")
    if not isinstance(held, dict):
        return {}
    return {k: float(v) for k, v in held.items() if isinstance(v, int | float)}


def review_reasons(s: ReviewSettings, event: ScoredEvent, lexical: float | None) -> list[str]:
    """Why a judge or feedback event needs review (empty: it does not)."""
    if event.type == "feedback":
        return ["feedback_disagreement"] if "feedback_disagreement" in event.flags else []
    if event.type != "judge":
        return []
    scores = judge_scores(event)
    reasons: list[str] = []
    faith = scores.get("faithfulness")
    relevance = scores.get("answer_relevance")
    if faith is not None and faith < s.min_faithfulness:
        reasons.append("low_faithfulness")
    if relevance is not None and relevance < s.min_answer_relevance:
        reasons.append("low_answer_relevance")
    if faith is not None and lexical is not None:
        if faith >= s.judge_high and lexical < s.lexical_low:
            reasons.append("faithful_but_ungrounded")
        if faith <= s.judge_low and lexical >= s.lexical_high:
            reasons.append("unfaithful_but_grounded")
    own = (event.detail or {}).get("judge_flags", [])
    flags = [*event.flags, *(f for f in own if isinstance(f, str))]
    reasons.extend(f for f in s.flags if f in flags)
    return reasons


def _band(value: float, high: float, low: float, names: Sequence[str]) -> str:
    return names[0] if value >= high else names[1] if value >= low else names[2]


def predicted(scores: Mapping[str, float]) -> list[dict[str, Any]]:
    """The result items a judge's scores pre-fill (controls of the shipped config)."""
    out: list[dict[str, Any]] = []

    def item(name: str, to: str, kind: str, value: dict[str, Any]) -> None:
        out.append({"from_name": name, "to_name": to, "type": kind, "value": value})

    faith = scores.get("faithfulness")
    if faith is not None:
        band = _band(faith, 0.8, 0.5, FAITHFULNESS)
        item("faithfulness", "answer", "choices", {"choices": [band]})
        item("faithfulness_rating", "answer", "rating", {"rating": 1 + round(4 * faith)})
    relevance = scores.get("answer_relevance")
    if relevance is not None:
        band = _band(relevance, 0.66, 0.33, RELEVANCE)
        item("answer_relevance", "answer", "choices", {"choices": [band]})
    context = scores.get("context_relevance")
    if context is not None:
        band = _band(context, 0.66, 0.33, RELEVANCE)
        item("context_relevance", "context", "choices", {"choices": [band]})
    return out


def context_text(trace: Trace) -> str:
    """The chunks in rank order, each headed by its rank, id, score and source."""
    if not trace.chunks:
        return "(no chunks retrieved)"
    parts = []
    for rank, c in enumerate(trace.chunks, 1):
        head = [f"[{rank}] {c.id}"]
        if c.score is not None:
            head.append(f"score {c.score:.3f}")
        if c.source:
            head.append(c.source)
        parts.append(" · ".join(head) + "\n" + c.text)
    return "\n\n".join(parts)


def judge_text(
    event: ScoredEvent, scores: Mapping[str, float], feedback: Feedback | None = None
) -> str:
    """The judge's scores and claim verdicts (and the user's feedback), for the reviewer."""
    detail = event.detail or {}
    lines = [" · ".join(f"{k} {v:.2f}" for k, v in sorted(scores.items())) or "(no judge scores)"]
    for claim in (detail.get("claims") or [])[:_MAX_CLAIMS]:
        if isinstance(claim, dict):
            where = f" (chunk {claim['chunk_id']})" if claim.get("chunk_id") else ""
            lines.append(f"- {claim.get('verdict', '?')}{where}: {claim.get('claim', '')}")
    canary = detail.get("canary")
    if isinstance(canary, dict):
        lines.append(f"canary {canary.get('id')} ({canary.get('kind')}): {canary.get('failures')}")
    user: dict[str, Any] = {}
    if feedback is not None:
        user = feedback.model_dump()
    elif event.type == "feedback":
        user = {k: detail.get(k) for k in ("thumbs", "rating", "comment")}
    said = ", ".join(f"{k} {v}" for k, v in user.items() if v is not None)
    if said:
        lines.append(f"user feedback: {said}")
    return "\n".join(lines)


@dataclass(slots=True)
class Task:
    """One review task and its deduplication key."""

    key: str
    doc: dict[str, Any] = field(repr=False)


def build_task(
    trace: Trace,
    event: ScoredEvent,
    reasons: list[str],
    heuristic: Mapping[str, float] | None,
    *,
    now: float | None = None,
) -> Task:
    """The Label Studio task for one event that needs review."""
    scores = judge_scores(event)
    labels = event.labels
    data = {
        "trace_id": event.trace_id,
        "app": labels.app or "",
        "model": labels.model or "",
        "prompt_version": labels.prompt_version or "",
        "query": trace.query,
        "answer": trace.answer,
        "context": context_text(trace),
        "reasons": ", ".join(reasons),
        "judge": judge_text(event, scores, trace.feedback),
    }
    meta: dict[str, Any] = {
        "event_id": event.event_id,
        "event_type": event.type,
        "reasons": reasons,
        "judge_scores": scores,
        "heuristic_scores": dict(heuristic or {}),
        "flags": list(event.flags),
        "scorer_version": event.scorer_version,
        "exported_at": time.time() if now is None else now,
    }
    if trace.feedback is not None:
        meta["feedback"] = trace.feedback.model_dump(exclude_none=True)
    doc: dict[str, Any] = {"data": data, "meta": meta, "predictions": []}
    result = predicted(scores)
    if result:
        worst = min(scores.get(m, 1.0) for m in ("faithfulness", "answer_relevance"))
        version = event.scorer_version if event.type == "judge" else "judge"
        doc["predictions"].append({"model_version": version, "score": worst, "result": result})
    return Task(dedupe_key(event), doc)


def dedupe_key(event: ScoredEvent) -> str:
    """Trace id; a failed canary is one task per canary and judge version, not per run."""
    canary = (event.detail or {}).get("canary")
    if isinstance(canary, dict) and canary.get("id") is not None:
        return f"canary:{event.scorer_version}:{canary['id']}"
    return event.trace_id


def config_problems(config: str, task: Mapping[str, Any]) -> list[str]:
    """What in ``task`` (data fields, prediction items) a labeling config cannot take."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError as exc:
        return [f"the labeling config is not XML: {exc}"]
    controls = {el.get("name"): (kind, el) for el in root.iter() if (kind := _CONTROLS.get(el.tag))}
    objects = {el.get("name"): el.get("value", "") for el in root.iter() if el.tag == "Text"}
    data = task.get("data", {})
    problems = [
        f"data lacks {v[1:]!r} (used by {n})"
        for n, v in objects.items()
        if v.startswith("$") and v[1:] not in data
    ]
    for pred in task.get("predictions", []):
        for item in pred.get("result", []):
            name, to = item.get("from_name"), item.get("to_name")
            if name not in controls:
                problems.append(f"no control named {name!r}")
                continue
            kind, el = controls[name]
            value = item.get("value", {})
            if item.get("type") != kind:
                problems.append(f"{name}: type {item.get('type')!r}, config has {kind!r}")
            if to != el.get("toName") or to not in objects:
                problems.append(f"{name}: to_name {to!r}, config has {el.get('toName')!r}")
            if kind == "choices":
                allowed = {c.get("value") for c in el.iter("Choice")}
                bad = [c for c in value.get("choices", [None]) if c not in allowed]
                problems.extend(f"{name}: no choice {c!r}" for c in bad)
            if kind == "rating":
                rating = value.get("rating")
                top = int(el.get("maxRating", "5"))
                if not isinstance(rating, int) or not 1 <= rating <= top:
                    problems.append(f"{name}: rating {rating!r} not in 1..{top}")
    return problems
