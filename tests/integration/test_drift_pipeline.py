"""Drift wired into the pipeline: a groundedness drop in a file becomes drift events and gauges,
and the detector state survives a restart through the snapshot file."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from tests.conftest import make_trace

pytestmark = pytest.mark.integration
T0 = 1_795_168_800.0
GOOD = "Open Settings, choose Security and click Reset password."
BAD = "Contact our billing team by fax at the Berlin office on Tuesdays."


def write_stream(path: Path, n: int, change_at: int) -> None:
    rng = random.Random(5)
    lines = []
    for i in range(n):
        answer = GOOD if (i < change_at or rng.random() < 0.1) else BAD
        lines.append(orjson.dumps(make_trace(trace_id=f"d{i}", timestamp=T0 + i, answer=answer)))
    path.write_bytes(b"\n".join(lines) + b"\n")


async def run(tmp_path: Path, source: Path) -> tuple[list[dict[str, object]], CollectorRegistry]:
    events = tmp_path / "events.jsonl"
    settings = load_settings(
        sources=[str(source)],
        events=f"file:{events}",
        dead_letter=f"file:{tmp_path / 'd.jsonl'}",
        drift={
            "window_s": 300,
            "snapshot_path": str(tmp_path / "drift.json"),
            "online": {"burn_in": 200},
        },
    )
    registry = CollectorRegistry()
    pipe = build_pipeline(settings, registry)
    await pipe.start()
    assert await pipe.drained()
    await pipe.aclose()
    return [orjson.loads(x) for x in events.read_text().splitlines()], registry


async def test_a_quality_drop_raises_drift_events_and_gauges(tmp_path: Path) -> None:
    src = tmp_path / "stream.jsonl"
    write_stream(src, 3000, change_at=2000)
    docs, registry = await run(tmp_path, src)
    drift = [d for d in docs if d["type"] == "drift"]
    assert sum(d["type"] == "heuristic" for d in docs) == 3000
    fired = [
        d
        for d in drift
        if "drift_detected" in d["flags"] and d["detail"]["metric"] == "groundedness_lexical"
    ]  # type: ignore[index]
    assert fired, "the groundedness drop was detected"
    first = min(d["detail"]["current"]["end"] for d in fired)  # type: ignore[index]
    assert T0 + 2000 <= first <= T0 + 2400, "caught within minutes of the change, not before"
    labels = {
        "app": "support-bot",
        "model": "gpt-4o-mini",
        "prompt_version": "v1",
        "metric": "groundedness_lexical",
        "test": "page_hinkley",
    }
    assert registry.get_sample_value("rag_sidecar_drift_detected", labels) is not None
    assert (tmp_path / "drift.json").is_file(), "state snapshotted at close"
    # No drift event reached the metrics as a score.
    scores = {
        s.labels["metric"]
        for fam in registry.collect()
        for s in fam.samples
        if s.name == "rag_sidecar_score_count"
    }
    assert "psi" not in scores and "page_hinkley" not in scores
