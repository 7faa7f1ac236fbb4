"""Prometheus metrics of the LLM judge (one set per registry, labelled by judge name).

Judge *scores* are not here: they travel in the judge event's ``scores`` and
reach ``rag_sidecar_score{metric=...}`` through the normal sinks.

==========================================  =============================================
``rag_sidecar_judge_requests_total``        judge, outcome: one per HTTP attempt — ``ok``,
                                            ``error``, ``timeout``, ``rate_limited``,
                                            ``bad_output``, ``rejected``
``rag_sidecar_judge_latency_seconds``       judge: each HTTP attempt, failures included
``rag_sidecar_judge_tokens_total``          judge, kind (``prompt``, ``completion``)
``rag_sidecar_judge_cost_usd_total``        judge
``rag_sidecar_judge_breaker_state``         judge: 0 closed, 1 half-open, 2 open
``rag_sidecar_judge_queue_depth``           judge: traces waiting for a worker
``rag_sidecar_judge_skipped_total``         judge, reason: sampled traces that got no judge
                                            event — ``backpressure``, ``budget``,
                                            ``breaker_open``, ``failed``, ``bad_output``,
                                            ``shutdown``, ``write_failed``
``rag_sidecar_judge_verdicts_downgraded_total``  judge: verdicts code could not verify
``rag_sidecar_judge_cache_hits_total``      judge: judgements served from the cache
``rag_sidecar_judge_judged_total``          judge: judge events produced (cached included)
==========================================  =============================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REQUEST_OUTCOMES: Final = ("ok", "error", "timeout", "rate_limited", "bad_output", "rejected")
SKIP_REASONS: Final = (
    "backpressure",
    "budget",
    "breaker_open",
    "failed",
    "bad_output",
    "shutdown",
    "write_failed",
)
LATENCY_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class JudgeMetrics:
    """The judge metric families on one registry; share one instance between judges."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "rag_sidecar_judge_requests",
            "Judge HTTP attempts by outcome (ok, error, timeout, rate_limited, bad_output, "
            "rejected).",
            ("judge", "outcome"),
            registry=registry,
        )
        self.latency = Histogram(
            "rag_sidecar_judge_latency_seconds",
            "Duration of each judge HTTP attempt.",
            ("judge",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "rag_sidecar_judge_tokens",
            "Tokens the judge endpoint reported (usage), by kind (prompt, completion).",
            ("judge", "kind"),
            registry=registry,
        )
        self.cost = Counter(
            "rag_sidecar_judge_cost_usd",
            "Judge spend at the configured prices, US dollars.",
            ("judge",),
            registry=registry,
        )
        self.breaker_state = Gauge(
            "rag_sidecar_judge_breaker_state",
            "Judge circuit breaker: 0 closed, 1 half-open, 2 open.",
            ("judge",),
            registry=registry,
        )
        self.queue_depth = Gauge(
            "rag_sidecar_judge_queue_depth",
            "Traces waiting for a judge worker.",
            ("judge",),
            registry=registry,
        )
        self.skipped = Counter(
            "rag_sidecar_judge_skipped",
            "Sampled traces that got no judge event, by reason.",
            ("judge", "reason"),
            registry=registry,
        )
        self.downgraded = Counter(
            "rag_sidecar_judge_verdicts_downgraded",
            "Judge verdicts downgraded to not_in_context because code could not verify them.",
            ("judge",),
            registry=registry,
        )
        self.cache_hits = Counter(
            "rag_sidecar_judge_cache_hits",
            "Judgements served from the content-hash cache (no request, no cost).",
            ("judge",),
            registry=registry,
        )
        self.judged = Counter(
            "rag_sidecar_judge_judged",
            "Judge events produced (cache hits included).",
            ("judge",),
            registry=registry,
        )

    def bind(
        self, judge: str, *, queue_depth: Callable[[], float], breaker: Callable[[], float]
    ) -> None:
        """Export one judge's gauges and pre-create its series at zero."""
        self.queue_depth.labels(judge).set_function(queue_depth)
        self.breaker_state.labels(judge).set_function(breaker)
        for outcome in REQUEST_OUTCOMES:
            self.requests.labels(judge, outcome)
        for reason in SKIP_REASONS:
            self.skipped.labels(judge, reason)
        for kind in ("prompt", "completion"):
            self.tokens.labels(judge, kind)
        for family in (self.cost, self.downgraded, self.cache_hits, self.judged):
            family.labels(judge)
        self.latency.labels(judge)

    def spent(self, judge: str, prompt_tokens: int, completion_tokens: int, usd: float) -> None:
        """Count tokens and cost of one reply."""
        self.tokens.labels(judge, "prompt").inc(prompt_tokens)
        self.tokens.labels(judge, "completion").inc(completion_tokens)
        if usd > 0:
            self.cost.labels(judge).inc(usd)
