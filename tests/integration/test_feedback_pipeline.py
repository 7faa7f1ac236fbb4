"""Late feedback through the whole pipeline: a JSONL file mixing traces and feedback, the
priority-judge path with the fake judge, OTLP annotation carriers, metrics counted once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from sidecar.sinks.prometheus import PrometheusSink
from tests.conftest import make_trace
from tests.support import otel_spans as o
from tests.support.fake_judge import FakeJudge
from tests.support.memory import MemoryDLQ, MemorySink

pytestmark = pytest.mark.integration
NO_SAMPLING = {"rate": 0.0, "priority_flags": [], "low_retrieval_score": None}


def fb(trace_id: str, **over: Any) -> dict[str, Any]:
    return {"type": "feedback", "trace_id": trace_id, "timestamp": "2026-11-20T10:02:00Z", **over}


async def run_file(
    tmp_path: Path, rows: list[dict[str, Any] | bytes], **over: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], CollectorRegistry]:
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows)
    )
    events, dlq = tmp_path / "events.jsonl", tmp_path / "dlq.jsonl"
    settings = load_settings(
        sources=[str(src)], events=f"file:{events}", dead_letter=f"file:{dlq}", **over
    )
    registry = CollectorRegistry()
    pipe = build_pipeline(settings, registry)
    await pipe.start()
    assert await pipe.drained()
    await pipe.aclose()
    docs = [orjson.loads(x) for x in events.read_text().splitlines()]
    letters = [orjson.loads(x) for x in dlq.read_text().splitlines()] if dlq.exists() else []
    return docs, letters, registry


SUPPORT_V1 = {"app": "support-bot", "model": "gpt-4o-mini", "prompt_version": "v1"}


def counted(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_jsonl_mixing_traces_and_feedback(tmp_path: Path) -> None:
    rows: list[dict[str, Any] | bytes] = [
        fb("c", thumbs="up", source="widget"),  # before its trace
        make_trace(trace_id="a", feedback={"thumbs": "up"}),  # inline
        fb("a", thumbs="up"),  # the same as inline: a duplicate
        make_trace(trace_id="b"),
        fb("b", thumbs="down", rating=1, comment="wrong plan"),
        fb("b", thumbs="down", rating=1, comment="wrong plan"),  # re-sent
        make_trace(trace_id="c"),
        fb("ghost", thumbs="down"),  # its trace never comes
        fb("b", thumbs="meh"),  # invalid
        b'{"type": "feedback", "thumbs": "up"}',  # no trace id
    ]
    docs, letters, reg = await run_file(tmp_path, rows, sampling=NO_SAMPLING)
    heur = {d["trace_id"] for d in docs if d["type"] == "heuristic"}
    feedback = {d["trace_id"]: d for d in docs if d["type"] == "feedback"}
    assert heur == {"a", "b", "c"} and set(feedback) == {"b", "c", "ghost"}
    b, c, ghost = feedback["b"], feedback["c"], feedback["ghost"]
    assert b["detail"]["joined"] and b["detail"]["comment"] == "wrong plan"
    assert b["labels"]["app"] == "support-bot" and b["scores"] == {}
    assert (
        b["detail"]["time_to_feedback_s"] == 120.0
        and "groundedness_lexical" in b["detail"]["scores"]
    )
    assert c["detail"]["joined"] and c["detail"]["source"] == "widget"
    assert ghost["detail"] == {
        "joined": False,
        "time_to_feedback_s": None,
        "thumbs": "down",
        "rating": None,
        "source": None,
        "judged": False,
        "reason": "shutdown",
    }
    assert [(x["reason"], x["detail"][:9]) for x in letters] == [("invalid_trace", "feedback:")] * 2
    # Prometheus: every thumbs counted exactly once (a inline, b and c late, ghost unjoined).
    fb_total = "rag_sidecar_feedback_total"
    assert counted(reg, fb_total, **SUPPORT_V1, value="up") == 2
    assert counted(reg, fb_total, **SUPPORT_V1, value="down") == 1
    assert counted(reg, fb_total, **SUPPORT_V1, value="rated") == 1
    unknown = {"app": "unknown", "model": "unknown", "prompt_version": "unknown"}
    assert counted(reg, fb_total, **unknown, value="down") == 1
    assert counted(reg, "rag_sidecar_traces_total", source="file", outcome="feedback") == 5
    assert counted(reg, "rag_sidecar_traces_total", source="file", outcome="scored") == 3
    assert counted(reg, "rag_sidecar_feedback_joined_total", order="trace_first") == 1
    assert counted(reg, "rag_sidecar_feedback_joined_total", order="feedback_first") == 1
    assert counted(reg, "rag_sidecar_feedback_duplicates_total", kind="identical") == 2
    assert counted(reg, "rag_sidecar_feedback_unjoined_total", reason="shutdown") == 1
    score_count = counted(
        reg,
        "rag_sidecar_score_count",
        app="support-bot",
        model="gpt-4o-mini",
        prompt_version="v1",
        metric="groundedness_lexical",
    )
    assert score_count == 3, "feedback events never count a trace's scores again"


async def test_feedback_off_dead_letters_feedback_records(tmp_path: Path) -> None:
    docs, letters, _ = await run_file(
        tmp_path, [make_trace(trace_id="a"), fb("a", thumbs="up")], feedback={"enabled": False}
    )
    assert [d["type"] for d in docs] == ["heuristic"]
    assert [x["reason"] for x in letters] == ["invalid_trace"]


async def test_late_thumbs_down_on_an_unsampled_trace_gets_judged(tmp_path: Path) -> None:
    async with FakeJudge() as fake:
        rows: list[dict[str, Any] | bytes] = [
            make_trace(trace_id="quiet"),
            make_trace(trace_id="happy"),
            fb("quiet", thumbs="down", comment="not what I asked"),
            fb("happy", thumbs="up"),
        ]
        docs, _, reg = await run_file(
            tmp_path,
            rows,
            sampling=NO_SAMPLING,
            judge={"url": fake.url, "rate_per_minute": 1000, "queue_size": 10},
        )
    assert not any(d["sampled"]["selected"] for d in docs if d["type"] == "heuristic")
    [judged] = [d for d in docs if d["type"] == "judge"]
    assert judged["trace_id"] == "quiet"
    assert judged["detail"]["sample_reasons"] == ["thumbs_down_late"]
    assert "faithfulness" in judged["scores"]
    assert len(fake.requests) == 1 and "not what I asked" not in fake.requests[0].text
    assert counted(reg, "rag_sidecar_feedback_judge_offers_total", outcome="accepted") == 1
    feedback = {d["trace_id"] for d in docs if d["type"] == "feedback"}
    assert feedback == {"quiet", "happy"}


async def test_late_otlp_annotation_becomes_a_feedback_event() -> None:
    settings = load_settings(
        sources=["otlp+http://127.0.0.1:0"],
        otlp={"expire_interval_s": 0.05, "assembly": {"settle_s": 0}},
    )
    registry = CollectorRegistry()
    sink = MemorySink()
    pipe = build_pipeline(settings, registry, sinks=[sink], dead_letters=MemoryDLQ())
    pipe.sinks.append(PrometheusSink(registry))
    await pipe.start()
    try:
        src: Any = pipe.sources[0]
        req = o.llama_index_rag()
        src.accept(req.resource_spans, "http")
        await _until(lambda: any(r.event.type == "heuristic" for r in sink.results))
        src.accept(o.feedback_carrier(req).resource_spans, "http")
        await _until(lambda: any(r.event.type == "feedback" for r in sink.results))
    finally:
        await pipe.aclose()
    [ev] = [r.event for r in sink.results if r.event.type == "feedback"]
    assert ev.trace_id == req.trace_id and ev.detail is not None
    assert ev.detail["joined"] is True and ev.detail["thumbs"] == "down"
    assert ev.detail["comment"] == "Wrong menu name." and ev.detail["source"] == "otlp_annotation"
    assert ev.source == "otlp" and ev.labels.app == "support-bot"
    assert counted(registry, "rag_sidecar_otlp_late_feedback_total") == 1
    assert src.in_flight == 0


async def _until(cond: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)
