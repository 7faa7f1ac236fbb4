"""JudgeClient against the fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.errors import JudgeBadOutput, JudgeBreakerOpen, JudgeRejected, JudgeUnavailable
from sidecar.scorers.judge import JudgeClient, JudgeMetrics, JudgeSettings, parse_retry_after
from tests.support.fake_judge import FakeJudge, Reply, response_form

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]


def ident(text: str) -> str:
    return text


@pytest.fixture
async def fake() -> AsyncIterator[FakeJudge]:
    async with FakeJudge(default=Reply(content='{"ok": true}')) as judge:
        yield judge


def make(fake: FakeJudge, **over: Any) -> tuple[JudgeClient, CollectorRegistry]:
    settings: dict[str, Any] = {
        "url": fake.url,
        "model": "tiny",
        "trust_env": False,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.02,
        **over,
    }
    registry = CollectorRegistry()
    client = JudgeClient(JudgeSettings.model_validate(settings), metrics=JudgeMetrics(registry))
    return client, registry


def count(registry: CollectorRegistry, outcome: str) -> float:
    value = registry.get_sample_value(
        "rag_sidecar_judge_requests_total", {"judge": "default", "outcome": outcome}
    )
    return value or 0.0


async def test_ok_returns_content_usage_and_sends_model_key_and_json_mode(fake: FakeJudge) -> None:
    client, registry = make(fake, api_key="sk-test")
    try:
        got = await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()
    assert got.value == '{"ok": true}' and got.attempts == 1
    assert (got.prompt_tokens, got.completion_tokens) == (4, 2)  # whitespace tokens
    assert got.latency_s > 0 and not got.usage_estimated
    req = fake.requests[0]
    assert req.headers["authorization"] == "Bearer sk-test"
    assert req.body["model"] == "tiny" and req.body["temperature"] == 0.0
    assert req.body["response_format"] == {"type": "json_object"}
    assert count(registry, "ok") == 1
    assert "sk-test" not in repr(client)


async def test_5xx_then_ok_is_retried(fake: FakeJudge) -> None:
    fake.push(Reply.error(500), Reply.error(502))
    client, registry = make(fake)
    try:
        got = await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()
    assert got.attempts == 3 and len(fake.requests) == 3
    assert count(registry, "error") == 2 and count(registry, "ok") == 1


async def test_retry_after_is_honoured(fake: FakeJudge) -> None:
    fake.push(Reply.throttle("0.4"))
    client, registry = make(fake)
    try:
        await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()
    waited = fake.requests[1].at - fake.requests[0].at
    assert 0.4 <= waited < 1.0  # the backoff alone would be <= 0.02 s
    assert count(registry, "rate_limited") == 1


async def test_retries_exhausted_raise_unavailable_with_outcome(fake: FakeJudge) -> None:
    fake.push(*[Reply.throttle("0")] * 3)
    client, _ = make(fake, max_retries=2)
    try:
        with pytest.raises(JudgeUnavailable) as info:
            await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()
    assert info.value.outcome == "rate_limited" and len(fake.requests) == 3


async def test_retry_after_beyond_limit_is_not_waited_for(fake: FakeJudge) -> None:
    fake.push(Reply.throttle("3600"))
    client, _ = make(fake, retry_after_max_s=5)
    t0 = time.monotonic()
    try:
        with pytest.raises(JudgeUnavailable) as info:
            await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()
    assert time.monotonic() - t0 < 1 and info.value.retry_after == 3600


async def test_stall_times_out(fake: FakeJudge) -> None:
    fake.push(Reply.stalled())
    client, registry = make(fake, max_retries=0, timeouts={"read": 0.2})
    t0 = time.monotonic()
    try:
        with pytest.raises(JudgeUnavailable) as info:
            await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()
    assert info.value.outcome == "timeout" and time.monotonic() - t0 < 1.5
    assert count(registry, "timeout") == 1


async def test_connection_refused_is_unavailable() -> None:
    async with FakeJudge() as gone:
        url = gone.url
    client = JudgeClient(
        JudgeSettings(url=url, max_retries=1, backoff_base_s=0.01, trust_env=False)
    )
    try:
        with pytest.raises(JudgeUnavailable) as info:
            await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()
    assert info.value.outcome == "error"


async def test_breaker_opens_after_n_failures_then_half_opens(fake: FakeJudge) -> None:
    now = [0.0]
    settings = JudgeSettings(
        url=fake.url, max_retries=0, breaker={"failures": 2, "open_s": 30}, trust_env=False
    )
    client = JudgeClient(settings, clock=lambda: now[0])
    fake.push(Reply.error(503), Reply.error(503), Reply.error(503))
    try:
        for _ in range(2):
            with pytest.raises(JudgeUnavailable):
                await client.complete(MESSAGES, ident)
        assert client.breaker.state == "open"
        with pytest.raises(JudgeBreakerOpen) as info:
            await client.complete(MESSAGES, ident)
        assert len(fake.requests) == 2 and info.value.retry_after == 30  # no request sent
        now[0] = 30.0
        assert client.breaker.state == "half_open"
        with pytest.raises(JudgeUnavailable):  # the probe fails: open again
            await client.complete(MESSAGES, ident)
        assert client.breaker.state == "open" and len(fake.requests) == 3
        now[0] = 60.0
        assert (await client.complete(MESSAGES, ident)).value == '{"ok": true}'
        assert client.breaker.state == "closed"
    finally:
        await client.aclose()


SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


async def test_json_mode_auto_steps_down_to_none_when_every_form_is_refused() -> None:
    async with FakeJudge(reject_response_format=True, default=Reply(content="{}")) as fake:
        client, registry = make(fake)
        try:
            assert client.response_form == "json_schema"
            assert (await client.complete(MESSAGES, ident, SCHEMA)).value == "{}"
            assert not client.json_mode and client.response_form == "none"
            await client.complete(MESSAGES, ident, SCHEMA)
        finally:
            await client.aclose()
        assert [response_form(r.body) for r in fake.requests] == [
            "json_schema", "inline", "json_object", None, None,
        ]  # fmt: skip
        assert count(registry, "rejected") == 3 and count(registry, "ok") == 2


async def test_json_mode_auto_settles_on_the_inline_schema_llama_cpp_python_takes() -> None:
    refuse = frozenset({"json_schema"})
    async with FakeJudge(reject_response_format=refuse, default=Reply(content="{}")) as fake:
        client, registry = make(fake)
        try:
            await client.complete(MESSAGES, ident, SCHEMA)
            await client.complete(MESSAGES, ident, SCHEMA)
            await client.complete(MESSAGES, ident)  # no schema: plain JSON mode
        finally:
            await client.aclose()
    forms = [response_form(r.body) for r in fake.requests]
    assert forms == ["json_schema", "inline", "inline", "json_object"]
    assert fake.requests[1].body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert count(registry, "rejected") == 1 and count(registry, "ok") == 3


async def test_json_mode_schema_sends_the_openai_form_and_never_steps_down() -> None:
    async with FakeJudge(default=Reply(content="{}")) as fake:
        client, _ = make(fake, json_mode="schema")
        try:
            await client.complete(MESSAGES, ident, SCHEMA)
        finally:
            await client.aclose()
        sent = fake.requests[0].body["response_format"]
        assert sent == {
            "type": "json_schema",
            "json_schema": {"name": "rag_judgement", "strict": True, "schema": SCHEMA},
        }
    async with FakeJudge(reject_response_format=True, default=Reply(content="{}")) as fake:
        client, _ = make(fake, json_mode="schema")
        try:
            with pytest.raises(JudgeRejected):
                await client.complete(MESSAGES, ident, SCHEMA)
        finally:
            await client.aclose()
        assert len(fake.requests) == 1


async def test_json_mode_on_does_not_fall_back_and_off_never_sends() -> None:
    async with FakeJudge(reject_response_format=True, default=Reply(content="{}")) as fake:
        client, _ = make(fake, json_mode="on")
        try:
            with pytest.raises(JudgeRejected) as info:
                await client.complete(MESSAGES, ident)
        finally:
            await client.aclose()
        assert info.value.status == 400 and len(fake.requests) == 1
        client, _ = make(fake, json_mode="off")
        try:
            await client.complete(MESSAGES, ident)
        finally:
            await client.aclose()
        assert "response_format" not in fake.requests[-1].body


async def test_4xx_is_rejected_without_retry(fake: FakeJudge) -> None:
    fake.push(Reply.error(401))
    client, registry = make(fake)
    try:
        with pytest.raises(JudgeRejected):
            await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()
    assert len(fake.requests) == 1 and count(registry, "rejected") == 1
    assert client.breaker.state == "closed"


async def test_parse_failure_is_bad_output_with_its_tokens(fake: FakeJudge) -> None:
    fake.push(Reply.malformed())

    def strict(text: str) -> str:
        raise ValueError("not JSON")

    client, registry = make(fake)
    try:
        with pytest.raises(JudgeBadOutput) as info:
            await client.complete(MESSAGES, strict)
    finally:
        await client.aclose()
    assert info.value.content.startswith("Sure!") and info.value.prompt_tokens == 4
    assert len(fake.requests) == 1 and count(registry, "bad_output") == 1


async def test_not_an_envelope_is_bad_output(fake: FakeJudge) -> None:
    fake.push(Reply(body=b"<html>gateway</html>"))
    client, _ = make(fake)
    try:
        with pytest.raises(JudgeBadOutput, match="not a chat-completions reply"):
            await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()


async def test_missing_usage_is_estimated(fake: FakeJudge) -> None:
    fake.push(Reply(content="x" * 40, usage=False))
    client, _ = make(fake)
    try:
        got = await client.complete(MESSAGES, ident)
    finally:
        await client.aclose()
    assert got.usage_estimated and got.completion_tokens == 10


def test_parse_retry_after() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("2.5", now) == 2.5
    assert parse_retry_after(email.utils.formatdate(now + 7, usegmt=True), now) == 7.0
    assert parse_retry_after(email.utils.formatdate(now - 7, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


async def test_null_content_cut_at_max_tokens_is_truncated_bad_output_with_its_tokens(
    fake: FakeJudge,
) -> None:
    """A reasoning model that spends max_tokens thinking (vLLM's reasoning parser, o-series)
    sends content null: its tokens were spent, and a repair would run long again."""
    doc = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "reasoning_content": "Hmm"},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 300, "completion_tokens": 1024, "total_tokens": 1324},
    }
    fake.push(Reply(body=orjson.dumps(doc)))
    client, registry = make(fake)
    try:
        with pytest.raises(JudgeBadOutput) as info:
            await client.complete(MESSAGES, orjson.loads)
    finally:
        await client.aclose()
    assert info.value.truncated
    assert (info.value.prompt_tokens, info.value.completion_tokens) == (300, 1024)
    assert count(registry, "bad_output") == 1
