"""The single table of every heuristic family, metric and flag.

The README's score table and the Prometheus sink are driven from here, and a
test checks that every name a family emits is listed. Add a name here first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MetricKind = Literal["ratio", "count", "raw"]
"""``ratio``: a value in [0, 1]; ``count``: a non-negative count; ``raw``: the
retriever's own units (not clipped)."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One heuristic metric."""

    name: str
    description: str
    kind: MetricKind
    family: str


FAMILIES: Final[dict[str, str]] = {
    "retrieval": "Retriever scores of the chunks, as the retriever reported them.",
    "context": "Empty and duplicated context.",
    "overlap": "Lexical overlap between query, answer and context.",
    "refusal": "Answers that decline to answer.",
    "length": "Answer length, emptiness and conciseness.",
    "citations": "Bracketed citations such as [1], [1, 2], [1-3].",
    "pii": "Emails, phone numbers and card numbers in the answer.",
    "language": "Query and answer language (script plus stop-word vote).",
}
"""Family name → description, in the order the suite runs them."""

_METRICS: Final = (
    MetricSpec("retrieval_count", "Number of retrieved chunks.", "count", "retrieval"),
    MetricSpec(
        "retrieval_top_score", "Highest retriever score among the chunks.", "raw", "retrieval"
    ),
    MetricSpec("retrieval_mean_score", "Mean retriever score of the chunks.", "raw", "retrieval"),
    MetricSpec(
        "retrieval_score_gap",
        "Best minus second-best retriever score (needs two scored chunks).",
        "raw",
        "retrieval",
    ),
    MetricSpec(
        "context_redundancy",
        "Share of chunks whose normalised text repeats an earlier chunk.",
        "ratio",
        "context",
    ),
    MetricSpec(
        "groundedness_lexical",
        "Share of the answer's content tokens found in the chunks.",
        "ratio",
        "overlap",
    ),
    MetricSpec(
        "answer_query_overlap",
        "Share of the query's content tokens found in the answer.",
        "ratio",
        "overlap",
    ),
    MetricSpec(
        "context_query_overlap",
        "Share of the query's content tokens found in the chunks.",
        "ratio",
        "overlap",
    ),
    MetricSpec("answer_length", "Number of word tokens in the answer.", "count", "length"),
    MetricSpec(
        "conciseness",
        "1 up to the length budget, then budget / length (see the length family).",
        "ratio",
        "length",
    ),
    MetricSpec(
        "citation_validity",
        "Share of cited chunk indices that exist (only when the answer cites).",
        "ratio",
        "citations",
    ),
)

METRICS: Final[dict[str, MetricSpec]] = {m.name: m for m in _METRICS}
"""Metric name → spec."""

FLAGS: Final[dict[str, str]] = {
    "missing_retrieval_scores": "There are chunks but none carries a retriever score.",
    "low_retrieval_score": "The top retriever score is below the configured threshold.",
    "empty_retrieval": "No chunks, or every chunk's text is blank.",
    "duplicate_chunks": "Two chunks have the same whitespace- and case-normalised text.",
    "low_groundedness": "Lexical groundedness is below the threshold (refusals excepted).",
    "refusal": "The answer declines to answer (English phrasings).",
    "empty_answer": "The answer is blank.",
    "invalid_citation": "A citation points at a chunk that does not exist.",
    "pii_email": "The answer contains an email address.",
    "pii_phone": "The answer contains a phone number.",
    "pii_card": "The answer contains a Luhn-valid payment card number.",
    "language_mismatch": "Query and answer are confidently in different languages.",
    "non_english": "The query is confidently not English; lexical scores are unreliable.",
}
"""Flag name → description."""

FLAG_FAMILIES: Final[dict[str, str]] = {
    "missing_retrieval_scores": "retrieval",
    "low_retrieval_score": "retrieval",
    "empty_retrieval": "context",
    "duplicate_chunks": "context",
    "low_groundedness": "overlap",
    "refusal": "refusal",
    "empty_answer": "length",
    "invalid_citation": "citations",
    "pii_email": "pii",
    "pii_phone": "pii",
    "pii_card": "pii",
    "language_mismatch": "language",
    "non_english": "language",
}
"""Flag name → the family that raises it."""
