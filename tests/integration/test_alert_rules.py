"""The Prometheus alert rules: promtool accepts them, and their unit tests cover every alert.

The rules live in the Helm chart (``deploy/helm/rag-sidecar/files/prometheus-rules.yml``);
``deploy/prometheus/rules.yml`` is a relative symlink to them and the promtool unit tests in
``deploy/prometheus/tests/`` read that path.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning", "info"}
# A metric name, a dotted setting (judge.rate_per_minute) or a quoted log line.
CONCRETE = re.compile(r'rag_sidecar_\w+|\b[a-z_]+\.[a-z_]+\b|"[a-z][^"]{8,}"')


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alerts() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for rule in rules():
        if "alert" in rule:
            assert rule["alert"] not in found, f"duplicate alert {rule['alert']}"
            found[rule["alert"]] = rule
    return found


def cases() -> dict[str, dict[str, list[str]]]:
    """alert → {"firing": [...], "quiet": [...]} test case descriptions."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"firing": [], "quiet": []})
    for path in TESTS:
        doc = yaml.safe_load(path.read_text())
        for group in doc["tests"]:
            for case in group.get("alert_rule_test", []):
                kind = "firing" if case.get("exp_alerts") else "quiet"
                where = f"{path.name}: {group.get('name', '?')} @ {case['eval_time']}"
                out[case["alertname"]][kind].append(where)
    return out


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_promtool_check_rules() -> None:
    proc = run(require_tool("promtool"), "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.integration
def test_promtool_unit_tests_pass() -> None:
    assert TESTS, "no promtool unit tests"
    proc = run(require_tool("promtool"), "test", "rules", *map(str, TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(TESTS), proc.stdout


def test_unit_tests_read_the_rules_file() -> None:
    for path in TESTS:
        doc = yaml.safe_load(path.read_text())
        files = [(path.parent / f).resolve() for f in doc["rule_files"]]
        assert files == [RULES.resolve()], path.name
        assert doc.get("evaluation_interval") == "1m", path.name


def test_every_alert_has_a_firing_and_a_quiet_test_case() -> None:
    covered = cases()
    missing = [
        f"{name}: no {kind} case"
        for name in alerts()
        for kind in ("firing", "quiet")
        if not covered[name][kind]
    ]
    assert not missing, "\n".join(missing)
    unknown = set(covered) - set(alerts())
    assert not unknown, f"tests for alerts that do not exist: {unknown}"


def test_every_alert_has_severity_and_annotations() -> None:
    for name, rule in alerts().items():
        assert name.startswith("RagSidecar"), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        notes = rule["annotations"]
        for key in ("summary", "description", "runbook"):
            assert isinstance(notes.get(key), str) and len(notes[key]) > 20, (name, key)
        # The runbook says what to check first, concretely: a metric, a setting or a log line.
        assert CONCRETE.search(notes["runbook"]), name


def test_alert_set_and_severities() -> None:
    severity = {name: rule["labels"]["severity"] for name, rule in alerts().items()}
    assert severity == {
        "RagSidecarFaithfulnessDrop": "critical",
        "RagSidecarAnswerRelevanceDrop": "warning",
        "RagSidecarGroundednessDrop": "info",
        "RagSidecarDriftDetected": "warning",
        "RagSidecarReferenceDrift": "info",
        "RagSidecarVersionRegression": "warning",
        "RagSidecarThumbsDownSpike": "warning",
        "RagSidecarJudgeErrorRateHigh": "warning",
        "RagSidecarJudgeBudgetExhausted": "warning",
        "RagSidecarJudgeBreakerOpen": "warning",
        "RagSidecarJudgeSkipping": "info",
        "RagSidecarJudgeCanaryFailing": "warning",
        "RagSidecarKafkaLagGrowing": "warning",
        "RagSidecarKafkaConsumerFailing": "warning",
        "RagSidecarDeadLetters": "warning",
        "RagSidecarQueueSaturated": "warning",
        "RagSidecarPipelineStalled": "critical",
        "RagSidecarNoTraces": "warning",
        "RagSidecarOtlpRefusing": "warning",
        "RagSidecarTracesDropped": "warning",
        "RagSidecarSinkErrors": "warning",
        "RagSidecarOtlpIncompleteTraces": "warning",
        "RagSidecarDown": "critical",
        "RagSidecarAbsent": "warning",
    }


def test_every_recording_rule_is_used_by_an_alert() -> None:
    records = [r["record"] for r in rules() if "record" in r]
    assert len(records) == len(set(records))
    exprs = "\n".join(r["expr"] for r in alerts().values())
    unused = [name for name in records if name not in exprs]
    assert not unused, unused
    for name in records:
        assert name.count(":") == 2, f"{name}: use level:metric:operations"
