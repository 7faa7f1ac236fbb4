"""The Grafana dashboards against a real Prometheus scraping a real sidecar.

There is no Grafana server here, so the dashboards are checked where their queries run: a
sidecar subprocess (the CLI) scores the example traces fed in over a few seconds (``--follow``,
plus an invalid line and OTLP spans), with a fake LLM judge so the judge metrics exist; Debian's
``prometheus`` scrapes it every second. Every panel query, with the template variables
substituted (one real app/model/prompt_version, then "All"), must parse and return data —
except the few listed in ``NO_DATA`` with the reason. The JSON model is checked too: schema
version, unique panel ids, the datasource variable used by every panel and query, known keys
(round trip through grafana-foundation-sdk's model), and that the generator reproduces the
committed files.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import free_port, require_tool

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
BOARDS = sorted(DASHBOARDS.glob("*.json"))
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
EXAMPLES = ROOT / "examples" / "traces.jsonl"
DS_REF = {"type": "prometheus", "uid": "${datasource}"}

# Panel queries that legitimately return nothing in this setup: "<panel title>" or
# "<panel title>#<refId>" → why. Each must still parse, and must really be empty (a stale entry
# fails, so the list cannot hide a panel that works).
NO_DATA = {
    "Dropped records by stage": "only with pipeline.overflow: drop and a full queue",
    "Sink errors": "no sink fails in this run (the alert rule tests cover the series)",
    "Label values folded into 'other'": "4 apps, far below http.max_label_values",
    "Consumer lag per partition": "no Kafka source here (tests/integration/test_kafka.py)",
    "In flight and paused": "no Kafka source here",
    "Commits and rebalances": "no Kafka source here",
}
# Metric names the alert rules use that this run does not export (series created on first use).
RULE_METRICS_ABSENT = {
    "rag_sidecar_kafka_lag": "Kafka source only",
    "rag_sidecar_kafka_consumer_errors_total": "Kafka source only, on its first error",
    "rag_sidecar_queue_dropped_total": "pipeline.overflow: drop only",
    "rag_sidecar_sink_errors_total": "no sink error in this run",
}
# Grafana dashboard JSON model: the top-level keys a dashboard may carry.
TOP_LEVEL_KEYS = {
    "annotations", "description", "editable", "fiscalYearStartMonth", "gnetId",
    "graphTooltip", "id", "links", "liveNow", "panels", "preload", "refresh", "revision",
    "schemaVersion", "snapshot", "tags", "templating", "time", "timepicker", "timezone",
    "title", "uid", "version", "weekStart",
}  # fmt: skip


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and panels nested in collapsed rows included."""
    for p in board["panels"]:
        yield p
        yield from p.get("panels", [])


def generator() -> ModuleType:
    pytest.importorskip("grafana_foundation_sdk")
    spec = importlib.util.spec_from_file_location("dashboards_generate", DASHBOARDS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------- the JSON model


def test_both_dashboards_exist() -> None:
    assert [p.name for p in BOARDS] == [
        "rag-sidecar-operations.json",
        "rag-sidecar-overview.json",
    ]


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_dashboard_structure(path: Path) -> None:
    board = load(path)
    assert set(board) <= TOP_LEVEL_KEYS, set(board) - TOP_LEVEL_KEYS
    assert board["schemaVersion"] >= 39
    assert board["uid"] == path.stem and board["title"].startswith("rag-sidecar / ")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for name in ("app", "model", "prompt_version"):
        v = variables[name]
        assert v["type"] == "query" and v["datasource"] == DS_REF, name
        assert v["query"].startswith("label_values(") and v["multi"] and v["includeAll"], name
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    exprs = []
    occupied: set[tuple[int, int]] = set()
    for p in panels(board):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & occupied, f"{p['title']} overlaps another panel"
        occupied |= cells
        if p["type"] == "row":
            continue
        assert p["datasource"] == DS_REF, p["title"]
        assert p["title"] and p.get("description"), p["id"]
        assert p["fieldConfig"]["defaults"].get("unit"), f"{p['title']}: no unit"
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DS_REF, p["title"]
            exprs.append(t["expr"])
    for name in variables.keys() - {"datasource"}:
        assert any(f"${name}" in e for e in exprs), f"variable {name} is used by no panel"


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_dashboard_round_trips_through_the_sdk_model(path: Path) -> None:
    """Nothing the Grafana model does not know: parsing drops unknown keys, so compare."""
    generator()
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    board = load(path)
    again = json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))
    assert again == board


def test_generator_reproduces_the_committed_json() -> None:
    built = generator().build_all()
    assert set(built) == {p.name for p in BOARDS}
    for name, text in built.items():
        assert (DASHBOARDS / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python dashboards/generate.py"
        )
    assert generator().build_all() == built  # deterministic


# ---------------------------------------------------------------------- live queries


@dataclass
class Stack:
    prom: str
    http: httpx.Client


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"port {port} not open: {log.read_text()[-3000:]}"
        time.sleep(0.05)


def instant(http: httpx.Client, prom: str, expr: str) -> dict[str, Any]:
    body: dict[str, Any] = http.get(f"{prom}/api/v1/query", params={"query": expr}).json()
    return body


def otlp_requests() -> list[bytes]:
    """One complete OpenInference RAG trace, and the retriever span alone of another (what a
    replica gets when spans are misrouted: given up incomplete, missing its root)."""
    from tests.support.otel_spans import llama_index_rag

    complete = llama_index_rag(seed=11).request
    partial = llama_index_rag(seed=12).request
    for rs in partial.resource_spans:
        for ss in rs.scope_spans:
            keep = [s for s in ss.spans if s.name == "VectorIndexRetriever.retrieve"]
            del ss.spans[:]
            ss.spans.extend(keep)
    return [complete.SerializeToString(), partial.SerializeToString()]


def recent(lines: list[bytes]) -> list[bytes]:
    """The example traces moved in time so that the newest is a minute old, keeping their
    day of spacing: the OTLP traces sent beside them are stamped now, and drift runs on event
    time (series days older than the newest event are quiet and clear their readouts)."""
    from sidecar.trace import parse_timestamp

    rows = [json.loads(line) for line in lines]
    stamps = [
        parse_timestamp(r["timestamp"]) if isinstance(r["timestamp"], str) else r["timestamp"]
        for r in rows
    ]
    shift = time.time() - 60 - max(stamps)
    for row, ts in zip(rows, stamps, strict=True):
        row["timestamp"] = ts + shift
    return [json.dumps(row).encode() + b"\n" for row in rows]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Prometheus scraping every second + fake judge + sidecar (file and OTLP sources)."""
    prometheus = require_tool("prometheus")
    tmp = tmp_path_factory.mktemp("dashboards")
    procs: list[subprocess.Popen[bytes]] = []
    judge_port, metrics_port, otlp_port, prom_port = (free_port() for _ in range(4))

    def spawn(name: str, args: list[str], env: dict[str, str] | None = None) -> Path:
        log = tmp / f"{name}.log"
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
            )
        return log

    http = httpx.Client(timeout=10)
    try:
        # Prometheus first: its first scrape comes ~5 s after start whatever the interval.
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: ['{RULES}']\n"
            "scrape_configs:\n  - job_name: rag-sidecar\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
        )
        prom = f"http://127.0.0.1:{prom_port}"
        prom_log = spawn(
            "prometheus",
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
        )
        prom_proc = procs[-1]
        judge_log = spawn(
            "judge", [sys.executable, "-m", "tests.support.fake_judge", "--port", str(judge_port)]
        )
        wait_port(judge_port, procs[-1], judge_log)

        lines = recent(EXAMPLES.read_bytes().splitlines(keepends=True))
        feed = tmp / "traces.jsonl"
        feed.write_bytes(b"".join(lines[:50]) + b"this line is not json\n")
        env = {
            **os.environ,
            "RAG_SIDECAR_JUDGE__RATE_PER_MINUTE": "100000",
            "RAG_SIDECAR_JUDGE__CANARY__EVERY_S": "1",
            "RAG_SIDECAR_OTLP__ASSEMBLY__STRAGGLER_TIMEOUT_S": "1",
            "RAG_SIDECAR_OTLP__ASSEMBLY__ROOT_GRACE_S": "0.5",
        }
        sidecar_log = spawn(
            "sidecar",
            [
                sys.executable,
                "-m",
                "sidecar",
                "run",
                "--source",
                f"file:{feed}",
                "--source",
                f"otlp+http://127.0.0.1:{otlp_port}",
                "--follow",
                "--events",
                f"file:{tmp / 'events.jsonl'}",
                "--dead-letter",
                f"file:{tmp / 'dlq.jsonl'}",
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(metrics_port),
                "--judge-url",
                f"http://127.0.0.1:{judge_port}/v1",
                "--judge-rate",
                "0.3",
                "--log-format",
                "text",
            ],
            env,
        )
        sidecar = procs[-1]
        wait_port(metrics_port, sidecar, sidecar_log)
        wait_port(prom_port, prom_proc, prom_log)
        deadline = time.monotonic() + 30
        while not instant(http, prom, 'up{job="rag-sidecar"} == 1')["data"]["result"]:
            assert prom_proc.poll() is None, prom_log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, prom_log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)

        # Once scraped, feed the rest over a few seconds (so that rates are not zero) and
        # send OTLP spans.
        for chunk in range(50, len(lines), 50):
            time.sleep(0.8)
            with feed.open("ab") as f:
                f.write(b"".join(lines[chunk : chunk + 50]))
        for body in otlp_requests():
            r = http.post(
                f"http://127.0.0.1:{otlp_port}/v1/traces",
                content=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        want = len(lines) + 1  # and the complete OTLP trace
        while True:
            got = instant(http, prom, 'sum(rag_sidecar_traces_total{outcome="scored"})')["data"]
            done = got["result"] and float(got["result"][0]["value"][1]) >= want
            incomplete = instant(http, prom, "sum(rag_sidecar_otlp_incomplete_total)")["data"]
            if done and incomplete["result"]:
                break
            assert sidecar.poll() is None, sidecar_log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, (got, sidecar_log.read_text()[-3000:])
            time.sleep(0.3)
        time.sleep(2)  # a few more scrapes and rule evaluations
        yield Stack(prom, http)
    finally:
        http.close()
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def label_values(stack: Stack, query: str, values: dict[str, str]) -> list[str]:
    """Run a Grafana ``label_values(selector, label)`` variable query."""
    m = re.fullmatch(r"label_values\((.*), *(\w+)\)", query)
    assert m, query
    selector, label = substitute(m.group(1), values), m.group(2)
    r = stack.http.get(f"{stack.prom}/api/v1/label/{label}/values", params={"match[]": selector})
    body = r.json()
    assert body["status"] == "success", body
    return sorted(body["data"])


def substitute(expr: str, values: dict[str, str]) -> str:
    """What Grafana sends: variables replaced, built-in intervals fixed."""
    for name, value in {
        "$__rate_interval": "1m",
        "$__interval": "1m",
        "$__range": "5m",
    }.items():
        expr = expr.replace(name, value)
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", values[name]).replace(f"${name}", values[name])
    return expr


def choose(stack: Stack, board: dict[str, Any], *, everything: bool) -> dict[str, str]:
    """Variable values as a user would pick them: the busiest app/model/prompt_version
    (or "All": every value as a regex alternation), this job and instance."""
    top = instant(
        stack.http,
        stack.prom,
        "topk(1, sum by (app, model, prompt_version) (rag_sidecar_count_count"
        '{metric="answer_length", app!="rag-sidecar-canary"}))',
    )["data"]["result"][0]["metric"]
    values: dict[str, str] = {}
    for v in board["templating"]["list"]:
        if v["type"] != "query":
            continue
        options = label_values(stack, v["query"], values)
        assert options, f"variable {v['name']} has no values"
        if everything:
            values[v["name"]] = "|".join(options)
        else:
            pick = top.get(v["name"]) or options[0]
            assert pick in options, (v["name"], pick, options)
            values[v["name"]] = pick
    return values


def targets(board: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for p in panels(board):
        for t in p.get("targets", []):
            yield p["title"], t["refId"], t["expr"]


def allowed(table: dict[str, str], title: str, ref: str) -> bool:
    return title in table or f"{title}#{ref}" in table


@pytest.mark.integration
@pytest.mark.parametrize("everything", [False, True], ids=["one-selection", "all"])
@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_every_panel_query_parses_and_returns_data(
    stack: Stack, path: Path, everything: bool
) -> None:
    board = load(path)
    values = choose(stack, board, everything=everything)
    problems = []
    for title, ref, raw in targets(board):
        expr = substitute(raw, values)
        assert "$" not in expr, f"{title}#{ref}: unsubstituted variable in {expr}"
        parsed = stack.http.get(f"{stack.prom}/api/v1/format_query", params={"query": expr})
        if parsed.json()["status"] != "success":
            problems.append(f"{title}#{ref}: does not parse: {parsed.json()}")
            continue
        body = instant(stack.http, stack.prom, expr)
        if body["status"] != "success":
            problems.append(f"{title}#{ref}: {body}")
            continue
        result = body["data"]["result"]
        if allowed(NO_DATA, title, ref):
            if result:
                problems.append(f"{title}#{ref} is in NO_DATA but returns data: drop the entry")
            continue
        if not result:
            problems.append(f"{title}#{ref}: no data for {expr}")
            continue
        if all(math.isnan(float(s["value"][1])) for s in result):
            problems.append(f"{title}#{ref}: only NaN (0/0: no traffic?) for {expr}")
    assert not problems, "\n".join(problems)


def test_no_data_entries_name_real_panels() -> None:
    titles = {p["title"] for path in BOARDS for p in panels(load(path))}
    for key in NO_DATA:
        assert key.split("#")[0] in titles, key


@pytest.mark.integration
def test_rules_use_metrics_the_sidecar_exports(stack: Stack) -> None:
    """Catches a misspelt metric in the alert rules: every rag_sidecar_* name they read is
    scraped from the running sidecar, but for the few created only on first use."""
    exported = set(stack.http.get(f"{stack.prom}/api/v1/label/__name__/values").json()["data"])
    exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    # Metric names, not recording-rule names (level:metric:operation).
    used = {m for e in exprs for m in re.findall(r"(?<![\w:])rag_sidecar_\w+(?![\w:])", e)}
    missing = {m for m in used - exported if m not in RULE_METRICS_ABSENT}
    assert not missing, missing
    assert set(RULE_METRICS_ABSENT) <= used


@pytest.mark.integration
def test_recording_rules_evaluate_on_real_series(stack: Stack) -> None:
    """The quality recording rules produce series from what the sidecar really exports."""
    r = stack.http.get(f"{stack.prom}/api/v1/rules", params={"type": "record"}).json()
    health = {rule["name"]: rule["health"] for g in r["data"]["groups"] for rule in g["rules"]}
    assert health and all(h == "ok" for h in health.values()), health
    for name in (
        "app_model_prompt_version_metric:rag_sidecar_score:mean30m",
        "app_model_prompt_version_metric:rag_sidecar_score_count:increase30m",
        "app_model:rag_sidecar_feedback_thumbs_down:ratio30m",
        "judge:rag_sidecar_judge_requests:error_ratio10m",
        "job:rag_sidecar_otlp_incomplete:ratio15m",
    ):
        result = instant(stack.http, stack.prom, name)["data"]["result"]
        assert result, name
    means = instant(
        stack.http, stack.prom, "app_model_prompt_version_metric:rag_sidecar_score:mean30m"
    )
    metrics = {s["metric"]["metric"] for s in means["data"]["result"]}
    assert metrics == {"faithfulness", "answer_relevance", "groundedness_lexical"}
