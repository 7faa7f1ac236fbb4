"""Synthetic native traces for benchmarks: realistic sizes, recurring chunks, fast.

:func:`make_lines` returns JSON lines of ~4 KB, each a native trace with
``n_chunks`` chunks drawn (with a popularity skew) from a pool of
``distinct_chunks`` prose texts, so chunks recur across traces the way popular
passages do in production. Answers reuse sentences from the trace's chunks with
a few novel words. Same arguments, same bytes (within one Python version).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any, Final

import orjson

APPS: Final = ("support-bot", "docs-search", "hr-assistant")
MODELS: Final = ("gpt-4o-mini", "llama-3.1-8b-instruct", "llama-3.1-70b-instruct")
VERSIONS: Final = ("v1", "v2", "v3")
RETRIEVERS: Final = ("pgvector-hnsw", "hybrid-bm25-e5")
START: Final = 1_795_132_800  # 2026-11-20T00:00:00Z

_SUBJECTS: Final = (
    "the billing service", "each workspace", "the ingestion pipeline", "an administrator",
    "the API gateway", "every invoice", "the retention policy", "a support agent",
    "the scheduler", "the export job", "each tenant", "the search index", "a webhook endpoint",
    "the audit log", "the mobile client", "the payroll system", "a new employee",
    "the rate limiter", "the cache layer", "your manager", "the sandbox environment",
    "the reporting dashboard", "the identity provider", "each API key", "the backup service",
    "the notification service", "a team owner", "the shipping label service",
)  # fmt: skip
_VERBS: Final = (
    ("processes", "process"), ("stores", "store"), ("validates", "validate"),
    ("rejects", "reject"), ("forwards", "forward"), ("retries", "retry"),
    ("encrypts", "encrypt"), ("archives", "archive"), ("records", "record"),
    ("summarizes", "summarize"), ("approves", "approve"), ("refreshes", "refresh"),
    ("deduplicates", "deduplicate"), ("exports", "export"), ("reconciles", "reconcile"),
    ("tracks", "track"), ("limits", "limit"), ("schedules", "schedule"),
    ("verifies", "verify"), ("publishes", "publish"), ("renews", "renew"),
)  # fmt: skip
_OBJECTS: Final = (
    "incoming requests", "the monthly invoice", "customer records", "failed payments",
    "expense reports", "access tokens", "shipping labels", "support tickets", "usage metrics",
    "webhook deliveries", "audit events", "time-off requests", "backup snapshots",
    "search queries", "seat changes", "refund requests", "tracking updates", "password resets",
    "data export files", "batch jobs", "contract renewals", "travel bookings",
    "security alerts", "billing contacts",
)  # fmt: skip
_QUALIFIERS: Final = (
    "within {n} hours", "before the end of each billing period",
    "unless the account owner disables it", "for up to {n} days",
    "using the default configuration", "when the request includes a valid token",
    "in the order they were received", "at most {n} times", "during the nightly maintenance window",
    "only for users with the admin role", "after a short delay of {n} seconds",
    "according to the regional data policy", "without any manual intervention",
    "once the previous step has completed", "for every plan except Starter",
    "as soon as the change is saved", "and keeps a copy for {n} days",
    "if the payload is smaller than {n} megabytes",
)  # fmt: skip
_PREFIXES: Final = (
    "", "", "", "", "In most cases, ", "By default, ", "If needed, ", "As a rule, ",
    "Note that ", "For compliance reasons, ", "On the Enterprise plan, ", "Since version 2, ",
)  # fmt: skip
_QUESTIONS: Final = (
    "How does {s} {v} {o} {q}?",
    "Does {s} {v} {o} {q}?",
    "Why does {s} not {v} {o} {q}?",
    "When exactly does {s} {v} {o} and what should I check?",
)
_NOVEL: Final = (
    "Hope this helps.", "In short, yes.", "That is the documented behaviour.",
    "See the linked page for details.", "Let me know if anything is unclear.",
    "This applies to all regions.", "Nothing else needs to change.",
)  # fmt: skip
_PATHS: Final = ("billing", "account", "api", "webhooks", "handbook", "security", "exports")


def _sentence(rng: random.Random) -> tuple[str, str]:
    """One prose sentence and a ~15-word question about it."""
    subj = rng.choice(_SUBJECTS)
    verb, base = rng.choice(_VERBS)
    obj = rng.choice(_OBJECTS)
    qual = rng.choice(_QUALIFIERS).format(n=rng.randint(2, 90))
    prefix = rng.choice(_PREFIXES)
    head = f"{prefix}{subj}" if prefix else subj[0].upper() + subj[1:]
    question = rng.choice(_QUESTIONS).format(s=subj, v=base, o=obj, q=qual)
    return f"{head} {verb} {obj} {qual}.", question[0].upper() + question[1:]


class _Pool:
    """The recurring chunk texts, their whole sentences and a query for each."""

    def __init__(self, rng: random.Random, size: int, text_bytes: int) -> None:
        self.texts: list[str] = []
        self.sentences: list[list[tuple[str, int]]] = []  # (sentence, word count)
        self.queries: list[str] = []
        self.ids: list[str] = []
        self.sources: list[str] = []
        for i in range(size):
            sents: list[tuple[str, int]] = []
            length = -1
            query = ""
            while length < text_bytes:
                sent, q = _sentence(rng)
                sents.append((sent, sent.count(" ") + 1))
                length += len(sent) + 1
                query = query or q
            # Cut at a word boundary like a fixed-size chunker; the cut sentence is not
            # offered to answers.
            text = " ".join(t for t, _ in sents)
            cut = text.rfind(" ", 0, text_bytes + 1)
            self.texts.append(text[: cut if cut > 0 else text_bytes])
            self.sentences.append(sents[:-1] or sents)
            self.queries.append(query)
            app = APPS[i % len(APPS)]
            doc = i // 4
            self.ids.append(f"{app}/doc-{doc:05d}#{i % 4}")
            self.sources.append(f"docs/{app}/{_PATHS[doc % len(_PATHS)]}/{doc}.md")


def _answer(rng: random.Random, pool: _Pool, picks: Sequence[int]) -> str:
    """60-120 words: sentences from the top chunks, in turn, plus a few novel ones."""
    want = rng.randint(60, 120)
    top = pool.sentences[picks[0]]
    k = int(rng.random() * len(top))
    walk = top[k:] + top[:k] + pool.sentences[picks[1]] + pool.sentences[picks[-1]]
    rand = rng.random
    parts: list[str] = []
    have = 0
    for sent, words in walk:
        if have >= want:
            break
        if rand() < 0.2:
            novel = _NOVEL[int(rand() * len(_NOVEL))]
            parts.append(novel)
            have += novel.count(" ") + 1
        if have + words > want:
            sent = " ".join(sent.split()[: max(want - have, 1)])
            words = want - have
        parts.append(sent)
        have += words
    return " ".join(parts)


def make_lines(
    n: int,
    *,
    chunk_bytes: int = 700,
    n_chunks: int = 5,
    distinct_chunks: int = 2000,
    seed: int = 7,
) -> list[bytes]:
    """``n`` native trace JSON lines (no trailing newline) of ~4 KB with the defaults.

    ``chunk_bytes`` is roughly each chunk's serialized size: its text is cut at a
    word boundary to ``chunk_bytes - 150`` bytes, and id, score and source take
    ~120 more. A line is then about ``n_chunks * (chunk_bytes - 30) + 900`` bytes.
    Chunk texts come from a pool of ``distinct_chunks``, popular ones more often.
    About 10% of the lines carry feedback.
    """
    if n_chunks < 2:
        raise ValueError("n_chunks must be at least 2")
    rng = random.Random(seed)
    pool = _Pool(rng, max(distinct_chunks, n_chunks * len(APPS)), max(chunk_bytes - 150, 40))
    per_app = [list(range(a, len(pool.texts), len(APPS))) for a in range(len(APPS))]
    lines: list[bytes] = []
    rand = rng.random
    last_second, stamp = -1, ""
    for i in range(n):
        a = i % len(APPS) if rand() < 0.5 else rng.randrange(len(APPS))
        own = per_app[a]
        picks: list[int] = []
        while len(picks) < n_chunks:
            j = own[int(len(own) * rand() ** 2)]  # skewed: popular chunks recur more
            if j not in picks:
                picks.append(j)
        score = 0.72 + 0.22 * rand()
        chunks = []
        for j in picks:
            chunks.append(
                {
                    "id": pool.ids[j],
                    "text": pool.texts[j],
                    "score": round(score, 4),
                    "source": pool.sources[j],
                }
            )
            score -= 0.01 + 0.06 * rand()
        second = START + i // 4  # four traces a second
        if second != last_second:
            last_second, stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        row: dict[str, Any] = {
            "trace_id": f"bench-{seed}-{i:08d}",
            "timestamp": f"{stamp}.{int(rand() * 1000):03d}Z",
            "app": APPS[a],
            "model": MODELS[int(rand() * len(MODELS))],
            "prompt_version": VERSIONS[int(rand() * len(VERSIONS))],
            "retriever": RETRIEVERS[a % len(RETRIEVERS)],
            "query": pool.queries[picks[0]],
            "answer": _answer(rng, pool, picks),
            "chunks": chunks,
            "metadata": {
                "session_id": f"sess-{rng.getrandbits(32):08x}",
                "latency_ms": 400 + int(rand() * 2400),
            },
        }
        if rand() < 0.1:
            down = rand() < 0.4
            feedback: dict[str, Any] = {"thumbs": "down" if down else "up"}
            if rand() < 0.5:
                feedback["rating"] = rng.randint(1, 2) if down else rng.randint(4, 5)
            row["feedback"] = feedback
        lines.append(orjson.dumps(row))
    return lines


def mean_size(lines: Sequence[bytes]) -> float:
    """Mean line length in bytes (0.0 for no lines)."""
    return sum(map(len, lines)) / len(lines) if lines else 0.0


if __name__ == "__main__":
    started = time.perf_counter()
    sample = make_lines(100_000)
    elapsed = time.perf_counter() - started
    print(f"{len(sample)} lines, mean {mean_size(sample):.0f} B, {elapsed:.2f}s")
