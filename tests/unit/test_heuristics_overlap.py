"""Lexical groundedness and query overlap, answer length and conciseness."""

from __future__ import annotations

import pytest

from sidecar.scorers.base import Scores
from sidecar.scorers.heuristics import HeuristicsSettings
from sidecar.scorers.heuristics.length import LengthScorer
from sidecar.scorers.heuristics.overlap import OverlapScorer
from sidecar.trace import Chunk, Trace

CHUNKS = [
    "To reset your password, open Settings, choose Security and click Reset password. "
    "A confirmation email is sent within 5 minutes.",
    "Billing happens monthly on the first day of the month.",
]
QUERY = "How do I reset my password?"


def _trace(answer: str, chunks: list[str] = CHUNKS, query: str = QUERY) -> Trace:
    return Trace(trace_id="t", query=query, answer=answer, chunks=[Chunk(text=c) for c in chunks])


def _overlap(trace: Trace, **settings: object) -> Scores:
    out = Scores()
    OverlapScorer(HeuristicsSettings.model_validate(settings)).score(trace, out)
    return out


def test_grounded_and_hallucinated_answers_differ_clearly() -> None:
    grounded = _overlap(_trace("Open Settings, choose Security, then click Reset password."))
    invented = _overlap(
        _trace("Call our hotline on weekends; an agent verifies your passport and mails a PIN.")
    )
    assert grounded.values["groundedness_lexical"] == 1.0
    assert invented.values["groundedness_lexical"] < 0.2
    assert "low_groundedness" not in grounded.flags
    assert "low_groundedness" in invented.flags


def test_plural_and_case_match_the_context() -> None:
    out = _overlap(_trace("CONFIRMATION EMAILS are sent within 5 minutes.", chunks=CHUNKS))
    assert out.values["groundedness_lexical"] == 1.0


def test_invented_numbers_count_against_groundedness() -> None:
    out = _overlap(_trace("The email arrives within 50 minutes."))
    assert out.values["groundedness_lexical"] == pytest.approx(2 / 4)  # email, arrive, 50, minute


def test_query_overlaps() -> None:
    out = _overlap(_trace("Click Reset password in Settings."))
    # query content tokens: reset, password
    assert out.values["answer_query_overlap"] == 1.0
    assert out.values["context_query_overlap"] == 1.0
    off_topic = _overlap(_trace("Billing is monthly.", query="How do I reset my password?"))
    assert off_topic.values["answer_query_overlap"] == 0.0


def test_refusals_are_not_flagged_low_groundedness() -> None:
    out = _overlap(_trace("I'm sorry, but I cannot find that in the provided documents."))
    assert out.values["groundedness_lexical"] < 0.5
    assert "low_groundedness" not in out.flags


def test_threshold_is_configurable() -> None:
    answer = "Open Settings and call the hotline."  # open, setting, call, hotline -> 0.5
    assert _overlap(_trace(answer)).values["groundedness_lexical"] == 0.5
    assert "low_groundedness" not in _overlap(_trace(answer)).flags
    assert "low_groundedness" in _overlap(_trace(answer), low_groundedness=0.6).flags


def test_omitted_without_denominators() -> None:
    no_content = _overlap(_trace("So it is."))  # every token a stop-word
    assert "groundedness_lexical" not in no_content.values
    assert "low_groundedness" not in no_content.flags
    blank = _overlap(_trace("   "))
    assert "answer_query_overlap" not in blank.values
    assert "groundedness_lexical" not in blank.values
    no_chunks = _overlap(_trace("Open Settings.", chunks=[]))
    assert "groundedness_lexical" not in no_chunks.values
    assert "context_query_overlap" not in no_chunks.values
    assert no_chunks.values["answer_query_overlap"] == 0.0
    stop_query = _overlap(_trace("Open Settings.", query="What is it?"))
    assert "answer_query_overlap" not in stop_query.values


def _length(trace: Trace, **settings: object) -> Scores:
    out = Scores()
    LengthScorer(HeuristicsSettings.model_validate(settings)).score(trace, out)
    return out


def test_empty_answer() -> None:
    out = _length(_trace(" \n"))
    assert out.flags == ["empty_answer"]
    assert out.values == {"answer_length": 0.0}


def test_conciseness_budget() -> None:
    query = "one two three four five six seven eight nine ten"  # 10 tokens: budget 150
    assert _length(_trace("word " * 150, query=query)).values["conciseness"] == 1.0
    assert _length(_trace("word " * 300, query=query)).values["conciseness"] == 0.5
    out = _length(_trace("word " * 120, query="Why?"))  # 1 token: budget max(40, 20) = 40
    assert out.values["answer_length"] == 120
    assert out.values["conciseness"] == pytest.approx(40 / 120)
    assert _length(_trace("word " * 40, query="Why?")).values["conciseness"] == 1.0
    # 3-token query: budget 60
    assert _length(_trace("word " * 300, query="reset my password")).values[
        "conciseness"
    ] == pytest.approx(0.2)


def test_conciseness_decays_monotonically() -> None:
    values = [_length(_trace("w " * n)).values["conciseness"] for n in (50, 100, 200, 400, 800)]
    assert values == sorted(values, reverse=True)
    assert values[0] == 1.0 and values[-1] < 0.2


def test_contractions_do_not_lower_groundedness() -> None:
    chunks = ["The API does not support webhooks. You cannot export it; it is not supported."]
    for answer in ("The API doesn't support webhooks.", "You can't export it; it isn't supported."):
        out = _overlap(_trace(answer, chunks=chunks, query="Webhooks?"))
        assert out.values["groundedness_lexical"] == 1.0, answer
        assert "low_groundedness" not in out.flags


def test_chinese_paraphrase_is_grounded() -> None:
    chunks = ["巴黎是法国的首都，也是最大的城市。"]
    grounded = _overlap(_trace("法国的首都是巴黎。", chunks=chunks, query="法国的首都是哪里？"))
    assert grounded.values["groundedness_lexical"] == 1.0
    assert "low_groundedness" not in grounded.flags
    invented = _overlap(_trace("东京有一座塔。", chunks=chunks, query="法国的首都是哪里？"))
    assert invented.values["groundedness_lexical"] < 0.2
    assert "low_groundedness" in invented.flags


def test_pdf_ligatures_in_chunks_do_not_lower_groundedness() -> None:
    out = _overlap(
        _trace("The finance fee is five dollars.", chunks=["The ﬁnance fee is ﬁve dollars."])
    )
    assert out.values["groundedness_lexical"] == 1.0


def test_chinese_answer_length_counts_characters() -> None:
    out = _length(_trace("你好" * 300, query="怎么办？"))
    assert out.values["answer_length"] == 600
    assert out.values["conciseness"] == pytest.approx(60 / 600)  # 3 query tokens: budget 60


def test_citation_markers_are_not_ungrounded_claims() -> None:
    plain = _overlap(_trace("Open Settings, choose Security, then click Reset password."))
    cited = _overlap(
        _trace("Open Settings, choose Security [1], then click Reset password [1, 2].")
    )
    assert cited.values["groundedness_lexical"] == plain.values["groundedness_lexical"] == 1.0
    # a number the answer states (not a citation) still counts
    invented = _overlap(_trace("The email arrives within 50 minutes [1]."))
    assert invented.values["groundedness_lexical"] == pytest.approx(2 / 4)
