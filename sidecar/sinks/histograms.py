"""Lock-free histograms for the per-trace hot path, exposed as ordinary Prometheus histograms.

prometheus-client's ``Histogram.observe`` takes locks and validates on every call
(about 1.5 µs); a trace records a dozen scores. These histograms are updated only
from the event loop's thread and read at scrape time (also on the loop), so a
plain list increment is enough. The exposition is the same as prometheus-client's:
``_bucket{le}`` (cumulative), ``_sum``, ``_count``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from math import isfinite

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class FastHistogram:
    """One labelled series: per-bucket counts (non-cumulative) and the sum."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # last slot: +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record a value (``le``: one equal to a bound falls in that bucket); NaN and ±inf
        are ignored (one would turn ``_sum`` into NaN or inf for the life of the process)."""
        if isfinite(value):
            self.counts[bisect_left(self._bounds, value)] += 1
            self.sum += value


class HistogramFamily(Collector):
    """A labelled histogram family registered on a registry."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(float(b) for b in buckets)
        self._les = [str(floatToGoString(b)) for b in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._series: dict[tuple[str, ...], FastHistogram] = {}
        registry.register(self)

    def labels(self, *values: str) -> FastHistogram:
        """The series for these label values (created on first use)."""
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}")
            series = self._series[values] = FastHistogram(self.bounds)
        return series

    def remove(self, *values: str) -> None:
        """Stop exporting the series for these label values (if it exists)."""
        self._series.pop(values, None)

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in list(self._series.items()):
            total = 0
            buckets = []
            for le, n in zip(self._les, series.counts, strict=True):
                total += n
                buckets.append((le, float(total)))
            family.add_metric(list(values), buckets, series.sum)
        yield family
