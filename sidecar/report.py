"""The batch report of ``rag-sidecar score``: a streamed CSV and a Markdown summary.

``report.csv`` gets one row per scored trace as it arrives. ``report.md`` is
rendered at :meth:`ReportBuilder.close` from bounded aggregates only:

* per (app, model, prompt_version) group and metric, a running mean and sample
  variance (Welford) with min and max: exact and O(1) per metric, no quantiles;
* per group, flag, sampling and feedback counts (the flags table's "top app" is
  derived from the per-group flag counts);
* the ``worst_n`` lowest traces on one metric, kept in a bounded heap holding
  pre-truncated snippets.

Memory grows with the number of label groups, metrics and flags, never with the
number of traces. Non-finite scores are written to the CSV but left out of the
aggregates and of the worst-traces list. All numbers use fixed decimals and all
lists are sorted, so the same input always yields byte-identical files.
"""

from __future__ import annotations

import csv
import heapq
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import orjson

from .events import ScoredEvent
from .report_parts import (
    GroupStats,
    LaterTotals,
    Welford,
    WorstEntry,
    fixed3,
    group_label,
    md_cell,
    md_table,
    pct,
    rfc3339,
    snippet,
)
from .trace import Trace

GroupKey = tuple[str | None, str | None, str | None]
"""A report group: (app, model, prompt_version)."""

BASE_COLUMNS: tuple[str, ...] = (
    "trace_id", "timestamp", "app", "model", "prompt_version", "retriever", "query", "answer",
    "n_chunks", "thumbs", "rating", "sampled", "sample_reasons", "flags",
)  # fmt: skip
OTHER_SCORES = "other_scores"


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """The totals of a finished report, for the terminal and for callers."""

    traces: int
    sampled: int
    later: Mapping[str, int]
    """Later events (``judge``, …) by type: traces that got a sampled scorer's result."""
    dead_letters_by_reason: Mapping[str, int]
    groups: Mapping[GroupKey, int]
    """Traces per group, in report order."""
    first_timestamp: float | None
    last_timestamp: float | None
    csv_path: Path
    md_path: Path

    @property
    def dead_letters(self) -> int:
        """Invalid inputs of every reason."""
        return sum(self.dead_letters_by_reason.values())

    def text(self, max_groups: int = 10) -> str:
        """A short multi-line human summary (at most ``max_groups`` group lines)."""
        invalid = ", ".join(f"{r} {c}" for r, c in self.dead_letters_by_reason.items())
        lines = [
            f"{self.traces} traces scored, {self.sampled} sampled for judge, "
            + "".join(f"{n} {kind} results, " for kind, n in self.later.items())
            + f"{self.dead_letters} invalid inputs"
            + (f" ({invalid})" if invalid else "")
        ]
        if self.first_timestamp is not None and self.last_timestamp is not None:
            lines.append(
                f"time range: {rfc3339(self.first_timestamp)} .. {rfc3339(self.last_timestamp)}"
            )
        for key, n in list(self.groups.items())[:max_groups]:
            lines.append(f"  {' / '.join(group_label(v) for v in key)}: {n}")
        if len(self.groups) > max_groups:
            lines.append(f"  ... and {len(self.groups) - max_groups} more groups")
        lines.append(f"report: {self.md_path}  rows: {self.csv_path}")
        return "\n".join(lines)


class ReportBuilder:
    """Streams ``report.csv`` row by row and writes ``report.md`` on :meth:`close`.

    ``score_names`` fixes the CSV's score columns (the file is streamed, so they
    must be known up front); other scores go to a final ``other_scores`` JSON
    column. Usable as a context manager: a clean exit closes the report, an
    exception only closes the CSV file.
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        score_names: Sequence[str] = (),
        worst_n: int = 20,
        worst_metric: str = "groundedness_lexical",
    ) -> None:
        names = list(score_names)
        clash = sorted({n for n in names if n in BASE_COLUMNS or n == OTHER_SCORES})
        if clash:
            raise ValueError(f"score names clash with report columns: {clash}")
        if len(set(names)) != len(names) or worst_n < 0:
            raise ValueError("score_names has duplicates" if worst_n >= 0 else "worst_n < 0")
        self._score_names = names
        self._score_set = frozenset(names)
        self._worst_n = worst_n
        self._worst_metric = worst_metric
        self._worst: list[WorstEntry] = []
        self._groups: dict[GroupKey, GroupStats] = {}
        self._later: dict[tuple[str, str], LaterTotals] = {}
        self._dead = Counter[str]()
        self._traces, self._sampled, self._first, self._last = 0, 0, math.inf, -math.inf
        self._summary: ReportSummary | None = None
        out_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = out_dir / "report.csv"
        self.md_path = out_dir / "report.md"
        self._file = self.csv_path.open("w", encoding="utf-8", errors="replace", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow([*BASE_COLUMNS, *names, OTHER_SCORES])

    @property
    def held_traces(self) -> int:
        """How many traces the builder holds in memory (the worst-traces heap)."""
        return len(self._worst)

    def add(self, trace: Trace, event: ScoredEvent) -> None:
        """Write one scored trace's CSV row and fold it into the aggregates."""
        if self._summary is not None:
            raise RuntimeError("report is closed")
        labels, scores, fb = event.labels, event.scores, event.feedback
        thumbs = fb.thumbs if fb else None
        rating = fb.rating if fb else None
        other = {k: v for k, v in scores.items() if k not in self._score_set}
        label_cells = (labels.app, labels.model, labels.prompt_version, labels.retriever)
        self._csv.writerow(
            [event.trace_id, rfc3339(event.timestamp), *(v or "" for v in label_cells)]
            + [trace.query, trace.answer, len(trace.chunks), thumbs or ""]
            + ["" if rating is None else rating, str(event.sampled.selected).lower()]
            + [";".join(event.sampled.reasons), ";".join(event.flags)]
            + ["" if scores.get(n) is None else scores[n] for n in self._score_names]
            + [orjson.dumps(other, option=orjson.OPT_SORT_KEYS).decode() if other else ""]
        )
        self._traces += 1
        if math.isfinite(event.timestamp):
            self._first = min(self._first, event.timestamp)
            self._last = max(self._last, event.timestamp)
        key = (labels.app, labels.model, labels.prompt_version)
        group = self._group(key)
        group.n += 1
        if event.sampled.selected:
            self._sampled += 1
            group.sampled += 1
        group.up += thumbs == "up"
        group.down += thumbs == "down"
        if rating is not None and math.isfinite(rating):
            group.rating.add(rating)
        for name, value in scores.items():
            if math.isfinite(value):
                group.metrics.setdefault(name, Welford()).add(value)
        group.flags.update(set(event.flags))
        self._offer_worst(trace, event, key)

    def _group(self, key: GroupKey) -> GroupStats:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = GroupStats()
        return group

    def add_later(self, event: ScoredEvent) -> None:
        """Fold a later result (a ``judge`` event, …) into its group's metrics and totals.

        Its scores join the group's metric table (their ``n`` is the number of
        traces that got them); the CSV keeps one heuristic row per trace.
        """
        if self._summary is not None:
            raise RuntimeError("report is closed")
        labels, detail = event.labels, event.detail or {}
        key = (labels.app, labels.model, labels.prompt_version)
        group = self._group(key)
        for name, value in event.scores.items():
            if math.isfinite(value):
                group.metrics.setdefault(name, Welford()).add(value)
        who = detail.get("judge_model")
        later_key = (event.type, who if isinstance(who, str) else event.scorer_version)
        self._later.setdefault(later_key, LaterTotals()).add(detail)

    def _offer_worst(self, trace: Trace, event: ScoredEvent, key: GroupKey) -> None:
        score = event.scores.get(self._worst_metric)
        if self._worst_n == 0 or score is None or not math.isfinite(score):
            return
        full = len(self._worst) >= self._worst_n
        if full and (score, event.trace_id) >= (self._worst[0].score, self._worst[0].trace_id):
            return
        entry = WorstEntry(
            score,
            event.trace_id,
            " / ".join(group_label(v) for v in key),
            ", ".join(event.flags),
            snippet(trace.query),
            snippet(trace.answer),
        )
        if full:
            heapq.heapreplace(self._worst, entry)
        else:
            heapq.heappush(self._worst, entry)

    def add_dead_letter(self, reason: str) -> None:
        """Count one invalid input under its reason code."""
        if self._summary is not None:
            raise RuntimeError("report is closed")
        self._dead[reason] += 1

    def close(self) -> ReportSummary:
        """Finish ``report.csv``, write ``report.md`` and return the totals (idempotent)."""
        if self._summary is not None:
            return self._summary
        self._file.close()
        keys = sorted(self._groups, key=lambda k: tuple((v is None, v or "") for v in k))
        self._groups = {k: self._groups[k] for k in keys}
        has_range = self._traces > 0 and self._first <= self._last
        later = Counter[str]()
        for (kind, _), totals in self._later.items():
            later[kind] += totals.n
        summary = ReportSummary(
            traces=self._traces,
            sampled=self._sampled,
            later=dict(sorted(later.items())),
            dead_letters_by_reason=dict(sorted(self._dead.items())),
            groups={k: g.n for k, g in self._groups.items()},
            first_timestamp=self._first if has_range else None,
            last_timestamp=self._last if has_range else None,
            csv_path=self.csv_path,
            md_path=self.md_path,
        )
        self.md_path.write_text(self._render(summary), encoding="utf-8", errors="replace")
        self._summary = summary
        return summary

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._file.close()

    def _metric_order(self, present: Mapping[str, object]) -> list[str]:
        known = [n for n in self._score_names if n in present]
        return known + sorted(n for n in present if n not in self._score_set)

    def _render(self, s: ReportSummary) -> str:
        out = ["# RAG trace report", ""]
        if s.first_timestamp is not None and s.last_timestamp is not None:
            span = f"{rfc3339(s.first_timestamp)} to {rfc3339(s.last_timestamp)}"
            out += [f"Traces from {span} (UTC).", ""]
        totals: list[Sequence[object]] = [
            ("traces scored", s.traces),
            ("sampled for judge", f"{s.sampled} ({pct(s.sampled, s.traces)})"),
            *((f"{kind} results", n) for kind, n in s.later.items()),
            ("invalid inputs", s.dead_letters),
            *((f"invalid: {r}", c) for r, c in s.dead_letters_by_reason.items()),
        ]
        out += ["## Totals", "", *md_table("total|count:", totals), "", "## Groups", ""]
        out += md_table("app|model|prompt_version|n:|sampled:|thumbs up:|thumbs down:|"
                      "down rate:|mean rating:", [
            (*map(group_label, k), g.n, g.sampled, g.up, g.down, pct(g.down, g.up + g.down),
             fixed3(g.rating.mean) if g.rating.n else "—")
            for k, g in self._groups.items()
        ])  # fmt: skip
        out += ["", "Down rate = thumbs down / (thumbs up + thumbs down)."]
        for key, g in self._groups.items():
            out += ["", f"### {md_cell(' / '.join(map(group_label, key)))}", ""]
            out += md_table("metric|n:|mean:|std:|min:|max:", [
                (m, w.n, fixed3(w.mean), "—" if w.std is None else fixed3(w.std),
                 fixed3(w.lo), fixed3(w.hi))
                for m in self._metric_order(g.metrics) for w in (g.metrics[m],)
            ])  # fmt: skip
            if g.flags:
                flags = sorted(g.flags.items(), key=lambda fc: (-fc[1], fc[0]))
                rows = [(f, c, pct(c, g.n)) for f, c in flags]
                out += ["", *md_table("flag|count:|rate:", rows)]

        if self._later:
            out += ["", "## Sampled scorers", ""]
            out += md_table("event|model or version|traces:|from cache:|tokens / trace:|"
                            "cost USD:|claims downgraded:", [
                (kind, who, t.n, t.cached, fixed3(t.tokens / t.n), f"{t.cost_usd:.4f}",
                 t.downgraded)
                for (kind, who), t in sorted(self._later.items())
            ])  # fmt: skip
            out += ["", "Their scores are in each group's metric table (n = traces scored)."]

        per_app: dict[str, Counter[str | None]] = {}
        for key, g in self._groups.items():
            for flag, count in g.flags.items():
                per_app.setdefault(flag, Counter())[key[0]] += count
        flag_rows = []
        for flag, apps in sorted(per_app.items(), key=lambda fa: (-fa[1].total(), fa[0])):
            top = min(apps.items(), key=lambda ac: (-ac[1], ac[0] is None, ac[0] or ""))[0]
            flag_rows.append((flag, apps.total(), pct(apps.total(), s.traces), group_label(top)))
        out += ["", "## Flags", ""]
        cols = "flag|count:|% of traces:|top app"
        out += md_table(cols, flag_rows) if flag_rows else ["No flags raised."]

        metric = md_cell(self._worst_metric)
        out += ["", f"## Worst traces by {metric}", ""]
        worst = sorted(self._worst, reverse=True)  # reversed order: lowest score first
        cols = "#:|trace_id|app / model / prompt_version|score:|flags|query|answer"
        out += md_table(cols, [
            (i, w.trace_id, w.labels, fixed3(w.score), w.flags, w.query, w.answer)
            for i, w in enumerate(worst, 1)
        ]) if worst else [f"No trace has a {metric} score."]  # fmt: skip
        return "\n".join(out) + "\n"
