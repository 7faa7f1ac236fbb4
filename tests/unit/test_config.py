from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config import load_settings, parse_sink_uri, parse_source_uri
from sidecar.errors import ConfigError


def test_defaults() -> None:
    s = load_settings()
    assert s.http.port == 9464
    assert s.pipeline.overflow == "block"
    assert s.sources == []


def test_precedence_flags_over_env_over_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("http:\n  port: 1111\n  max_label_values: 7\npipeline:\n  batch_size: 10\n")
    monkeypatch.setenv("RAG_SIDECAR_HTTP__PORT", "2222")
    monkeypatch.setenv("RAG_SIDECAR_PIPELINE__QUEUE_SIZE", "3")
    s = load_settings(cfg)
    assert s.http.port == 2222  # env beats yaml
    assert s.http.max_label_values == 7  # yaml kept where env is silent (deep merge)
    assert s.pipeline.batch_size == 10 and s.pipeline.queue_size == 3
    s = load_settings(cfg, http={"port": 3333})
    assert s.http.port == 3333  # flags beat env
    assert s.http.max_label_values == 7


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("http:\n  prot: 1\n", "http.prot"),
        ("pipeline:\n  overflow: maybe\n", "pipeline.overflow"),
        ("sampling:\n  rate: 2\n", "sampling.rate"),
        ("sources: ['kafkaa://x/y']\n", "unsupported source URI scheme"),
        ("unknown_key: 1\n", "unknown_key"),
        ("- a list\n", "mapping"),
        ("http: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_fails_with_clear_message(tmp_path: Path, yaml_text: str, needle: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml")


def test_bad_env_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_SIDECAR_HTTP__PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"http\.port"):
        load_settings()


def test_uris() -> None:
    assert parse_source_uri("-").path is None
    assert parse_source_uri("file:/a/b.jsonl").path == Path("/a/b.jsonl")
    assert parse_source_uri("file:///a/b.jsonl").path == Path("/a/b.jsonl")
    assert parse_source_uri("x/y.jsonl").path == Path("x/y.jsonl")
    assert parse_sink_uri("-").path is None
    with pytest.raises(ValueError, match="empty path"):
        parse_source_uri("file:")


@pytest.mark.parametrize(
    ("var", "value"),
    [("RAG_SIDECAR_SOURCES", "traces.jsonl"), ("RAG_SIDECAR_PIPELINE", "{batch_size: 3")],
)
def test_env_value_that_is_not_json_fails_with_a_config_error(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    """List and object fields read JSON from the environment; anything else escaped
    load_settings as a traceback (exit 1) instead of a one-line error (exit 2)."""
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    field = var.removeprefix("RAG_SIDECAR_").lower()
    assert f'"{field}"' in str(info.value) and "JSON" in str(info.value)


def test_a_daily_cap_without_prices_fails_at_start() -> None:
    """Cost is tokens × price: at the default prices (0) the cap silently never bound."""
    with pytest.raises(ConfigError, match="daily_usd_cap of judge 'default' needs"):
        load_settings(judge={"daily_usd_cap": 5})
    with pytest.raises(ConfigError, match="judge 'big'"):
        load_settings(judge=[{"name": "big", "daily_usd_cap": 5}])
    ok = load_settings(judge={"daily_usd_cap": 5, "usd_per_1k_completion_tokens": 0.0006})
    assert ok.judge is not None and not isinstance(ok.judge, list)


def test_an_idempotent_producer_without_acks_all_fails_at_start() -> None:
    """aiokafka refuses it only when the producer starts (after the source is up)."""
    with pytest.raises(ConfigError, match="enable_idempotence needs acks 'all'"):
        load_settings(kafka={"acks": "1"})
    assert load_settings(kafka={"acks": "1", "enable_idempotence": False}).kafka.acks == "1"
