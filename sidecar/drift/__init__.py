"""Drift and regression detection over score, flag and feedback streams.

Per series (app, model, prompt_version, metric):

* window tests — the current tumbling window (default 15 min, event time)
  against the trailing day and an optional frozen reference: PSI, binned
  Kolmogorov–Smirnov and Welch's mean difference for ratio scores, χ² for flag
  and thumbs-down rates (:mod:`.detectors`, :mod:`.windows`);
* online change detection on every score value — Page-Hinkley and/or CUSUM on
  standardised values, which catches a sudden drop within tens of values
  (:mod:`.online`);
* a live A/B readout when a new (model, prompt_version) appears for an app:
  candidate − baseline mean with a confidence interval (:mod:`.versions`).

:class:`DriftMonitor` holds the state (pure, synchronous); :class:`DriftSink`
wraps it as a pipeline sink exporting gauges and emitting ``type="drift"``
events; :mod:`.state` snapshots and restores it. Memory is bounded per series
(fixed-bin histograms) and in series count (LRU cap). No numpy/scipy.
"""

from .monitor import DriftMonitor
from .outputs import DRIFT_VERSION, Finding, finding_event
from .settings import DriftSettings
from .sink import DriftSink
from .windows import ReferenceSet

__all__ = [
    "DRIFT_VERSION",
    "DriftMonitor",
    "DriftSettings",
    "DriftSink",
    "Finding",
    "ReferenceSet",
    "finding_event",
]
