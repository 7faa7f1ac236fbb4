"""Agreement math against hand-computed values, and the tracker's windows, flags and caps."""

from __future__ import annotations

import math
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sidecar.scorers.judge import (
    AgreementSettings,
    AgreementTracker,
    CanaryMetrics,
    auroc,
    cohen_kappa,
)
from sidecar.scorers.judge.agreement import pair_stats
from tests.conftest import require_tool


def test_auroc_hand_computed() -> None:
    # positives 0.35, 0.8; negatives 0.1, 0.4 → pairs won: (0.35>0.1), (0.8>0.1), (0.8>0.4) = 3/4
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9], [True, True, False]) == 0.0
    # ties count one half: positives 1, 1; negatives 0, 1 → (1 + ½ + 1 + ½) / 4
    assert auroc([1.0, 1.0, 0.0, 1.0], [True, True, False, False]) == 0.75
    assert auroc([0.5, 0.5, 0.5], [True, False, True]) == 0.5


def test_auroc_is_nan_without_both_classes() -> None:
    assert math.isnan(auroc([0.2, 0.9], [True, True]))
    assert math.isnan(auroc([], []))


def test_cohen_kappa_hand_computed() -> None:
    # The textbook table: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
    # po = 35/50 = 0.7; pe = 0.5·0.6 + 0.5·0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4
    a = [True] * 20 + [True] * 5 + [False] * 10 + [False] * 15
    b = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([True, False], [True, False]) == 1.0
    assert cohen_kappa([True, False], [False, True]) == -1.0
    # one class only on both sides: pe = 1, kappa undefined
    assert math.isnan(cohen_kappa([True, True], [True, True]))
    assert math.isnan(cohen_kappa([], []))


def test_pair_stats_hand_computed() -> None:
    stats = pair_stats([(1.0, 0.9), (0.5, 0.0), (0.2, 0.3)], close_within=0.2, pass_at=0.5)
    assert stats["mean_abs_diff"] == pytest.approx((0.1 + 0.5 + 0.1) / 3)
    assert stats["share_close"] == pytest.approx(2 / 3)
    # passes (T, T, F) vs (T, F, F): po = 2/3, pe = 2/3·1/3 + 1/3·2/3 = 4/9 → (2/9)/(5/9) = 0.4
    assert stats["kappa"] == pytest.approx(0.4)
    assert stats["samples"] == 3
    empty = pair_stats([], close_within=0.2, pass_at=0.5)
    assert empty["samples"] == 0 and math.isnan(empty["mean_abs_diff"])


def tracker(
    registry: CollectorRegistry | None = None, max_apps: int = 100, **over: object
) -> tuple[AgreementTracker, CollectorRegistry]:
    registry = registry or CollectorRegistry()
    settings = AgreementSettings.model_validate({"window": 3, **over})
    return AgreementTracker(settings, "cheap", registry, max_apps=max_apps), registry


def get(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_the_event_completing_a_pair_is_flagged_either_order() -> None:
    t, registry = tracker()
    assert t.observe("cheap", "t1", "bot", {"faithfulness": 1.0}, None).flags == []
    second = t.observe("strong", "t1", "bot", {"faithfulness": 0.2}, None)
    assert second.flags == ["judge_disagreement"]
    assert second.detail["disagreement"] == {"cheap/strong": {"faithfulness": [1.0, 0.2]}}
    # shadow first: the primary's event completes the pair; the label order stays primary/other
    assert t.observe("strong", "t2", "bot", {"faithfulness": 0.9}, None).flags == []
    close = t.observe("cheap", "t2", "bot", {"faithfulness": 0.8}, None)
    assert close.flags == []
    labels = {"app": "bot", "metric": "faithfulness", "judges": "cheap/strong"}
    assert get(registry, "rag_sidecar_judge_agreement", stat="samples", **labels) == 2
    assert get(
        registry, "rag_sidecar_judge_agreement", stat="mean_abs_diff", **labels
    ) == pytest.approx((0.8 + 0.1) / 2)
    assert get(registry, "rag_sidecar_judge_agreement", stat="share_close", **labels) == 0.5


def test_two_secondary_judges_are_not_compared_with_each_other() -> None:
    t, registry = tracker()
    t.observe("shadow", "t1", "bot", {"faithfulness": 1.0}, None)
    assert t.observe("escalation", "t1", "bot", {"faithfulness": 0.0}, None).flags == []
    assert get(registry, "rag_sidecar_judge_agreement", app="bot", metric="faithfulness",
               judges="shadow/escalation", stat="samples") is None  # fmt: skip


def test_windows_are_bounded() -> None:
    t, registry = tracker()
    for i in range(10):
        t.observe("cheap", f"t{i}", "bot", {"faithfulness": 1.0}, None)
        t.observe("strong", f"t{i}", "bot", {"faithfulness": 1.0 if i < 7 else 0.0}, None)
    labels = {"app": "bot", "metric": "faithfulness", "judges": "cheap/strong"}
    assert get(registry, "rag_sidecar_judge_agreement", stat="samples", **labels) == 3
    assert get(registry, "rag_sidecar_judge_agreement", stat="mean_abs_diff", **labels) == 1.0


def test_pending_traces_are_capped() -> None:
    t, registry = tracker(pending=2)
    for i in range(3):
        t.observe("cheap", f"t{i}", "bot", {"faithfulness": 1.0}, None)
    t.observe("strong", "t0", "bot", {"faithfulness": 0.0}, None)  # t0 was forgotten
    assert len(t._pending) == 2
    assert get(registry, "rag_sidecar_judge_agreement", app="bot", metric="faithfulness",
               judges="cheap/strong", stat="samples") is None  # fmt: skip


def test_apps_beyond_the_cap_fold_into_other() -> None:
    t, registry = tracker(max_apps=1)
    for app in ("a", "b", "c"):
        t.observe("cheap", f"t-{app}", app, {"faithfulness": 1.0}, "up")
    assert get(registry, "rag_sidecar_judge_feedback_samples", app="a", judge="cheap") == 1
    assert get(registry, "rag_sidecar_judge_feedback_samples", app="other", judge="cheap") == 2
    assert get(registry, "rag_sidecar_judge_label_overflow_total", label="app") == 2


def test_feedback_auroc_and_flags() -> None:
    t, registry = tracker(feedback_window=10)
    seen = [(0.9, "up"), (0.7, "up"), (0.2, "down"), (0.85, "down"), (0.1, "up"), (0.5, None)]
    flags = [
        t.observe("cheap", f"t{i}", "bot", {"faithfulness": f}, thumbs).flags
        for i, (f, thumbs) in enumerate(seen)
    ]
    assert flags == [
        [],
        [],
        [],
        ["judge_feedback_disagreement"],
        ["judge_feedback_disagreement"],
        [],
    ]
    # up: 0.9, 0.7, 0.1; down: 0.2, 0.85 → won: 0.9>0.2, 0.9>0.85, 0.7>0.2 = 3 of 6
    assert get(registry, "rag_sidecar_judge_feedback_auroc", app="bot", judge="cheap") == 0.5
    assert get(registry, "rag_sidecar_judge_feedback_samples", app="bot", judge="cheap") == 5


def test_auroc_is_nan_until_both_thumbs_are_seen() -> None:
    t, registry = tracker()
    t.observe("cheap", "t1", "bot", {"faithfulness": 0.9}, "up")
    value = get(registry, "rag_sidecar_judge_feedback_auroc", app="bot", judge="cheap")
    assert value is not None and math.isnan(value)


def test_exposition_passes_promtool() -> None:
    promtool = require_tool("promtool")
    t, registry = tracker()
    t.observe("cheap", "t1", "bot", {"faithfulness": 1.0}, "up")
    t.observe("strong", "t1", "bot", {"faithfulness": 1.0}, "up")  # kappa NaN, AUROC NaN
    CanaryMetrics(registry).bind("cheap")
    proc = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
