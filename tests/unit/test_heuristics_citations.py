"""Bracketed citations."""

from __future__ import annotations

import pytest

from sidecar.scorers.base import Scores
from sidecar.scorers.heuristics.citations import CitationScorer, cited_indices
from sidecar.trace import Chunk, Trace


def _cite(answer: str, n_chunks: int = 3) -> Scores:
    trace = Trace(
        trace_id="t",
        query="q",
        answer=answer,
        chunks=[Chunk(text=f"chunk {i}") for i in range(n_chunks)],
    )
    out = Scores()
    CitationScorer().score(trace, out)
    return out


@pytest.mark.parametrize(
    ("text", "indices"),
    [
        ("See [1].", {1}),
        ("See [1, 3] and [2].", {1, 2, 3}),
        ("See [1;2].", {1, 2}),
        ("See [1-3].", {1, 2, 3}),
        ("See [2–4].", {2, 3, 4}),
        ("See [1][2].", {1, 2}),
        ("See [1, 3-4].", {1, 3, 4}),
        ("See [1-500].", {1, 500}),  # too wide: the two ends only
        ("arr[1] is code", set()),
        ("[1](https://example.com) is a link", set()),
        ("In [2023] it changed.", set()),
        ("No citations here.", set()),
        ("[a] [ ] [1.5]", set()),
    ],
)
def test_cited_indices(text: str, indices: set[int]) -> None:
    assert cited_indices(text) == indices


def test_valid_one_based_citations() -> None:
    out = _cite("Reset it in Settings [1], billing is monthly [2, 3].")
    assert out.values["citation_validity"] == 1.0
    assert out.flags == []


def test_out_of_range_citation() -> None:
    out = _cite("As stated [1] and [4].")
    assert out.values["citation_validity"] == 0.5
    assert out.flags == ["invalid_citation"]


def test_zero_means_zero_based() -> None:
    assert _cite("See [0] and [2].").values["citation_validity"] == 1.0
    out = _cite("See [0] and [3].")
    assert out.values["citation_validity"] == 0.5
    assert out.flags == ["invalid_citation"]


def test_no_citations_no_value() -> None:
    out = _cite("Plain answer.")
    assert out.values == {} and out.flags == []


def test_citations_without_chunks_are_invalid() -> None:
    out = _cite("See [1].", n_chunks=0)
    assert out.values["citation_validity"] == 0.0
    assert out.flags == ["invalid_citation"]


@pytest.mark.parametrize(
    ("text", "indices"),
    [
        ("Use:\n```python\nx = [0]\nm = [[1, 2], [3, 4]]\n```\nas documented [3].", {3}),
        ("Set `retries = [0, 5]` as in [2].", {2}),
        ("```\n[7]\n```", set()),
        ("Unclosed ``` fence [1]", {1}),
    ],
)
def test_brackets_in_code_are_not_citations(text: str, indices: set[int]) -> None:
    assert cited_indices(text) == indices


def test_a_zero_in_code_does_not_make_the_answer_zero_based() -> None:
    out = _cite("Use:\n```python\nx = [0]\n```\nas documented [3].")
    assert out.values["citation_validity"] == 1.0
    assert out.flags == []


def test_footnotes_and_azure_doc_citations() -> None:
    """Markdown footnote references follow their word; Azure OpenAI on your data writes
    [docN]. Neither was read, and "doc1" counted as an unsupported word."""
    assert cited_indices("Reset it in Settings[^1], then log in again [^2].") == {1, 2}
    assert cited_indices("Reset it in Settings [doc1][doc3].") == {1, 3}
    assert cited_indices("arr[1] and a [doc] note") == set()
