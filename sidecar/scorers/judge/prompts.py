"""Versioned prompt files and the judge's view of a trace.

A prompt version ``V`` is a set of files in ``prompts/`` (or ``prompt_dir``):

* ``V.txt`` — the system prompt: claims with verdicts, chunk numbers and
  quotes; answer relevance 0–3; a grade per chunk; context sufficiency;
* ``V.reference.txt`` — appended when the trace carries a ``reference``
  (reference facts: in the answer? in which chunk?), so reference-based scores
  cost no second request;
* ``V.rubric.txt`` — appended when the rubric is enabled;
* ``V.repair.txt`` — the follow-up message after a reply that did not parse
  (``{error}`` is replaced by the validation error).

The user message lays out the (whitespace-collapsed, PII-redacted, truncated)
trace as ``QUESTION:``, ``ANSWER:``, ``CONTEXT:`` with one ``[n] text`` line per
chunk, and ``REFERENCE:``. Chunk texts share ``max_context_tokens``, estimated
at 4 characters per token: chunks shorter than an equal share stay whole, the
rest split what is left equally and are cut at a word boundary (``…``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import orjson

from ...errors import ConfigError
from ...trace import Trace
from ..heuristics.pii import redact_pii
from .settings import JudgeSettings

CHARS_PER_TOKEN = 4
_WS_RE = re.compile(r"\s+")
Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class PromptSet:
    """The texts of one prompt version."""

    version: str
    system: str
    reference: str
    rubric: str
    repair: str

    @property
    def asks_factual(self) -> bool:
        """Whether the system prompt asks for the whole-answer ``factual`` verdict."""
        return '"factual"' in self.system

    @property
    def fingerprint(self) -> str:
        """A short hash of every text (changes when any prompt file changes)."""
        blob = "\x1e".join((self.version, self.system, self.reference, self.rubric, self.repair))
        return hashlib.blake2b(blob.encode(), digest_size=4).hexdigest()


def _read(directory: Path | None, name: str) -> str | None:
    if directory is not None:
        path = directory / name
        return path.read_text(encoding="utf-8").strip() if path.is_file() else None
    node = resources.files(__package__).joinpath("prompts", name)
    return node.read_text(encoding="utf-8").strip() if node.is_file() else None


def load_prompts(version: str, directory: str | Path | None = None) -> PromptSet:
    """Read prompt version ``version``; :class:`ConfigError` if its files are missing."""
    where = Path(directory) if directory is not None else None
    texts: dict[str, str] = {}
    for part, suffix in (
        ("system", ".txt"),
        ("reference", ".reference.txt"),
        ("rubric", ".rubric.txt"),
        ("repair", ".repair.txt"),
    ):
        text = _read(where, version + suffix)
        if text is None:
            place = str(where) if where is not None else "the shipped prompts"
            raise ConfigError(f"judge prompt file {version}{suffix} not found in {place}")
        texts[part] = text
    if "{error}" not in texts["repair"]:
        raise ConfigError(f"judge prompt {version}.repair.txt must contain {{error}}")
    return PromptSet(version=version, **texts)


def judge_version(settings: JudgeSettings, prompts: PromptSet) -> str:
    """The judge's scorer version: ``judge-<prompt version>+<model>+<fingerprint>``.

    The fingerprint hashes the prompt texts and every setting that changes what
    the judge sees or how scores are computed, so any of them yields new event ids.
    A shadow or escalation judge's name and role are hashed too: its events must
    never share an ``event_id`` with the primary's (the same model name may be served
    by two endpoints); the primary's version does not depend on its name.
    """
    s = settings
    doc: dict[str, object] = {
        "prompts": prompts.fingerprint,
        "max_context_tokens": s.max_context_tokens,
        "max_answer_tokens": s.max_answer_tokens,
        "max_chunks": s.max_chunks,
        "redact_pii": s.redact_pii,
        "rubric": s.rubric.model_dump() if s.rubric.enabled else None,
    }
    if s.role != "primary":
        doc["judge"] = [s.role, s.name]
    knobs = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.blake2b(knobs, digest_size=4).hexdigest()
    return f"judge-{prompts.version}+{s.model}+{digest}"


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """Exactly what the judge is shown (and what its quotes are verified against)."""

    query: str
    answer: str
    chunks: tuple[str, ...]
    reference: str | None
    truncated: bool = False
    """Some chunk text or the answer was cut to fit the token budget."""
    omitted_chunks: int = 0
    """Chunks beyond ``max_chunks``, not shown (and not graded)."""


def collapse(text: str) -> str:
    """Whitespace runs to one space, ends stripped."""
    return _WS_RE.sub(" ", text).strip()


def cut(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters at a word boundary, with ``…``."""
    if len(text) <= max_chars:
        return text
    head = text[: max(0, max_chars - 1)]
    space = head.rfind(" ")
    if space >= max_chars // 2:
        head = head[:space]
    return head.rstrip() + "…"


def fair_shares(lengths: list[int], budget: int) -> list[int]:
    """Per-item caps so that the total fits ``budget`` and short items stay whole."""
    caps = list(lengths)
    if sum(lengths) <= budget:
        return caps
    left, remaining = budget, len(lengths)
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        share = left // remaining
        if lengths[i] > share:
            caps[i] = share
        left -= caps[i]
        remaining -= 1
    return caps


def prepare_input(trace: Trace, settings: JudgeSettings) -> JudgeInput:
    """Collapse whitespace, redact PII (when enabled), apply the token budgets."""

    def clean(text: str) -> str:
        text = collapse(text)
        return redact_pii(text) if settings.redact_pii else text

    chunks = [clean(c.text) for c in trace.chunks[: settings.max_chunks]]
    caps = fair_shares([len(c) for c in chunks], settings.max_context_tokens * CHARS_PER_TOKEN)
    shown = tuple(cut(c, cap) for c, cap in zip(chunks, caps, strict=True))
    answer = clean(trace.answer)
    short_answer = cut(answer, settings.max_answer_tokens * CHARS_PER_TOKEN)
    reference = None if trace.reference is None else clean(trace.reference)
    if reference is not None:
        reference = cut(reference, settings.max_answer_tokens * CHARS_PER_TOKEN)
    return JudgeInput(
        query=cut(clean(trace.query), settings.max_answer_tokens * CHARS_PER_TOKEN),
        answer=short_answer,
        chunks=shown,
        reference=reference or None,
        truncated=shown != tuple(chunks) or short_answer != answer,
        omitted_chunks=max(0, len(trace.chunks) - settings.max_chunks),
    )


def user_message(inp: JudgeInput) -> str:
    """The trace, laid out for the judge."""
    lines = [f"QUESTION: {inp.query}", f"ANSWER: {inp.answer or '(empty)'}"]
    if inp.chunks:
        lines.append("CONTEXT:")
        lines.extend(f"[{i}] {text or '(empty)'}" for i, text in enumerate(inp.chunks, 1))
    else:
        lines.append("CONTEXT: (none)")
    if inp.reference is not None:
        lines.append(f"REFERENCE: {inp.reference}")
    return "\n".join(lines)


def build_messages(prompts: PromptSet, inp: JudgeInput, *, rubric: bool) -> list[Message]:
    """System and user messages of the one judge request for ``inp``."""
    system = prompts.system
    if inp.reference is not None:
        system += "\n" + prompts.reference
    if rubric:
        system += "\n" + prompts.rubric
    return [{"role": "system", "content": system}, {"role": "user", "content": user_message(inp)}]


def repair_messages(
    prompts: PromptSet, messages: list[Message], content: str, error: str
) -> list[Message]:
    """The original conversation, the bad reply, and a request to fix it."""
    bad = content if len(content) <= 4000 else content[:4000] + "…"
    return [
        *messages,
        {"role": "assistant", "content": bad},
        {"role": "user", "content": prompts.repair.replace("{error}", error)},
    ]
