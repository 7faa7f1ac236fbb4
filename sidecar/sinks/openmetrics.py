"""OpenMetrics backfill sink: replayed results as historical Prometheus samples.

``rag-sidecar replay ... --openmetrics FILE`` writes a file that ``promtool tsdb
create-blocks-from openmetrics FILE DIR`` turns into blocks, so live dashboards
work on the replayed range. Results are aggregated like
:class:`~sidecar.sinks.prometheus.PrometheusSink` (same families, buckets and
label caps) but at each event's own time: every series' cumulative state is
emitted at the end of each ``step_s`` bucket, after a 0 sample one step before
the series' first point (so ``increase()`` counts its first events).

A bucket is emitted once the watermark (latest event time minus ``lateness_s``)
passes its end; an older event is counted in :attr:`late` and lands in the next
bucket, so no series goes back in time (promtool silently drops such samples).
Gaps up to ``max_gap_s`` are filled with flat samples. Each family and each
series is contiguous, as OpenMetrics requires: samples are buffered per series
(``spill_bytes`` in all), appended to per-series spill files in a temporary
directory next to the output, and concatenated by :meth:`aclose`. Memory is
bounded by series × buckets in the lateness window, not by traces.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import shutil
import tempfile
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.utils import floatToGoString as _go_float

from ..errors import PermanentError
from ..stages import DeadLetter, Result
from .prometheus import (
    COUNT_BUCKETS,
    RATING_BUCKETS,
    SCORE_BUCKETS,
    LabelLimiter,
    priority_only,
    retracted,
)

log = logging.getLogger(__name__)
_float_str: Callable[[float], str] = _go_float  # untyped upstream; as the live exposition
_MAX_TIME = 95_617_584_000.0  # 5000-01-01
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class _Family:
    name: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] | None = None
    """Histogram bounds (without +Inf); None for a counter."""

    @property
    def width(self) -> int:  # the total, or each bucket's own count plus the sum
        return 1 if self.buckets is None else len(self.buckets) + 2

    def header(self) -> str:
        kind = "counter" if self.buckets is None else "histogram"
        return f"# TYPE {self.name} {kind}\n# HELP {self.name} {self.help}\n"

    def prefixes(self, labels: str) -> list[str]:
        """Each sample line of a point up to its value."""
        if self.buckets is None:
            return [f"{self.name}_total{{{labels}}} "]
        les = [_float_str(b) for b in self.buckets] + ["+Inf"]
        lines = [f'{self.name}_bucket{{{labels},le="{le}"}} ' for le in les]
        return [*lines, f"{self.name}_sum{{{labels}}} ", f"{self.name}_count{{{labels}}} "]


_SERIES = ("app", "model", "prompt_version", "metric")
FAMILIES = (
    _Family("rag_sidecar_score", "Scores per trace.", _SERIES, SCORE_BUCKETS),
    _Family("rag_sidecar_count", "Count-valued scores per trace.", _SERIES, COUNT_BUCKETS),
    _Family("rag_sidecar_flags", "Heuristic flags raised.", ("app", "flag")),
    _Family("rag_sidecar_feedback", "User feedback on traces.", (*_SERIES[:3], "value")),
    _Family("rag_sidecar_feedback_rating", "User ratings.", _SERIES[:3], RATING_BUCKETS),
    _Family("rag_sidecar_sampled", "Traces selected for the LLM judge.", ("reason",)),
    _Family("rag_sidecar_traces", "Records processed.", ("source", "outcome")),
    _Family(
        "rag_sidecar_judge_priority_score",
        "Judge scores of traces judged only for a priority reason.",
        _SERIES,
        SCORE_BUCKETS,
    ),
    _Family(
        "rag_sidecar_feedback_retracted",
        "Thumbs replaced by a changed vote.",
        (*_SERIES[:3], "value"),
    ),
)
"""Families in file order; the same names and labels as the live sink's."""
_SCORE, _COUNT, _FLAGS, _FEEDBACK, _RATING, _SAMPLED, _TRACES, _PRIORITY, _RETRACTED = range(
    len(FAMILIES)
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else _float_str(x)


class _Series:
    __slots__ = ("buf", "emitted", "family", "key", "prefixes", "sid", "values")

    def __init__(self, sid: int, family: _Family, key: tuple[str, ...], labels: str) -> None:
        self.sid = sid
        self.family = family
        self.key = key
        self.prefixes = family.prefixes(labels)
        self.values = [0.0] * family.width
        self.buf: list[str] = []
        self.emitted = False

    def render(self, values: list[float], ts: str) -> int:
        """Buffer one point; returns the characters added."""
        if self.family.buckets is None:
            numbers = values
        else:  # cumulative buckets, +Inf, sum, count
            cumulative = list(accumulate(values[:-1]))
            numbers = [*cumulative, values[-1], cumulative[-1]]
        lines = [f"{p}{_num(x)} {ts}\n" for p, x in zip(self.prefixes, numbers, strict=True)]
        self.buf.extend(lines)
        return sum(map(len, lines))


class OpenMetricsBackfillSink:
    """Writes replayed results as timestamped OpenMetrics for ``promtool`` backfill."""

    def __init__(
        self,
        path: Path,
        *,
        step_s: float = 60,
        max_label_values: int = 100,
        metric_kinds: Mapping[str, str],
        extra_labels: Mapping[str, str] | None = None,
        lateness_s: float = 300,
        max_gap_s: float = 6 * 3600,
        spill_bytes: int = 8 << 20,
    ) -> None:
        if step_s <= 0 or lateness_s < 0 or max_gap_s < 0:
            raise ValueError("step_s must be > 0, lateness_s and max_gap_s >= 0")
        extra = dict(extra_labels or {})
        used = {"le"}.union(*(f.labels for f in FAMILIES))
        for name in extra:
            if not _LABEL_NAME.match(name) or name.startswith("__") or name in used:
                raise ValueError(f"invalid or reserved extra label name: {name!r}")
        self.name = "openmetrics"
        self.path = Path(path)
        self.step_s = float(step_s)
        self.lateness_s = float(lateness_s)
        self.max_gap_s = float(max_gap_s)
        self.spill_bytes = spill_bytes
        self.late = 0  # events older than the last emitted bucket, counted in the next one
        self.skipped = 0  # events left out: timestamp not finite, negative or after year 5000
        self._kinds = dict(metric_kinds)
        self._extra = "".join(f',{k}="{_escape(v)}"' for k, v in sorted(extra.items()))
        overflow = Counter("overflow", "Unused.", ("label",), registry=CollectorRegistry())
        self._limit = LabelLimiter(max_label_values, overflow)
        self._series: dict[tuple[int, tuple[str, ...]], _Series] = {}
        self._pending: dict[int, dict[_Series, list[float]]] = {}
        self._last: int | None = None  # last emitted bucket
        self._max_t = -math.inf
        self._buffered = 0
        self._dir: Path | None = None
        self._closed = False
        self.complete = False
        """Set once every result is in: only then does :meth:`aclose` write ``path``."""

    @property
    def pending_buckets(self) -> int:
        """Time buckets held in memory, waiting for the watermark."""
        return len(self._pending)

    @property
    def buffered_chars(self) -> int:
        """Rendered samples held in memory before the next spill."""
        return self._buffered

    @property
    def series(self) -> int:
        """Distinct series so far."""
        return len(self._series)

    async def start(self) -> None:
        """Create the spill directory next to the output file."""
        self._spill_dir()

    def _bucket(self, t: float) -> dict[_Series, list[float]] | None:
        """The pending time bucket of time ``t`` (None: no place in time for it)."""
        if not 0 <= t < _MAX_TIME:  # also NaN
            self.skipped += 1
            return None
        self._max_t = max(self._max_t, t)
        b = math.floor(t / self.step_s)
        if self._last is not None and b <= self._last:
            b = self._last + 1
            self.late += 1
        return self._pending.setdefault(b, {})

    def dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Count records that went to the dead-letter sink (``outcome="invalid"``) at their
        own time, as the live sidecar counts them."""
        for letter in letters:
            d = None if letter.at is None else self._bucket(letter.at)
            if d is not None:
                self._observe(d, _TRACES, ("replay", "invalid"), 1.0)

    async def write(self, results: Sequence[Result]) -> None:
        """Aggregate a batch into its time buckets; emit buckets the watermark passed."""
        limit = self._limit
        for r in results:
            ev = r.event
            d = self._bucket(ev.timestamp)
            if d is None:
                continue
            lb = ev.labels
            app = limit("app", lb.app)
            model = limit("model", lb.model)
            pv = limit("prompt_version", lb.prompt_version)
            biased = ev.type == "judge" and priority_only(ev)
            for metric, value in ev.scores.items():
                fam = _COUNT if self._kinds.get(metric) == "count" else _SCORE
                self._observe(d, _PRIORITY if biased else fam, (app, model, pv, metric), value)
            for flag in ev.flags:
                self._observe(d, _FLAGS, (app, flag), 1.0)
            fb = ev.feedback
            if fb is not None:
                if fb.thumbs is not None:
                    self._observe(d, _FEEDBACK, (app, model, pv, fb.thumbs), 1.0)
                    old = retracted(ev)
                    if old is not None:
                        self._observe(d, _RETRACTED, (app, model, pv, old), 1.0)
                if fb.rating is not None:
                    self._observe(d, _FEEDBACK, (app, model, pv, "rated"), 1.0)
                    self._observe(d, _RATING, (app, model, pv), fb.rating)
            for reason in ev.sampled.reasons:
                self._observe(d, _SAMPLED, (reason,), 1.0)
            if ev.type == "heuristic":  # one per trace; judge and feedback events join it
                self._observe(d, _TRACES, ("replay", "scored"), 1.0)
        self._emit(self._max_t - self.lateness_s)

    async def flush(self) -> None:
        """Spill rendered samples to disk (the file itself is assembled by :meth:`aclose`)."""
        self._spill()

    def finish(self) -> None:
        """Mark the run complete: :meth:`aclose` then writes ``path`` itself."""
        self.complete = True

    @property
    def partial_path(self) -> Path:
        """Where an unfinished run's samples go: ``path`` is left as it was."""
        return self.path.with_name(self.path.name + ".partial")

    async def aclose(self) -> None:
        """Emit every remaining bucket and assemble the file (atomically replaced).

        Unless :attr:`complete` was set, the file goes to :attr:`partial_path` instead
        (nothing at all when no sample was taken), so an interrupted or failed replay
        never replaces a good backfill with a short one that looks whole.
        """
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._finish)

    def _finish(self) -> None:
        try:
            self._emit(math.inf)
            self._spill()
            tmp = self._spill_dir() / "assembled.om"
            with tmp.open("wb") as out:
                for index, family in enumerate(FAMILIES):
                    out.write(family.header().encode())
                    members = [s for (f, _), s in self._series.items() if f == index]
                    for s in sorted(members, key=lambda s: s.key):
                        part = self._spill_dir() / f"{s.sid}.om"
                        if part.exists():
                            with part.open("rb") as src:
                                shutil.copyfileobj(src, out)
                out.write(b"# EOF\n")
            if self.complete:
                tmp.replace(self.path)
                self.partial_path.unlink(missing_ok=True)  # an earlier failed run's
            elif self._series:
                tmp.replace(self.partial_path)
                log.warning(
                    "replay incomplete: OpenMetrics samples so far left in the .partial file",
                    extra={"fields": {"path": str(self.partial_path)}},
                )
        except OSError as exc:
            raise PermanentError(f"openmetrics backfill {self.path}: {exc}") from exc
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)

    def _observe(
        self, d: dict[_Series, list[float]], fam: int, key: tuple[str, ...], v: float
    ) -> None:
        s = self._series.get((fam, key))
        if s is None:
            family = FAMILIES[fam]
            names = zip(family.labels, key, strict=True)
            labels = ",".join(f'{n}="{_escape(x)}"' for n, x in names) + self._extra
            s = self._series[(fam, key)] = _Series(len(self._series), family, key, labels)
        delta = d.get(s)
        if delta is None:
            delta = d[s] = [0.0] * len(s.values)
        buckets = s.family.buckets
        if buckets is None:
            delta[0] += v
        elif not math.isnan(v):
            delta[bisect_left(buckets, v)] += 1
            delta[-1] += v

    def _emit(self, watermark: float) -> None:
        """Emit, oldest first, every pending bucket that ends at or before ``watermark``."""
        for b in sorted(k for k in self._pending if (k + 1) * self.step_s <= watermark):
            if self._last is not None and (b - self._last - 1) * self.step_s <= self.max_gap_s:
                for filler in range(self._last + 1, b):
                    self._snapshot(filler)
                    self._spill_if_full()
            for s, delta in self._pending.pop(b).items():
                s.values = [x + y for x, y in zip(s.values, delta, strict=True)]
            self._snapshot(b)
            self._last = b
            self._spill_if_full()

    def _spill_if_full(self) -> None:
        if self._buffered >= self.spill_bytes:
            self._spill()

    def _snapshot(self, b: int) -> None:
        """Buffer every series' cumulative state at the end of bucket ``b``."""
        ts, start = self._ts(b + 1), None
        for s in self._series.values():
            if not s.emitted:  # a 0 point one step earlier, so increase() sees its first events
                start = start or self._ts(b)
                self._buffered += s.render([0.0] * len(s.values), start)
                s.emitted = True
            self._buffered += s.render(s.values, ts)

    def _ts(self, b: int) -> str:
        t = b * self.step_s
        return str(int(t)) if t.is_integer() else f"{t:.3f}"

    def _spill_dir(self) -> Path:
        if self._dir is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._dir = Path(
                    tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent)
                )
            except OSError as exc:
                raise PermanentError(f"openmetrics backfill {self.path}: {exc}") from exc
        return self._dir

    def _spill(self) -> None:
        """Append every series' buffered samples to its spill file."""
        if not self._buffered:
            return
        directory = self._spill_dir()
        try:
            for s in self._series.values():
                if s.buf:
                    with (directory / f"{s.sid}.om").open("a", encoding="utf-8") as fh:
                        fh.writelines(s.buf)
                    s.buf.clear()
        except OSError as exc:  # a half-written spill cannot be retried
            raise PermanentError(f"openmetrics backfill spill: {exc}") from exc
        self._buffered = 0
