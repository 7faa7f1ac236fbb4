"""RAGAS 0.4.3's own metrics over traces; run with .tools/ragas-venv's Python by judge_economy.py.

    .tools/ragas-venv/bin/python bench/_ragas_runner.py BASE_URL MODEL < TRACES.json

stdin: a JSON list of ``{"query", "answer", "contexts"}``. For each trace, in turn:
Faithfulness (statements, then NLI verdicts), AnswerRelevancy (``strictness`` generated questions
compared with the query by embedding cosine) and ContextRelevance (two judge prompts), the
``ragas.metrics.collections`` classes with ``llm_factory`` (instructor, JSON mode) on an
AsyncOpenAI client. Each metric talks to ``BASE_URL/<metric>/v1`` so the counting proxy can book
its requests and tokens separately. AnswerRelevancy's embeddings are computed locally (hashed
bag of words, no model and no request): the endpoint's tokens are chat tokens only, which
understates RAGAS's cost. The caller sets ``RAGAS_DO_NOT_TRACK=true`` (no analytics).
Prints one JSON object per trace: scores (null on error) and errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import sys
import time
from typing import Any

from openai import AsyncOpenAI
from ragas.embeddings.base import BaseRagasEmbedding
from ragas.llms.base import llm_factory
from ragas.metrics.collections import AnswerRelevancy, ContextRelevance, Faithfulness

_WORD = re.compile(r"\w+")
DIM = 512


class HashedBagOfWords(BaseRagasEmbedding):
    """A deterministic local embedding (L2-normalised hashed word counts)."""

    def embed_text(self, text: str, **kwargs: Any) -> list[float]:
        vec = [0.0] * DIM
        for word in _WORD.findall(text.lower()):
            vec[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest()) % DIM] += 1
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
        return self.embed_text(text)


def _llm(base: str, tag: str, model: str) -> Any:
    client = AsyncOpenAI(base_url=f"{base}/{tag}/v1", api_key="none", timeout=600, max_retries=0)
    return llm_factory(model, client=client)


async def main(traces: list[dict[str, Any]], base: str, model: str) -> None:
    """Score every trace with the three metrics, one JSON line per trace."""
    faithfulness = Faithfulness(llm=_llm(base, "ragas_faithfulness", model))
    relevancy = AnswerRelevancy(
        llm=_llm(base, "ragas_answer_relevancy", model), embeddings=HashedBagOfWords()
    )
    context = ContextRelevance(llm=_llm(base, "ragas_context_relevance", model))
    for t in traces:
        out: dict[str, Any] = {"scores": {}, "errors": {}}
        started = time.monotonic()
        calls = {
            "faithfulness": lambda t=t: faithfulness.ascore(
                user_input=t["query"], response=t["answer"], retrieved_contexts=t["contexts"]
            ),
            "answer_relevancy": lambda t=t: relevancy.ascore(
                user_input=t["query"], response=t["answer"]
            ),
            "context_relevance": lambda t=t: context.ascore(
                user_input=t["query"], retrieved_contexts=t["contexts"]
            ),
        }
        for name, call in calls.items():
            try:
                value = (await call()).value
                ok = isinstance(value, float) and not math.isnan(value)
                out["scores"][name] = value if ok else None
            except Exception as exc:
                out["scores"][name] = None
                out["errors"][name] = f"{type(exc).__name__}: {str(exc)[:200]}"
        out["seconds"] = time.monotonic() - started
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.load(sys.stdin), sys.argv[1], sys.argv[2]))
