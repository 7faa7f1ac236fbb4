"""The example traces and the benchmark data: valid, reproducible, and mixed as documented."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from sidecar.trace import Trace, decode_trace, detect_format

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DAY_START = 1_795_132_800.0  # 2026-11-20T00:00:00Z


def _load(name: str, path: Path) -> ModuleType:
    """Import a script by path (examples/ and bench/ are not packages)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


gen = _load("examples_generate", EXAMPLES / "generate.py")
bench_data = _load("bench_data", ROOT / "bench" / "_data.py")


def _lines(name: str) -> list[bytes]:
    return (EXAMPLES / name).read_bytes().splitlines()


@pytest.fixture(scope="module")
def examples() -> list[Any]:
    """The native traces with their ground truth, regenerated in memory."""
    return list(gen.build_traces())


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    """The committed native traces, decoded."""
    return [decode_trace(line) for line in _lines("traces.jsonl")]


# --------------------------------------------------------------------------- #
# Validity and reproducibility
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("name", "fmt", "count"),
    [("traces.jsonl", "native", 300), ("nemo.jsonl", "nemo", 20), ("ragas.jsonl", "ragas", 20)],
)
def test_every_example_line_decodes(name: str, fmt: str, count: int) -> None:
    lines = _lines(name)
    assert len(lines) == count
    ids = set()
    for line in lines:
        row = orjson.loads(line)
        assert detect_format(row) == fmt
        trace = decode_trace(line)
        ids.add(trace.trace_id)
        if fmt == "native":
            assert re.fullmatch(r"tr-\d{6}", trace.trace_id)
        else:
            assert not {"id", "trace_id"} & row.keys()
            assert trace.query and trace.chunks and trace.reference
    assert len(ids) == count


def test_ragas_rows_use_old_and_new_column_names() -> None:
    rows = [orjson.loads(line) for line in _lines("ragas.jsonl")]
    assert sum("user_input" in r and "retrieved_contexts" in r for r in rows) >= 5
    assert sum("question" in r and "contexts" in r and "ground_truth" in r for r in rows) >= 5
    assert any("ground_truths" in r for r in rows)


def test_committed_files_are_up_to_date() -> None:
    rendered = gen.render()
    assert set(rendered) == set(gen.FILES)
    for name, data in rendered.items():
        assert (EXAMPLES / name).read_bytes() == data, f"{name} is stale: run examples/generate.py"
    assert gen.render() == rendered


def test_generator_check_and_out(tmp_path: Path) -> None:
    check = [sys.executable, str(EXAMPLES / "generate.py"), "--check"]
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0
    out = [sys.executable, str(EXAMPLES / "generate.py"), "--out", str(tmp_path)]
    subprocess.run(out, capture_output=True, check=True)
    for name in gen.FILES:
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes()
    (tmp_path / "nemo.jsonl").write_bytes(b"{}\n")
    stale = subprocess.run([*check, "--out", str(tmp_path)], capture_output=True, check=False)
    assert stale.returncode == 1
    assert b"nemo.jsonl" in stale.stderr


def test_examples_are_small() -> None:
    assert sum((EXAMPLES / name).stat().st_size for name in gen.FILES) < 1_500_000


# --------------------------------------------------------------------------- #
# The mix
# --------------------------------------------------------------------------- #


def test_ground_truth_matches_files(examples: list[Any], traces: list[Trace]) -> None:
    assert [e.row["trace_id"] for e in examples] == [t.trace_id for t in traces]


def test_kind_mix(examples: list[Any]) -> None:
    kinds = Counter(e.kind for e in examples)
    n = len(examples)
    assert n == 300
    assert 0.55 <= kinds["faithful"] / n <= 0.65
    assert 0.12 <= kinds["hallucinated"] / n <= 0.18
    assert 0.06 <= kinds["refusal"] / n <= 0.10
    assert 0.04 <= kinds["bad_citation"] / n <= 0.06
    assert 0.02 <= kinds["pii"] / n <= 0.04
    assert 2 <= kinds["empty"] <= 6
    assert kinds["partial"] >= 5
    tags = Counter(t for e in examples for t in e.tags)
    assert tags["lang_de"] >= 3 and tags["lang_es"] >= 3 and tags["lang_mismatch"] == 1
    assert tags["off_topic"] >= 10 and tags["wrong_topic"] >= 3
    assert tags["duplicate_chunks"] >= 3 and tags["null_scores"] >= 3
    assert 15 <= tags["epoch_timestamp"] <= 60


def test_labels(traces: list[Trace]) -> None:
    versions: dict[str, set[str]] = {}
    for t in traces:
        assert t.app and t.model and t.prompt_version and t.retriever
        versions.setdefault(t.app, set()).add(t.prompt_version)
    assert len(versions) >= 3
    assert all(len(v) >= 2 for v in versions.values())
    assert len({t.model for t in traces}) >= 3


def test_newer_prompt_version_is_worse(examples: list[Any], traces: list[Trace]) -> None:
    def rate(version: str) -> float:
        rows = [e for e in examples if e.row["app"] == "support-bot"]
        rows = [e for e in rows if e.row["prompt_version"] == version]
        return sum(1 for e in rows if e.kind == "hallucinated") / len(rows)

    assert rate("v3") >= 2 * rate("v2")
    v3 = [t.timestamp for t in traces if t.app == "support-bot" and t.prompt_version == "v3"]
    assert min(v3) >= DAY_START + 12 * 3600  # rolled out at noon: a drift to find


def test_answers_match_their_kind(examples: list[Any]) -> None:
    for e in examples:
        answer = e.row["answer"]
        n = len(e.row["chunks"])
        cites = [int(c) for c in re.findall(r"\[(\d+)\]", answer)]
        if e.kind == "refusal":
            assert answer in gen.REFUSALS
        elif e.kind == "empty":
            assert answer == ""
        else:
            assert answer.strip()
        if e.kind == "bad_citation":
            assert any(c > n for c in cites)
        else:
            assert all(1 <= c <= n for c in cites)
    refusals = sum(
        e.row["answer"] == "I don't know based on the provided documents." for e in examples
    )
    assert refusals >= 10


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+?\(?\d{1,3}\)?[ -]?\(?\d{2,3}\)?[ -]\d{3,4}[ -]\d{4}\b")
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def test_pii_only_where_planted(examples: list[Any]) -> None:
    found: Counter[str] = Counter()
    for e in examples:
        answer = e.row["answer"]
        hits = {
            "email": bool(EMAIL.search(answer)),
            "phone": bool(PHONE.search(answer)),
            "card": any(_luhn(re.sub(r"\D", "", m)) for m in CARD.findall(answer)),
        }
        if e.kind == "pii":
            assert any(hits.values()), answer
            found.update(k for k, v in hits.items() if v)
        else:
            assert not any(hits.values()), answer
    assert found["email"] >= 2 and found["phone"] >= 2 and found["card"] >= 2


def test_chunks_and_scores(examples: list[Any], traces: list[Trace]) -> None:
    for e, t in zip(examples, traces, strict=True):
        assert 3 <= len(t.chunks) <= 6
        assert all(
            c.text and c.source and re.fullmatch(r"[a-z-]+/[a-z]+-\d{3}(-v2)?#\d", c.id)
            for c in t.chunks
        )
        scores = [c.score for c in t.chunks]
        if "null_scores" in e.tags:
            assert scores == [None] * len(scores)
            continue
        assert all(s is not None and 0.2 <= s <= 0.95 for s in scores)
        assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
        texts = [c.text for c in t.chunks]
        assert (len(set(texts)) < len(texts)) == ("duplicate_chunks" in e.tags)


def test_timestamps_and_metadata(examples: list[Any], traces: list[Trace]) -> None:
    stamps = [t.timestamp for t in traces]
    assert all(DAY_START <= s < DAY_START + 86_400 for s in stamps)
    assert stamps == sorted(stamps)
    assert any(isinstance(e.row["timestamp"], (int, float)) for e in examples)
    assert any(isinstance(e.row["timestamp"], str) for e in examples)
    for t in traces:
        assert t.metadata["session_id"].startswith("sess-")
        assert t.metadata["latency_ms"] > 0
    assert 0.15 <= sum(t.reference is not None for t in traces) / len(traces) <= 0.4


def test_feedback(examples: list[Any]) -> None:
    with_fb = [e for e in examples if "feedback" in e.row]
    assert len(with_fb) == sum(n for n, _ in gen.FEEDBACK.values())
    assert 0.2 <= len(with_fb) / len(examples) <= 0.3
    down = [e for e in with_fb if e.row["feedback"]["thumbs"] == "down"]
    assert len(down) == sum(d for _, d in gen.FEEDBACK.values()) >= 25
    bad = sum(e.kind in ("hallucinated", "refusal", "empty") for e in down)
    assert bad / len(down) >= 0.6
    assert any(e.kind == "faithful" for e in down)  # concentrated, not exclusive
    assert any("rating" in e.row["feedback"] for e in with_fb)
    assert any("comment" in e.row["feedback"] for e in with_fb)
    ratings = [e.row["feedback"]["rating"] for e in with_fb if "rating" in e.row["feedback"]]
    assert all(1 <= r <= 5 for r in ratings)


def test_languages(traces: list[Trace]) -> None:
    german = [t for t in traces if re.search(r"[äöüß]|\b(ich|Sie|kann)\b", t.query)]
    spanish = [t for t in traces if t.query.startswith("¿")]
    assert len(german) >= 3 and len(spanish) >= 3
    assert any(t.answer.startswith(("Only", "To", "The")) for t in spanish)  # the mismatch


# --------------------------------------------------------------------------- #
# Benchmark data
# --------------------------------------------------------------------------- #


def test_bench_lines_are_about_4kb_and_decode() -> None:
    lines = bench_data.make_lines(500)
    assert len(lines) == 500
    assert all(3482 <= len(line) <= 4710 for line in lines)  # 4 KiB +- 15%
    assert 3482 <= bench_data.mean_size(lines) <= 4710
    traces = [decode_trace(line) for line in lines]
    assert len({t.trace_id for t in traces}) == 500
    for t in traces:
        assert len(t.chunks) == 5
        assert 8 <= len(t.query.split()) <= 25
        assert 55 <= len(t.answer.split()) <= 130
        scores = [c.score for c in t.chunks]
        assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert 0.05 <= sum(t.feedback is not None for t in traces) / 500 <= 0.15
    assert len({t.app for t in traces}) >= 3
    assert bench_data.mean_size([]) == 0.0


def test_bench_answers_come_from_chunks() -> None:
    for line in bench_data.make_lines(50):
        t = decode_trace(line)
        chunk_words = {w for c in t.chunks for w in c.text.split()}
        words = t.answer.split()
        assert sum(w in chunk_words for w in words) / len(words) >= 0.8


def test_bench_is_deterministic_and_chunks_recur() -> None:
    a = bench_data.make_lines(200, distinct_chunks=60)
    assert a == bench_data.make_lines(200, distinct_chunks=60)
    assert a != bench_data.make_lines(200, distinct_chunks=60, seed=8)
    texts = [c.text for line in a for c in decode_trace(line).chunks]
    assert len(set(texts)) <= 60 < len(texts)


def test_bench_parameters_scale_size() -> None:
    small = bench_data.mean_size(bench_data.make_lines(50, chunk_bytes=300, n_chunks=3))
    big = bench_data.mean_size(bench_data.make_lines(50, chunk_bytes=1500, n_chunks=8))
    assert small < 2000 < 9000 < big
