"""Do the judges agree — with each other and with the users?

**Judge vs judge.** When a second judge (shadow or escalation) scores a trace
the primary also scored, each metric in ``agreement.metrics`` present in both
adds a pair (primary, other) to a window of the last ``window`` pairs per app,
metric and judge pair. Exported at scrape time as
``rag_sidecar_judge_agreement{app,metric,judges="<primary>/<other>",stat}``:

* ``mean_abs_diff`` — mean |primary − other|;
* ``share_close`` — share of pairs with |diff| ≤ ``close_within``;
* ``kappa`` — Cohen's kappa of pass/fail (score ≥ ``pass_at``); NaN when
  undefined (both judges always gave the same single class);
* ``samples`` — pairs in the window.

The event completing a pair gets the flag ``judge_disagreement`` when any
metric differs by more than ``disagreement`` (and ``detail.agreement``).

**Judge vs thumbs.** Every real judge event with a faithfulness and a thumbs
value on its trace adds (faithfulness, thumbs up?) to a window of the last
``feedback_window`` per app and judge: ``rag_sidecar_judge_feedback_auroc{app,judge}``
is the AUROC of faithfulness predicting a thumbs-up (NaN until both classes
are present) and ``rag_sidecar_judge_feedback_samples{app,judge}`` the window's
size. A judge event saying faithful (≥ ``faithful_at``) with a thumbs-down, or
unfaithful (≤ ``unfaithful_at``) with a thumbs-up, gets ``judge_feedback_disagreement``.

Memory is bounded: fixed-size windows, apps capped by a
:class:`~sidecar.sinks.prometheus.LabelLimiter` (``rag_sidecar_judge_label_overflow_total``),
at most ``pending`` traces remembered while waiting for a second judge.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ...sinks.prometheus import LabelLimiter
from .settings import AgreementSettings

DISAGREEMENT_FLAG: Final = "judge_disagreement"
FEEDBACK_FLAG: Final = "judge_feedback_disagreement"
PAIR_STATS: Final = ("mean_abs_diff", "share_close", "kappa", "samples")
NAN: Final = float("nan")


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` ranking positives first (ties count ½).

    Mann–Whitney U with average ranks; NaN when either class is absent.
    """
    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return NAN
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg_rank = (i + j) / 2 + 1  # 1-based ranks i+1 .. j+1
        rank_sum += avg_rank * sum(positive[order[k]] for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa of two raters' binary labels; NaN when empty or undefined (pe = 1)."""
    n = len(a)
    if n == 0 or n != len(b):
        return NAN
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected >= 1.0:
        return NAN
    return (observed - expected) / (1 - expected)


def pair_stats(
    pairs: Sequence[tuple[float, float]], *, close_within: float, pass_at: float
) -> dict[str, float]:
    """``PAIR_STATS`` of (primary, other) score pairs."""
    if not pairs:
        return {"mean_abs_diff": NAN, "share_close": NAN, "kappa": NAN, "samples": 0.0}
    diffs = [abs(x - y) for x, y in pairs]
    return {
        "mean_abs_diff": sum(diffs) / len(diffs),
        "share_close": sum(d <= close_within + 1e-12 for d in diffs) / len(diffs),
        "kappa": cohen_kappa([x >= pass_at for x, _ in pairs], [y >= pass_at for _, y in pairs]),
        "samples": float(len(pairs)),
    }


@dataclass(slots=True)
class Review:
    """What agreement found about one judge event: flags to add and details."""

    flags: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


class AgreementTracker(Collector):
    """Rolling judge/judge and judge/thumbs agreement; a Prometheus collector."""

    def __init__(
        self,
        settings: AgreementSettings,
        primary: str,
        registry: CollectorRegistry,
        *,
        max_apps: int = 100,
    ) -> None:
        self.settings = settings
        self.primary = primary
        overflow = Counter(
            "rag_sidecar_judge_label_overflow",
            "App values folded into 'other' in the judge agreement metrics.",
            ("label",),
            registry=registry,
        )
        self._app = LabelLimiter(max_apps, overflow)
        self._pending: OrderedDict[str, dict[str, dict[str, float]]] = OrderedDict()
        self._pairs: dict[tuple[str, str, str], deque[tuple[float, float]]] = {}
        self._feedback: dict[tuple[str, str], deque[tuple[float, bool]]] = {}
        registry.register(self)

    def observe(
        self,
        judge: str,
        trace_id: str,
        app: str | None,
        scores: Mapping[str, float],
        thumbs: str | None,
    ) -> Review:
        """Record one real judge event; what to flag on it."""
        s = self.settings
        review = Review()
        label = self._app("app", app)
        faith = scores.get("faithfulness")
        if faith is not None and thumbs in ("up", "down"):
            window = self._feedback.get((label, judge))
            if window is None:
                window = self._feedback[(label, judge)] = deque(maxlen=s.feedback_window)
            window.append((faith, thumbs == "up"))
            if (thumbs == "down" and faith >= s.faithful_at) or (
                thumbs == "up" and faith <= s.unfaithful_at
            ):
                review.flags.append(FEEDBACK_FLAG)
                review.detail["feedback_disagreement"] = {"faithfulness": faith, "thumbs": thumbs}
        mine = {m: scores[m] for m in s.metrics if m in scores}
        seen = self._pending.get(trace_id)
        if seen is None:
            seen = self._pending[trace_id] = {}
            while len(self._pending) > s.pending:
                self._pending.popitem(last=False)
        else:
            self._pending.move_to_end(trace_id)
        others = [o for o in seen if o != judge and self.primary in (o, judge)]
        for other in others:
            self._compare(label, judge, mine, other, seen[other], review)
        seen[judge] = mine
        return review

    def _compare(
        self,
        app: str,
        judge: str,
        mine: dict[str, float],
        other: str,
        theirs: dict[str, float],
        review: Review,
    ) -> None:
        s = self.settings
        if judge == self.primary:
            pair, first, second = f"{judge}/{other}", mine, theirs
        else:
            pair, first, second = f"{other}/{judge}", theirs, mine
        apart: dict[str, list[float]] = {}
        for metric in first.keys() & second.keys():
            a, b = first[metric], second[metric]
            key = (app, metric, pair)
            window = self._pairs.get(key)
            if window is None:
                window = self._pairs[key] = deque(maxlen=s.window)
            window.append((a, b))
            if abs(a - b) > s.disagreement:
                apart[metric] = [a, b]
        if apart:
            if DISAGREEMENT_FLAG not in review.flags:
                review.flags.append(DISAGREEMENT_FLAG)
            review.detail.setdefault("disagreement", {})[pair] = dict(sorted(apart.items()))

    # ------------------------------------------------------------------ exposition

    def stats(self, app: str, metric: str, judges: str) -> dict[str, float]:
        """The pair statistics of one series now."""
        pairs = list(self._pairs.get((app, metric, judges), ()))
        s = self.settings
        return pair_stats(pairs, close_within=s.close_within, pass_at=s.pass_at)

    def feedback_auroc(self, app: str, judge: str) -> tuple[float, int]:
        """(AUROC, samples) of one app and judge now."""
        window = list(self._feedback.get((app, judge), ()))
        return auroc([f for f, _ in window], [up for _, up in window]), len(window)

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "rag_sidecar_judge_agreement",
                "Rolling agreement of two judges on shared samples "
                "(stat: mean_abs_diff, share_close, kappa, samples).",
                labels=["app", "metric", "judges", "stat"],
            ),
            GaugeMetricFamily(
                "rag_sidecar_judge_feedback_auroc",
                "Rolling AUROC of judge faithfulness predicting a thumbs-up (NaN: one class).",
                labels=["app", "judge"],
            ),
            GaugeMetricFamily(
                "rag_sidecar_judge_feedback_samples",
                "Traces with a judge faithfulness and a thumbs value in the AUROC window.",
                labels=["app", "judge"],
            ),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families, without samples (for name-collision checks)."""
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The families with their current values."""
        agreement, auc, samples = self._families()
        for app, metric, judges in sorted(self._pairs):
            for stat, value in self.stats(app, metric, judges).items():
                agreement.add_metric([app, metric, judges, stat], value)
        for app, judge in sorted(self._feedback):
            value, n = self.feedback_auroc(app, judge)
            auc.add_metric([app, judge], value)
            samples.add_metric([app, judge], float(n))
        yield agreement
        yield auc
        yield samples
