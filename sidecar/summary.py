"""A short human summary of a run, read back from the metrics registry.

What it prints is exactly what /metrics exposes, so the terminal and the
dashboards never disagree.
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import CollectorRegistry

KEY_METRICS = ("groundedness_lexical", "answer_query_overlap", "context_query_overlap")


def summarize(registry: CollectorRegistry) -> str:
    """Totals, dead letters, sampling, flags and key score means per app."""
    outcomes: dict[str, float] = defaultdict(float)
    dead: dict[str, float] = {}
    sampled: dict[str, float] = {}
    flags: dict[str, float] = defaultdict(float)
    sums: dict[tuple[str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str], float] = defaultdict(float)
    for family in registry.collect():
        for s in family.samples:
            if s.name == "rag_sidecar_traces_total":
                outcomes[s.labels["outcome"]] += s.value
            elif s.name == "rag_sidecar_dead_letters_total":
                dead[s.labels["reason"]] = s.value
            elif s.name == "rag_sidecar_sampled_total":
                sampled[s.labels["reason"]] = s.value
            elif s.name == "rag_sidecar_flags_total":
                flags[s.labels["flag"]] += s.value
            elif s.name in ("rag_sidecar_score_sum", "rag_sidecar_score_count"):
                metric = s.labels["metric"]
                if metric in KEY_METRICS:
                    key = (s.labels["app"], metric)
                    (sums if s.name.endswith("_sum") else counts)[key] += s.value
    lines = [
        "scored {:.0f} traces, {:.0f} invalid, {:.0f} dropped".format(
            outcomes["scored"], outcomes["invalid"], outcomes["dropped"]
        )
    ]
    if dead:
        lines.append("dead letters: " + ", ".join(f"{k}={v:.0f}" for k, v in sorted(dead.items())))
    if sampled:
        lines.append(
            "sampled for judge: " + ", ".join(f"{k}={v:.0f}" for k, v in sorted(sampled.items()))
        )
    if flags:
        top = sorted(flags.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
        lines.append("flags: " + ", ".join(f"{k}={v:.0f}" for k, v in top))
    apps = sorted({app for app, _ in counts})
    if apps:
        lines.append("mean scores per app:")
        width = max(len(a) for a in apps)
        lines.append("  " + "app".ljust(width) + "".join(f"  {m:>22s}" for m in KEY_METRICS))
        for app in apps:
            cells = []
            for m in KEY_METRICS:
                n = counts.get((app, m), 0.0)
                cells.append(f"  {sums[(app, m)] / n:22.3f}" if n else f"  {'-':>22s}")
            lines.append("  " + app.ljust(width) + "".join(cells))
    return "\n".join(lines)
