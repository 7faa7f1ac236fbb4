"""The shipped judge canaries against a real model: which pass, which fail and why.

    scripts/llm.sh server 1.5b               # once
    .venv/bin/python bench/judge_canaries.py [--model GGUF | --url URL] [--json-mode inline]

Each canary (sidecar/scorers/judge/canaries/default.jsonl) is judged once by the sidecar's own
JudgeScorer, as the running sidecar would judge it, and checked against its expected bounds. The
figure is the one ``rag_sidecar_judge_canary_accuracy`` would show for this model.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _llama import JSON_MODES, MODEL_15B, bench_scorer, llama_server

from sidecar.errors import JudgeError
from sidecar.scorers.judge.canary import load_canaries
from sidecar.trace import Chunk, Trace


async def judge_canaries(url: str, model: str, json_mode: str) -> int:
    """Judge every shipped canary; print one line each and the total; return the passes."""
    client, scorer = bench_scorer(url, model, json_mode)
    _, canaries = load_canaries()
    passed = 0
    try:
        for c in canaries:
            trace = Trace(
                trace_id=f"canary-{c.id}",
                timestamp=0,
                query=c.query,
                answer=c.answer,
                chunks=[Chunk(id=str(i), text=t) for i, t in enumerate(c.chunks)],
                reference=c.reference,
            )
            t0 = time.monotonic()
            try:
                scores = (await scorer.judge(trace)).scores
                misses = c.failures(scores)
            except JudgeError as exc:
                misses = [{"error": f"{type(exc).__name__}: {exc}"}]
            passed += not misses
            verdict = "pass" if not misses else f"FAIL {misses}"
            print(f"{c.kind:<19} {c.id:<36} {time.monotonic() - t0:5.1f} s  {verdict}", flush=True)
    finally:
        await client.aclose()
    print(f"canaries passed: {passed}/{len(canaries)} (json_mode {json_mode})")
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the canaries."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--model", type=Path, default=MODEL_15B, help="GGUF for the server")
    parser.add_argument("--url", help="use this OpenAI-compatible endpoint instead")
    parser.add_argument("--judge-model", default="judge", help="model name sent to --url")
    parser.add_argument("--json-mode", choices=JSON_MODES, default="inline")
    args = parser.parse_args(argv)
    if args.url:
        asyncio.run(judge_canaries(args.url, args.judge_model, args.json_mode))
    else:
        with llama_server(args.model) as url:
            asyncio.run(judge_canaries(url, "judge", args.json_mode))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
