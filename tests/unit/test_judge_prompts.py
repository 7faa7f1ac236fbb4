"""Prompt files, the judge's view of a trace, versions, settings, cache keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from sidecar.errors import ConfigError
from sidecar.events import make_event_id
from sidecar.scorers.judge import (
    JudgeSettings,
    LruCache,
    content_key,
    judge_version,
    load_prompts,
    prepare_input,
)
from sidecar.scorers.judge.prompts import build_messages, cut, fair_shares, repair_messages
from sidecar.trace import trace_from_object
from tests.conftest import make_trace

PROMPTS = Path(__file__).resolve().parents[2] / "sidecar/scorers/judge/prompts"


def test_shipped_prompt_loads_and_asks_for_every_field() -> None:
    p = load_prompts("rag_v1")
    for field in (
        "claims",
        "verdict",
        "quote",
        "answer_relevance",
        "chunk_relevance",
        "sufficient",
    ):
        assert field in p.system
    assert "reference_facts" in p.reference and "rubric" in p.rubric and "{error}" in p.repair


def test_missing_prompt_version_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rag_v9\.txt"):
        load_prompts("rag_v9")
    with pytest.raises(ConfigError):
        load_prompts("rag_v1", tmp_path)


def test_version_and_event_id_change_with_prompt_version_model_and_texts(tmp_path: Path) -> None:
    for f in PROMPTS.glob("rag_v1*.txt"):
        shutil.copy(f, tmp_path / f.name.replace("rag_v1", "rag_v2"))
    s1 = JudgeSettings(model="m")
    v1 = judge_version(s1, load_prompts("rag_v1"))
    s2 = JudgeSettings(model="m", prompt_version="rag_v2", prompt_dir=str(tmp_path))
    v2 = judge_version(s2, load_prompts("rag_v2", tmp_path))
    assert v1.startswith("judge-rag_v1+m+") and v2.startswith("judge-rag_v2+m+")
    assert make_event_id("t", "judge", v1) != make_event_id("t", "judge", v2)
    (tmp_path / "rag_v2.txt").write_text("changed")
    assert judge_version(s2, load_prompts("rag_v2", tmp_path)) != v2
    assert judge_version(JudgeSettings(model="other"), load_prompts("rag_v1")) != v1
    rubric = JudgeSettings(model="m", rubric={"enabled": True})
    assert judge_version(rubric, load_prompts("rag_v1")) != v1
    # operational knobs do not change the version
    assert judge_version(JudgeSettings(model="m", concurrency=9), load_prompts("rag_v1")) == v1


def test_judges_beside_the_primary_never_share_its_event_ids() -> None:
    """Two judges with one model name (llama.cpp ignores it; "judge" is the default) at two
    endpoints must not write events with one event_id: consumers deduplicate on it."""
    p = load_prompts("rag_v1")
    primary = judge_version(JudgeSettings(), p)
    assert judge_version(JudgeSettings(name="renamed"), p) == primary  # primary ids stay put
    shadow = judge_version(JudgeSettings(name="b", role="shadow"), p)
    escalation = judge_version(JudgeSettings(name="c", role="escalation"), p)
    other_shadow = judge_version(JudgeSettings(name="d", role="shadow"), p)
    assert len({primary, shadow, escalation, other_shadow}) == 4
    assert shadow.startswith("judge-rag_v1+judge+")


def test_fair_shares_keep_short_chunks_whole() -> None:
    assert fair_shares([10, 500, 20], 1000) == [10, 500, 20]
    caps = fair_shares([10, 500, 300], 310)
    assert caps == [10, 150, 150]
    assert sum(fair_shares([400, 400, 400], 300)) <= 300


def test_cut_at_word_boundary() -> None:
    assert cut("alpha beta gamma delta", 100) == "alpha beta gamma delta"
    assert cut("alpha beta gamma delta", 14) == "alpha beta…"
    assert len(cut("x" * 50, 10)) == 10


def test_prepare_input_collapses_redacts_and_truncates() -> None:
    row = make_trace(
        query="Mail me at jane.doe@example.com  or\ncall +1 415 555 0100",
        answer="Card 4111 1111 1111 1111 is on file.",
        chunks=[{"text": "short chunk"}, {"text": "word " * 400}, {"text": "other " * 400}],
    )
    trace = trace_from_object(row)
    s = JudgeSettings(max_context_tokens=100, max_chunks=2)
    inp = prepare_input(trace, s)
    assert inp.query == "Mail me at [EMAIL] or call [PHONE]"
    assert inp.answer == "Card [CARD] is on file."
    assert inp.chunks[0] == "short chunk" and len(inp.chunks) == 2
    assert sum(len(c) for c in inp.chunks) <= 400 and inp.chunks[1].endswith("…")
    assert inp.truncated and inp.omitted_chunks == 1
    plain = prepare_input(trace, JudgeSettings(redact_pii=False))
    assert "jane.doe@example.com" in plain.query


def test_messages_include_reference_rubric_and_repair() -> None:
    p = load_prompts("rag_v1")
    trace = trace_from_object(make_trace(reference="Open Settings.", chunks=[]))
    msgs = build_messages(p, prepare_input(trace, JudgeSettings()), rubric=True)
    assert p.reference in msgs[0]["content"] and p.rubric in msgs[0]["content"]
    assert "CONTEXT: (none)" in msgs[1]["content"]
    assert msgs[1]["content"].endswith("REFERENCE: Open Settings.")
    fixed = repair_messages(p, msgs, "oops", "claims: field required")
    assert fixed[2] == {"role": "assistant", "content": "oops"}
    assert "claims: field required" in fixed[3]["content"]


def test_settings_validation_and_secret() -> None:
    s = JudgeSettings(url="http://h:1/v1/", api_key="sk-secret")
    assert s.completions_url == "http://h:1/v1/chat/completions"
    assert "sk-secret" not in repr(s) and "sk-secret" not in s.model_dump_json()
    for bad in ({"url": "ftp://x"}, {"nope": 1}, {"rubric": {"weights": {"wit": 1}}}):
        with pytest.raises(ValidationError):
            JudgeSettings.model_validate(bad)
    weights = JudgeSettings(rubric={"weights": {"clarity": 2}}).rubric.weights
    assert weights["clarity"] == 2 and weights["harmfulness"] == 1
    priced = JudgeSettings(usd_per_1k_prompt_tokens=0.5, usd_per_1k_completion_tokens=2)
    assert priced.cost_usd(1000, 500) == pytest.approx(1.5)


def test_cache_key_ignores_ids_and_lru_evicts() -> None:
    a = trace_from_object(make_trace(trace_id="a"))
    b = trace_from_object(make_trace(trace_id="b", app="other"))
    c = trace_from_object(make_trace(answer="different"))
    assert content_key("v", a) == content_key("v", b) != content_key("v", c)
    assert content_key("v", a) != content_key("w", a)
    cache: LruCache[int] = LruCache(2)
    cache.put("x", 1)
    cache.put("y", 2)
    assert cache.get("x") == 1
    cache.put("z", 3)  # evicts y, the least recently used
    assert "y" not in cache and cache.get("x") == 1 and len(cache) == 2
    assert cache.get("y") is None and (cache.hits, cache.misses) == (2, 1)
    off: LruCache[int] = LruCache(0)
    off.put("x", 1)
    assert off.get("x") is None


def test_only_rag_v2_asks_for_the_factual_verdict() -> None:
    from sidecar.scorers.judge.prompts import load_prompts

    assert not load_prompts("rag_v1").asks_factual
    v2 = load_prompts("rag_v2")
    assert v2.asks_factual and v2.fingerprint != load_prompts("rag_v1").fingerprint
