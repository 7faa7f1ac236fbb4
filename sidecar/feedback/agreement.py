"""Do the scores track what users feel? Score vs thumbs, per app, over a sliding window.

For each app and each score in ``agreement.scores`` (the primary judge's
``faithfulness`` and the heuristic ``groundedness_lexical`` by default) the last
``window`` (score, thumbs-up?) pairs are kept; one pair per trace, made when
both the score and the trace's thumbs are known (inline or late, whichever
comes last). Exported at scrape time as
``rag_sidecar_feedback_agreement{app,score,stat}``:

* ``auroc`` — AUROC of the score predicting a thumbs-up (0.5: no better than
  chance; NaN until both thumbs values are in the window);
* ``n`` — pairs in the window.

A drop means the judge or the heuristics stopped tracking what users feel.
:meth:`FeedbackAgreement.disagreement` names the scores that contradict one
feedback (a thumbs-down at ``high`` or above, a thumbs-up at ``low`` or below):
those feedback events are flagged for human review.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..scorers.judge.agreement import auroc
from .settings import FeedbackAgreementSettings

STATS = ("auroc", "n")


class FeedbackAgreement(Collector):
    """Rolling score/thumbs agreement; a Prometheus collector (register it once)."""

    def __init__(self, settings: FeedbackAgreementSettings) -> None:
        self.settings = settings
        self.scores = tuple(settings.scores)
        self._windows: dict[tuple[str, str], deque[tuple[float, bool]]] = {}

    def observe(self, app: str, score: str, value: float, up: bool) -> None:
        """Add one pair (``app`` already capped by a label limiter)."""
        if value != value:  # NaN
            return
        window = self._windows.get((app, score))
        if window is None:
            window = self._windows[(app, score)] = deque(maxlen=self.settings.window)
        window.append((value, up))

    def forget(self, app: str) -> None:
        """Drop an app's windows (its series leave the exposition)."""
        for key in [k for k in self._windows if k[0] == app]:
            del self._windows[key]

    def disagreement(self, scores: Mapping[str, float], thumbs: str | None) -> dict[str, float]:
        """The agreement scores that contradict ``thumbs`` (empty: none)."""
        s = self.settings
        out: dict[str, float] = {}
        if thumbs is None:
            return out
        for name in self.scores:
            value = scores.get(name)
            if not isinstance(value, int | float) or value != value:  # absent, null or NaN
                continue
            if (thumbs == "down" and value >= s.high) or (thumbs == "up" and value <= s.low):
                out[name] = value
        return out

    def stats(self, app: str, score: str) -> dict[str, float]:
        """``STATS`` of one series now."""
        window = list(self._windows.get((app, score), ()))
        return {
            "auroc": auroc([v for v, _ in window], [up for _, up in window]),
            "n": float(len(window)),
        }

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "rag_sidecar_feedback_agreement",
            "Rolling agreement of a score with user thumbs (stat: auroc of the score "
            "predicting a thumbs-up, NaN with one class; n: pairs in the window).",
            labels=["app", "score", "stat"],
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The family, without samples."""
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The family with its current values."""
        family = self._family()
        for app, score in sorted(self._windows):
            for stat, value in self.stats(app, score).items():
                family.add_metric([app, score, stat], value)
        yield family
