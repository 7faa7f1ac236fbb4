"""Routing rules and the several-judges configuration (one object or a list)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from sidecar.config import load_settings
from sidecar.errors import ConfigError
from sidecar.events import Sampling
from sidecar.scorers.background import derived_event
from sidecar.scorers.judge import (
    EscalationSettings,
    JudgeRouter,
    JudgeSettings,
    escalation_reasons,
    judge_list,
)
from sidecar.scorers.judge.router import in_share
from sidecar.stages import Result
from tests.conftest import make_trace
from tests.support.fake_judge import sampled_result


def test_escalation_reasons() -> None:
    s = EscalationSettings()
    assert escalation_reasons(s, 0.9, 0.1) == ["faithful_but_ungrounded"]
    assert escalation_reasons(s, 0.1, 0.9) == ["unfaithful_but_grounded"]
    assert escalation_reasons(s, 0.5, 0.5) == ["borderline"]
    assert escalation_reasons(s, 0.9, 0.9) == []
    assert escalation_reasons(s, 0.9, None) == []
    assert escalation_reasons(s, None, 0.1) == []
    assert escalation_reasons(EscalationSettings(borderline=None), 0.5, 0.5) == []
    tight = EscalationSettings(judge_high=0.95, lexical_low=0.05)
    assert escalation_reasons(tight, 0.9, 0.01) == []


def test_shadow_share_is_a_deterministic_hash() -> None:
    ids = [f"t-{i}" for i in range(2000)]
    picked = [i for i in ids if in_share("strong", i, 0.25)]
    assert 400 < len(picked) < 600
    assert picked == [i for i in ids if in_share("strong", i, 0.25)]
    assert picked != [i for i in ids if in_share("other", i, 0.25)]
    assert all(in_share("strong", i, 1.0) for i in ids[:10])
    assert not any(in_share("strong", i, 0.0) for i in ids[:10])


def test_one_judge_object_stays_valid() -> None:
    settings = load_settings(judge={"url": "http://judge:8080/v1"})
    assert isinstance(settings.judge, JudgeSettings)
    assert [j.role for j in judge_list(settings.judge)] == ["primary"]
    assert judge_list(None) == []


def test_a_list_of_judges() -> None:
    settings = load_settings(
        judge=[
            {"name": "cheap", "url": "http://a/v1"},
            {"name": "strong", "url": "http://b/v1", "role": "shadow", "share": 0.1},
            {"name": "big", "url": "http://c/v1", "role": "escalation"},
        ]
    )
    assert [(j.name, j.role) for j in judge_list(settings.judge)] == [
        ("cheap", "primary"),
        ("strong", "shadow"),
        ("big", "escalation"),
    ]


@pytest.mark.parametrize(
    ("judges", "message"),
    [
        ([{"name": "a"}, {"name": "b"}], "exactly one judge must have role 'primary'"),
        ([{"name": "a", "role": "shadow"}], "exactly one judge must have role 'primary'"),
        ([{"name": "a"}, {"name": "a", "role": "shadow"}], "judge names must be unique"),
        ([{"agreement": {"metrics": ["faithfullness"]}}], "unknown agreement metrics"),
        ([{"escalation": {"borderline": [0.6, 0.4]}}], "borderline must be"),
    ],
)
def test_bad_judge_lists_are_config_errors(judges: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(judge=judges)


def test_keys_per_judge_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_SIDECAR_JUDGE_API_KEY", "sk-primary")
    monkeypatch.setenv("RAG_SIDECAR_JUDGE_API_KEY_STRONG_1", "sk-strong")
    settings = load_settings(
        judge=[
            {"name": "cheap"},
            {"name": "strong-1", "role": "shadow"},
            {"name": "big", "role": "escalation"},
        ]
    )
    keys = {j.name: j.api_key and j.api_key.get_secret_value() for j in judge_list(settings.judge)}
    assert keys == {"cheap": "sk-primary", "strong-1": "sk-strong", "big": None}
    single = load_settings(judge={"name": "solo"})
    assert isinstance(single.judge, JudgeSettings) and single.judge.api_key is not None
    assert single.judge.api_key.get_secret_value() == "sk-primary"


async def test_a_failing_review_leaves_other_judges_scores_out_of_the_measurements() -> None:
    """Only the primary's scores are measurements (rag_sidecar_score), even when the
    review of a shadow or escalation event fails and the event is written unreviewed."""
    off = {"canary": {"enabled": False}}
    registry = CollectorRegistry()
    r = JudgeRouter.from_settings(
        [
            JudgeSettings.model_validate(off),
            JudgeSettings.model_validate({**off, "name": "big", "role": "escalation"}),
        ],
        registry,
    )
    written: list[Result] = []

    async def sink(results: list[Result]) -> None:
        written.extend(results)

    def broken(*args: object) -> None:
        raise RuntimeError("a review bug")

    r._write = sink
    r.agreement.observe = broken  # type: ignore[method-assign,assignment]
    escalation = r.escalations[0]
    offered = sampled_result(make_trace(trace_id="t-1"))
    event = derived_event(
        offered,
        "judge",
        escalation.version,
        0.0,
        scores={"faithfulness": 0.2},
        flags=["judge_contradicted"],
        sampled=Sampling(selected=True, reasons=[]),
        detail={},
    )
    try:
        await r._written(escalation, [Result(offered.trace, event)])
    finally:
        for st in r.stages:
            await st.client.aclose()
    [got] = written
    assert got.event.scores == {} and got.event.flags == []
    assert got.event.detail is not None
    assert got.event.detail["scores"] == {"faithfulness": 0.2}
    assert got.event.detail["judge_flags"] == ["judge_contradicted"]
