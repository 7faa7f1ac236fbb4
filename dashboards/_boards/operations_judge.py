"""The Operations board's LLM judge row: requests, errors, latency, tokens, cost,
breaker, skips, queue and canaries."""

from __future__ import annotations

from .board import Board
from .panels import stat_panel, state_panel, target, ts
from .promql import QI, R


def judge(d: Board) -> None:
    """Row "LLM judge"."""
    d.row("LLM judge")
    d.add(
        ts(
            "Judge requests by outcome",
            "Judge HTTP attempts per second by outcome (ok, error, timeout, rate_limited, "
            "bad_output, rejected).",
            [
                target(
                    f"sum by (judge, outcome) "
                    f"(rate(rag_sidecar_judge_requests_total{{{QI}}}[{R}]))",
                    "{{judge}} {{outcome}}",
                )
            ],
            unit="reqps",
            stack=True,
        ),
        8,
    )
    d.add(
        ts(
            "Judge error ratio",
            "Share of judge attempts that did not end ok (alert above 20% for 10 minutes).",
            [
                target(
                    f"sum by (judge) "
                    f'(rate(rag_sidecar_judge_requests_total{{outcome!="ok", {QI}}}[{R}]))'
                    f" / sum by (judge) (rate(rag_sidecar_judge_requests_total{{{QI}}}[{R}]))",
                    "{{judge}}",
                )
            ],
            unit="percentunit",
            lo=0,
            hi=1,
        ),
        8,
    )
    d.add(
        ts(
            "Judge latency",
            "Duration of each judge HTTP attempt, p50 and p95.",
            [
                target(
                    f"histogram_quantile({q}, sum by (judge, le) "
                    f"(rate(rag_sidecar_judge_latency_seconds_bucket{{{QI}}}[{R}])))",
                    f"{{{{judge}}}} p{int(q * 100)}",
                    ref,
                )
                for q, ref in ((0.5, "A"), (0.95, "B"))
            ],
            unit="s",
        ),
        8,
    )
    d.add(
        ts(
            "Judge tokens",
            "Tokens per second reported by the endpoint (usage), by kind.",
            [
                target(
                    f"sum by (judge, kind) (rate(rag_sidecar_judge_tokens_total{{{QI}}}[{R}]))",
                    "{{judge}} {{kind}}",
                )
            ],
            unit="short",
            stack=True,
        ),
        8,
    )
    d.add(
        ts(
            "Judge cost",
            "Judge spend in US dollars per hour at the configured prices.",
            [
                target(
                    f"sum by (judge) (rate(rag_sidecar_judge_cost_usd_total{{{QI}}}[{R}])) * 3600",
                    "{{judge}} USD/h",
                )
            ],
            unit="currencyUSD",
        ),
        8,
    )
    d.add(
        stat_panel(
            "Judge spend (range)",
            "Judge spend over the dashboard's time range (the daily cap resets at UTC midnight).",
            f"sum(increase(rag_sidecar_judge_cost_usd_total{{{QI}}}[$__range]))",
            unit="currencyUSD",
        ),
        8,
    )
    d.add(
        state_panel(
            "Judge circuit breaker",
            "0 closed, 1 half-open (probing), 2 open (no requests).",
            f"max by (instance, judge) (rag_sidecar_judge_breaker_state{{{QI}}})",
            "{{instance}} {{judge}}",
            {"0": ("closed", "green"), "1": ("half-open", "yellow"), "2": ("open", "red")},
        ),
        12,
    )
    d.add(
        ts(
            "Judge skipped by reason",
            "Sampled traces that got no judge event, per second by reason (budget, "
            "backpressure, breaker_open, failed, bad_output, shutdown, write_failed).",
            [
                target(
                    f"sum by (judge, reason) (rate(rag_sidecar_judge_skipped_total{{{QI}}}[{R}]))",
                    "{{judge}} {{reason}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        12,
    )
    d.add(
        ts(
            "Judge queue and throughput",
            "Traces waiting for a judge worker; judge events, cache hits and downgraded "
            "verdicts per second.",
            [
                target(
                    f"sum by (judge) (rag_sidecar_judge_queue_depth{{{QI}}})",
                    "{{judge}} queue",
                    "A",
                ),
                target(
                    f"sum by (judge) (rate(rag_sidecar_judge_judged_total{{{QI}}}[{R}]))",
                    "{{judge}} judged/s",
                    "B",
                ),
                target(
                    f"sum by (judge) (rate(rag_sidecar_judge_cache_hits_total{{{QI}}}[{R}]))",
                    "{{judge}} cache hits/s",
                    "C",
                ),
                target(
                    f"sum by (judge) "
                    f"(rate(rag_sidecar_judge_verdicts_downgraded_total{{{QI}}}[{R}]))",
                    "{{judge}} downgraded/s",
                    "D",
                ),
            ],
            unit="short",
        ),
        12,
    )
    d.add(
        ts(
            "Judge canaries",
            "Canaries (known verdicts) by outcome per hour, and the share of recent "
            "canaries that passed.",
            [
                target(
                    f"sum by (judge, outcome) "
                    f"(increase(rag_sidecar_judge_canary_total{{{QI}}}[1h]))",
                    "{{judge}} {{outcome}}",
                    "A",
                ),
                target(
                    f"max by (judge) (rag_sidecar_judge_canary_accuracy{{{QI}}})",
                    "{{judge}} accuracy",
                    "B",
                ),
            ],
            unit="short",
        ),
        12,
    )
