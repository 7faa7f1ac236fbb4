"""The Operations board: the sidecar as a service.

Throughput, pipeline, Kafka and OTLP rows are here; the LLM judge row is in
``operations_judge``.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.models import dashboard as dm

from .board import Board, datasource_var, quality_vars, query_var
from .operations_judge import judge
from .panels import table_panel, target, ts
from .promql import AMP, LEG_AMP, QI, Q, R


def operations() -> dict[str, Any]:
    """The sidecar as a service: throughput, queues, Kafka, OTLP, judge, drift monitor."""
    d = Board(
        "rag-sidecar-operations",
        "rag-sidecar / Operations",
        "rag-sidecar as a service: throughput, queues, Kafka lag, OTLP ingestion, the LLM "
        "judge (latency, tokens, cost, errors, breaker, skips) and dead letters.",
        ["rag-sidecar", "rag", "operations"],
    ).variables(
        datasource_var(),
        query_var("job", "Job", "label_values(rag_sidecar_build_info, job)"),
        query_var(
            "instance", "Instance", 'label_values(rag_sidecar_build_info{job=~"$job"}, instance)'
        ),
        *quality_vars(),
    )

    _throughput(d)
    _pipeline(d)
    _kafka(d)
    _otlp(d)
    judge(d)
    return d.build()


def _throughput(d: Board) -> None:
    """Row "Throughput"."""
    d.row("Throughput")
    d.add(
        ts(
            "Records by outcome",
            "Records processed per second, by source and outcome (scored, invalid, dropped).",
            [
                target(
                    f"sum by (source, outcome) (rate(rag_sidecar_traces_total{{{QI}}}[{R}]))",
                    "{{source}} {{outcome}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        8,
    )
    d.add(
        ts(
            "Scored traces by app / model / prompt_version",
            "Traces scored per second for the selected app, model and prompt_version.",
            [
                target(
                    f"sum by ({AMP}) (rate(rag_sidecar_count_count"
                    f'{{metric="answer_length", {Q}, {QI}}}[{R}]))',
                    LEG_AMP,
                )
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Dead letters by reason",
            "Invalid records sent to the dead-letter sink per second, by reason.",
            [
                target(
                    f"sum by (reason) (rate(rag_sidecar_dead_letters_total{{{QI}}}[{R}]))",
                    "{{reason}}",
                )
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Dropped records by stage",
            "Records dropped because a queue was full (only with pipeline.overflow: drop).",
            [
                target(
                    f"sum by (stage) (rate(rag_sidecar_queue_dropped_total{{{QI}}}[{R}]))",
                    "{{stage}}",
                )
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Processing latency",
            "Arrival to results written, p50 / p95 / p99 (rag_sidecar_processing_seconds).",
            [
                target(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(rag_sidecar_processing_seconds_bucket{{{QI}}}[{R}])))",
                    f"p{int(q * 100)}",
                    ref,
                )
                for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
            ],
            unit="s",
        ),
        8,
    )
    d.add(
        table_panel(
            "Build",
            "Sidecar version and heuristics scorer version per instance.",
            [target(f"rag_sidecar_build_info{{{QI}}}", instant=True, table_=True)],
            transformations=[
                dm.DataTransformerConfig(
                    id_val="organize",
                    options={"excludeByName": {"Time": True, "Value": True, "__name__": True}},
                )
            ],
        ),
        8,
    )


def _pipeline(d: Board) -> None:
    """Row "Pipeline"."""
    d.row("Pipeline")
    d.add(
        ts(
            "Queue depth vs capacity",
            "Batches waiting in front of each stage and the queue's capacity.",
            [
                target(
                    f"max by (instance, stage) (rag_sidecar_queue_depth{{{QI}}})",
                    "{{instance}} {{stage}} depth",
                    "A",
                ),
                target(
                    f"max by (stage) (rag_sidecar_queue_capacity{{{QI}}})",
                    "{{stage}} capacity",
                    "B",
                ),
            ],
            unit="short",
            lo=0,
        ),
        8,
    )
    d.add(
        ts(
            "Queue fill",
            "Queue depth over capacity per instance and stage (alert at 80% for 25 minutes).",
            [
                target(
                    f"max by (instance, stage) (rag_sidecar_queue_depth{{{QI}}})"
                    f" / on (instance, stage) max by (instance, stage) "
                    f"(rag_sidecar_queue_capacity{{{QI}}})",
                    "{{instance}} {{stage}}",
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
            "Sink errors",
            "Sink write failures per second, by sink and kind (retryable, permanent).",
            [
                target(
                    f"sum by (sink, kind) (rate(rag_sidecar_sink_errors_total{{{QI}}}[{R}]))",
                    "{{sink}} {{kind}}",
                )
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Label values folded into 'other'",
            "Producer label values over http.max_label_values, per label.",
            [
                target(
                    f"sum by (label) (rate(rag_sidecar_label_overflow_total{{{QI}}}[{R}]))",
                    "{{label}}",
                )
            ],
            unit="ops",
        ),
        12,
    )
    d.add(
        ts(
            "Drift monitor",
            "Series held by the drift monitor, late values per second, evicted series.",
            [
                target(f"sum(rag_sidecar_drift_series{{{QI}}})", "series held", "A"),
                target(
                    f"sum(rate(rag_sidecar_drift_late_values_total{{{QI}}}[{R}]))",
                    "late values/s",
                    "B",
                ),
                target(
                    f"sum(rate(rag_sidecar_drift_series_evicted_total{{{QI}}}[{R}]))",
                    "evicted/s",
                    "C",
                ),
            ],
            unit="short",
        ),
        12,
    )


def _kafka(d: Board) -> None:
    """Row "Kafka"."""
    d.row("Kafka")
    d.add(
        ts(
            "Consumer lag per partition",
            "High watermark minus committed offset, per topic and partition.",
            [
                target(
                    f"max by (topic, partition) (rag_sidecar_kafka_lag{{{QI}}})",
                    "{{topic}}/{{partition}}",
                )
            ],
            unit="short",
            lo=0,
        ),
        12,
    )
    d.add(
        ts(
            "In flight and paused",
            "Records read but not yet written, and whether partitions are paused for "
            "backpressure (1).",
            [
                target(
                    f"sum by (instance) (rag_sidecar_kafka_in_flight{{{QI}}})",
                    "{{instance}} in flight",
                    "A",
                ),
                target(
                    f"max by (instance) (rag_sidecar_kafka_paused{{{QI}}})",
                    "{{instance}} paused",
                    "B",
                ),
            ],
            unit="short",
            lo=0,
        ),
        12,
    )
    d.add(
        ts(
            "Commits and rebalances",
            "Offset commits per second by outcome, partition assignment changes by kind, and "
            "consumer errors by exception (retried every 5 s: a steady line is a consumer that "
            "scores nothing, alert RagSidecarKafkaConsumerFailing).",
            [
                target(
                    f"sum by (outcome) (rate(rag_sidecar_kafka_commits_total{{{QI}}}[{R}]))",
                    "commit {{outcome}}",
                    "A",
                ),
                target(
                    f"sum by (kind) (rate(rag_sidecar_kafka_rebalances_total{{{QI}}}[{R}]))",
                    "rebalance {{kind}}",
                    "B",
                ),
                target(
                    f"sum by (error) (rate(rag_sidecar_kafka_consumer_errors_total{{{QI}}}[{R}]))",
                    "error {{error}}",
                    "C",
                ),
            ],
            unit="ops",
        ),
        24,
    )


def _otlp(d: Board) -> None:
    """Row "OTLP ingestion"."""
    d.row("OTLP ingestion")
    d.add(
        ts(
            "OTLP requests",
            "Export requests per second, by transport and outcome.",
            [
                target(
                    f"sum by (transport, outcome) "
                    f"(rate(rag_sidecar_otlp_requests_total{{{QI}}}[{R}]))",
                    "{{transport}} {{outcome}}",
                )
            ],
            unit="reqps",
        ),
        8,
    )
    d.add(
        ts(
            "Spans and traces",
            "Spans received and traces assembled per second; late and rejected spans, and "
            "valid spans not kept, by reason (span_limit, late_retrieval: raise "
            "otlp.assembly.settle_s; duplicate: exporter retries).",
            [
                target(f"sum(rate(rag_sidecar_otlp_spans_total{{{QI}}}[{R}]))", "spans", "A"),
                target(
                    f"sum(rate(rag_sidecar_otlp_assembled_total{{{QI}}}[{R}]))",
                    "traces assembled",
                    "B",
                ),
                target(
                    f"sum(rate(rag_sidecar_otlp_late_spans_total{{{QI}}}[{R}]))", "late spans", "C"
                ),
                target(
                    f"sum(rate(rag_sidecar_otlp_rejected_spans_total{{{QI}}}[{R}]))",
                    "rejected spans",
                    "D",
                ),
                target(
                    f"sum by (reason) (rate(rag_sidecar_otlp_spans_dropped_total{{{QI}}}[{R}]))",
                    "not kept: {{reason}}",
                    "E",
                ),
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Incomplete traces",
            "Traces given up incomplete per second, by what was missing (root = usually "
            "misrouted spans), and pending traces being assembled.",
            [
                target(
                    f"sum by (missing) (rate(rag_sidecar_otlp_incomplete_total{{{QI}}}[{R}]))",
                    "incomplete, missing {{missing}}",
                    "A",
                ),
                target(f"sum(rag_sidecar_otlp_pending_traces{{{QI}}})", "pending", "B"),
                target(f"sum(rate(rag_sidecar_otlp_evicted_total{{{QI}}}[{R}]))", "evicted/s", "C"),
            ],
            unit="short",
        ),
        8,
    )
