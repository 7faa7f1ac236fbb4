"""The human-review export: selection rules, task format, predictions vs the shipped labeling
config, deduplication, rate limiting, destinations and the Label Studio REST client (mocked)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import FileSpec, load_settings
from sidecar.errors import ConfigError, PermanentError, RetryableError
from sidecar.events import Labels, Sampling, ScoredEvent
from sidecar.sinks.labelstudio.api import LabelStudioClient
from sidecar.sinks.labelstudio.destinations import TaskFile, sample_task
from sidecar.sinks.labelstudio.settings import LabelStudioSettings, ReviewSettings
from sidecar.sinks.labelstudio.sink import ReviewSink, TokenBucket
from sidecar.sinks.labelstudio.tasks import (
    DATA_FIELDS,
    Task,
    config_problems,
    labeling_config,
    review_reasons,
)
from sidecar.stages import Result
from sidecar.trace import Chunk, Feedback, Trace

TOKEN = "ls-secret-token"


def trace(trace_id: str = "t-1", **over: Any) -> Trace:
    doc: dict[str, Any] = {
        "trace_id": trace_id,
        "query": "How do I reset my password?",
        "answer": "Open Settings and click Reset password.",
        "chunks": [
            Chunk(id="kb-1", text="Open Settings, then Reset password.", score=0.82, source="kb"),
            Chunk(id="kb-2", text="Billing is monthly.", score=None),
        ],
        "app": "support-bot",
    }
    doc.update(over)
    return Trace(**doc)


def event(
    trace_id: str = "t-1",
    kind: str = "judge",
    scores: dict[str, float] | None = None,
    flags: Sequence[str] = (),
    detail: dict[str, Any] | None = None,
) -> ScoredEvent:
    return ScoredEvent(
        event_id=f"{kind}-{trace_id}",
        trace_id=trace_id,
        type=kind,  # type: ignore[arg-type]
        timestamp=1.0,
        scored_at=2.0,
        scorer_version="judge-1+abc" if kind == "judge" else f"{kind}-1",
        source="file",
        labels=Labels(app="support-bot", model="m", prompt_version="v1"),
        scores=dict(scores or {}),
        flags=list(flags),
        sampled=Sampling(),
        detail=detail,
    )


def heuristic(trace_id: str = "t-1", lexical: float = 0.9) -> Result:
    return Result(trace(trace_id), event(trace_id, "heuristic", {"groundedness_lexical": lexical}))


def judged(trace_id: str = "t-1", flags: Sequence[str] = (), **scores: float) -> Result:
    base = {"faithfulness": 1.0, "answer_relevance": 1.0, "context_relevance": 1.0}
    base.update(scores)
    return Result(trace(trace_id), event(trace_id, "judge", base, flags))


class Memory:
    """A destination that keeps what it was sent; fails ``fail`` times first."""

    def __init__(self, name: str = "memory", fail: int = 0) -> None:
        self.name = name
        self.fail = fail
        self.sent: list[Task] = []

    async def start(self) -> None: ...
    async def flush(self) -> None: ...
    async def aclose(self) -> None: ...

    async def send(self, tasks: Sequence[Task]) -> None:
        if self.fail:
            self.fail -= 1
            raise RetryableError("down", retry_after=1.0)
        self.sent.extend(tasks)


def sink(
    *dests: Memory, clock: Callable[[], float] | None = None, **over: Any
) -> tuple[ReviewSink, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = ReviewSettings(output="file:unused.jsonl", **over)
    kw: dict[str, Any] = {"clock": clock} if clock else {}
    return ReviewSink(settings, registry=registry, destinations=list(dests), **kw), registry


def count(registry: CollectorRegistry, outcome: str) -> float:
    return registry.get_sample_value("rag_sidecar_review_tasks_total", {"outcome": outcome}) or 0


# ----------------------------------------------------------------------- selection


def test_selection_rules() -> None:
    s = ReviewSettings(output="-")
    ok = {"faithfulness": 0.9, "answer_relevance": 1.0}
    assert review_reasons(s, event(scores=ok), 0.9) == []
    assert review_reasons(s, event(scores={**ok, "faithfulness": 0.4}), 0.5) == ["low_faithfulness"]
    low_rel = {**ok, "answer_relevance": 1 / 3}
    assert review_reasons(s, event(scores=low_rel), 0.5) == ["low_answer_relevance"]
    assert review_reasons(s, event(scores=ok), 0.1) == ["faithful_but_ungrounded"]
    assert review_reasons(s, event(scores=ok), None) == []  # heuristics unknown: no disagreement
    bad = {"faithfulness": 0.2, "answer_relevance": 1.0}
    assert review_reasons(s, event(scores=bad), 0.8) == [
        "low_faithfulness",
        "unfaithful_but_grounded",
    ]
    for flag in ("judge_contradicted", "judge_disagreement", "judge_feedback_disagreement"):
        assert review_reasons(s, event(scores=ok, flags=[flag]), 0.9) == [flag]
    assert review_reasons(s, event(scores=ok, flags=["judge_unverified"]), 0.9) == []
    noisy = ReviewSettings(output="-", flags=["judge_unverified"])
    assert review_reasons(noisy, event(scores=ok, flags=["judge_unverified"]), 0.9) == [
        "judge_unverified"
    ]
    # a shadow judge keeps its scores and own flags in detail
    shadow = event(
        scores={}, detail={"scores": {"faithfulness": 0.1}, "judge_flags": ["judge_contradicted"]}
    )
    assert review_reasons(s, shadow, None) == ["low_faithfulness", "judge_contradicted"]
    fb = event(kind="feedback", flags=["feedback_disagreement"])
    assert review_reasons(s, fb, None) == ["feedback_disagreement"]
    assert review_reasons(s, event(kind="feedback"), None) == []
    assert review_reasons(s, event(kind="drift", flags=["judge_contradicted"]), None) == []


async def test_heuristics_are_remembered_for_judge_vs_heuristic_disagreement() -> None:
    dest = Memory()
    rs, _ = sink(dest)
    await rs.write([heuristic("a", 0.1), heuristic("b", 0.9)])
    await rs.write([judged("a"), judged("b"), judged("c")])  # c: no heuristic seen
    assert [t.key for t in dest.sent] == ["a"]
    task = dest.sent[0].doc
    assert task["meta"]["reasons"] == ["faithful_but_ungrounded"]
    assert task["meta"]["heuristic_scores"] == {"groundedness_lexical": 0.1}


async def test_recent_heuristics_are_bounded() -> None:
    dest = Memory()
    rs, _ = sink(dest, recent_traces=2)
    await rs.write([heuristic("a", 0.1), heuristic("b", 0.1), heuristic("c", 0.1)])
    await rs.write([judged("a"), judged("c")])  # a was evicted
    assert [t.key for t in dest.sent] == ["c"]


async def test_feedback_disagreement_uses_the_remembered_trace() -> None:
    dest = Memory()
    rs, registry = sink(dest)
    await rs.write([heuristic("a")])
    fb_detail = {"thumbs": "down", "comment": "wrong", "judge_scores": {"faithfulness": 0.9}}
    empty = Trace.model_construct(trace_id="a", query="", answer="")
    fb = event("a", "feedback", {}, ["feedback_disagreement"], fb_detail)
    orphan = event("zzz", "feedback", {}, ["feedback_disagreement"])
    await rs.write([Result(empty, fb), Result(empty, orphan)])
    assert [t.key for t in dest.sent] == ["a"]
    data = dest.sent[0].doc["data"]
    assert data["query"] == "How do I reset my password?"
    assert "user feedback: thumbs down, comment wrong" in data["judge"]
    assert dest.sent[0].doc["predictions"][0]["result"][0]["value"] == {"choices": ["Faithful"]}
    assert count(registry, "no_trace") == 1
    off, _ = sink(Memory(), include_feedback=False)
    await off.write([heuristic("a"), Result(empty, fb)])
    assert off.exported == 0


# --------------------------------------------------------------------------- format


def shipped_controls() -> dict[str, ET.Element]:
    root = ET.fromstring(labeling_config())
    return {
        el.get("name", ""): el for el in root.iter() if el.tag in ("Choices", "Rating", "TextArea")
    }


def test_shipped_config_has_the_controls_predictions_fill() -> None:
    root = ET.fromstring(labeling_config())
    objects = {el.get("name"): el.get("value") for el in root.iter("Text")}
    assert {v[1:] for v in objects.values() if v} <= set(DATA_FIELDS)
    controls = shipped_controls()
    assert set(controls) == {
        "faithfulness",
        "faithfulness_rating",
        "answer_relevance",
        "context_relevance",
        "comment",
    }
    for el in controls.values():
        assert el.get("toName") in objects


@pytest.mark.parametrize("faith", [0.0, 0.3, 0.5, 0.79, 0.8, 1.0])
def test_task_format_and_predictions_are_valid_against_the_shipped_config(faith: float) -> None:
    task = sample_task()
    assert config_problems(labeling_config(), task.doc) == []
    rs_trace = trace(feedback=Feedback(thumbs="up"))
    from sidecar.sinks.labelstudio.tasks import build_task

    ev = event(
        scores={"faithfulness": faith, "answer_relevance": 2 / 3, "context_relevance": 0.25},
        detail={
            "claims": [
                {"claim": "Reset in Settings", "verdict": "contradicted", "chunk_id": "kb-1"}
            ]
        },
    )
    doc = build_task(
        rs_trace, ev, ["low_faithfulness", "judge_contradicted"], {"groundedness_lexical": 0.5}
    ).doc
    assert set(doc) == {"data", "meta", "predictions"}
    assert set(doc["data"]) == set(DATA_FIELDS)
    assert all(isinstance(v, str) for v in doc["data"].values())
    assert doc["data"]["reasons"] == "low_faithfulness, judge_contradicted"
    assert doc["data"]["context"].startswith("[1] kb-1 · score 0.820 · kb\nOpen Settings")
    assert "[2] kb-2\nBilling" in doc["data"]["context"]
    assert "- contradicted (chunk kb-1): Reset in Settings" in doc["data"]["judge"]
    assert doc["meta"]["feedback"] == {"thumbs": "up"}
    assert doc["meta"]["event_id"] == "judge-t-1"
    (pred,) = doc["predictions"]
    assert pred["model_version"] == "judge-1+abc"
    assert pred["score"] == min(faith, 2 / 3)
    assert config_problems(labeling_config(), doc) == []
    # independent check: every item names a control, its target and an allowed choice
    controls = shipped_controls()
    values = {i["from_name"]: i["value"] for i in pred["result"]}
    for item in pred["result"]:
        el = controls[item["from_name"]]
        assert item["to_name"] == el.get("toName")
        assert item["type"] == el.tag.lower()
        if el.tag == "Choices":
            assert item["value"]["choices"][0] in {c.get("value") for c in el.iter("Choice")}
    expect = "Faithful" if faith >= 0.8 else "Partially faithful" if faith >= 0.5 else "Unfaithful"
    assert values["faithfulness"] == {"choices": [expect]}
    assert values["faithfulness_rating"] == {"rating": 1 + round(4 * faith)}
    assert values["answer_relevance"] == {"choices": ["Relevant"]}
    assert values["context_relevance"] == {"choices": ["Irrelevant"]}


def test_config_problems_catches_what_label_studio_would_accept() -> None:
    doc = sample_task().doc
    bad = orjson.loads(orjson.dumps(doc))
    items = bad["predictions"][0]["result"]
    items[0]["from_name"] = "faithfullness"
    items[1]["value"] = {"rating": 9}
    items[2]["to_name"] = "query"
    items[3]["value"] = {"choices": ["Very relevant"]}
    items.append({"from_name": "comment", "to_name": "answer", "type": "choices", "value": {}})
    del bad["data"]["context"]
    problems = config_problems(labeling_config(), bad)
    assert problems == [
        "data lacks 'context' (used by context)",
        "no control named 'faithfullness'",
        "faithfulness_rating: rating 9 not in 1..5",
        "answer_relevance: to_name 'query', config has 'answer'",
        "context_relevance: no choice 'Very relevant'",
        "comment: type 'choices', config has 'textarea'",
    ]


def test_config_problems_on_a_config_that_is_not_xml() -> None:
    assert config_problems("<View>", sample_task().doc)[0].startswith(
        "the labeling config is not XML"
    )


def test_no_judge_scores_means_no_predictions() -> None:
    from sidecar.sinks.labelstudio.tasks import build_task

    doc = build_task(trace(chunks=[]), event(kind="feedback"), ["feedback_disagreement"], None).doc
    assert doc["predictions"] == []
    assert doc["data"]["context"] == "(no chunks retrieved)"


# ------------------------------------------------------------- dedupe, rate limit


async def test_dedupe_by_trace_id_and_canary() -> None:
    dest = Memory()
    rs, registry = sink(dest, dedupe_size=2)
    await rs.write([judged("a", faithfulness=0.1), judged("a", faithfulness=0.2)])
    await rs.write([judged("a", flags=["judge_contradicted"])])
    assert [t.key for t in dest.sent] == ["a"]
    assert count(registry, "duplicate") == 2
    canary = {"canary": {"id": "c1", "kind": "hallucinated", "failures": ["faithfulness"]}}
    for run in ("1", "2"):
        ev = event(
            f"rag-sidecar-canary:j:c1:{run}",
            "judge",
            {"faithfulness": 0.9},
            ["judge_canary_failed"],
            canary,
        )
        await rs.write([Result(trace(ev.trace_id), ev)])
    assert [t.key for t in dest.sent] == ["a", "canary:judge-1+abc:c1"]
    assert "canary c1 (hallucinated)" in dest.sent[1].doc["data"]["judge"]
    await rs.write([judged("b", faithfulness=0.1), judged("c", faithfulness=0.1)])
    await rs.write([judged("a", faithfulness=0.1)])  # forgotten: the dedupe LRU holds 2
    assert [t.key for t in dest.sent][-3:] == ["b", "c", "a"]


class Slow(Memory):
    """Yields to the event loop inside ``send`` and records overlapping sends."""

    def __init__(self) -> None:
        super().__init__("slow")
        self.active = 0
        self.overlap = False

    async def send(self, tasks: Sequence[Task]) -> None:
        self.active += 1
        self.overlap |= self.active > 1
        await asyncio.sleep(0.01)
        self.sent.extend(tasks)
        self.active -= 1


async def test_concurrent_writes_are_serialised_and_deduplicated() -> None:
    dest = Slow()
    rs, _ = sink(dest)
    batches = [[judged("a", faithfulness=0.1)], [judged("a", faithfulness=0.1)]]
    batches += [[judged(f"t{i}", faithfulness=0.1)] for i in range(4)]
    await asyncio.gather(*(rs.write(b) for b in batches))
    assert sorted(t.key for t in dest.sent) == ["a", "t0", "t1", "t2", "t3"]
    assert not dest.overlap


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(6, clock=lambda: now[0])  # 6 a minute: one every 10 s, burst 6
    assert sum(bucket.take() for _ in range(10)) == 6
    now[0] = 9.0
    assert not bucket.take()
    now[0] = 10.0
    assert bucket.take() and not bucket.take()
    now[0] = 1000.0
    assert sum(bucket.take() for _ in range(10)) == 6


async def test_rate_limit_skips_the_excess() -> None:
    now = [0.0]
    dest = Memory()
    rs, registry = sink(dest, clock=lambda: now[0], max_tasks_per_minute=3)
    await rs.write([judged(f"t{i}", faithfulness=0.0) for i in range(5)])
    assert len(dest.sent) == 3 and count(registry, "rate_limited") == 2
    now[0] = 20.0  # one token back
    await rs.write([judged("t3", faithfulness=0.0), judged("t4", faithfulness=0.0)])
    assert [t.key for t in dest.sent] == ["t0", "t1", "t2", "t3"]


# ------------------------------------------------------------------ error handling


async def test_retry_mode_resends_only_to_destinations_that_missed() -> None:
    now = [0.0]
    first, second = Memory("first"), Memory("second", fail=1)
    rs, _ = sink(first, second, clock=lambda: now[0], on_error="retry", max_tasks_per_minute=1)
    batch = [judged("a", faithfulness=0.0)]
    with pytest.raises(RetryableError):
        await rs.write(batch)
    await rs.write(batch)  # the pipeline retries the same batch: no token needed again
    assert [t.key for t in first.sent] == ["a"]
    assert [t.key for t in second.sent] == ["a"]
    await rs.write(batch)
    assert len(second.sent) == 1 and rs.exported == 1


async def test_drop_mode_counts_and_goes_on() -> None:
    first, second = Memory("first", fail=1), Memory("second")
    rs, registry = sink(first, second)
    await rs.write([judged("a", faithfulness=0.0)])
    assert first.sent == [] and [t.key for t in second.sent] == ["a"]
    dropped = registry.get_sample_value(
        "rag_sidecar_review_dropped_total", {"destination": "first"}
    )
    assert dropped == 1
    assert rs.exported == 1 and count(registry, "exported") == 1
    lonely, registry = sink(Memory("only", fail=1))
    await lonely.write([judged("a", faithfulness=0.0)])
    assert lonely.exported == 0 and count(registry, "exported") == 0


class Refusing(Memory):
    """A destination that refuses every send for good (a rotated token, a deleted project)."""

    async def send(self, tasks: Sequence[Task]) -> None:
        raise PermanentError("label studio POST /api/projects/7/import: HTTP 401")


async def test_drop_mode_drops_on_a_permanent_error_instead_of_stopping_the_sidecar() -> None:
    first, second = Refusing("first"), Memory("second")
    rs, registry = sink(first, second)
    await rs.write([judged("a", faithfulness=0.0)])  # used to raise: the pipeline exited
    assert [t.key for t in second.sent] == ["a"] and rs.exported == 1
    dropped = registry.get_sample_value(
        "rag_sidecar_review_dropped_total", {"destination": "first"}
    )
    assert dropped == 1
    strict, _ = sink(Refusing("first"), on_error="retry")
    with pytest.raises(PermanentError):
        await strict.write([judged("a", faithfulness=0.0)])


class Stuck(Memory):
    """A destination whose send hangs until released (Label Studio timing out)."""

    def __init__(self) -> None:
        super().__init__("stuck")
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, tasks: Sequence[Task]) -> None:
        self.entered.set()
        await self.release.wait()
        self.sent.extend(tasks)


async def test_a_slow_import_does_not_hold_up_writes_with_nothing_to_review() -> None:
    dest = Stuck()
    rs, _ = sink(dest)
    judge_write = asyncio.ensure_future(rs.write([judged("a", faithfulness=0.0)]))
    await dest.entered.wait()
    plain = asyncio.ensure_future(rs.write([heuristic("b", 0.1), judged("c")]))
    for _ in range(3):
        await asyncio.sleep(0)
    assert plain.done()  # the main write loop is not stuck behind Label Studio
    dest.release.set()
    await judge_write
    await rs.write([judged("b")])  # b's heuristic was remembered meanwhile
    assert [t.key for t in dest.sent] == ["a", "b"]


# --------------------------------------------------------------------- destinations


async def test_jsonl_and_json_array_files(tmp_path: Path) -> None:
    lines, array = tmp_path / "review.jsonl", tmp_path / "out" / "review.json"
    for _ in range(2):  # a restart appends to both
        for path in (lines, array):
            d = TaskFile(FileSpec(path, f"file:{path}"))
            await d.start()
            await d.send([sample_task()])
            await d.send([sample_task(), sample_task()])
            if path is array:
                assert isinstance(orjson.loads(array.read_bytes()), list)  # valid after each write
            await d.flush()
            await d.aclose()
    assert [orjson.loads(x)["data"]["query"] for x in lines.read_bytes().splitlines()] == ["q"] * 6
    assert len(orjson.loads(array.read_bytes())) == 6
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "an array"}')
    with pytest.raises(PermanentError, match="no JSON array"):
        await TaskFile(FileSpec(bad, str(bad))).start()


# ------------------------------------------------------------------------ REST client


class FakeLabelStudio:
    """Just enough of Label Studio's REST API, with scripted failures."""

    def __init__(self, projects: list[dict[str, Any]] | None = None) -> None:
        self.projects = projects or []
        self.imports: list[list[dict[str, Any]]] = []
        self.failures: list[httpx.Response] = []
        self.auth: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.auth.add(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Token {TOKEN}":
            return httpx.Response(401, json={"detail": "Invalid token."})
        if self.failures:
            return self.failures.pop(0)
        path, method = request.url.path, request.method
        if path == "/api/projects/" and method == "GET":
            title = request.url.params["title"]
            return httpx.Response(
                200,
                json={
                    "count": 1,
                    "next": None,
                    "results": [p for p in self.projects if title.lower() in p["title"].lower()],
                },
            )
        if path == "/api/projects/" and method == "POST":
            body = orjson.loads(request.content)
            self.projects.append({"id": len(self.projects) + 1, **body})
            return httpx.Response(201, json=self.projects[-1])
        if path.endswith("/import"):
            self.imports.append(orjson.loads(request.content))
            return httpx.Response(201, json={"task_count": len(self.imports[-1])})
        pid = int(path.strip("/").split("/")[-1])
        found = [p for p in self.projects if p["id"] == pid]
        return httpx.Response(200, json=found[0]) if found else httpx.Response(404, json={})


def client(fake: FakeLabelStudio, **over: Any) -> LabelStudioClient:
    settings = LabelStudioSettings(
        url="http://ls:8080/", token=TOKEN, max_retry_after_s=0.01, **over
    )
    return LabelStudioClient(settings, transport=httpx.MockTransport(fake))


async def test_project_is_created_once_with_the_shipped_config_then_found() -> None:
    fake = FakeLabelStudio(
        [{"id": 1, "title": "rag-sidecar review (old)", "label_config": "<View/>"}]
    )
    c = client(fake)
    await c.start()
    assert c.project_id == 2 and fake.projects[1]["label_config"] == labeling_config()
    await c.aclose()
    again = client(fake)
    await again.start()
    assert again.project_id == 2 and len(fake.projects) == 2
    await again.import_tasks([sample_task().doc] * 5)
    assert [len(b) for b in fake.imports] == [5]
    await again.aclose()
    assert fake.auth == {f"Token {TOKEN}"}


async def test_imports_are_batched_and_retried_honouring_retry_after() -> None:
    fake = FakeLabelStudio([{"id": 7, "title": "x", "label_config": labeling_config()}])
    c = client(fake, project_id=7, batch_size=2)
    await c.start()
    fake.failures = [httpx.Response(503), httpx.Response(429, headers={"Retry-After": "0"})]
    await c.import_tasks([sample_task().doc] * 5)
    assert [len(b) for b in fake.imports] == [2, 2, 1] and c.imported == 5
    fake.failures = [httpx.Response(429, headers={"Retry-After": "7"})] * 4
    with pytest.raises(RetryableError) as info:
        await c.import_tasks([sample_task().doc])
    assert info.value.retry_after == 7.0
    fake.failures = [httpx.Response(400, json={"error": "bad"})]
    with pytest.raises(PermanentError, match="HTTP 400"):
        await c.import_tasks([sample_task().doc])
    await c.aclose()


async def test_a_response_that_is_not_json_is_a_permanent_error() -> None:
    fake = FakeLabelStudio([{"id": 7, "title": "x", "label_config": labeling_config()}])
    c = client(fake, project_id=7)
    await c.start()
    fake.failures = [httpx.Response(200, text="<html>Sign in</html>")]  # an auth proxy
    with pytest.raises(PermanentError, match="not JSON"):
        await c.import_tasks([sample_task().doc])
    await c.aclose()


async def test_bad_token_or_project_is_permanent_and_never_leaks_the_token() -> None:
    fake = FakeLabelStudio()
    settings = LabelStudioSettings(url="http://ls:8080", token="wrong-token")
    with pytest.raises(PermanentError, match="HTTP 401") as info:
        await LabelStudioClient(settings, transport=httpx.MockTransport(fake)).start()
    assert "wrong-token" not in str(info.value)
    with pytest.raises(PermanentError, match="HTTP 404"):
        await client(fake, project_id=99).start()


async def test_a_project_whose_config_cannot_take_our_tasks_is_refused() -> None:
    from sidecar.sinks.labelstudio.destinations import TaskProject

    other = (
        '<View><Text name="text" value="$text"/>'
        '<Choices name="sentiment" toName="text"><Choice value="Positive"/></Choices></View>'
    )
    fake = FakeLabelStudio([{"id": 3, "title": "x", "label_config": other}])
    with pytest.raises(PermanentError, match="no control named 'faithfulness'"):
        await TaskProject(client(fake, project_id=3)).start()


# --------------------------------------------------------------------------- settings


def test_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().review is None
    monkeypatch.delenv("RAG_SIDECAR_LABEL_STUDIO_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="needs a token"):
        load_settings(review={"label_studio": {"url": "http://ls:8080"}})
    with pytest.raises(ConfigError, match="needs an output"):
        load_settings(review={})
    with pytest.raises(ConfigError, match="unsupported"):
        load_settings(review={"output": "s3://bucket/x"})
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    monkeypatch.setenv("RAG_SIDECAR_LABEL_STUDIO_TOKEN_FILE", str(secret))
    s = load_settings(
        review={"output": "kafka://k:9092/review", "label_studio": {"url": "http://ls:8080"}}
    )
    assert s.review is not None and s.review.label_studio is not None
    assert s.review.label_studio.token is not None
    assert s.review.label_studio.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(s)
    sinks = build_pipeline(s, CollectorRegistry(), sources=[]).sinks
    review = [x for x in sinks if isinstance(x, ReviewSink)]
    assert [d.name for d in review[0].destinations] == ["kafka", "label_studio"]
