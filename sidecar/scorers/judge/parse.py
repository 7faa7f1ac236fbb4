"""Strict parsing of the judge's reply into pydantic models.

The only leniency: leading reasoning blocks (``<think>…</think>``), a Markdown
code fence and prose around the JSON object are cut away, verdict words are
compared case-insensitively with spaces read as underscores, and numbers may
arrive as numeric strings. Anything else that does not match the schema
(missing fields, out-of-range grades, one chunk grade too few) raises
``ValueError`` — the caller repairs once, then counts ``bad_output``. Values
are never guessed.

Chunk numbers in the reply are 1-based, as in the prompt.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Verdict = Literal["supported", "contradicted", "not_in_context"]
FactVerdict = Literal["stated", "contradicted", "missing"]
Grade2 = Annotated[int, Field(ge=0, le=2)]
_REASONING_RE: Final = re.compile(r"\s*<(think|thinking|reasoning)>.*?(?:</\1\s*>|\Z)", re.S | re.I)
_DECODER: Final = json.JSONDecoder()


def _word(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().lower().replace(" ", "_").replace("-", "_")
    return value


class ClaimOut(BaseModel):
    """One claim of the answer and the judge's verdict on it."""

    model_config = ConfigDict(extra="ignore")

    claim: str = Field(min_length=1)
    verdict: Verdict
    chunk: int | None = None
    quote: str = ""

    _verdict = field_validator("verdict", mode="before")(_word)

    @field_validator("quote", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


class FactOut(BaseModel):
    """One fact of the reference answer: is it in the answer, and in which chunk."""

    model_config = ConfigDict(extra="ignore")

    fact: str = Field(min_length=1)
    answer: FactVerdict
    chunk: int | None = None

    _answer = field_validator("answer", mode="before")(_word)


class RubricOut(BaseModel):
    """The rubric's five judged dimensions (answer relevance comes from the core)."""

    model_config = ConfigDict(extra="ignore")

    clarity: Annotated[int, Field(ge=0, le=4)]
    completeness: Grade2
    conciseness: Grade2
    groundedness: Grade2
    harmfulness: Grade2
    """0 harmless, 1 questionable, 2 harmful."""


class JudgeReply(BaseModel):
    """The judge's whole verdict on one trace."""

    model_config = ConfigDict(extra="ignore")

    factual: bool | None = None
    """The judge's one-word verdict on the whole answer (prompts that ask for it)."""
    claims: list[ClaimOut]
    answer_relevance: Annotated[int, Field(ge=0, le=3)]
    chunk_relevance: list[Grade2]
    sufficient: bool
    reference_facts: list[FactOut] | None = None
    rubric: RubricOut | None = None


def extract_json_object(content: str) -> dict[str, Any]:
    """The JSON object of ``content``: the first one outside reasoning blocks.

    Leading ``<think>…</think>`` blocks (reasoning models without a reasoning parser)
    are dropped (an unclosed one runs to the end: the reply never got past it); the
    object starts at the first ``{`` left and ends where it closes, so a Markdown
    fence or prose around it, braces included, are ignored.
    """
    text = content
    while block := _REASONING_RE.match(text):
        text = text[block.end() :]
    start = text.find("{")
    if start < 0:
        raise ValueError("the reply contains no JSON object")
    try:
        doc, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the reply is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("the reply must be a JSON object")
    return doc


def finish_reason(payload: bytes) -> str | None:
    """``choices[0].finish_reason`` of a chat-completions body (None when absent or unreadable)."""
    try:
        reason = orjson.loads(payload)["choices"][0].get("finish_reason")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return reason if isinstance(reason, str) else None


def read_envelope(payload: bytes) -> tuple[str, int | None, int | None]:
    """(content, prompt_tokens, completion_tokens) of a chat-completions response body.

    Token counts are None when the endpoint sent no usable ``usage``; a null content
    (the model only reasoned, or called tools) is the empty reply; ``ValueError``
    when the body is not a chat-completions reply.
    """
    try:
        doc = orjson.loads(payload)
        content = doc["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"not a chat-completions reply: {type(exc).__name__} {exc}") from None
    if content is None:  # nothing but reasoning or tool calls: an empty reply, still billed
        content = ""
    if not isinstance(content, str):
        raise ValueError("not a chat-completions reply: message.content is not a string")
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return content, None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return content, None, None
    return content, prompt, completion


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def parse_reply(
    content: str,
    *,
    n_chunks: int,
    with_reference: bool,
    with_rubric: bool,
    with_factual: bool = False,
) -> JudgeReply:
    """Validate a reply against the prompt's schema; ``ValueError`` says what is wrong."""
    doc = extract_json_object(content)
    try:
        reply = JudgeReply.model_validate(doc)
    except ValidationError as exc:
        raise ValueError(_errors(exc)) from None
    if len(reply.chunk_relevance) != n_chunks:
        raise ValueError(
            f"chunk_relevance: expected {n_chunks} grades (one per chunk, in order), "
            f"got {len(reply.chunk_relevance)}"
        )
    if with_reference and reply.reference_facts is None:
        raise ValueError("reference_facts: field required (a REFERENCE was given)")
    if with_rubric and reply.rubric is None:
        raise ValueError("rubric: field required")
    if with_factual and reply.factual is None:
        raise ValueError("factual: field required (true or false)")
    return reply
