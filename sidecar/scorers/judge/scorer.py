"""One judged trace: prompt → one request (plus at most one repair) → verify → scores.

The core three (faithfulness, answer relevance, context relevance) and context
sufficiency always come from ONE request. When the trace carries a
``reference`` the same request also asks for the reference's facts (answer
correctness, context recall) — folded in rather than a second call, since the
question, answer and chunks are already in the prompt. The rubric, when
enabled, is one more field of the same reply.

A reply that does not parse is answered once with the repair prompt (the
validation error included); a second failure raises
:class:`~sidecar.errors.JudgeBadOutput`. Nothing is guessed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import JudgeBadOutput
from ...trace import Trace
from .client import Completion, JudgeClient
from .parse import JudgeReply, parse_reply
from .prompts import (
    JudgeInput,
    PromptSet,
    build_messages,
    judge_version,
    load_prompts,
    prepare_input,
    repair_messages,
)
from .schema import reply_schema
from .scoring import compute_scores
from .settings import JudgeSettings
from .verify import CheckedClaim, CheckedFact, verify


@dataclass(slots=True)
class Ledger:
    """What judging one trace has cost so far (filled even when it fails)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    replies: int = 0
    usage_estimated: bool = False

    def add(self, settings: JudgeSettings, prompt_tokens: int, completion_tokens: int) -> float:
        """Book one reply; returns its cost."""
        cost = settings.cost_usd(prompt_tokens, completion_tokens)
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost_usd += cost
        self.replies += 1
        return cost


@dataclass(slots=True)
class Judgement:
    """Scores, flags and the detail of one judged trace (independent of its trace id)."""

    scores: dict[str, float]
    flags: list[str]
    detail: dict[str, Any]
    downgraded: int
    latency_s: float
    ledger: Ledger = field(default_factory=Ledger)


def _claim_doc(c: CheckedClaim, inp_ids: list[str]) -> dict[str, Any]:
    return {
        "claim": c.claim,
        "verdict": c.verdict,
        "judge_verdict": c.judge_verdict,
        "chunk_index": c.chunk_index,
        "chunk_id": None if c.chunk_index is None else inp_ids[c.chunk_index],
        "quote": c.quote,
        "verified": c.verified,
        "reason": c.reason,
    }


def _fact_doc(f: CheckedFact, inp_ids: list[str]) -> dict[str, Any]:
    return {
        "fact": f.fact,
        "answer": f.answer,
        "judge_answer": f.judge_answer,
        "chunk_index": f.chunk_index,
        "chunk_id": None if f.chunk_index is None else inp_ids[f.chunk_index],
        "verified": f.verified,
        "reason": f.reason,
    }


def rebind_chunk_ids(detail: dict[str, Any], trace: Trace) -> None:
    """Point a cached judgement's claims and facts at ``trace``'s own chunk ids (the
    cache key is the chunk texts: another trace may give the same texts other ids)."""
    ids = [c.id for c in trace.chunks]
    for key in ("claims", "reference_facts"):
        docs = detail.get(key)
        if not isinstance(docs, list):
            continue
        detail[key] = [
            {**d, "chunk_id": ids[i] if isinstance(i, int) and i < len(ids) else None}
            for d in docs
            for i in (d.get("chunk_index"),)
        ]


class JudgeScorer:
    """Judges traces through a :class:`JudgeClient` with one prompt version."""

    def __init__(
        self,
        settings: JudgeSettings,
        client: JudgeClient,
        *,
        prompts: PromptSet | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.client = client
        self.prompts = prompts or load_prompts(settings.prompt_version, settings.prompt_dir)
        self.version = judge_version(settings, self.prompts)
        self._clock = clock

    async def _ask(
        self, messages: list[dict[str, str]], inp: JudgeInput, ledger: Ledger
    ) -> Completion[JudgeReply]:
        parse = functools.partial(
            parse_reply,
            n_chunks=len(inp.chunks),
            with_reference=inp.reference is not None,
            with_rubric=self.settings.rubric.enabled,
            with_factual=self.prompts.asks_factual,
        )
        schema = reply_schema(
            len(inp.chunks),
            with_reference=inp.reference is not None,
            with_rubric=self.settings.rubric.enabled,
            with_factual=self.prompts.asks_factual,
        )
        try:
            reply = await self.client.complete(messages, parse, schema)
        except JudgeBadOutput as bad:
            ledger.add(self.settings, bad.prompt_tokens, bad.completion_tokens)
            raise
        ledger.add(self.settings, reply.prompt_tokens, reply.completion_tokens)
        ledger.usage_estimated |= reply.usage_estimated
        return reply

    async def judge(self, trace: Trace, ledger: Ledger | None = None) -> Judgement:
        """Judge one trace; raises a :class:`~sidecar.errors.JudgeError` on failure."""
        s = self.settings
        ledger = ledger if ledger is not None else Ledger()
        started = self._clock()
        inp = prepare_input(trace, s)
        messages = build_messages(self.prompts, inp, rubric=s.rubric.enabled)
        repaired = False
        try:
            completion = await self._ask(messages, inp, ledger)
        except JudgeBadOutput as bad:
            if bad.truncated:  # it would run long again: no repair, count it
                raise JudgeBadOutput(
                    bad.detail,
                    content=bad.content,
                    prompt_tokens=ledger.prompt_tokens,
                    completion_tokens=ledger.completion_tokens,
                    truncated=True,
                ) from None
            repaired = True
            retry = repair_messages(self.prompts, messages, bad.content, bad.detail)
            try:
                completion = await self._ask(retry, inp, ledger)
            except JudgeBadOutput as again:
                raise JudgeBadOutput(
                    f"unusable after one repair: {again.detail}",
                    content=again.content,
                    prompt_tokens=ledger.prompt_tokens,
                    completion_tokens=ledger.completion_tokens,
                ) from None
        reply = completion.value
        claims, facts = verify(inp, reply.claims, reply.reference_facts)
        scores, flags = compute_scores(
            claims=claims,
            answer_relevance=reply.answer_relevance,
            chunk_grades=reply.chunk_relevance,
            sufficient=reply.sufficient,
            facts=facts,
            rubric=reply.rubric,
            rubric_weights=s.rubric.weights,
            factual=reply.factual,
        )
        if inp.truncated or inp.omitted_chunks:
            flags.append("judge_context_truncated")
        downgraded = sum(not c.verified for c in claims) + sum(not f.verified for f in facts or ())
        ids = [c.id for c in trace.chunks[: len(inp.chunks)]]
        latency = self._clock() - started
        detail: dict[str, Any] = {
            "judge": s.name,
            "judge_model": s.model,
            "prompt_version": self.prompts.version,
            "claims": [_claim_doc(c, ids) for c in claims],
            "answer_relevance_grade": reply.answer_relevance,
            "chunk_relevance": list(reply.chunk_relevance),
            "sufficient": reply.sufficient,
            "factual": reply.factual,
            "chunks_judged": len(inp.chunks),
            "chunks_omitted": inp.omitted_chunks,
            "truncated": inp.truncated,
            "downgraded": downgraded,
            "repaired": repaired,
            "requests": ledger.replies,
            "tokens": {"prompt": ledger.prompt_tokens, "completion": ledger.completion_tokens},
            "usage_estimated": ledger.usage_estimated,
            "cost_usd": ledger.cost_usd,
            "latency_s": round(latency, 4),
            "cached": False,
        }
        if facts is not None:
            detail["reference_facts"] = [_fact_doc(f, ids) for f in facts]
        if reply.rubric is not None:
            detail["rubric"] = reply.rubric.model_dump()
        return Judgement(scores, flags, detail, downgraded, latency, ledger)
