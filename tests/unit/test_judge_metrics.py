"""Judge metric families: names, pre-created series, valid exposition."""

from __future__ import annotations

import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from sidecar.scorers.judge import REQUEST_OUTCOMES, SKIP_REASONS, JudgeMetrics
from tests.conftest import require_tool


def test_series_exist_at_zero_and_gauges_read_live_values() -> None:
    registry = CollectorRegistry()
    metrics = JudgeMetrics(registry)
    depth = [3]
    metrics.bind("cheap", queue_depth=lambda: depth[0], breaker=lambda: 2)
    get = registry.get_sample_value
    for outcome in REQUEST_OUTCOMES:
        assert get("rag_sidecar_judge_requests_total", {"judge": "cheap", "outcome": outcome}) == 0
    for reason in SKIP_REASONS:
        assert get("rag_sidecar_judge_skipped_total", {"judge": "cheap", "reason": reason}) == 0
    assert get("rag_sidecar_judge_queue_depth", {"judge": "cheap"}) == 3
    depth[0] = 5
    assert get("rag_sidecar_judge_queue_depth", {"judge": "cheap"}) == 5
    assert get("rag_sidecar_judge_breaker_state", {"judge": "cheap"}) == 2
    metrics.spent("cheap", 100, 20, 0.25)
    assert get("rag_sidecar_judge_tokens_total", {"judge": "cheap", "kind": "prompt"}) == 100
    assert get("rag_sidecar_judge_cost_usd_total", {"judge": "cheap"}) == 0.25
    # a second judge shares the families
    metrics.bind("strong", queue_depth=lambda: 0, breaker=lambda: 0)
    assert get("rag_sidecar_judge_cache_hits_total", {"judge": "strong"}) == 0


def test_exposition_passes_promtool() -> None:
    promtool = require_tool("promtool")
    registry = CollectorRegistry()
    JudgeMetrics(registry).bind("default", queue_depth=lambda: 0, breaker=lambda: 0)
    proc = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
