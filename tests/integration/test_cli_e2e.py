"""End to end: the real CLI in a subprocess, scraped over HTTP, checked by promtool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, make_trace, require_tool

ROOT = Path(__file__).resolve().parents[2]


def write_input(path: Path) -> None:
    rows = [orjson.dumps(make_trace(trace_id=f"e2e-{i}")) for i in range(40)]
    rows.insert(5, b"this is not json")
    rows.insert(9, b'{"no": "format"}')
    rows.append(orjson.dumps(make_trace(trace_id="fb", feedback={"thumbs": "down"})))
    path.write_bytes(b"\n".join(rows) + b"\n")


def wait_http(url: str, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(url, timeout=1.0)
            if r.status_code == 200:
                return r
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} not ready in {timeout}s")
        time.sleep(0.05)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in an exposition, or None."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


@pytest.mark.integration
def test_run_scores_file_serves_metrics_and_drains_on_sigterm(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    src, events, dlq = tmp_path / "in.jsonl", tmp_path / "events.jsonl", tmp_path / "dlq.jsonl"
    write_input(src)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sidecar",
            "run",
            "--source",
            f"file:{src}",
            "--events",
            f"file:{events}",
            "--dead-letter",
            f"file:{dlq}",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(port),
            "--judge-rate",
            "0.1",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RAG_SIDECAR_LOG__FORMAT": "json"},
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        deadline = time.monotonic() + 20
        while True:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            if sample(text, "rag_sidecar_traces_total", source="file", outcome="scored") == 41:
                break
            assert time.monotonic() < deadline, text[-2000:]
            time.sleep(0.1)
        assert sample(text, "rag_sidecar_traces_total", source="file", outcome="invalid") == 2
        assert sample(text, "rag_sidecar_dead_letters_total", reason="not_json") == 1
        assert sample(text, "rag_sidecar_dead_letters_total", reason="unknown_format") == 1
        fb = {"app": "support-bot", "model": "gpt-4o-mini", "prompt_version": "v1", "value": "down"}
        assert sample(text, "rag_sidecar_feedback_total", **fb) == 1
        assert sample(text, "rag_sidecar_sampled_total", reason="thumbs_down") == 1
        assert 'rag_sidecar_score_bucket{app="support-bot"' in text
        assert 'metric="groundedness_lexical"' in text
        check = subprocess.run(
            [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["healthy"] is True
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    got = [json.loads(line) for line in events.read_text().splitlines()]
    assert len(got) == 41 and len({e["event_id"] for e in got}) == 41
    assert all(e["type"] == "heuristic" for e in got)
    letters = [json.loads(line) for line in dlq.read_text().splitlines()]
    assert [d["reason"] for d in letters] == ["not_json", "unknown_format"]
    assert letters[0]["raw"] == "this is not json" and letters[0]["origin"].endswith(":6")
    # Logs are JSON lines and never carry trace contents.
    for line in err.splitlines():
        if line.startswith("{"):
            assert "reset my password" not in line
    assert "scored 41 traces, 2 invalid" in err


@pytest.mark.integration
def test_sigterm_with_an_idle_stdin_exits_promptly(tmp_path: Path) -> None:
    """The stdin reader blocks in a thread on a pipe nobody writes to; it must not hold
    the process past its shutdown (a pool thread is joined at exit: it hung for ever)."""
    port = free_port()
    writer = subprocess.Popen(["sleep", "120"], stdout=subprocess.PIPE)
    assert writer.stdout is not None
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidecar", "run", "--source", "-", "--metrics-port", str(port)],
        cwd=ROOT,
        stdin=writer.stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)  # the drain is 30 s at most; idle: at once
        assert proc.returncode == 0, err
    finally:
        for p in (proc, writer):
            if p.poll() is None:
                p.kill()
        writer.wait()


@pytest.mark.integration
def test_score_writes_events_and_reports(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    write_input(src)
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "sidecar", "score", str(src), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert len((out / "events.jsonl").read_text().splitlines()) == 41
    assert len((out / "dead-letter.jsonl").read_text().splitlines()) == 2
    assert "support-bot" in (out / "report.md").read_text()
    assert len((out / "report.csv").read_text().splitlines()) == 42


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run"], "no source configured"),
        (["run", "--source", "/does/not/exist.jsonl"], "source file not found"),
        (["run", "--source", "kafka2://x/y"], "unsupported source URI scheme"),
        (["score", "/nope.jsonl", "--out", "/tmp/x"], "cannot read /nope.jsonl"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(args: list[str], needle: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert needle in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_schema_and_check_config() -> None:
    for which, key in (("trace", "trace_id"), ("event", "event_id")):
        res = subprocess.run(
            [sys.executable, "-m", "sidecar", "schema", which],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0 and key in json.loads(res.stdout)["properties"]
    res = subprocess.run(
        [sys.executable, "-m", "sidecar", "check-config", "--judge-rate", "0.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and json.loads(res.stdout)["sampling"]["rate"] == 0.5


def test_judge_flags_reach_the_judge_settings_and_secrets_stay_out(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file\n")
    res = subprocess.run(
        [sys.executable, "-m", "sidecar", "check-config", "--judge-url", "http://vllm:8000/v1",
         "--judge-model", "qwen", "--judge-per-minute", "12", "--judge-daily-usd", "2.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RAG_SIDECAR_JUDGE_API_KEY_FILE": str(key_file),
             "RAG_SIDECAR_JUDGE__USD_PER_1K_PROMPT_TOKENS": "0.0002"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    judge = json.loads(res.stdout)["judge"]
    assert (judge["url"], judge["model"]) == ("http://vllm:8000/v1", "qwen")
    assert (judge["rate_per_minute"], judge["daily_usd_cap"]) == (12.0, 2.5)
    assert judge["api_key"] == "**********" and "sk-from-file" not in res.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "sidecar", "check-config", "--judge-per-minute", "-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "rate_per_minute" in bad.stderr
