"""The human-review export against a real Label Studio (1.23.2, SQLite) started on loopback.

``scripts/labelstudio.sh`` installs it into .tools/ls-venv (its pins stay out of .venv). The
server gets its own data directory, token and port; the tests create the project with the
shipped labeling config through the sink, import tasks over REST, read them back (task list
and JSON export) and check the predictions with Label Studio's own SDK validator, since the
server accepts predictions that do not fit the config.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from sidecar.errors import PermanentError
from sidecar.events import Labels, Sampling, ScoredEvent
from sidecar.sinks.labelstudio.settings import LabelStudioSettings, ReviewSettings
from sidecar.sinks.labelstudio.sink import ReviewSink
from sidecar.sinks.labelstudio.tasks import DATA_FIELDS, labeling_config
from sidecar.stages import Result
from sidecar.trace import Chunk, Trace
from tests.conftest import free_port
from tests.support.fake_judge import FakeJudge

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".tools" / "ls-venv"
TOKEN = "rag-sidecar-test-token"
START_TIMEOUT_S = 180.0
CLEARED = ("HOST", "PORT", "USERNAME", "PASSWORD", "USER_TOKEN")


@dataclass(frozen=True)
class LabelStudio:
    url: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Token {self.token}"}, timeout=30
        )

    def tasks(self, project_id: int) -> list[dict[str, Any]]:
        with self.client() as c:
            resp = c.get(f"/api/projects/{project_id}/tasks/", params={"page_size": 1000})
            resp.raise_for_status()
            body = resp.json()
            return list(body["tasks"] if isinstance(body, dict) else body)

    def projects(self, title: str) -> list[dict[str, Any]]:
        with self.client() as c:
            resp = c.get("/api/projects/", params={"title": title, "page_size": 100})
            resp.raise_for_status()
            return [p for p in resp.json()["results"] if p["title"] == title]


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    """A real Label Studio on 127.0.0.1 with its own data directory; SIGTERM after the module."""
    binary = VENV / "bin" / "label-studio"
    if not binary.exists():
        msg = "label-studio not installed (bash scripts/labelstudio.sh installs it)"
        if os.environ.get("RAG_SIDECAR_REQUIRE_TOOLS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    data = tmp_path_factory.mktemp("label-studio")
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data),
        XDG_CONFIG_HOME=str(data / "config"),
        XDG_DATA_HOME=str(data / "data"),
        XDG_CACHE_HOME=str(data / "cache"),
        LABEL_STUDIO_USERNAME="reviewer@example.com",
        LABEL_STUDIO_PASSWORD="not-a-real-password",
        LABEL_STUDIO_USER_TOKEN=TOKEN,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
    )
    port = free_port()
    log = data / "server.log"
    args = [str(binary), "start", "--no-browser", "--internal-host", "127.0.0.1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*args, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=data
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            # it silently moves to the next port when the one asked for is taken
            found = re.search(r"development server at http://127\.0\.0\.1:(\d+)/", log.read_text())
            url = f"http://127.0.0.1:{found.group(1) if found else port}"
            try:
                if httpx.get(f"{url}/health", timeout=2).json().get("status") == "UP":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert proc.poll() is None, f"label studio exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not UP in time:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield LabelStudio(url, TOKEN)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sdk_problems(config: str, predictions: list[dict[str, Any]]) -> list[list[str]]:
    """Label Studio's own SDK validator (in its venv) on each prediction."""
    script = (
        "import json, sys\n"
        "from label_studio_sdk.label_interface import LabelInterface\n"
        "doc = json.load(sys.stdin)\n"
        "li = LabelInterface(doc['config'])\n"
        "out = [li.validate_prediction(p, return_errors=True) for p in doc['predictions']]\n"
        "print(json.dumps([o if isinstance(o, list) else [] for o in out]))\n"
    )
    done = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", script],
        input=orjson.dumps({"config": config, "predictions": predictions}),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return list(orjson.loads(done.stdout.splitlines()[-1]))


GROUNDED = "Open Settings, choose Security and click Reset password."
TRACES = [
    # the toy judge finds the answer in the chunk: faithful, grounded, relevant → no review
    {"trace_id": "ok-1", "answer": GROUNDED},
    {"trace_id": "ok-2", "answer": GROUNDED},
    # answers the chunk does not hold → low faithfulness → review
    {"trace_id": "bad-1", "answer": "Call the hotline at midnight to unlock the vault quickly."},
    {"trace_id": "bad-2", "answer": "Passwords cannot be changed once the account exists today."},
]


def write_traces(path: Path) -> None:
    base = {
        "app": "support-bot",
        "model": "gpt-4o-mini",
        "prompt_version": "v7",
        "query": "How do I reset my password?",
        "chunks": [
            {
                "id": "kb-1",
                "text": "To reset your password open Settings, choose Security and click "
                "Reset password.",
                "score": 0.82,
            },
            {"id": "kb-2", "text": "Billing happens monthly on the first day.", "score": 0.41},
        ],
    }
    path.write_bytes(b"".join(orjson.dumps({**base, **t}) + b"\n" for t in TRACES))


async def test_pipeline_exports_review_tasks_into_label_studio(
    label_studio: LabelStudio, tmp_path: Path
) -> None:
    traces, review_file = tmp_path / "traces.jsonl", tmp_path / "review.jsonl"
    write_traces(traces)
    title = "rag-sidecar it pipeline"
    async with FakeJudge() as judge:
        settings = load_settings(
            sources=[str(traces)],
            dead_letter=f"file:{tmp_path / 'dlq.jsonl'}",
            judge={"url": judge.url, "rate_per_minute": 100_000, "concurrency": 2},
            sampling={"rate": 1.0},
            review={
                "output": f"file:{review_file}",
                "label_studio": {"url": label_studio.url, "token": TOKEN, "project_title": title},
            },
        )
        pipe = build_pipeline(settings, CollectorRegistry())
        await pipe.start()
        assert await pipe.drained()
        await pipe.aclose()
    assert pipe.failure is None
    (project,) = label_studio.projects(title)
    assert project["label_config"].strip() == labeling_config().strip()
    tasks = label_studio.tasks(project["id"])
    written = [orjson.loads(x) for x in review_file.read_bytes().splitlines()]
    assert sorted(t["data"]["trace_id"] for t in tasks) == ["bad-1", "bad-2"]
    by_id = {t["data"]["trace_id"]: t for t in written}
    assert all(by_id[t["data"]["trace_id"]]["data"] == t["data"] for t in tasks)
    assert all(by_id[t["data"]["trace_id"]]["meta"] == t["meta"] for t in tasks)
    for task in tasks:
        data = task["data"]
        assert set(data) == set(DATA_FIELDS)
        assert data["app"] == "support-bot" and data["prompt_version"] == "v7"
        assert data["query"] == "How do I reset my password?"
        assert data["context"].startswith("[1] kb-1 · score 0.820\nTo reset your password")
        assert "low_faithfulness" in data["reasons"]
        assert task["meta"]["judge_scores"]["faithfulness"] == 0.0
        (pred,) = task["predictions"]
        assert pred["model_version"].startswith("judge-")
        assert pred["score"] == 0.0
        values = {r["from_name"]: r["value"] for r in pred["result"]}
        assert values["faithfulness"] == {"choices": ["Unfaithful"]}
        assert values["faithfulness_rating"] == {"rating": 1}
    assert sdk_problems(project["label_config"], [t["predictions"][0] for t in tasks]) == [[], []]
    with label_studio.client() as c:
        resp = c.get(
            f"/api/projects/{project['id']}/export",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )
    resp.raise_for_status()
    exported = sorted(resp.json(), key=lambda t: t["data"]["trace_id"])
    assert [t["data"]["trace_id"] for t in exported] == ["bad-1", "bad-2"]
    # the plain export lists prediction ids (the task list above has them in full)
    ids = {t["data"]["trace_id"]: [p["id"] for p in t["predictions"]] for t in tasks}
    assert {t["data"]["trace_id"]: t["predictions"] for t in exported} == ids
    assert all(t["data"] == by_id[t["data"]["trace_id"]]["data"] for t in exported)


def judge_result(trace_id: str, faith: float, flags: list[str], **detail: Any) -> Result:
    trace = Trace(
        trace_id=trace_id,
        query="What is the refund window?",
        answer="Refunds are possible within 30 days.",
        chunks=[Chunk(id="kb-9", text="Refunds: within 14 days of purchase.", score=0.7)],
    )
    event = ScoredEvent(
        event_id=f"e-{trace_id}",
        trace_id=trace_id,
        type="judge",
        timestamp=1.0,
        scored_at=2.0,
        scorer_version="judge-1+it",
        source="file",
        labels=Labels(app="billing-bot"),
        scores={"faithfulness": faith, "answer_relevance": 1.0, "context_relevance": 0.5},
        flags=flags,
        sampled=Sampling(selected=True),
        detail=detail or None,
    )
    return Result(trace, event)


async def test_sink_finds_its_project_again_dedupes_and_refuses_a_bad_token(
    label_studio: LabelStudio,
) -> None:
    title = "rag-sidecar it direct"

    def sink(token: str = TOKEN) -> ReviewSink:
        ls = LabelStudioSettings(url=label_studio.url, token=token, project_title=title)
        return ReviewSink(ReviewSettings(label_studio=ls), registry=CollectorRegistry())

    first = sink()
    await first.start()
    canary = {"canary": {"id": "c-7", "kind": "hallucinated", "failures": ["faithfulness"]}}
    await first.write(
        [
            judge_result("d-1", 0.2, ["judge_contradicted"]),
            judge_result("d-1", 0.2, []),  # same trace: one task
            judge_result("d-2", 0.9, ["judge_feedback_disagreement"]),
            judge_result("rag-sidecar-canary:p:c-7:1", 0.9, ["judge_canary_failed"], **canary),
            judge_result("d-3", 0.95, []),  # nothing to review
        ]
    )
    await first.aclose()
    again = sink()  # a restart finds the project by title instead of creating another
    await again.start()
    await again.write([judge_result("d-4", 0.1, [])])
    await again.aclose()
    (project,) = label_studio.projects(title)
    tasks = {t["data"]["trace_id"]: t for t in label_studio.tasks(project["id"])}
    assert sorted(tasks) == ["d-1", "d-2", "d-4", "rag-sidecar-canary:p:c-7:1"]
    assert tasks["d-1"]["data"]["reasons"] == "low_faithfulness, judge_contradicted"
    assert tasks["d-2"]["meta"]["reasons"] == ["judge_feedback_disagreement"]
    assert "canary c-7 (hallucinated)" in tasks["rag-sidecar-canary:p:c-7:1"]["data"]["judge"]
    assert all(t["predictions"][0]["model_version"] == "judge-1+it" for t in tasks.values())
    preds = [t["predictions"][0] for t in tasks.values()]
    assert sdk_problems(project["label_config"], preds) == [[]] * 4
    with pytest.raises(PermanentError, match="HTTP 401"):
        await sink("wrong-token").start()
