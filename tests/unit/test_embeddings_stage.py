"""The embeddings stage: sampling, a bounded queue that skips and counts, events, wiring."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_engine
from sidecar.config import PipelineSettings, Settings
from sidecar.pipeline import Pipeline
from sidecar.sampling import hash_unit
from sidecar.scorers.embeddings import EmbeddingsSettings, EmbeddingStage, Outcome
from sidecar.scorers.embeddings.scorer import EmbeddingScorer
from sidecar.scorers.embeddings.vectors import Matrix, l2_normalise
from sidecar.sinks.prometheus import PrometheusSink
from sidecar.stages import Result
from sidecar.trace import Trace, decode_trace
from tests.conftest import make_trace
from tests.support.memory import MemoryDLQ, MemorySink
from tests.unit.test_pipeline import ListSource, lines

SCORES = {"answer_relevance_semantic": 0.8, "groundedness_semantic": 0.7}


def result(trace_id: str = "t-1") -> Result:
    engine = build_engine(Settings())
    trace = decode_trace(orjson.dumps(make_trace(trace_id=trace_id)))
    return Result(trace, engine.score(trace, "test"))


def value(reg: CollectorRegistry, name: str, **labels: str) -> float:
    return reg.get_sample_value(name, labels) or 0.0


class Gate:
    """A scorer that blocks its worker thread until released."""

    def __init__(self, outcome: Outcome | None = None) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen: list[str] = []
        self.outcome = outcome or Outcome("model", dict(SCORES))

    def __call__(self, trace: Trace) -> Outcome:
        self.entered.set()
        assert self.release.wait(10)
        self.seen.append(trace.trace_id)
        return self.outcome


def stage(score: Any, reg: CollectorRegistry, **settings: Any) -> EmbeddingStage:
    s = EmbeddingsSettings(enabled=True, **{"rate": 1.0, **settings})
    return EmbeddingStage(s, reg, score, version="embeddings-test", clock=lambda: 42.0)


def test_sampling_is_the_deterministic_hash_rule_at_its_own_rate() -> None:
    reg = CollectorRegistry()
    st = stage(Gate(), reg, rate=0.3, salt="s")
    ids = [f"tr-{i}" for i in range(4000)]
    chosen = [i for i in ids if st.wants(i)]
    assert chosen == [i for i in ids if hash_unit(i, "s") < 0.3]
    assert 0.27 < len(chosen) / len(ids) < 0.33
    assert chosen != [i for i in ids if hash_unit(i, "") < 0.3]  # own salt, not the judge's
    assert not any(stage(Gate(), CollectorRegistry(), rate=0.0).wants(i) for i in ids)


async def test_full_queue_skips_and_counts_instead_of_blocking() -> None:
    reg, gate, written = CollectorRegistry(), Gate(), []

    async def write(results: list[Result]) -> None:
        written.extend(results)

    st = stage(gate, reg, queue_size=2)
    await st.start(write)
    assert st.offer(result("busy"))
    await asyncio.to_thread(gate.entered.wait, 5)  # the worker thread is now stuck in the model
    ten = [result(f"t{i}") for i in range(10)]
    t0 = time.perf_counter()
    accepted = [st.offer(r) for r in ten]
    assert time.perf_counter() - t0 < 0.5  # offering never waits for the model
    assert accepted == [True, True] + [False] * 8
    assert value(reg, "rag_sidecar_embeddings_skipped_total", reason="backpressure") == 8
    assert value(reg, "rag_sidecar_embeddings_queue_depth") == 2
    gate.release.set()
    await st.aclose()
    assert gate.seen == ["busy", "t0", "t1"]
    assert [r.event.trace_id for r in written] == ["busy", "t0", "t1"]
    assert value(reg, "rag_sidecar_embeddings_scored_total", origin="model") == 3
    assert value(reg, "rag_sidecar_embeddings_skipped_total", reason="shutdown") == 0


async def test_embedding_event_is_a_second_event_about_the_trace() -> None:
    reg, written = CollectorRegistry(), []

    async def write(results: list[Result]) -> None:
        written.extend(results)

    detail = {"support": [0.9, 0.5]}
    outcome = Outcome("model", dict(SCORES), {"groundedness_semantic_min": "empty"}, detail)
    st = stage(lambda t: outcome, reg)
    await st.start(write)
    heur = result("abc")
    st.offer(heur)
    await st.aclose()
    ev = written[0].event
    assert ev.type == "embedding" and ev.trace_id == "abc"
    assert ev.event_id != heur.event.event_id and ev.scorer_version == "embeddings-test"
    assert ev.labels == heur.event.labels and ev.timestamp == heur.event.timestamp
    assert ev.scores == SCORES and ev.scored_at == 42.0
    assert not ev.sampled.selected and ev.sampled.reasons == [] and ev.feedback is None
    assert ev.detail == {
        "origin": "model",
        "support": [0.9, 0.5],
        "skipped": {"groundedness_semantic_min": "empty"},
    }
    key = {"metric": "groundedness_semantic_min", "reason": "empty"}
    assert value(reg, "rag_sidecar_embeddings_score_skipped_total", **key) == 1


@pytest.mark.parametrize(
    ("score", "reason"),
    [
        (lambda t: Outcome(None), "no_embeddings"),
        (lambda t: Outcome("trace", {}, {"answer_relevance_semantic": "invalid"}), "no_scores"),
        (lambda t: 1 / 0, "failed"),
    ],
)
async def test_traces_without_scores_write_nothing_and_are_counted(score: Any, reason: str) -> None:
    reg, written = CollectorRegistry(), []

    async def write(results: list[Result]) -> None:
        written.extend(results)

    st = stage(score, reg)
    await st.start(write)
    st.offer(result())
    await st.aclose()
    assert written == []
    assert value(reg, "rag_sidecar_embeddings_skipped_total", reason=reason) == 1


async def test_shutdown_counts_what_could_not_finish() -> None:
    reg, gate = CollectorRegistry(), Gate()

    async def write(results: list[Result]) -> None:
        pass

    st = stage(gate, reg, shutdown_timeout_s=0.2)
    await st.start(write)
    for i in range(3):
        st.offer(result(f"t{i}"))
    await st.aclose()  # the model never returns within the timeout
    gate.release.set()
    assert value(reg, "rag_sidecar_embeddings_skipped_total", reason="shutdown") == 3
    assert not st.offer(result("late"))
    assert value(reg, "rag_sidecar_embeddings_skipped_total", reason="shutdown") == 4


async def test_pipeline_acks_heuristics_while_the_model_is_stuck_then_writes_embeddings() -> None:
    reg, gate = CollectorRegistry(), Gate()
    src, sink = ListSource([lines(20, "a"), lines(20, "b")]), MemorySink()
    prometheus = PrometheusSink(reg)
    st = stage(gate, reg, rate=0.5, queue_size=4)
    pipe = Pipeline(
        sources=[src],
        sinks=[sink, prometheus],
        dead_letters=MemoryDLQ(),
        engine=build_engine(Settings()),
        registry=reg,
        settings=PipelineSettings(),
        embeddings=st,
    )
    await pipe.start()
    assert await asyncio.wait_for(pipe.drained(), 10)  # while the model thread is blocked
    assert sorted(src.acks) == [(0, True), (1, True)]
    assert sum(r.event.type == "heuristic" for r in sink.results) == 40
    gate.release.set()
    await pipe.aclose()
    sampled = [f"{p}{i}" for p in "ab" for i in range(20) if st.wants(f"{p}{i}")]
    embedded = [r.event.trace_id for r in sink.results if r.event.type == "embedding"]
    skipped = value(reg, "rag_sidecar_embeddings_skipped_total", reason="backpressure")
    assert embedded and len(embedded) + skipped == len(sampled)
    assert set(embedded) <= set(sampled) and len(embedded) <= 5  # queue 4 + 1 in the thread
    labels = {"app": "support-bot", "model": "gpt-4o-mini", "prompt_version": "v1"}
    count = value(reg, "rag_sidecar_score_count", metric="groundedness_semantic", **labels)
    assert count == len(embedded)


class BagOfWords:
    """A fake encoder: hashed word counts, normalised (similar texts share words)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> Matrix:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace(".", " ").split():
                out[row, hash(word) % 64] += 1.0
        return l2_normalise(out + 1e-3)


def test_model_path_scores_caches_sentences_and_caps_the_work() -> None:
    enc = BagOfWords()
    s = EmbeddingsSettings(enabled=True, max_chunk_sentences=2, cache_size=3)
    scorer = EmbeddingScorer(s, enc, model_name="fake")
    trace = decode_trace(orjson.dumps(make_trace()))
    out = scorer(trace)
    assert out.origin == "model" and out.detail["model"] == "fake"
    assert set(out.scores) == {
        "answer_relevance_semantic",
        "groundedness_semantic",
        "groundedness_semantic_min",
    }
    assert out.scores["groundedness_semantic"] > 0.5  # the answer paraphrases chunk 1
    assert out.detail["chunk_sentences"] == 2 and "truncated" not in out.detail
    assert out.encoded == len(enc.calls[0]) == 4 and out.cache_hits == 0  # query, answer, 2 chunks
    again = scorer(trace)
    assert again.scores == out.scores
    assert again.cache_hits == 3 and again.encoded == 1  # the cache holds 3 of the 4
    long = make_trace(chunks=[{"text": "One two three. Four five six. Seven eight nine."}])
    capped = scorer(decode_trace(orjson.dumps(long)))
    assert capped.detail["chunk_sentences"] == 2 and capped.detail["truncated"] is True
    empty = scorer(decode_trace(orjson.dumps(make_trace(answer="", chunks=[]))))
    assert empty.scores == {}
    assert set(empty.skipped.values()) == {"empty"} and len(empty.skipped) == 3
