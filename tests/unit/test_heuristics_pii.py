"""Personal data detectors and redaction."""

from __future__ import annotations

import pytest

from sidecar.scorers.base import Scores
from sidecar.scorers.heuristics.pii import PiiScorer, find_pii, luhn_valid, redact_pii
from sidecar.trace import Trace


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize(
    "text",
    [
        "Card: 4111 1111 1111 1111.",
        "card 4111-1111-1111-1111 on file",
        "5500005555555559",
        "Amex 3782 822463 10005",
    ],
)
def test_luhn_valid_cards(text: str) -> None:
    assert "card" in find_pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "Card: 4111 1111 1111 1112.",  # Luhn fails
        "0000 0000 0000 0000",  # one digit repeated
        "Order 123456789012",  # 12 digits: too short
        "id 12345678901234567890",  # 20 digits: too long
        "Revenue grew from 2019 2020 2021 2022",
    ],
)
def test_not_cards(text: str) -> None:
    assert "card" not in find_pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "Call +1 202-555-0143 today.",
        "Ring +44 20 7946 0958.",
        "Berlin office: +49 (0)30 123456.",
        "Call (555) 123-4567.",
        "Call 555-123-4567 or 555.123.4567.",
        "Paris: +33 1 23 45 67 89",
    ],
)
def test_phones(text: str) -> None:
    assert "phone" in find_pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "Founded in 2019, it grew 1990-2000 and again 2010-2020.",
        "The population is 1234567890 people.",
        "Version 10.2.3 was released on 2024-05-01.",
        "Between 1999 and 2004 sales were 12,345,678.",
        "Port 8080 and 443 are open; PID 12345.",
        "Call 555-1234.",  # 7 digits
        "ISBN 978-3-16-148410-0",
    ],
)
def test_not_phones(text: str) -> None:
    assert "phone" not in find_pii(text)


def test_emails() -> None:
    assert find_pii("Write to jane.doe+rag@example.co.uk please") == {"email"}
    assert find_pii("user@localhost or @handle") == set()


def test_redaction() -> None:
    text = "Mail a.b@example.com, call +1 202-555-0143, card 4111 1111 1111 1111. In 2024."
    assert redact_pii(text) == "Mail [EMAIL], call [PHONE], card [CARD]. In 2024."
    assert find_pii(redact_pii(text)) == set()
    assert redact_pii("Card 4111 1111 1111 1112") == "Card 4111 1111 1111 1112"


def test_family_flags() -> None:
    out = Scores()
    answer = "Contact jane@example.com or +1 202 555 0143; card 5500 0055 5555 5559."
    PiiScorer().score(Trace(trace_id="t", query="q", answer=answer), out)
    assert out.flags == ["pii_card", "pii_email", "pii_phone"]
    out = Scores()
    PiiScorer().score(Trace(trace_id="t", query="q", answer="Released in 2024."), out)
    assert out.flags == []


@pytest.mark.parametrize(
    "text", ["Call 1-800-555-0199 for help.", "Call 1.800.555.0199", "Call 1 800-555-0199"]
)
def test_us_numbers_with_a_leading_one(text: str) -> None:
    # "1 800 555 0199" was caught, "1-800-555-0199" (the usual toll-free form) was not
    assert "phone" in find_pii(text)
    assert "[PHONE]" in redact_pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "Order 7834 5612 9023 4457 shipped",  # Luhn-valid, but no card starts with 7
        "Tracking 9400100000000000002",
        "Ref 8800 0000 0000 0005",
        "Invoice 0012 3456 7890 1237",
    ],
)
def test_luhn_valid_ids_outside_card_prefixes_are_not_cards(text: str) -> None:
    digits = "".join(c for c in text if c.isdigit())
    assert luhn_valid(digits), digits  # the test's own premise
    assert "card" not in find_pii(text)


@pytest.mark.parametrize(
    "text", ["Discover 6011 1111 1111 1117", "MC 2221 0000 0000 0009", "Diners 3056 9309 0259 04"]
)
def test_cards_of_every_prefix_are_found(text: str) -> None:
    assert "card" in find_pii(text)
