"""Tests of the batch report (report.csv streamed, report.md on close)."""

from __future__ import annotations

import csv
import json
import re
import statistics
import tracemalloc
from pathlib import Path
from typing import Literal

import pytest

from sidecar.events import FeedbackView, Labels, Sampling, ScoredEvent, make_event_id
from sidecar.report import BASE_COLUMNS, OTHER_SCORES, ReportBuilder
from sidecar.trace import Chunk, Trace

NAMES = ("groundedness_lexical", "answer_length")
T0 = 1714564800.0  # 2024-05-01T12:00:00Z


def make(
    trace_id: str,
    *,
    app: str | None = "support",
    model: str | None = "gpt-4o",
    prompt: str | None = "v1",
    scores: dict[str, float] | None = None,
    flags: tuple[str, ...] = (),
    query: str = "what is the refund policy?",
    answer: str = "Refunds within 30 days.",
    ts: float = T0,
    thumbs: Literal["up", "down"] | None = None,
    rating: float | None = None,
    sampled: bool = False,
) -> tuple[Trace, ScoredEvent]:
    trace = Trace(
        trace_id=trace_id,
        timestamp=ts,
        app=app,
        model=model,
        prompt_version=prompt,
        query=query,
        answer=answer,
        chunks=[Chunk(text="Refunds are accepted within 30 days."), Chunk(text="other")],
    )
    event = ScoredEvent(
        event_id=make_event_id(trace_id, "heuristic", "test"),
        trace_id=trace_id,
        type="heuristic",
        timestamp=ts,
        scored_at=ts + 1,
        scorer_version="test",
        source="file:test.jsonl",
        labels=Labels(app=app, model=model, prompt_version=prompt, retriever="bm25"),
        scores=dict(scores or {}),
        flags=list(flags),
        sampled=Sampling(selected=sampled, reasons=["random"] if sampled else []),
        feedback=FeedbackView(thumbs=thumbs, rating=rating)
        if thumbs or rating is not None
        else None,
    )
    return trace, event


def read_csv(out: Path) -> list[dict[str, str]]:
    with (out / "report.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def section(md: str, title: str) -> str:
    """The text of one '## ' section of report.md."""
    start = md.index(f"## {title}")
    end = md.find("\n## ", start + 1)
    return md[start : end if end != -1 else len(md)]


def test_csv_rows_columns_and_quoting(tmp_path: Path) -> None:
    tricky = 'line one\nline two, with a comma and a "quote"'
    builder = ReportBuilder(tmp_path, score_names=NAMES)
    builder.add(
        *make(
            "t1",
            scores={"groundedness_lexical": 0.25, "answer_length": 12.0, "zeta": 1.5, "alpha": 2.0},
            flags=("empty_context", "low_grounding"),
            answer=tricky,
            thumbs="down",
            rating=2.0,
            sampled=True,
        )
    )
    builder.add(*make("t2", scores={"answer_length": 3.0}, prompt=None))
    summary = builder.close()

    header = (tmp_path / "report.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == [*BASE_COLUMNS, *NAMES, OTHER_SCORES]
    rows = read_csv(tmp_path)
    assert len(rows) == 2 == summary.traces
    first, second = rows
    assert first["answer"] == tricky
    assert first["timestamp"] == "2024-05-01T12:00:00.000Z"
    assert first["n_chunks"] == "2"
    assert (first["thumbs"], first["rating"], first["sampled"]) == ("down", "2.0", "true")
    assert first["sample_reasons"] == "random"
    assert first["flags"] == "empty_context;low_grounding"
    assert first["groundedness_lexical"] == "0.25"
    assert json.loads(first["other_scores"]) == {"alpha": 2.0, "zeta": 1.5}
    assert first["other_scores"] == '{"alpha":2.0,"zeta":1.5}'  # compact, sorted keys
    assert second["groundedness_lexical"] == "" and second["other_scores"] == ""
    assert (second["prompt_version"], second["thumbs"], second["sampled"]) == ("", "", "false")


def test_group_tables_n_mean_std(tmp_path: Path) -> None:
    values = [0.1, 0.4, 0.75]
    builder = ReportBuilder(tmp_path, score_names=NAMES)
    for i, v in enumerate(values):
        builder.add(*make(f"a{i}", scores={"groundedness_lexical": v}, thumbs="up", rating=4.0))
    builder.add(*make("b0", app="search", scores={"groundedness_lexical": 0.9}, thumbs="down"))
    builder.add(*make("b1", app="search", flags=("empty_answer",), ts=T0 + 3600))
    summary = builder.close()
    md = (tmp_path / "report.md").read_text(encoding="utf-8")

    assert "Traces from 2024-05-01T12:00:00.000Z to 2024-05-01T13:00:00.000Z" in md
    mean, std = statistics.mean(values), statistics.stdev(values)
    support = md[md.index("### support / gpt-4o / v1") : md.index("## Flags")]
    assert f"| groundedness_lexical | 3 | {mean:.3f} | {std:.3f} | 0.100 | 0.750 |" in support
    groups = section(md, "Groups")
    assert "| search | gpt-4o | v1 | 2 | 0 | 0 | 1 | 100.0% | — |" in groups
    assert "| support | gpt-4o | v1 | 3 | 0 | 3 | 0 | 0.0% | 4.000 |" in groups
    # groups are sorted by label, so "search" comes before "support"
    assert groups.index("| search |") < groups.index("| support |")
    assert "| empty_answer | 1 | 50.0% |" in md  # per-group flag rate
    assert "| empty_answer | 1 | 20.0% | search |" in section(md, "Flags")
    assert dict(summary.groups) == {("search", "gpt-4o", "v1"): 2, ("support", "gpt-4o", "v1"): 3}


def test_worst_traces_order_ties_and_missing(tmp_path: Path) -> None:
    builder = ReportBuilder(tmp_path, score_names=NAMES, worst_n=3)
    for tid, score in [("c", 0.5), ("b", 0.2), ("a", 0.2), ("d", 0.1), ("e", 0.9)]:
        builder.add(*make(tid, scores={"groundedness_lexical": score}))
    builder.add(*make("nan", scores={"groundedness_lexical": float("nan")}))
    builder.add(*make("missing", scores={"answer_length": 1.0}))
    assert builder.held_traces == 3
    builder.close()
    worst = section((tmp_path / "report.md").read_text(encoding="utf-8"), "Worst traces")
    ids = re.findall(r"^\| \d+ \| (\w+) \|", worst, flags=re.MULTILINE)
    assert ids == ["d", "a", "b"]
    assert "| 1 | d | support / gpt-4o / v1 | 0.100 |" in worst


def test_markdown_escaping_and_truncation(tmp_path: Path) -> None:
    builder = ReportBuilder(tmp_path, score_names=NAMES)
    builder.add(
        *make(
            "p1",
            query="a|b\nc <b>",
            answer="x" * 500,
            flags=("f|1",),
            scores={"groundedness_lexical": 0.0},
        )
    )
    builder.close()
    worst = section((tmp_path / "report.md").read_text(encoding="utf-8"), "Worst traces")
    row = next(line for line in worst.splitlines() if line.startswith("| 1 |"))
    assert "a\\|b ⏎ c &lt;b>" in row
    assert "f\\|1" in row
    assert "x" * 160 + "…" in row and "x" * 161 not in row
    unescaped = re.findall(r"(?<!\\)\|", row)
    assert len(unescaped) == 8  # 7 columns


def test_dead_letters_and_summary_text(tmp_path: Path) -> None:
    builder = ReportBuilder(tmp_path / "nested" / "out", score_names=NAMES)
    builder.add(*make("t1", scores={"groundedness_lexical": 0.5}, sampled=True))
    for reason in ["not_json", "invalid_trace", "not_json"]:
        builder.add_dead_letter(reason)
    summary = builder.close()
    assert summary.dead_letters_by_reason == {"invalid_trace": 1, "not_json": 2}
    assert (summary.dead_letters, summary.sampled) == (3, 1)
    totals = section(summary.md_path.read_text(encoding="utf-8"), "Totals")
    assert "| traces scored | 1 |" in totals
    assert "| sampled for judge | 1 (100.0%) |" in totals
    assert "| invalid inputs | 3 |" in totals
    assert "| invalid: invalid_trace | 1 |" in totals and "| invalid: not_json | 2 |" in totals
    text = summary.text()
    assert text.splitlines()[0] == (
        "1 traces scored, 1 sampled for judge, 3 invalid inputs (invalid_trace 1, not_json 2)"
    )
    assert "support / gpt-4o / v1: 1" in text
    assert builder.close() is summary  # idempotent
    with pytest.raises(RuntimeError):
        builder.add(*make("late"))


def test_empty_report_and_deterministic_output(tmp_path: Path) -> None:
    empty = ReportBuilder(tmp_path / "empty").close()
    md = empty.md_path.read_text(encoding="utf-8")
    assert empty.traces == 0 and "No flags raised." in md and "No trace has a" in md
    assert len(read_csv(tmp_path / "empty")) == 0

    def run(out: Path) -> tuple[bytes, bytes]:
        with ReportBuilder(out, score_names=NAMES) as builder:
            for i in range(20):
                app = ("b", "a", None)[i % 3]
                score = {"groundedness_lexical": (i * 7 % 11) / 11, "other": float(i)}
                builder.add(*make(f"t{i}", app=app, scores=score, flags=("x",) * (i % 2)))
        return (out / "report.md").read_bytes(), (out / "report.csv").read_bytes()

    assert run(tmp_path / "one") == run(tmp_path / "two")
    md = (tmp_path / "one" / "report.md").read_text(encoding="utf-8")
    assert md.index("### a /") < md.index("### b /") < md.index("### (none) /")


def test_score_names_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="clash"):
        ReportBuilder(tmp_path, score_names=["query"])
    with pytest.raises(ValueError, match="duplicates"):
        ReportBuilder(tmp_path, score_names=["a", "a"])


def _score(i: int) -> float:
    return ((i * 7919) % 100_003) / 100_003


def _synthetic(i: int) -> ScoredEvent:
    score = _score(i)
    return ScoredEvent(
        event_id=make_event_id(f"t{i:06d}", "heuristic", "v"),
        trace_id=f"t{i:06d}",
        type="heuristic",
        timestamp=T0 + i,
        scored_at=T0 + i,
        scorer_version="v",
        source="synthetic",
        labels=Labels(app=f"app{i % 3}", model="m", prompt_version=f"v{i % 2}"),
        scores={"groundedness_lexical": score, "answer_length": float(i % 50)},
        flags=["low_grounding"] if score < 0.1 else [],
        sampled=Sampling(selected=i % 10 == 0),
    )


def test_memory_bounded_on_50k_rows(tmp_path: Path) -> None:
    trace, _ = make("base", answer="an answer of moderate length " * 4)
    worst_n, rows, traced = 20, 50_000, 5_000
    builder = ReportBuilder(tmp_path, score_names=NAMES, worst_n=worst_n)
    for i in range(rows - traced):
        builder.add(trace, _synthetic(i))
        assert builder.held_traces <= worst_n
    # the last rows run under tracemalloc (slow): retaining them would cost megabytes
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(rows - traced, rows):
            builder.add(trace, _synthetic(i))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 256 * 1024
    assert builder.held_traces == worst_n
    summary = builder.close()
    assert summary.traces == rows and len(summary.groups) == 6 and summary.sampled == rows // 10
    expected = sorted((_score(i), f"t{i:06d}") for i in range(rows))
    md = summary.md_path.read_text(encoding="utf-8")
    ids = re.findall(r"^\| \d+ \| (t\d+) \|", section(md, "Worst traces"), flags=re.MULTILINE)
    assert ids == [tid for _, tid in expected[:worst_n]]
    with (tmp_path / "report.csv").open(newline="", encoding="utf-8") as fh:
        assert sum(1 for _ in csv.reader(fh)) == rows + 1


def test_later_results_join_the_metrics_and_the_sampled_scorers_table(tmp_path: Path) -> None:
    builder = ReportBuilder(tmp_path, score_names=NAMES)
    for i in range(3):
        builder.add(*make(f"a{i}", scores={"groundedness_lexical": 0.5}, sampled=i < 2))
    for i, (faith, cached) in enumerate(((1.0, False), (0.5, True))):
        _, base = make(f"a{i}")
        tokens = {"prompt": 400, "completion": 100 * (i + 1)}
        detail = {"judge_model": "qwen", "cached": cached, "downgraded": i}
        detail |= {"tokens": tokens, "cost_usd": 0.001}
        base.type, base.scores, base.detail = "judge", {"faithfulness": faith}, detail
        builder.add_later(base)
    summary = builder.close()
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert dict(summary.later) == {"judge": 2}
    assert "| judge results | 2 |" in section(md, "Totals")
    assert "| judge | qwen | 2 | 1 | 550.000 | 0.0020 | 1 |" in section(md, "Sampled scorers")
    assert "| faithfulness | 2 | 0.750 |" in md
    assert len(read_csv(tmp_path)) == 3  # one CSV row per trace, as before
    assert "2 judge results" in summary.text()
