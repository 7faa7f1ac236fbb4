"""The judge wired into the pipeline: judge events flow to the sinks, heuristics never wait."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from tests.conftest import free_port
from tests.support.fake_judge import FakeJudge, Reply

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "traces.jsonl"


async def run_file(tmp_path: Path, judge: dict[str, object], **over: object):  # type: ignore[no-untyped-def]
    events = tmp_path / "events.jsonl"
    settings = load_settings(
        sources=[str(EXAMPLES)],
        events=f"file:{events}",
        dead_letter=f"file:{tmp_path / 'dlq.jsonl'}",
        judge=judge,
        **over,
    )
    registry = CollectorRegistry()
    pipe = build_pipeline(settings, registry)
    t0 = time.monotonic()
    await pipe.start()
    assert await pipe.drained()
    heuristics_s = time.monotonic() - t0
    await pipe.aclose()
    docs = [orjson.loads(x) for x in events.read_text().splitlines()]
    return docs, registry, heuristics_s


async def test_sampled_traces_get_judge_events(tmp_path: Path) -> None:
    async with FakeJudge() as fake:
        docs, registry, _ = await run_file(
            tmp_path,
            {"url": fake.url, "rate_per_minute": 100_000, "concurrency": 4, "queue_size": 1000},
            sampling={"rate": 0.2},
        )
    heur = [d for d in docs if d["type"] == "heuristic"]
    judged = [d for d in docs if d["type"] == "judge"]
    assert len(heur) == 300
    sampled = {d["trace_id"] for d in heur if d["sampled"]["selected"]}
    assert judged and {d["trace_id"] for d in judged} == sampled
    assert len(fake.requests) <= len(sampled)  # identical traces are judged once (cache)
    one = judged[0]
    assert one["event_id"] != next(d["event_id"] for d in heur if d["trace_id"] == one["trace_id"])
    assert one["scorer_version"].startswith("judge-")
    assert {"answer_relevance", "context_relevance", "context_precision"} <= set(one["scores"])
    assert "claims" in one["detail"] and one["detail"]["tokens"]["prompt"] > 0

    def faith_count(name: str) -> float:
        return sum(
            s.value
            for fam in registry.collect()
            for s in fam.samples
            if s.name == name and s.labels["metric"] == "faithfulness"
        )

    # The random sample's judge scores in rag_sidecar_score; those of traces judged only for
    # a priority reason (thumbs-down, flags: bad by selection) in their own family.
    random = [d for d in judged if "rate" in d["detail"]["sample_reasons"]]
    assert 0 < len(random) < len(judged)
    assert faith_count("rag_sidecar_score_count") == sum(
        "faithfulness" in d["scores"] for d in random
    )
    assert faith_count("rag_sidecar_judge_priority_score_count") == sum(
        "faithfulness" in d["scores"] for d in judged if d not in random
    )


async def test_slow_judge_never_slows_heuristics(tmp_path: Path) -> None:
    async with FakeJudge(default=Reply(delay_s=2.0)) as fake:
        docs, registry, heuristics_s = await run_file(
            tmp_path,
            {
                "url": fake.url,
                "rate_per_minute": 100_000,
                "concurrency": 1,
                "queue_size": 2,
                "shutdown_timeout_s": 0.5,
            },
            sampling={"rate": 1.0},
        )
    assert heuristics_s < 5.0, "heuristics finished while the judge was busy"
    assert sum(d["type"] == "heuristic" for d in docs) == 300
    skipped = registry.get_sample_value(
        "rag_sidecar_judge_skipped_total", {"judge": "default", "reason": "backpressure"}
    )
    assert skipped is not None and skipped > 250


async def test_a_blocking_background_tier_judges_every_sample(tmp_path: Path) -> None:
    """score and replay (pipeline.background_overflow: block): a judge slower than the
    input with a queue of 2 judged ~10 of 300 and skipped the rest as backpressure."""
    async with FakeJudge(default=Reply(delay_s=0.01)) as fake:
        docs, registry, _ = await run_file(
            tmp_path,
            {"url": fake.url, "rate_per_minute": 100_000, "concurrency": 2, "queue_size": 2,
             "cache_size": 0},
            sampling={"rate": 1.0},
            pipeline={"background_overflow": "block"},
        )  # fmt: skip
    assert sum(d["type"] == "heuristic" for d in docs) == 300
    assert sum(d["type"] == "judge" for d in docs) == 300
    skipped = registry.get_sample_value(
        "rag_sidecar_judge_skipped_total", {"judge": "default", "reason": "backpressure"}
    )
    assert not skipped


async def test_a_blocking_background_tier_is_offered_every_sample_before_drained(
    tmp_path: Path,
) -> None:
    """Batches were acknowledged before their samples waited for room in the judge's queue:
    drained() (the end of a score run) came with the tail still waiting, and the drain
    timeout then cut it off, uncounted (296 of 300 judged here)."""
    async with FakeJudge(default=Reply(delay_s=0.02)) as fake:
        docs, _, _ = await run_file(
            tmp_path,
            {"url": fake.url, "rate_per_minute": 100_000, "concurrency": 2, "queue_size": 2,
             "cache_size": 0},
            sampling={"rate": 1.0},
            pipeline={"background_overflow": "block", "drain_timeout_s": 0.5},
        )  # fmt: skip
    assert sum(d["type"] == "judge" for d in docs) == 300


async def test_cli_run_with_judge_url(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    async with FakeJudge() as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sidecar",
            "run",
            "--source",
            str(EXAMPLES),
            "--events",
            f"file:{events}",
            "--dead-letter",
            f"file:{tmp_path / 'd.jsonl'}",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(free_port()),
            "--judge-url",
            fake.url,
            "--judge-model",
            "tiny",
            "--judge-rate",
            "0.1",
            "--exit-when-done",
            cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
            env={
                **__import__("os").environ,
                "RAG_SIDECAR_JUDGE_API_KEY": "sk-test-123",
                "RAG_SIDECAR_JUDGE__RATE_PER_MINUTE": "100000",
            },
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert fake.requests, "the judge was called"
        auth = fake.requests[0].headers.get("authorization")
        assert auth == "Bearer sk-test-123"
        assert fake.requests[0].body["model"] == "tiny"
    assert b"sk-test-123" not in err, "secrets never reach the logs"
    types = [orjson.loads(x)["type"] for x in events.read_text().splitlines()]
    assert types.count("heuristic") == 300 and types.count("judge") > 0


async def test_cli_score_report_includes_the_judge(tmp_path: Path) -> None:
    """``score`` waits for the judge and its report carries the judge's scores and costs."""
    out = tmp_path / "out"
    async with FakeJudge() as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sidecar", "score", str(EXAMPLES), "--out", str(out),
            "--judge-url", fake.url, "--judge-model", "tiny", "--judge-rate", "0.1",
            cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "RAG_SIDECAR_JUDGE__RATE_PER_MINUTE": "100000"},
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        requests = len(fake.requests)
    docs = [orjson.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    judged = [d for d in docs if d["type"] == "judge"]
    assert judged and len(judged) == requests
    tokens = sum(
        d["detail"]["tokens"]["prompt"] + d["detail"]["tokens"]["completion"] for d in judged
    )
    md = (out / "report.md").read_text()
    assert f"| judge results | {len(judged)} |" in md
    row = next(line for line in md.splitlines() if line.startswith("| judge | tiny |"))
    assert f"| {len(judged)} | 0 | {tokens / len(judged):.3f} |" in row
    faith = [d["scores"]["faithfulness"] for d in judged if "faithfulness" in d["scores"]]
    per_group = re.findall(r"^\| faithfulness \| (\d+) \|", md, re.MULTILINE)
    assert sum(map(int, per_group)) == len(faith) > 0
    assert f"{len(judged)} judge results" in err.decode()
