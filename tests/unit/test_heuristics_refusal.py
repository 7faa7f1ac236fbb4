"""Refusal detection."""

from __future__ import annotations

import re

import pytest

from sidecar.scorers.base import Scores
from sidecar.scorers.heuristics.refusal import (
    REFUSAL_RULES,
    REFUSAL_WINDOW,
    RefusalScorer,
    is_refusal,
)
from sidecar.scorers.text import analyse
from sidecar.trace import Trace

REFUSALS = [
    "I don't know.",
    "I do not know the answer to that.",
    "Im sorry i dont know",
    "I’m sorry, but I can’t help with that.",
    "I'm sorry but I cannot answer based on the documents.",
    "I cannot find any information about refunds.",
    "I couldn't find this in the knowledge base.",
    "I was unable to determine the release date.",
    "I'm unable to answer that question.",
    "Unable to answer: the sources cover billing only.",
    "This is not mentioned in the provided documents.",
    "The answer is not in the context.",
    "That information is not available in the given sources.",
    "The provided context does not contain information about refunds.",
    "The documents don't mention the price.",
    "The text doesn't say who wrote it.",
    "There is no information about X in the context.",
    "There's no relevant information available.",
    "The passages contain no information on that topic.",
    "I do not have enough information to answer.",
    "I don't have the details needed.",
    "There is not enough information to say.",
    "Insufficient context to answer.",
    "This cannot be answered from the given text.",
    "The question can't be determined based on the passages.",
]

NOT_REFUSALS = [
    "You should know that the API is rate limited.",
    "As you know, the index is rebuilt nightly.",
    "Known issues: none.",
    "I know the answer: it is 42.",
    "Let me know if you need more help.",
    "The policy does not include weekends.",
    "Do not restart the pod while it syncs.",
    "The pretext doesn't say much.",
    "Note: information about refunds is in section 4.",
    "No. The cluster cannot scale below one node.",
    "",
]


@pytest.mark.parametrize("answer", REFUSALS)
def test_refusals(answer: str) -> None:
    assert is_refusal(answer)
    assert is_refusal(answer, analyse(answer).words)


@pytest.mark.parametrize("answer", NOT_REFUSALS)
def test_not_refusals(answer: str) -> None:
    assert not is_refusal(answer)


def _ungated(answer: str) -> bool:
    """The rules without their token gates (the reference the gates must not change)."""
    head = answer[:REFUSAL_WINDOW].lower().replace("\u2019", "'")
    for rule in REFUSAL_RULES:
        for match in rule.pattern.finditer(head):
            before = head[: match.start()].rsplit(None, 1)
            if rule.after is None or (before and before[-1] in rule.after):
                return True
    return False


def test_gates_never_hide_a_match() -> None:
    corpus = [*REFUSALS, *NOT_REFUSALS]
    corpus += [f"Well. {a}" for a in REFUSALS]
    corpus += [a.upper() for a in REFUSALS]
    corpus += [re.sub(r"[.,:]", "", a) for a in REFUSALS]
    for answer in corpus:
        assert is_refusal(answer) == _ungated(answer), answer


def test_only_the_opening_counts() -> None:
    padding = "The cluster has three nodes and scales automatically. " * 8
    assert len(padding) > REFUSAL_WINDOW
    assert not is_refusal(padding + "I don't know the exact limit.")
    assert is_refusal("I don't know the exact limit. " + padding)


def test_family_flags_refusals() -> None:
    out = Scores()
    RefusalScorer().score(Trace(trace_id="t", query="q", answer="I don't know."), out)
    assert out.flags == ["refusal"]
    out = Scores()
    RefusalScorer().score(Trace(trace_id="t", query="q", answer="It is 42."), out)
    assert out.flags == []


@pytest.mark.parametrize(
    "answer",
    [
        "I don't have access to that information.",
        "Unfortunately, I don't have that information.",
        "I do not have specific information about refunds.",
        "I am not able to answer that from the documents.",
        "I'm not able to find the release date.",
    ],
)
def test_common_refusals_that_were_missed(answer: str) -> None:
    assert is_refusal(answer)
    assert is_refusal(answer, analyse(answer).words)
    assert _ungated(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "I can't help but recommend the Pro plan: it includes SSO.",
        "I cannot help but notice the limit is 10 GB.",
        'If the bot replies "I don\'t know", escalate to a human agent.',
        "Answer with “I don’t know” when the context is empty.",
    ],
)
def test_idioms_and_quotations_are_not_refusals(answer: str) -> None:
    assert not is_refusal(answer)
    assert not _ungated(answer.replace("\u201c", '"'))
