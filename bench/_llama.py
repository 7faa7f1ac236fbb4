"""Shared by the judge benchmarks: a llama.cpp server and a token-counting proxy.

:func:`llama_server` starts ``python -m llama_cpp.server`` from ``.tools/llm-venv`` (installed
by ``scripts/llm.sh``, never by the product) and stops it afterwards (the code is shared with the
real-LLM test: ``tests/support/llama.py``). :class:`CountingProxy`
forwards ``/<tag>/v1/chat/completions`` to an upstream OpenAI-compatible endpoint and books
requests and the upstream's ``usage`` tokens per tag, so two clients can be measured against
the same server in one run.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from sidecar.http import HttpServer, Request, Response
from sidecar.scorers.judge import JudgeClient, JudgeScorer, JudgeSettings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.llama import MODEL_05B, MODEL_15B, LlamaServerError  # noqa: E402
from tests.support.llama import llama_server as _llama_server  # noqa: E402

__all__ = [
    "JSON_MODES",
    "MODEL_05B",
    "MODEL_15B",
    "ROOT",
    "CountingProxy",
    "Tally",
    "bench_scorer",
    "llama_server",
]

JSON_MODES = ("auto", "schema", "inline", "on", "off")


def bench_scorer(
    url: str, model: str, json_mode: str, *, max_retries: int = 1, **extra: Any
) -> tuple[JudgeClient, JudgeScorer]:
    """The sidecar's own client and scorer, one request at a time, patient read timeouts."""
    settings = JudgeSettings.model_validate(
        {
            "url": url,
            "model": model,
            "json_mode": json_mode,
            "trust_env": False,
            "concurrency": 1,
            "max_retries": max_retries,
            "timeouts": {"read": 600, "total": 630},
            **extra,
        }
    )
    client = JudgeClient(settings)
    return client, JudgeScorer(settings, client)


@contextlib.contextmanager
def llama_server(model: Path, **kwargs: Any) -> Iterator[str]:
    """:func:`tests.support.llama.llama_server`, its errors as a bench's exit message."""
    try:
        with _llama_server(model, **kwargs) as url:
            yield url
    except LlamaServerError as exc:
        raise SystemExit(f"{exc} (see bench/README.md)") from None


@dataclass(slots=True)
class Tally:
    """What one client sent through the proxy."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class CountingProxy:
    """``http://127.0.0.1:P/<tag>/v1`` → upstream ``/v1``, counting per tag."""

    def __init__(self, upstream: str, tags: tuple[str, ...]) -> None:
        self.upstream = upstream.rstrip("/")
        self.tallies = {tag: Tally() for tag in tags}
        self._server = HttpServer("127.0.0.1", 0, max_body_bytes=16 << 20)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(600.0), trust_env=False)
        for tag in tags:
            self._server.route("POST", f"/{tag}/v1/chat/completions", self._handler(tag))

    def url(self, tag: str) -> str:
        """Base URL a client of ``tag`` should use."""
        return f"http://127.0.0.1:{self._server.bound_port}/{tag}/v1"

    def _handler(self, tag: str) -> Any:
        async def handle(req: Request) -> Response:
            tally = self.tallies[tag]
            body = req.body
            started = time.monotonic()
            upstream = await self._client.post(
                f"{self.upstream}/chat/completions",
                content=body,
                headers={"content-type": "application/json"},
            )
            tally.seconds += time.monotonic() - started
            tally.requests += 1
            tally.statuses[upstream.status_code] = tally.statuses.get(upstream.status_code, 0) + 1
            if upstream.status_code != 200:
                tally.errors += 1
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
                usage = orjson.loads(upstream.content).get("usage") or {}
                tally.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                tally.completion_tokens += int(usage.get("completion_tokens") or 0)
            return Response(
                upstream.status_code,
                upstream.content,
                {"content-type": upstream.headers.get("content-type", "application/json")},
            )

        return handle

    async def __aenter__(self) -> CountingProxy:
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.aclose()
        await self._client.aclose()
