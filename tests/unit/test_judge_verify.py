"""Verification downgrades what the judge asserted but the texts do not show."""

from __future__ import annotations

from sidecar.scorers.judge.parse import ClaimOut, FactOut
from sidecar.scorers.judge.prompts import JudgeInput
from sidecar.scorers.judge.verify import names, numbers, quote_in, verify
from sidecar.scorers.text import tokenize

CHUNKS = (
    "Owners can export all tickets, contacts and attachments as JSON from Settings > Data > "
    "Export. The link expires after 7 days.",
    "Annual plans can be refunded in full within 30 days of purchase. Refunds take 5 to 10 "
    "business days.",
)
INP = JudgeInput(
    query="How long does a Brightdesk refund take?",
    answer="Refunds take 5 to 10 business days; the export link expires after seven days.",
    chunks=CHUNKS,
    reference=None,
)


def check(**kw: object) -> tuple[str, bool, str | None, int | None]:
    claims, _ = verify(INP, [ClaimOut.model_validate(kw)], None)
    c = claims[0]
    return c.verdict, c.verified, c.reason, c.chunk_index


def test_exact_quote_is_verified() -> None:
    got = check(
        claim="Refunds take 5 to 10 days.",
        verdict="supported",
        chunk=2,
        quote="Refunds take 5 to 10 business days.",
    )
    assert got == ("supported", True, None, 1)


def test_quote_matching_ignores_case_whitespace_punctuation_and_ellipses() -> None:
    got = check(
        claim="Owners export JSON.",
        verdict="supported",
        chunk=1,
        quote="owners CAN export all tickets ...   attachments as JSON",
    )
    assert got[:2] == ("supported", True)


def test_small_fuzz_allowed_for_long_quotes() -> None:
    # one word in six differs ("the" for "all")
    got = check(
        claim="Owners can export tickets.",
        verdict="supported",
        chunk=1,
        quote="Owners can export the tickets, contacts",
    )
    assert got[:2] == ("supported", True)
    # two words of five differ: rejected
    got = check(
        claim="Owners can export tickets.",
        verdict="supported",
        chunk=1,
        quote="Admins may export all tickets",
    )
    assert got == ("not_in_context", False, "quote_not_found", 0)


def test_fabricated_quote_is_downgraded() -> None:
    got = check(
        claim="Refunds are instant.",
        verdict="supported",
        chunk=2,
        quote="Refunds are processed instantly",
    )
    assert got == ("not_in_context", False, "quote_not_found", 1)


def test_missing_quote_is_downgraded() -> None:
    assert check(claim="X.", verdict="contradicted", chunk=1, quote="")[2] == "no_quote"


def test_quote_in_another_chunk_corrects_the_index() -> None:
    got = check(
        claim="Refunds take 5 to 10 days.",
        verdict="supported",
        chunk=1,
        quote="Refunds take 5 to 10 business days",
    )
    assert got == ("supported", True, "chunk_corrected", 1)
    got = check(
        claim="Refunds take 5 to 10 days.",
        verdict="supported",
        chunk=9,
        quote="Refunds take 5 to 10 business days",
    )
    assert got[:2] == ("supported", True) and got[3] == 1


def test_numbers_and_names_of_supported_claims_must_be_in_context() -> None:
    got = check(
        claim="Refunds take 5 to 14 business days.",
        verdict="supported",
        chunk=2,
        quote="Refunds take 5 to 10 business days",
    )
    assert got == ("not_in_context", False, "number_not_in_context:14", 1)
    got = check(
        claim="Refunds go through Stripe within 30 days.",
        verdict="supported",
        chunk=2,
        quote="refunded in full within 30 days",
    )
    assert got[:3] == ("not_in_context", False, "name_not_in_context:stripe")
    # a name from the question is fine; so is a number word in the chunk
    got = check(
        claim="Brightdesk refunds annual plans within 30 days.",
        verdict="supported",
        chunk=2,
        quote="refunded in full within 30 days",
    )
    assert got[:2] == ("supported", True)


def test_contradicted_claims_need_a_real_quote_but_not_matching_numbers() -> None:
    got = check(
        claim="Refunds take 2 days.",
        verdict="contradicted",
        chunk=2,
        quote="Refunds take 5 to 10 business days.",
    )
    assert got == ("contradicted", True, None, 1)


def test_not_in_context_is_taken_as_is() -> None:
    assert check(claim="Y.", verdict="not_in_context", chunk=1, quote="")[:3] == (
        "not_in_context",
        True,
        None,
    )


def test_reference_facts_checked_against_chunk_and_answer() -> None:
    facts = [
        FactOut(fact="Refunds take 5 to 10 business days.", answer="stated", chunk=2),
        FactOut(fact="Refunds take 5 to 10 business days.", answer="stated", chunk=1),
        FactOut(fact="Refunds within 60 days.", answer="stated", chunk=2),
        FactOut(fact="Anything.", answer="missing", chunk=7),
        FactOut(fact="The link expires after 7 days.", answer="stated", chunk=1),
    ]
    _, checked = verify(INP, [], facts)
    assert checked is not None
    ok, wrong_chunk, made_up, bad_chunk, word_number = checked
    assert (ok.answer, ok.chunk_index, ok.verified) == ("stated", 1, True)
    assert wrong_chunk.chunk_index is None and not wrong_chunk.verified
    assert made_up.answer == "missing" and made_up.chunk_index is None
    assert made_up.reason == "number_not_in_context:60,number_not_in_answer:60"
    assert bad_chunk.reason == "bad_chunk"
    assert word_number.verified  # "seven" in the answer counts as 7


def test_helpers() -> None:
    assert numbers("costs 1,000 or 2.5 at 10:30") == {"1000", "2.5", "10:30"}
    assert names("Brightdesk keeps data in Frankfurt. Deletion is final") == {"frankfurt"}
    tokens = tokenize(CHUNKS[0])
    assert quote_in("data > export", tokens, f" {' '.join(tokens)} ")
    assert not quote_in("...", tokens, f" {' '.join(tokens)} ")
