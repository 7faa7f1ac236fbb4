"""Building blocks of the batch report (:mod:`sidecar.report`): its bounded aggregates and
the formatting of ``report.md`` (tables, fixed decimals, timestamps, snippets)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

SNIPPET_CHARS = 160


class Welford:
    """Running count, mean, sample variance, min and max of one metric."""

    __slots__ = ("hi", "lo", "m2", "mean", "n")

    def __init__(self) -> None:
        self.n, self.mean, self.m2, self.lo, self.hi = 0, 0.0, 0.0, math.inf, -math.inf

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)
        self.lo, self.hi = min(self.lo, x), max(self.hi, x)

    @property
    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None


@dataclass(slots=True)
class GroupStats:
    n: int = 0
    sampled: int = 0
    up: int = 0
    down: int = 0
    rating: Welford = field(default_factory=Welford)
    metrics: dict[str, Welford] = field(default_factory=dict)
    flags: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class LaterTotals:
    """Totals of the later events (judge, …) of one event type and model."""

    n: int = 0
    cached: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    downgraded: int = 0

    def add(self, detail: Mapping[str, object]) -> None:
        self.n += 1
        self.cached += detail.get("cached") is True
        tokens = detail.get("tokens")
        if isinstance(tokens, Mapping):
            self.tokens += sum(v for v in tokens.values() if isinstance(v, int))
        cost, down = detail.get("cost_usd"), detail.get("downgraded")
        self.cost_usd += cost if isinstance(cost, float | int) else 0.0
        self.downgraded += down if isinstance(down, int) else 0


@dataclass(frozen=True, slots=True)
class WorstEntry:
    """A worst-traces entry, ordered in reverse so heapq's min-heap top is the best kept."""

    score: float
    trace_id: str
    labels: str
    flags: str
    query: str
    answer: str

    def __lt__(self, other: WorstEntry) -> bool:
        return (self.score, self.trace_id) > (other.score, other.trace_id)


def md_table(cols: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table from "a|b:|c" (":" right-aligns a column); every cell is escaped."""
    names = cols.split("|")
    head = "| " + " | ".join(md_cell(c.removesuffix(":")) for c in names) + " |"
    rule = "|" + "|".join("---:" if c.endswith(":") else "---" for c in names) + "|"
    body = ["| " + " | ".join(md_cell(str(c)) for c in row) + " |" for row in rows]
    return [head, rule, *body]


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds; "" if not representable."""
    try:
        dt = datetime.fromtimestamp(ts, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def group_label(value: str | None) -> str:
    return "(none)" if value is None else value or "(empty)"


def snippet(text: str) -> str:
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rstrip() + "…"


def md_cell(text: str) -> str:
    """Make text safe inside a Markdown table cell: one line, no raw pipes or HTML."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
    return " ⏎ ".join(line.strip() for line in text.splitlines()) if text else ""


def fixed3(x: float) -> str:
    return f"{x:.3f}"


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"
