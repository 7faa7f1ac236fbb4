"""Which (model, prompt_version) variants an app runs, and which pair to compare.

When a variant never seen for an app appears, it becomes the *candidate* and
the app's most recently active other variant the *baseline*; the monitor then
publishes candidate − baseline on every series (a live A/B readout) until a
newer variant replaces the pair. Both sides are read from the window store
(trailing day plus current window), so the readout costs no extra memory.

Caveats: after a start without a restored snapshot every variant is "new", so
the second variant seen becomes a candidate even if it is old; variants beyond
``max_variants`` per app are forgotten (least recently active first) and would
count as new again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

Variant = tuple[str, str]
"""(model, prompt_version)."""


def variant_name(variant: Variant) -> str:
    """The label value of a variant: ``model/prompt_version``."""
    return f"{variant[0]}/{variant[1]}"


class VersionTracker:
    """Per app: variants by recency, and the current baseline/candidate pair."""

    def __init__(self, max_variants: int = 8) -> None:
        self.max_variants = max_variants
        self.variants: dict[str, OrderedDict[Variant, float]] = {}
        self.pairs: dict[str, tuple[Variant, Variant, float]] = {}
        """app → (baseline, candidate, time the candidate appeared)."""

    def seen(self, app: str, variant: Variant, ts: float) -> tuple[Variant, Variant] | None:
        """Record activity; the new (baseline, candidate) pair when ``variant`` is new."""
        known = self.variants.get(app)
        if known is None:
            self.variants[app] = OrderedDict([(variant, ts)])
            return None
        last = known.get(variant)
        if last is not None:
            if ts > last:
                known[variant] = ts
                known.move_to_end(variant)
            return None
        baseline = next(reversed(known))  # the most recently active one
        known[variant] = ts
        if len(known) > self.max_variants:
            known.popitem(last=False)
        self.pairs[app] = (baseline, variant, ts)
        return baseline, variant

    def to_json(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "variants": {
                app: [[m, pv, ts] for (m, pv), ts in known.items()]
                for app, known in self.variants.items()
            },
            "pairs": {app: [list(b), list(c), ts] for app, (b, c, ts) in self.pairs.items()},
        }

    def restore(self, doc: dict[str, Any]) -> None:
        """Load :meth:`to_json` output."""
        self.variants = {
            app: OrderedDict(((str(m), str(pv)), float(ts)) for m, pv, ts in items)
            for app, items in doc.get("variants", {}).items()
        }
        self.pairs = {
            app: ((str(b[0]), str(b[1])), (str(c[0]), str(c[1])), float(ts))
            for app, (b, c, ts) in doc.get("pairs", {}).items()
        }
