from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from sidecar.sinks.histograms import HistogramFamily

BUCKETS = (0.05, 0.1, 0.5, 1.0, 2000)


def test_exposition_matches_prometheus_client_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = HistogramFamily("h", "A histogram.", ("app",), BUCKETS, ours)
    slow = Histogram("h", "A histogram.", ("app",), buckets=BUCKETS, registry=theirs)
    rng = random.Random(3)
    values = [rng.choice([0.05, 0.1, 1.0, 0.0, -1.0, 5000.0]) for _ in range(50)]
    values += [rng.random() for _ in range(500)]
    for i, v in enumerate(values):
        app = "a" if i % 3 else "b"
        fast.labels(app).observe(v)
        slow.labels(app).observe(v)
    strip = lambda text: [  # noqa: E731
        line for line in text.decode().splitlines() if "_created" not in line
    ]
    assert strip(generate_latest(ours)) == strip(generate_latest(theirs))


def test_nan_is_ignored() -> None:
    fam = HistogramFamily("n", "N.", (), BUCKETS, CollectorRegistry())
    fam.labels().observe(float("nan"))
    fam.labels().observe(0.5)
    assert sum(fam.labels().counts) == 1 and fam.labels().sum == 0.5


def test_infinities_are_ignored() -> None:
    """An infinite score (a retriever's overflow) would leave ``_sum`` at inf, or at NaN
    once a -inf followed, for the rest of the process: every mean panel broken."""
    fam = HistogramFamily("i", "I.", (), BUCKETS, CollectorRegistry())
    for v in (float("inf"), 0.5, float("-inf")):
        fam.labels().observe(v)
    assert sum(fam.labels().counts) == 1 and fam.labels().sum == 0.5
