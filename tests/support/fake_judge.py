"""An OpenAI-compatible chat-completions server that tests control.

``POST /v1/chat/completions`` answers each request with the next scripted
:class:`Reply` (or the default one when the script is empty): a delay, an HTTP
error with headers (``429`` + ``Retry-After``), a stall that never answers,
malformed or truncated JSON, fixed content, or — by default — the verdict of a
deterministic *toy judge* computed from the request, so tests can assert real
numbers. Every request is recorded (arrival time, headers, JSON body, whitespace
token count of the prompt); ``usage`` reports whitespace tokens of the prompt
and of the reply. With ``reject_response_format=True`` a request carrying
``response_format`` gets the 400 that llama.cpp-style servers send; with a set
of forms (``json_schema``, ``inline``, ``json_object``, see
:func:`response_form`) only those forms are refused, with the 500 llama-cpp-python sends.

The toy judge reads the user message laid out by
:func:`sidecar.scorers.judge.prompts.user_message`:

* claims = the answer's sentences; one is ``supported`` when ≥ 70 % of its
  content words occur in one chunk (quote: the first 15 words of that chunk's
  best sentence), else ``not_in_context``;
* answer relevance 3 when the answer holds ≥ 50 % of the question's content
  words, 1 when some, else 0; chunk grade 2 / 1 / 0 for ≥ 2 / 1 / 0 shared
  question words; sufficient when some chunk has grade 2;
* reference facts (when the system prompt asks) and a fixed rubric likewise.

Run standalone: ``python -m tests.support.fake_judge --port 8080``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from sidecar.events import Labels, Sampling, ScoredEvent, make_event_id
from sidecar.http import HttpServer, Request, Response
from sidecar.scorers.text import content_tokens
from sidecar.stages import Result
from sidecar.trace import trace_from_object

_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
_CHUNK_RE = re.compile(r"^\[(\d+)\] (.*)$")


@dataclass(slots=True)
class Reply:
    """One scripted response."""

    status: int = 200
    delay_s: float = 0.0
    stall: bool = False
    content: str | None = None
    """Assistant content; None computes the toy judge's verdict."""
    body: bytes | None = None
    """A raw HTTP body replacing the whole envelope."""
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False
    """Cut the (toy or given) content in half: JSON that ends mid-way."""
    usage: bool = True

    @classmethod
    def error(cls, status: int = 500, **headers: str) -> Reply:
        """An HTTP error with an OpenAI-style error body."""
        body = orjson.dumps({"error": {"message": f"scripted {status}", "type": "server_error"}})
        return cls(status=status, body=body, headers=dict(headers))

    @classmethod
    def throttle(cls, retry_after: str | None = "1") -> Reply:
        """429 Too Many Requests, with ``Retry-After`` unless None."""
        headers = {} if retry_after is None else {"retry-after": retry_after}
        return cls.error(429, **headers)

    @classmethod
    def stalled(cls) -> Reply:
        """Never answer (the client must time out)."""
        return cls(stall=True)

    @classmethod
    def malformed(cls) -> Reply:
        """Content that is not JSON at all."""
        return cls(content="Sure! Here is my evaluation: the answer looks good.")

    @classmethod
    def json(cls, doc: Any) -> Reply:
        """Fixed content: ``doc`` serialised."""
        return cls(content=orjson.dumps(doc).decode())


@dataclass(slots=True)
class Recorded:
    """One request as the server saw it."""

    at: float
    headers: dict[str, str]
    body: dict[str, Any]
    prompt_tokens: int

    @property
    def messages(self) -> list[dict[str, str]]:
        """The chat messages of the request."""
        msgs: list[dict[str, str]] = self.body.get("messages", [])
        return msgs

    @property
    def text(self) -> str:
        """All message contents joined (for content assertions)."""
        return "\n".join(m.get("content", "") for m in self.messages)


def _words(text: str) -> int:
    return len(text.split())


def parse_user(user: str) -> tuple[str, str, list[str], str | None]:
    """(question, answer, chunks, reference) from the judge's user message."""
    question = answer = ""
    reference: str | None = None
    chunks: list[str] = []
    for line in user.split("\n"):
        if line.startswith("QUESTION: "):
            question = line[len("QUESTION: ") :]
        elif line.startswith("ANSWER: "):
            answer = line[len("ANSWER: ") :]
            answer = "" if answer == "(empty)" else answer
        elif line.startswith("REFERENCE: "):
            reference = line[len("REFERENCE: ") :]
        elif m := _CHUNK_RE.match(line):
            chunks.append(m.group(2))
    return question, answer, chunks, reference


def _best_chunk(sentence: str, chunks: list[str]) -> tuple[int | None, float]:
    words = content_tokens(sentence)
    if not words:
        return None, 0.0
    best, share = None, 0.0
    for i, chunk in enumerate(chunks):
        s = len(words & content_tokens(chunk)) / len(words)
        if s > share:
            best, share = i, s
    return best, share


def _quote(sentence: str, chunk: str) -> str:
    words = content_tokens(sentence)
    parts = _SENTENCE_RE.split(chunk)
    best = max(parts, key=lambda p: len(words & content_tokens(p)))
    return " ".join(best.split()[:15])


def toy_verdict(system: str, user: str) -> dict[str, Any]:
    """The toy judge's reply to one request (see the module docstring)."""
    question, answer, chunks, reference = parse_user(user)
    claims = []
    for sentence in (s for s in _SENTENCE_RE.split(answer) if s.strip()):
        i, share = _best_chunk(sentence, chunks)
        if i is not None and share >= 0.7:
            claims.append(
                {
                    "claim": sentence,
                    "verdict": "supported",
                    "chunk": i + 1,
                    "quote": _quote(sentence, chunks[i]),
                }
            )
        else:
            claims.append(
                {"claim": sentence, "verdict": "not_in_context", "chunk": None, "quote": ""}
            )
    q = content_tokens(question)
    covered = len(q & content_tokens(answer)) / len(q) if q else 0.0
    relevance = 3 if covered >= 0.5 else 1 if covered > 0 else 0
    grades = [min(2, len(q & content_tokens(c))) for c in chunks]
    doc: dict[str, Any] = {
        "claims": claims,
        "answer_relevance": relevance,
        "chunk_relevance": grades,
        "sufficient": any(g == 2 for g in grades),
    }
    if "reference_facts" in system and reference is not None:
        facts = []
        answer_words = content_tokens(answer)
        for fact in (s for s in _SENTENCE_RE.split(reference) if s.strip()):
            fw = content_tokens(fact)
            stated = bool(fw) and len(fw & answer_words) / len(fw) >= 0.7
            i, share = _best_chunk(fact, chunks)
            facts.append(
                {
                    "fact": fact,
                    "answer": "stated" if stated else "missing",
                    "chunk": i + 1 if i is not None and share >= 0.7 else None,
                }
            )
        doc["reference_facts"] = facts
    if '"rubric"' in system:
        doc["rubric"] = {
            "clarity": 4,
            "completeness": 2,
            "conciseness": 2,
            "groundedness": 2,
            "harmfulness": 0,
        }
    return doc


def response_form(body: dict[str, Any]) -> str | None:
    """``json_schema``, ``inline`` (json_object + schema), ``json_object``, or None."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        return "json_schema"
    return "inline" if "schema" in fmt else str(fmt.get("type"))


class FakeJudge:
    """The server; use ``async with FakeJudge() as judge: judge.url``."""

    def __init__(
        self,
        *,
        reject_response_format: bool | frozenset[str] = False,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.reject_response_format = reject_response_format
        self.default = default or Reply()
        self.script: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._server = HttpServer(host, port, max_body_bytes=16 << 20)
        self._server.route("POST", "/v1/chat/completions", self._handle)
        self._stop = asyncio.Event()

    @property
    def url(self) -> str:
        """Base URL for :class:`~sidecar.scorers.judge.JudgeSettings` (``.../v1``)."""
        return f"http://127.0.0.1:{self._server.bound_port}/v1"

    def push(self, *replies: Reply) -> None:
        """Script the next responses, in order."""
        self.script.extend(replies)

    async def start(self) -> None:
        """Bind and serve."""
        await self._server.start()

    async def aclose(self) -> None:
        """Stop serving (stalled requests are dropped)."""
        self._stop.set()
        await self._server.aclose()

    async def __aenter__(self) -> FakeJudge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _handle(self, req: Request) -> Response:
        try:
            body = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            return Response.json(400, {"error": {"message": "body is not JSON"}})
        messages = body.get("messages") or []
        prompt_text = "\n".join(m.get("content", "") for m in messages)
        prompt_tokens = _words(prompt_text)
        self.requests.append(Recorded(time.monotonic(), dict(req.headers), body, prompt_tokens))
        form = response_form(body)
        if self.reject_response_format is True and form is not None:
            msg = "Unsupported parameter: 'response_format' is not supported by this model"
            return Response.json(400, {"error": {"message": msg, "type": "invalid_request"}})
        if (
            isinstance(self.reject_response_format, frozenset)
            and form in self.reject_response_format
        ):
            # What llama-cpp-python 0.3 answers to a form it cannot validate: a 500.
            msg = "1 validation error: loc ('body', 'response_format', 'type') literal_error"
            return Response.json(500, {"error": {"message": msg, "type": "internal_server_error"}})
        reply = self.script.popleft() if self.script else self.default
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.stall:
            await self._stop.wait()
            return Response(503)
        if reply.body is not None:
            return Response(
                reply.status, reply.body, {"content-type": "application/json", **reply.headers}
            )
        content = reply.content
        if content is None:
            system = messages[0].get("content", "") if messages else ""
            user = next((m["content"] for m in messages if m.get("role") == "user"), "")
            content = orjson.dumps(toy_verdict(system, user)).decode()
        if reply.truncate:
            content = content[: len(content) // 2]
        completion_tokens = _words(content)
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        doc: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "model": body.get("model", "judge"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "length" if reply.truncate else "stop",
                }
            ],
        }
        if reply.usage:
            doc["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        return Response(
            reply.status, orjson.dumps(doc), {"content-type": "application/json", **reply.headers}
        )


def sampled_result(row: dict[str, Any], reasons: tuple[str, ...] = ("rate",)) -> Result:
    """A trace as the pipeline offers it to the judge: with its (bare) heuristic event."""
    trace = trace_from_object(row)
    event = ScoredEvent(
        event_id=make_event_id(trace.trace_id, "heuristic", "test"),
        trace_id=trace.trace_id,
        type="heuristic",
        timestamp=trace.timestamp,
        scored_at=trace.timestamp,
        scorer_version="test",
        source="test",
        labels=Labels(trace.app, trace.model, trace.prompt_version, trace.retriever),
        scores={},
        flags=[],
        sampled=Sampling(selected=True, reasons=list(reasons)),
    )
    return Result(trace, event)


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reject-response-format", action="store_true")
    args = parser.parse_args()
    judge = FakeJudge(port=args.port, reject_response_format=args.reject_response_format)
    await judge.start()
    print(judge.url, flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
