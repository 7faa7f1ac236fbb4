"""The Helm chart (deploy/helm/rag-sidecar): lint, render, validate offline, and read it back.

Real tools, no cluster: ``helm`` 3.17 and ``kubernetes-validate`` (``scripts/tools.sh helm``
installs both into .tools/). Rendered manifests are validated against the Kubernetes 1.30 schemas
in strict mode; CRD kinds (ServiceMonitor, PrometheusRule, ScaledObject, TriggerAuthentication)
have no schema there, so their fields are checked here by parsing the YAML.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.config import FileSpec, Settings, load_settings
from tests.conftest import require_tool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "rag-sidecar"
RULES = CHART / "files" / "prometheus-rules.yml"
KUBE_VERSION = "1.30.0"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
ALL_ON = CHART / "ci" / "all-features-values.yaml"
HPA = CHART / "ci" / "hpa-values.yaml"
SIDECAR = CHART / "ci" / "sidecar-values.yaml"
PVC = CHART / "ci" / "pvc-values.yaml"
# Every value set the chart is rendered with: defaults, then each ci/*.yaml.
VALUE_SETS: list[Path | None] = [None, *CI_VALUES]
CORE_KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "Service",
    "ServiceAccount",
}
CRD_KINDS = {"PrometheusRule", "ScaledObject", "ServiceMonitor", "TriggerAuthentication"}
STANDARD_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}


def _ids(value: Path | None) -> str:
    return "defaults" if value is None else value.stem


def _tool(name: str) -> str:
    """An external program, also found in .tools/bin when that is not on PATH."""
    found = shutil.which(name) or shutil.which(name, path=str(ROOT / ".tools" / "bin"))
    return found if found is not None else require_tool(name)


@pytest.fixture(scope="module")
def helm() -> str:
    return _tool("helm")


@pytest.fixture(scope="module")
def kubernetes_validate() -> str:
    return _tool("kubernetes-validate")


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache", "HELM_CONFIG_HOME": "/tmp/helm-cfg"}
    return subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=120, env=env, check=False
    )


def _values_args(values: Path | None, sets: tuple[str, ...] = ()) -> list[str]:
    out = [] if values is None else ["-f", str(values)]
    for s in sets:
        out += ["--set", s]
    return out


def _helm_template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``helm template`` of the chart as release "rs" in namespace "ml"."""
    base = [helm, "template", "rs", str(CHART), "--namespace", "ml"]
    return _run([*base, "--kube-version", KUBE_VERSION, *args])


@cache
def _template(helm: str, values: Path | None, sets: tuple[str, ...] = ()) -> str:
    proc = _helm_template(helm, *_values_args(values, sets))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def render(helm: str, values: Path | None = None, *sets: str) -> list[dict[str, Any]]:
    """The chart's manifests for a value set, parsed."""
    return [d for d in yaml.safe_load_all(_template(helm, values, tuple(sets))) if d]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    every = pod["containers"] + pod.get("initContainers", [])
    (c,) = (c for c in every if c["name"] == "rag-sidecar")
    return c


def sidecar_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    loaded = yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])
    assert isinstance(loaded, dict)
    return loaded


# ------------------------------------------------------------------------------------ lint


@pytest.mark.parametrize("values", VALUE_SETS, ids=_ids)
def test_lint_strict(helm: str, values: Path | None) -> None:
    proc = _run([helm, "lint", "--strict", str(CHART), *_values_args(values)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_ci_value_sets_exist() -> None:
    assert {p.name for p in CI_VALUES} >= {
        "all-features-values.yaml",
        "hpa-values.yaml",
        "pvc-values.yaml",
        "sidecar-values.yaml",
    }


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("unknownKey=1", "Additional property unknownKey is not allowed"),
        ("image.tagg=1", "Additional property tagg is not allowed"),
        ("autoscaling.keda.lagTreshold=5", "Additional property lagTreshold is not allowed"),
        ("config.bogus=1", "Additional property bogus is not allowed"),
        ("metrics.port=70000", "metrics.port"),
        ("image.pullPolicy=Sometimes", "image.pullPolicy"),
        # Secrets are references, never inline values:
        ("config.judge.api_key=sk-inline", "config.judge"),
        ("config.kafka.sasl_password=inline", "config.kafka"),
        ("config.otlp.token=inline", "config.otlp"),
        ("config.review.label_studio.token=inline", "config.review"),
    ],
)
def test_schema_rejects(helm: str, setting: str, complaint: str) -> None:
    proc = _run([helm, "lint", "--strict", str(CHART), "--set", setting])
    assert proc.returncode != 0, f"--set {setting} was accepted"
    assert complaint in proc.stdout + proc.stderr


def test_schema_is_draft07_and_closed() -> None:
    """additionalProperties is false at every level the chart defines (a typo fails lint)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    open_on_purpose = {"config.pipeline"}  # the sidecar validates the rest at start

    def walk(node: dict[str, Any], path: str) -> Iterator[str]:
        closed = node.get("additionalProperties") is False
        if "properties" in node and path not in open_on_purpose and not closed:
            yield path or "<root>"
        for key, sub in node.get("properties", {}).items():
            yield from walk(sub, f"{path}.{key}".lstrip("."))
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], f"{path}[]")

    assert list(walk(schema, "")) == []


def test_schema_knows_every_sidecar_setting() -> None:
    """config's top-level keys are exactly the Settings fields (sidecar/config.py)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(schema["properties"]["config"]["properties"]) == set(Settings.model_fields), (
        "deploy/helm/rag-sidecar/values.schema.json (properties.config.properties) is out of "
        "step with sidecar.config.Settings"
    )


# Values documented as a whole: the sidecar's settings and Kubernetes objects passed through.
OPAQUE_VALUES = {
    "config",
    "deployment.strategy",
    "podSecurityContext",
    "resources",
    "securityContext",
}


def _value_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Documented paths of values.yaml: leaves, and maps/lists that are values themselves."""
    if isinstance(node, dict) and node and prefix not in OPAQUE_VALUES:
        for key, sub in node.items():
            yield from _value_paths(sub, f"{prefix}.{key}".lstrip("."))
    else:
        yield prefix


def test_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    table = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    missing = [p for p in _value_paths(values) if p not in table]
    assert missing == [], f"values missing from the README table: {missing}"
    stale = sorted(t for t in table if not any(p == t for p in _value_paths(values)))
    assert stale == [], f"README documents values that do not exist: {stale}"


# ------------------------------------------------------------------ render + validate


@pytest.mark.parametrize("values", VALUE_SETS, ids=_ids)
def test_rendered_manifests_validate(
    helm: str, kubernetes_validate: str, values: Path | None
) -> None:
    manifests = _template(helm, values)
    proc = _run([kubernetes_validate, "-k", KUBE_VERSION, "--strict", "-"], stdin=manifests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    docs = render(helm, values)
    for doc in docs:
        ref = f"{doc['kind'].lower()}/{doc['metadata']['name']}"
        if doc["kind"] in CORE_KINDS:
            assert f"passed for resource {ref} against version 1.30" in proc.stdout, ref
        else:
            assert doc["kind"] in CRD_KINDS, f"unexpected kind {doc['kind']}"
            assert f"Couldn't find schema for kind {doc['kind']}" in proc.stdout


def test_every_optional_feature_renders(helm: str) -> None:
    kinds = {d["kind"] for d in render(helm, ALL_ON)}
    assert kinds == CORE_KINDS - {"HorizontalPodAutoscaler"} | CRD_KINDS
    assert {d["kind"] for d in render(helm, HPA)} >= {"HorizontalPodAutoscaler"}
    defaults = {d["kind"] for d in render(helm)}
    assert defaults == {"ConfigMap", "Deployment", "Service", "ServiceAccount"}


def test_standard_labels_on_every_object(helm: str) -> None:
    for values in VALUE_SETS:
        for doc in render(helm, values):
            labels = doc["metadata"].get("labels", {})
            assert set(labels) >= STANDARD_LABELS, (doc["kind"], sorted(labels))
            assert labels["app.kubernetes.io/name"] == "rag-sidecar"
            assert labels["app.kubernetes.io/instance"] == "rs"


# ------------------------------------------------------------------------ secrets


SECRETISH = re.compile(r"(PASSWORD|TOKEN|API_KEY|SECRET)", re.IGNORECASE)


@pytest.mark.parametrize("values", VALUE_SETS, ids=_ids)
def test_no_inline_credentials(helm: str, values: Path | None) -> None:
    docs = render(helm, values)
    for doc in docs:
        if doc["kind"] == "Secret":
            assert not doc.get("data") and not doc.get("stringData"), doc["metadata"]["name"]
    if values != SIDECAR:
        for env in container(docs).get("env", []):
            if SECRETISH.search(env["name"]) and not env["name"].endswith("_FILE"):
                assert "value" not in env and "secretKeyRef" in env["valueFrom"], env
    flat = json.dumps(sidecar_config(docs))
    for key in ("api_key", "sasl_password", '"token"'):
        assert key not in flat


def test_secret_references(helm: str) -> None:
    docs = render(helm, ALL_ON)
    env = {e["name"]: e for e in container(docs)["env"]}
    judge_dir = "/var/run/secrets/rag-sidecar/judge"
    assert env["RAG_SIDECAR_JUDGE_API_KEY_FILE"]["value"] == f"{judge_dir}/api-key"
    assert env["RAG_SIDECAR_JUDGE_API_KEY_LOCAL_QWEN_FILE"]["value"] == f"{judge_dir}/local-qwen"
    assert env["RAG_SIDECAR_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "rag-sidecar-kafka",
        "key": "password",
    }
    assert env["RAG_SIDECAR_KAFKA__SASL_USERNAME"]["valueFrom"]["secretKeyRef"] == {
        "name": "rag-sidecar-kafka",
        "key": "username",
    }
    assert env["RAG_SIDECAR_OTLP__TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "rag-sidecar-otlp"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    sources = volumes["rag-sidecar-judge"]["projected"]["sources"]
    assert [s["secret"]["items"][0] for s in sources] == [
        {"key": "openai-key", "path": "api-key"},
        {"key": "vllm-key", "path": "local-qwen"},
    ]
    mounts = {m["name"]: m for m in container(docs)["volumeMounts"]}
    assert mounts["rag-sidecar-judge"] == {
        "name": "rag-sidecar-judge",
        "mountPath": judge_dir,
        "readOnly": True,
    }
    assert volumes["rag-sidecar-kafka-tls"]["secret"]["secretName"] == "rag-sidecar-kafka-tls"
    kafka = sidecar_config(docs)["kafka"]
    assert kafka["ssl_cafile"] == "/etc/rag-sidecar/kafka-tls/ca.crt"
    assert kafka["ssl_keyfile"] == "/etc/rag-sidecar/kafka-tls/tls.key"
    # Defaults: nothing secret is referenced at all.
    assert "env" not in container(render(helm))


# ---------------------------------------------------------------- pod hardening


@pytest.mark.parametrize("values", [None, ALL_ON, HPA], ids=_ids)
def test_security_context(helm: str, values: Path | None) -> None:
    docs = render(helm, values)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    sc = container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # Writable places on a read-only root: /tmp and the data dir, both volumes.
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    data = volumes[mounts["/var/lib/rag-sidecar"]]
    assert "emptyDir" in data or "persistentVolumeClaim" in data


@pytest.mark.parametrize("values", VALUE_SETS, ids=_ids)
def test_volume_mounts_resolve(helm: str, values: Path | None) -> None:
    docs = render(helm, values)
    if values == SIDECAR:
        assert not [d for d in docs if d["kind"] == "Deployment"]
        return
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    names = {v["name"] for v in pod["volumes"]}
    assert {m["name"] for m in container(docs)["volumeMounts"]} <= names


@pytest.mark.parametrize("values", [None, ALL_ON], ids=_ids)
def test_probes_and_ports(helm: str, values: Path | None) -> None:
    docs = render(helm, values)
    c = container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    cfg = sidecar_config(docs)
    assert ports["metrics"] == cfg["http"]["port"]
    assert c["args"][:3] == ["run", "--config", "/etc/rag-sidecar/config.yaml"]
    svc = one(docs, "Service")["spec"]
    assert {p["targetPort"] for p in svc["ports"]} <= set(ports)
    if values == ALL_ON:
        assert ports == {"metrics": 9465, "otlp-grpc": 4317, "otlp-http": 4319}
        assert {p["name"]: p["port"] for p in svc["ports"]} == ports
        assert "otlp+grpc://0.0.0.0:4317" in cfg["sources"]
        assert "otlp+http://0.0.0.0:4319" in cfg["sources"]
    else:
        assert ports == {"metrics": 9464}


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=_ids)
def test_grace_period_exceeds_drain_timeout(helm: str, values: Path | None) -> None:
    docs = render(helm, values)
    if values == SIDECAR:
        return
    grace = one(docs, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > shutdown_seconds(docs)


def shutdown_seconds(docs: list[dict[str, Any]]) -> float:
    """The longest clean stop of the rendered pod, as the sidecar closes (Pipeline.aclose): a
    preStop sleep, the drain, then one after the other the feedback joiner, the embeddings tier
    and the judges (JudgeRouter.aclose: the primary, then the others together)."""
    settings = load_settings_from(docs)
    total = settings.pipeline.drain_timeout_s
    if settings.feedback.enabled:
        total += settings.feedback.shutdown_timeout_s
    if settings.embeddings.enabled:
        total += settings.embeddings.shutdown_timeout_s
    judges = settings.judge if isinstance(settings.judge, list) else [settings.judge]
    judges_ = [j for j in judges if j is not None]
    total += max((j.shutdown_timeout_s for j in judges_ if j.role == "primary"), default=0.0)
    total += max((j.shutdown_timeout_s for j in judges_ if j.role != "primary"), default=0.0)
    pre_stop = container(docs).get("lifecycle", {}).get("preStop", {})
    return total + float(pre_stop.get("sleep", {}).get("seconds", 0))


def test_grace_period_covers_the_judge(helm: str) -> None:
    sets = ("config.judge.url=http://vllm:8000/v1", "config.judge.shutdown_timeout_s=22.5")
    docs = render(helm, None, *sets)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30 + 10 + 23 + 15  # drain, feedback, judge


@pytest.mark.parametrize(
    ("sets", "grace"),
    [
        ((), 30 + 10 + 15),  # the feedback joiner is on by default
        (("config.feedback.enabled=false",), 30 + 15),
        (("config.feedback.shutdown_timeout_s=60",), 30 + 60 + 15),
        (("config.embeddings.enabled=true", "config.embeddings.shutdown_timeout_s=20"), 75),
        (("lifecycle.preStop.sleep.seconds=40",), 40 + 30 + 10 + 15),
        # A primary, then a shadow and an escalation judge closed together after it.
        (
            (
                "config.judge[0].name=p",
                "config.judge[0].url=http://a/v1",
                "config.judge[0].shutdown_timeout_s=12",
                "config.judge[1].name=s",
                "config.judge[1].url=http://b/v1",
                "config.judge[1].role=shadow",
                "config.judge[1].shutdown_timeout_s=8",
                "config.judge[2].name=e",
                "config.judge[2].url=http://c/v1",
                "config.judge[2].role=escalation",
            ),
            30 + 10 + 12 + 10 + 15,
        ),
    ],
)
def test_grace_period_covers_every_shutdown_step(
    helm: str, sets: tuple[str, ...], grace: int
) -> None:
    """SIGKILL must not cut the shutdown: every step the sidecar waits for in turn counts."""
    docs = render(helm, None, *sets)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == grace
    assert grace > shutdown_seconds(docs)


def test_recreate_strategy_drops_rolling_update(helm: str) -> None:
    """The API server refuses strategy.rollingUpdate with type Recreate (values.yaml's default
    rollingUpdate would otherwise be merged into a user's `strategy: {type: Recreate}`)."""
    for docs in (render(helm, None, "deployment.strategy.type=Recreate"), render(helm, PVC)):
        assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    default = one(render(helm), "Deployment")["spec"]["strategy"]
    assert default == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }


def test_pvc_for_one_replica(helm: str) -> None:
    docs = render(helm, PVC)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["rag-sidecar-data"] == {
        "name": "rag-sidecar-data",
        "persistentVolumeClaim": {"claimName": "rag-sidecar-state"},
    }


def test_schema_accepts_a_null_review(helm: str, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("config:\n  review: null\n")
    proc = _run([helm, "lint", "--strict", str(CHART), "-f", str(values)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (
            ["deployment.terminationGracePeriodSeconds=30"],
            "must exceed config.pipeline.drain_timeout_s",
        ),
        (["autoscaling.hpa.enabled=true", "autoscaling.keda.enabled=true"], "exclusive"),
        (["autoscaling.hpa.enabled=true", "resources=null"], "needs resources.requests.cpu"),
        (["judge.apiKey.existingSecret=k"], "config.judge is not"),
        (["kafka.sasl.existingSecret=k"], "is not SASL_PLAINTEXT or SASL_SSL"),
        (["autoscaling.keda.enabled=true", "config.sources={file:/x.jsonl}"], "kafka:// source"),
        (["metrics.serviceMonitor.enabled=true", "service.enabled=false"], "needs the Service"),
        (
            ["lifecycle.preStop.sleep.seconds=20", "deployment.terminationGracePeriodSeconds=50"],
            "must exceed",
        ),
        (
            [
                "config.feedback.shutdown_timeout_s=60",
                "deployment.terminationGracePeriodSeconds=60",
            ],
            "must exceed",
        ),
        # A PVC holds one replica's state files, and a rolling update would share it.
        (["dataDir.existingClaim=c"], "needs deployment.strategy.type=Recreate"),
        (
            [
                "dataDir.existingClaim=c",
                "deployment.strategy.type=Recreate",
                "deployment.replicas=2",
            ],
            "holds one replica's state",
        ),
        (
            [
                "dataDir.existingClaim=c",
                "deployment.strategy.type=Recreate",
                "autoscaling.hpa.enabled=true",
            ],
            "holds one replica's state",
        ),
        # A budget that never allows an eviction hangs node drains.
        (
            ["podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=1"],
            "allows no eviction",
        ),
        (
            ["podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=50%"],
            "allows no eviction",
        ),
        (
            [
                "podDisruptionBudget.enabled=true",
                "podDisruptionBudget.maxUnavailable=0",
                "deployment.replicas=3",
            ],
            "allows no eviction",
        ),
        (
            [
                "podDisruptionBudget.enabled=true",
                "podDisruptionBudget.minAvailable=2",
                "autoscaling.hpa.enabled=true",
                "autoscaling.hpa.minReplicas=2",
            ],
            "allows no eviction",
        ),
        (
            [
                "podDisruptionBudget.enabled=true",
                "podDisruptionBudget.minAvailable=1",
                "autoscaling.keda.enabled=true",
                "autoscaling.keda.minReplicas=0",
            ],
            "allows no eviction",
        ),
    ],
)
def test_inconsistent_values_are_refused(helm: str, sets: list[str], complaint: str) -> None:
    proc = _helm_template(helm, *(a for s in sets for a in ("--set", s)))
    assert proc.returncode != 0, f"{sets} rendered"
    assert complaint in proc.stderr


# ------------------------------------------------------------- the sidecar's config


def load_settings_from(docs: list[dict[str, Any]]) -> Settings:
    """Settings as the container would load them: the ConfigMap file plus its env."""
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch)
        path = where / "config.yaml"
        path.write_text(one(docs, "ConfigMap")["data"]["config.yaml"])
        env: dict[str, str] = {}
        deployments = [d for d in docs if d["kind"] == "Deployment"]
        for var in container(docs).get("env", []) if deployments else []:
            if "valueFrom" in var:  # a Secret reference: any value will do
                env[var["name"]] = f"from-secret-{var['valueFrom']['secretKeyRef']['key']}"
            elif var["name"].endswith("_FILE"):  # a mounted secret file: stand one in
                stand_in = where / Path(var["value"]).name
                stand_in.write_text(f"key-in-{stand_in.name}\n")
                env[var["name"]] = str(stand_in)
            else:
                env[var["name"]] = var["value"]
        saved = {k: v for k, v in os.environ.items() if k.startswith("RAG_SIDECAR_")}
        for k in saved:
            del os.environ[k]
        os.environ.update(env)
        try:
            return load_settings(path)
        finally:
            for k in env:
                os.environ.pop(k, None)
            os.environ.update(saved)


@pytest.mark.parametrize("values", VALUE_SETS, ids=_ids)
def test_configmap_is_a_valid_sidecar_config(helm: str, values: Path | None) -> None:
    docs = render(helm, values)
    settings = load_settings_from(docs)
    assert settings.http.host == "0.0.0.0"
    if values == ALL_ON:
        assert settings.http.port == 9465
        assert [s.name for s in settings.source_specs()] == ["kafka", "otlp", "otlp"]
        assert settings.kafka.sasl_password is not None
        assert settings.kafka.sasl_password.get_secret_value() == "from-secret-password"
        assert settings.kafka.sasl_username == "from-secret-username"
        assert settings.otlp.token is not None
        judges = settings.judge
        assert isinstance(judges, list)
        keys = {j.name: j.api_key.get_secret_value() for j in judges if j.api_key is not None}
        assert keys == {"primary": "key-in-api-key", "local-qwen": "key-in-local-qwen"}
        assert settings.pipeline.max_record_bytes == 1048576
        assert str(settings.drift.snapshot_path) == "/var/lib/rag-sidecar/drift-state.json"
    elif values == SIDECAR:
        assert sorted(s.name for s in settings.source_specs()) == ["otlp", "otlp"]
        assert {s.uri for s in settings.source_specs()} == {
            "otlp+grpc://127.0.0.1:4317",
            "otlp+http://127.0.0.1:4318",
        }
    else:
        assert settings.http.port == 9464
    # The root filesystem is read-only: file sinks must write into a mounted volume.
    writable = ("/var/lib/rag-sidecar/", "/tmp/")
    for spec in (settings.events_spec(), settings.dead_letter_spec()):
        if isinstance(spec, FileSpec):
            assert spec.path is None or str(spec.path).startswith(writable), spec.uri
    if settings.drift.snapshot_path is not None:
        assert str(settings.drift.snapshot_path).startswith(writable)


def test_service_links_would_not_break_settings(helm: str) -> None:
    """Even with service links on, RAG_SIDECAR_* variables Kubernetes injects are harmless."""
    docs = render(helm)
    injected = {
        "RAG_SIDECAR_SERVICE_HOST": "10.0.0.1",
        "RAG_SIDECAR_SERVICE_PORT": "9464",
        "RAG_SIDECAR_SERVICE_PORT_METRICS": "9464",
        "RAG_SIDECAR_PORT": "tcp://10.0.0.1:9464",
        "RAG_SIDECAR_PORT_9464_TCP": "tcp://10.0.0.1:9464",
        "RAG_SIDECAR_PORT_9464_TCP_PORT": "9464",
    }
    os.environ.update(injected)
    try:
        assert load_settings_from(docs).http.port == 9464
    finally:
        for k in injected:
            os.environ.pop(k, None)


# -------------------------------------------------------------- monitoring objects


def test_prometheus_rule_is_the_rules_file(helm: str) -> None:
    rule = one(render(helm, ALL_ON), "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    link = ROOT / "deploy" / "prometheus" / "rules.yml"
    assert link.is_symlink()
    assert not link.readlink().is_absolute()
    assert link.resolve() == RULES.resolve()
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert groups and all(g["rules"] for g in groups)


def test_rules_file_passes_promtool() -> None:
    promtool = require_tool("promtool")
    proc = _run([promtool, "check", "rules", str(ROOT / "deploy" / "prometheus" / "rules.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_service_monitor_scrapes_the_metrics_port(helm: str) -> None:
    docs = render(helm, ALL_ON)
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    svc = one(docs, "Service")
    labels = svc["metadata"]["labels"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    # job="rag-sidecar" whatever the release name: the rules' up{job=~".*rag-sidecar.*"} matches.
    assert labels[sm["spec"]["jobLabel"]] == "rag-sidecar"
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"
    assert "metrics" in {p["name"] for p in svc["spec"]["ports"]}
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def scraped_job(docs: list[dict[str, Any]]) -> str:
    """The job label Prometheus gives the ServiceMonitor's targets: the Service's jobLabel
    label, then the endpoint's relabelings that write `job` (replace, constant replacement)."""
    sm = one(docs, "ServiceMonitor")
    job: str = one(docs, "Service")["metadata"]["labels"][sm["spec"]["jobLabel"]]
    (endpoint,) = sm["spec"]["endpoints"]
    for step in endpoint.get("relabelings", []):
        if step.get("targetLabel") == "job" and step.get("action", "replace") == "replace":
            assert not step.get("sourceLabels"), step
            job = step["replacement"]
    return job


def test_service_monitor_job_matches_the_alert_rules(helm: str) -> None:
    """up{job=~".*rag-sidecar.*"} (RagSidecarDown, RagSidecarAbsent) must select the targets
    whatever nameOverride / fullnameOverride say."""
    selectors = re.findall(r'up\{job=~"([^"]+)"\}', RULES.read_text())
    assert selectors, "the rules select no up{job=~...}"
    cases: list[tuple[Path | None, tuple[str, ...]]] = [
        (None, ("metrics.serviceMonitor.enabled=true",)),
        (None, ("metrics.serviceMonitor.enabled=true", "nameOverride=eval")),
        (None, ("metrics.serviceMonitor.enabled=true", "nameOverride=eval", "fullnameOverride=x")),
        (None, ("metrics.serviceMonitor.enabled=true", "nameOverride=my-rag-sidecar")),
        (ALL_ON, ("nameOverride=scorer",)),
        (SIDECAR, ("nameOverride=evaluator",)),
    ]
    for values, sets in cases:
        job = scraped_job(render(helm, values, *sets))
        for regex in selectors:
            assert re.fullmatch(regex, job), f"{sets}: job {job!r} does not match {regex!r}"
    assert scraped_job(render(helm, ALL_ON)) == "rag-sidecar"
    # A nameOverride stays visible in the job; the user's relabelings still run after ours.
    docs = render(helm, ALL_ON, "nameOverride=scorer")
    assert scraped_job(docs) == "rag-sidecar-scorer"
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["relabelings"][1:] == [
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}
    ]


def test_scrape_timeout_at_most_the_interval(helm: str) -> None:
    def attempt(interval: str, timeout: str) -> subprocess.CompletedProcess[str]:
        sets = [
            "metrics.serviceMonitor.enabled=true",
            f"metrics.serviceMonitor.interval={interval}",
            f"metrics.serviceMonitor.scrapeTimeout={timeout}",
        ]
        return _helm_template(helm, *(a for s in sets for a in ("--set", s)))

    # Compared as durations, not as strings.
    for interval, timeout in [("1m", "45s"), ("30s", "30s"), ("1s", "500ms"), ("2h", "90m")]:
        proc = attempt(interval, timeout)
        assert proc.returncode == 0, f"{interval}/{timeout}: {proc.stderr}"
    for interval, timeout in [("10s", "30s"), ("1m", "90s"), ("500ms", "1s"), ("1h", "61m")]:
        proc = attempt(interval, timeout)
        assert proc.returncode != 0, f"scrapeTimeout {timeout} > interval {interval} rendered"
        assert "must not exceed metrics.serviceMonitor.interval" in proc.stderr


def test_keda_scales_on_consumer_lag(helm: str) -> None:
    docs = render(helm, ALL_ON)
    so = one(docs, "ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    deployment = one(docs, "Deployment")
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    assert so["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (2, 12)
    kafka = next(t for t in so["spec"]["triggers"] if t["type"] == "kafka")
    # Derived from the config's kafka:// source and its ?group=.
    assert kafka["metadata"] == {
        "bootstrapServers": "kafka-0.kafka:9093,kafka-1.kafka:9093",
        "consumerGroup": "rag-eval",
        "topic": "rag-traces",
        "lagThreshold": "5000",
        "activationLagThreshold": "100",
        "offsetResetPolicy": "latest",
        "allowIdleConsumers": "false",
        "sasl": "scram_sha512",
        "tls": "enable",
    }
    auth = one(docs, "TriggerAuthentication")
    assert kafka["authenticationRef"] == {"name": auth["metadata"]["name"]}
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {
        "username": ("rag-sidecar-kafka", "username"),
        "password": ("rag-sidecar-kafka", "password"),
        "ca": ("rag-sidecar-kafka-tls", "ca.crt"),
        "cert": ("rag-sidecar-kafka-tls", "tls.crt"),
        "key": ("rag-sidecar-kafka-tls", "tls.key"),
    }
    assert {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "80"}} in so["spec"][
        "triggers"
    ]


def test_keda_defaults_for_a_plain_source(helm: str) -> None:
    docs = render(helm, None, "autoscaling.keda.enabled=true")
    (trigger,) = one(docs, "ScaledObject")["spec"]["triggers"]
    assert trigger["metadata"]["bootstrapServers"] == "kafka:9092"
    assert trigger["metadata"]["consumerGroup"] == "rag-sidecar"
    assert trigger["metadata"]["topic"] == "rag-traces"
    assert "authenticationRef" not in trigger
    assert not [d for d in docs if d["kind"] == "TriggerAuthentication"]


def test_hpa_on_cpu(helm: str) -> None:
    docs = render(helm, HPA)
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == one(docs, "Deployment")["metadata"]["name"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 65},
    }
    assert "replicas" not in one(docs, "Deployment")["spec"]
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "25%"


def test_network_policy(helm: str) -> None:
    docs = render(helm, ALL_ON)
    spec = one(docs, "NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert (
        spec["podSelector"]["matchLabels"]
        == (one(docs, "Deployment")["spec"]["selector"]["matchLabels"])
    )
    ingress_ports = [{p["port"] for p in rule["ports"]} for rule in spec["ingress"]]
    assert ingress_ports == [{"metrics"}, {"otlp-grpc", "otlp-http"}]
    egress = spec["egress"]
    kafka = next(r for r in egress if r["ports"][0]["port"] == 9093)
    assert {"ipBlock": {"cidr": "10.20.0.0/16"}} in kafka["to"]
    judge = next(r for r in egress if {p["port"] for p in r["ports"]} == {443, 8000})
    assert judge["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    dns = next(r for r in egress if r["ports"][0]["port"] == 53)
    assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}


# Each egress rule gets its own CIDR so the rendered rules can be told apart.
RULE_CIDRS = {
    "kafka": "10.0.1.0/24",
    "judge": "10.0.2.0/24",
    "otlp": "10.0.3.0/24",
    "review": "10.0.4.0/24",
}


def egress_ports(helm: str, tmp_path: Path, values: dict[str, Any]) -> dict[str, set[int]]:
    """The NetworkPolicy's TCP ports per egress rule (kafka, judge, otlp, review) for values."""
    policy = values.setdefault("networkPolicy", {})
    policy["enabled"] = True
    egress = policy.setdefault("egress", {})
    for name, cidr in RULE_CIDRS.items():
        egress.setdefault(name, {})["cidrs"] = [cidr]
    # A new file each time: renders are cached by path.
    path = tmp_path / f"values-{sum(1 for _ in tmp_path.iterdir())}.yaml"
    path.write_text(yaml.safe_dump(values))
    spec = one(render(helm, path), "NetworkPolicy")["spec"]
    by_cidr = {cidr: name for name, cidr in RULE_CIDRS.items()}
    out: dict[str, set[int]] = {}
    for rule in spec["egress"]:
        cidrs = [peer["ipBlock"]["cidr"] for peer in rule.get("to", []) if "ipBlock" in peer]
        if cidrs and cidrs[0] in by_cidr:
            assert rule["ports"], "an egress rule without ports allows every port"
            assert {p["protocol"] for p in rule["ports"]} == {"TCP"}
            out[by_cidr[cidrs[0]]] = {p["port"] for p in rule["ports"]}
    return out


def test_network_policy_judge_port_from_its_url(helm: str, tmp_path: Path) -> None:
    values = {"config": {"judge": {"url": "http://vllm:8000/v1", "model": "qwen"}}}
    assert egress_ports(helm, tmp_path, values) == {"kafka": {9092}, "judge": {8000}}


def test_network_policy_ports_of_every_judge(helm: str, tmp_path: Path) -> None:
    judges = [
        {"name": "primary", "url": "http://vllm:8000/v1", "role": "primary"},
        {"name": "second", "url": "http://tgi.ml:8081/v1", "role": "shadow", "share": 0.1},
    ]
    ports = egress_ports(helm, tmp_path, {"config": {"judge": judges}})
    assert ports["judge"] == {8000, 8081}


def test_network_policy_https_judge_without_port(helm: str, tmp_path: Path) -> None:
    # No Kafka in the config: no Kafka rule either (the old default opened 9092 regardless).
    values = {
        "config": {
            "sources": ["file:/var/lib/rag-sidecar/traces.jsonl"],
            "judge": {"url": "https://api.openai.com/v1", "model": "gpt-4o-mini"},
        }
    }
    assert egress_ports(helm, tmp_path, values) == {"judge": {443}}


def test_network_policy_kafka_ports_of_every_broker(helm: str, tmp_path: Path) -> None:
    values = {"config": {"sources": ["kafka://a:9093,b:9094/t?group=g"]}}
    assert egress_ports(helm, tmp_path, values) == {"kafka": {9093, 9094}}
    # The events and dead-letter sinks' brokers too.
    values = {
        "config": {
            "sources": ["kafka://a:9093/t"],
            "events": "kafka://sinks:19092/rag-scores",
            "dead_letter": "kafka://dlq:29092/rag-dlq",
        }
    }
    assert egress_ports(helm, tmp_path, values) == {"kafka": {9093, 19092, 29092}}


def test_network_policy_label_studio(helm: str, tmp_path: Path) -> None:
    values = {
        "config": {
            "sources": ["file:/var/lib/rag-sidecar/traces.jsonl"],
            "review": {"label_studio": {"url": "http://ls:8080", "project_title": "RAG"}},
        }
    }
    assert egress_ports(helm, tmp_path, values) == {"review": {8080}}


def test_network_policy_scores_otlp_port(helm: str, tmp_path: Path) -> None:
    values = {"config": {"scores_otlp": "otlp+http://collector.observability:14318"}}
    assert egress_ports(helm, tmp_path, values) == {"kafka": {9092}, "otlp": {14318}}


def test_network_policy_explicit_ports_win(helm: str, tmp_path: Path) -> None:
    values = {
        "config": {
            "sources": ["kafka://a:9093/t"],
            "judge": {"url": "http://vllm:8000/v1"},
            "review": {"label_studio": {"url": "http://ls:8080"}},
        },
        "networkPolicy": {
            "egress": {
                "kafka": {"ports": [19093]},
                "judge": {"ports": [3128]},
                "review": {"ports": [8443]},
            }
        },
    }
    assert egress_ports(helm, tmp_path, values) == {
        "kafka": {19093},
        "judge": {3128},
        "review": {8443},
    }


def test_sidecar_mode_renders_no_workload(helm: str) -> None:
    docs = render(helm, SIDECAR)
    assert {d["kind"] for d in docs} == {"ConfigMap", "Service", "ServiceMonitor", "PrometheusRule"}
    svc = one(docs, "Service")["spec"]
    assert svc["selector"] == {"app": "rag-api"}
    assert [p["name"] for p in svc["ports"]] == ["metrics"]


# ------------------------------------------------------- the container in another chart


PARENT_DEPLOYMENT = """\
{{- $rs := index .Subcharts "rag-sidecar" }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rag-api
spec:
  selector:
    matchLabels: {app: rag-api}
  template:
    metadata:
      labels: {app: rag-api}
      annotations:
        checksum/rag-sidecar-config: {{ include "rag-sidecar.config" $rs | sha256sum }}
    spec:
      terminationGracePeriodSeconds: {{ include "rag-sidecar.terminationGracePeriod" $rs }}
      {{- if $rs.Values.sidecar.native }}
      initContainers:
        - {{ include "rag-sidecar.container" $rs | indent 10 | trim }}
      {{- end }}
      containers:
        - name: api
          image: example/rag-api:1.0
          env:
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: http://127.0.0.1:4318
        {{- if not $rs.Values.sidecar.native }}
        - {{ include "rag-sidecar.container" $rs | indent 10 | trim }}
        {{- end }}
      volumes:
        {{- include "rag-sidecar.volumes" $rs | nindent 8 }}
"""


@pytest.mark.parametrize("native", [False, True], ids=["container", "native-sidecar"])
def test_container_template_in_a_parent_chart(
    helm: str, kubernetes_validate: str, tmp_path: Path, native: bool
) -> None:
    """README "Running as a sidecar": another chart includes rag-sidecar.container."""
    parent = tmp_path / "rag-api"
    (parent / "templates").mkdir(parents=True)
    shutil.copytree(CHART, parent / "charts" / "rag-sidecar")
    (parent / "Chart.yaml").write_text(
        "apiVersion: v2\nname: rag-api\nversion: 1.0.0\n"
        "dependencies:\n  - name: rag-sidecar\n    version: 0.1.0\n"
    )
    (parent / "values.yaml").write_text(
        yaml.safe_dump(
            {
                "rag-sidecar": {
                    "deployment": {"enabled": False},
                    "otlp": {"host": "127.0.0.1", "http": {"enabled": True}},
                    "config": {"sources": [], "judge": {"url": "http://vllm:8000/v1"}},
                    "judge": {"apiKey": {"existingSecret": "judge-key"}},
                    "sidecar": {"native": native},
                }
            }
        )
    )
    (parent / "templates" / "deployment.yaml").write_text(PARENT_DEPLOYMENT)
    proc = _run([helm, "lint", "--strict", str(parent)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _run([helm, "template", "app", str(parent), "--kube-version", KUBE_VERSION])
    assert proc.returncode == 0, proc.stderr
    manifests = proc.stdout
    check = _run([kubernetes_validate, "-k", KUBE_VERSION, "--strict", "-"], stdin=manifests)
    assert check.returncode == 0, check.stdout
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    assert {d["kind"] for d in docs} == {"ConfigMap", "Deployment"}
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    if native:  # starts before the application and stops after it (Kubernetes >= 1.29)
        assert [c["name"] for c in pod["containers"]] == ["api"]
        (sidecar,) = pod["initContainers"]
        assert sidecar["restartPolicy"] == "Always"
    else:
        assert [c["name"] for c in pod["containers"]] == ["api", "rag-sidecar"]
        sidecar = pod["containers"][1]
        assert "restartPolicy" not in sidecar
    assert sidecar["name"] == "rag-sidecar"
    # A failing evaluator must not take the application out of its Service.
    assert "readinessProbe" not in sidecar
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {m["name"] for m in sidecar["volumeMounts"]} <= {v["name"] for v in pod["volumes"]}
    config_volume = next(v for v in pod["volumes"] if v["name"] == "rag-sidecar-config")
    assert config_volume["configMap"]["name"] == one(docs, "ConfigMap")["metadata"]["name"]
    settings = load_settings_from(docs)
    assert [s.uri for s in settings.source_specs()] == ["otlp+http://127.0.0.1:4318"]
    assert settings.judge is not None and not isinstance(settings.judge, list)
    assert settings.judge.api_key is not None  # from the mounted key file
