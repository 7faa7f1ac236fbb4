"""Judge economy: requests and tokens per judged trace, our judge beside RAGAS 0.4.3, one run.

    scripts/llm.sh server 1.5b ragas         # once: llama.cpp, the 1.5B GGUF, .tools/ragas-venv
    .venv/bin/python bench/judge_economy.py [--n 8] [--model .tools/models/....gguf]

Both judges score the same traces (the first ``--n`` of examples/traces.jsonl) for faithfulness,
answer relevance and context relevance against the SAME llama.cpp server, through a counting
proxy that books every request and the server's own ``usage`` tokens per client:

* ours: the sidecar's JudgeScorer, one request (plus one repair when a reply does not parse),
  with the reply's JSON schema as response_format in the form llama-cpp-python takes
  (``json_mode: inline``; ``--plain`` adds a run without the schema);
* RAGAS: ``Faithfulness`` + ``AnswerRelevancy`` (strictness 3) + ``ContextRelevance`` from
  ``ragas.metrics.collections``, run by bench/_ragas_runner.py in .tools/ragas-venv (RAGAS stays
  out of the product's dependencies). Its embeddings are local and not counted, which favours
  RAGAS.

Target (issue 5): 1 request and <= 40 % of RAGAS's tokens per trace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _llama import MODEL_15B, ROOT, CountingProxy, Tally, bench_scorer, llama_server

from sidecar.errors import JudgeError
from sidecar.scorers.judge import Ledger
from sidecar.trace import Trace, trace_from_object

EXAMPLES = ROOT / "examples" / "traces.jsonl"
RAGAS_PYTHON = ROOT / ".tools" / "ragas-venv" / "bin" / "python"
RAGAS_TAGS = ("ragas_faithfulness", "ragas_answer_relevancy", "ragas_context_relevance")
OURS = "sidecar"
OURS_PLAIN = "sidecar_plain"
LABELS = {OURS: "ours (1 call, 3 metrics)", OURS_PLAIN: "ours, JSON mode without schema"}
JSON_MODES = {OURS: "inline", OURS_PLAIN: "on"}
TARGET_RATIO = 0.40


def load_traces(n: int) -> list[Trace]:
    """The first ``n`` example traces with an answer and at least one chunk."""
    out: list[Trace] = []
    for line in EXAMPLES.read_text(encoding="utf-8").splitlines():
        trace = trace_from_object(json.loads(line))
        if trace.answer.strip() and any(c.text.strip() for c in trace.chunks):
            out.append(trace)
        if len(out) == n:
            break
    return out


async def run_ours(
    url: str, traces: Sequence[Trace], json_mode: str
) -> tuple[list[dict[str, Any]], float]:
    """Judge each trace with the sidecar's JudgeScorer; (per-trace results, seconds)."""
    client, scorer = bench_scorer(url, "judge", json_mode, max_retries=0)
    results: list[dict[str, Any]] = []
    t0 = time.monotonic()
    try:
        for trace in traces:
            ledger = Ledger()
            try:
                j = await scorer.judge(trace, ledger)
                results.append({"scores": j.scores, "error": None})
            except JudgeError as exc:
                results.append({"scores": {}, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        await client.aclose()
    return results, time.monotonic() - t0


async def run_ragas(base: str, traces: Sequence[Trace]) -> tuple[list[dict[str, Any]], float]:
    """RAGAS's metrics in .tools/ragas-venv; (per-trace results, seconds)."""
    if not RAGAS_PYTHON.is_file():
        raise SystemExit(f"{RAGAS_PYTHON} missing: run scripts/llm.sh ragas")
    rows = [
        {"query": t.query, "answer": t.answer, "contexts": [c.text for c in t.chunks]}
        for t in traces
    ]
    env = {**os.environ, "RAGAS_DO_NOT_TRACK": "true", "NO_PROXY": "127.0.0.1"}
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        str(RAGAS_PYTHON),
        str(Path(__file__).with_name("_ragas_runner.py")),
        base,
        "judge",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate(json.dumps(rows).encode())
    if proc.returncode != 0:
        raise SystemExit(f"RAGAS runner failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    results = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    return results, time.monotonic() - t0


def _mean(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else float("nan")


def _row(name: str, t: Tally, n: int, seconds: float) -> str:
    return (
        f"  {name:<28}{t.requests / n:>9.2f}{t.prompt_tokens / n:>10.0f}"
        f"{t.completion_tokens / n:>9.0f}{t.tokens / n:>9.0f}{seconds / n:>8.1f}"
    )


def report(
    proxy: CountingProxy,
    n: int,
    ours: dict[str, tuple[list[dict[str, Any]], float]],
    ragas: tuple[list[dict[str, Any]], float],
    model: str,
) -> dict[str, Any]:
    """Print our judge (per variant) beside RAGAS; return the figures."""
    theirs = Tally()
    for tag in RAGAS_TAGS:
        t = proxy.tallies[tag]
        theirs.requests += t.requests
        theirs.prompt_tokens += t.prompt_tokens
        theirs.completion_tokens += t.completion_tokens
        theirs.errors += t.errors
    print(f"Judge economy: {n} traces of examples/traces.jsonl, one llama.cpp server ({model})")
    head = f"  {'per judged trace':<28}{'requests':>9}{'prompt':>10}{'compl.':>9}{'tokens':>9}"
    print(head + f"{'s':>8}  judged")
    figures: dict[str, Any] = {"n": n, "model": model, "ours": {}}
    for tag, (results, seconds) in ours.items():
        t = proxy.tallies[tag]
        judged = sum(r["error"] is None for r in results)
        print(_row(LABELS[tag], t, n, seconds) + f"  {judged}/{n}")
        ratio = t.tokens / theirs.tokens if theirs.tokens else float("nan")
        figures["ours"][tag] = {
            "requests": t.requests / n,
            "tokens": t.tokens / n,
            "s": seconds / n,
            "judged": judged,
            "token_ratio": ratio,
            "mean_faithfulness": _mean([r["scores"].get("faithfulness") for r in results]),
        }
    print(_row("RAGAS 0.4.3 total", theirs, n, ragas[1]))
    for tag in RAGAS_TAGS:
        print(_row("  " + tag.removeprefix("ragas_"), proxy.tallies[tag], n, 0.0)[:-8])
    for tag, f in figures["ours"].items():
        print(
            f"  {LABELS[tag]}: {f['token_ratio']:.1%} of RAGAS's tokens (target <= "
            f"{TARGET_RATIO:.0%}), {f['requests']:.2f} requests vs {theirs.requests / n:.2f} "
            "(target 1)"
        )
    ragas_errors: dict[str, int] = {}
    for r in ragas[0]:
        for name in r.get("errors", {}):
            ragas_errors[name] = ragas_errors.get(name, 0) + 1
    print(f"  RAGAS metric errors: {ragas_errors or 'none'}")
    faith = ", ".join(
        f"{LABELS[tag]} {f['mean_faithfulness']:.2f}" for tag, f in figures["ours"].items()
    )
    theirs_f = _mean([r["scores"].get("faithfulness") for r in ragas[0]])
    print(f"  mean faithfulness: {faith}, RAGAS {theirs_f:.2f}")
    figures["ragas"] = {
        "requests": theirs.requests / n,
        "tokens": theirs.tokens / n,
        "s": ragas[1] / n,
        "errors": ragas_errors,
        "by_metric": {
            tag: {
                "requests": proxy.tallies[tag].requests / n,
                "tokens": proxy.tallies[tag].tokens / n,
            }
            for tag in RAGAS_TAGS
        },
    }
    return figures


async def measure(
    upstream: str, traces: Sequence[Trace], model: str, *, plain: bool = False
) -> dict[str, Any]:
    """Our judge (and, with ``plain``, its schema-less variant) and RAGAS through one proxy."""
    tags = (OURS, OURS_PLAIN) if plain else (OURS,)
    async with CountingProxy(upstream, (*tags, *RAGAS_TAGS)) as proxy:
        ours = {tag: await run_ours(proxy.url(tag), traces, JSON_MODES[tag]) for tag in tags}
        base = proxy.url(OURS).removesuffix(f"/{OURS}/v1")
        ragas = await run_ragas(base, traces)
        return report(proxy, len(traces), ours, ragas, model)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--n", type=int, default=8, help="traces")
    parser.add_argument("--model", type=Path, default=MODEL_15B, help="GGUF for the server")
    parser.add_argument("--url", help="use this OpenAI-compatible endpoint (model 'judge')")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="also measure our judge in plain JSON mode (json_mode on: no schema sent)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    traces = load_traces(args.n)
    if args.url:
        figures = asyncio.run(measure(args.url, traces, "judge", plain=args.plain))
    else:
        with llama_server(args.model) as url:
            figures = asyncio.run(measure(url, traces, args.model.stem, plain=args.plain))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
