"""Settings of drift and regression detection (``drift:`` in the YAML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

OnlineTest = Literal["page_hinkley", "cusum"]
DEFAULT_METRICS = (
    "faithfulness",
    "answer_relevance",
    "context_relevance",
    "groundedness_lexical",
    "answer_query_overlap",
    "context_query_overlap",
    "groundedness_semantic",
    "answer_relevance_semantic",
)
DEFAULT_FLAGS = ("low_groundedness", "refusal", "empty_retrieval", "judge_contradicted")


class WindowTestSettings(BaseModel):
    """Current window against the trailing baseline (and the frozen reference, if any)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_samples: int = Field(
        100, ge=2, description="Values needed on each side before ks, mean_diff or chi2 may alarm."
    )
    psi_min_samples: int = Field(
        400, ge=2, description="Values needed on each side for psi (its noise floor is ~bins/n)."
    )
    alpha: float = Field(
        0.001, gt=0, lt=1, description="p-value below which ks, mean_diff and chi2 may alarm."
    )
    psi_alarm: float = Field(
        0.25, gt=0, description="PSI alarm threshold (< 0.1 stable, 0.1-0.25 moderate)."
    )
    psi_eps: float = Field(1e-4, gt=0, lt=0.01, description="PSI smoothing of empty bins.")
    ks_min_d: float = Field(0.1, ge=0, le=1, description="Smallest KS D that may alarm.")
    min_mean_diff: float = Field(
        0.05, ge=0, description="Smallest |window mean − baseline mean| that may alarm."
    )
    min_rate_diff: float = Field(
        0.01, ge=0, description="Smallest |window rate − baseline rate| that may alarm (chi2)."
    )
    min_expected: float = Field(
        5.0, ge=0, description="Below this expected count, chi2 takes Fisher's exact p-value."
    )


class OnlineSettings(BaseModel):
    """Page-Hinkley / CUSUM on each score stream (units: the score's standard deviation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detectors: list[OnlineTest] = Field(
        default_factory=lambda: list[OnlineTest](["page_hinkley"]),
        description="Online detectors to run.",
    )
    direction: Literal["both", "down", "up"] = "both"
    burn_in: int = Field(
        300, ge=10, description="Values used to learn the reference mean/std after each reset."
    )
    ph_delta: float = Field(0.5, ge=0, description="Page-Hinkley tolerance δ (σ units).")
    ph_lambda: float = Field(18.0, gt=0, description="Page-Hinkley alarm threshold λ (σ units).")
    cusum_k: float = Field(0.5, ge=0, description="CUSUM reference value k (σ units).")
    cusum_h: float = Field(18.0, gt=0, description="CUSUM alarm threshold h (σ units).")
    z_clip: float = Field(3.0, gt=0, description="Standardised values are clipped to ±z_clip.")
    min_std: float = Field(0.02, gt=0, description="Floor of the learnt standard deviation.")
    hold_s: float = Field(
        900.0, ge=0, description="An online alarm stays detected this long (event time)."
    )


class VersionSettings(BaseModel):
    """Live A/B readout when a new (model, prompt_version) appears for an app."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the published CI.")
    alpha: float = Field(0.01, gt=0, lt=1, description="p-value below which a diff may alarm.")
    min_samples: int = Field(100, ge=2, description="Values needed on each side to alarm.")
    min_effect: float = Field(0.02, ge=0, description="Smallest |diff| that may alarm.")
    max_variants: int = Field(32, ge=2, description="(model, prompt_version) pairs kept per app.")
    refresh_s: float = Field(10.0, ge=0, description="Seconds between readout gauge updates.")


class DriftSettings(BaseModel):
    """Drift and regression detection over score, flag and thumbs-down series."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    metrics: list[str] = Field(
        default_factory=lambda: list(DEFAULT_METRICS),
        description="Ratio scores (in [0, 1]) to monitor; others are ignored.",
    )
    flags: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FLAGS),
        description="Flags whose rate is monitored (judge_* over judge events, others over "
        "heuristic events); exported as metric 'flag:<name>'.",
    )
    thumbs_down: bool = Field(
        True, description="Monitor thumbs-down share of thumbs feedback (metric 'thumbs_down')."
    )
    bins: int = Field(20, ge=2, le=200, description="Histogram bins over [0, 1] for scores.")
    window_s: float = Field(
        900.0, gt=0, description="Tumbling window length, aligned to the epoch, by event time."
    )
    baseline_slot_s: float = Field(
        3600.0, gt=0, description="Trailing baseline ring granularity (a multiple of window_s)."
    )
    baseline_slots: int = Field(
        24, ge=1, description="Slots in the trailing baseline (24 × 1 h = the previous day)."
    )
    reference_path: Path | None = Field(
        None, description="Frozen reference histograms (JSON); tests *_ref compare against it."
    )
    max_series: int = Field(
        2000,
        ge=1,
        description="Series kept (LRU; ~14 KiB each with a full day); evictions are counted.",
    )
    idle_s: float = Field(
        172800.0, gt=0, description="Series without a value for this long are dropped."
    )
    quiet_s: float = Field(
        21600.0,
        gt=0,
        description="A series without a value for this long (a rolled-back version, an idle "
        "app) clears its alarms and version readout (at least one window; kept until idle_s).",
    )
    max_future_s: float = Field(
        300.0, ge=0, description="Event times further ahead of the clock are taken as now."
    )
    snapshot_path: Path | None = Field(
        None, description="State file (restored at start, written on a timer and at close)."
    )
    snapshot_interval_s: float = Field(60.0, gt=0, description="Seconds between snapshots.")
    max_pending_events: int = Field(
        10000, ge=1, description="Drift events kept while emitting them fails (oldest dropped)."
    )
    tests: WindowTestSettings = Field(default_factory=WindowTestSettings)
    online: OnlineSettings = Field(default_factory=OnlineSettings)
    versions: VersionSettings = Field(default_factory=VersionSettings)

    @model_validator(mode="after")
    def _slots_hold_windows(self) -> DriftSettings:
        ratio = self.baseline_slot_s / self.window_s
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError("baseline_slot_s must be a whole multiple of window_s")
        return self

    @property
    def baseline_s(self) -> float:
        """Span of the trailing baseline."""
        return self.baseline_slot_s * self.baseline_slots
