#!/usr/bin/env python3
"""Generate the example traces in this folder, deterministically.

Three small hand-written knowledge bases (a SaaS help center, a developer API's
docs and an employee handbook) are turned into ~300 native traces with a known
mix of faithful, partial, hallucinated, refused, mis-cited, PII-leaking, empty
and foreign-language answers, plus ~20 NeMo Evaluator and ~20 RAGAS rows.

Only the standard library is used, with a fixed seed and a random source built
on ``random.Random.random`` alone (whose sequence Python guarantees), so the
output is byte-identical on every run::

    python examples/generate.py            # rewrite the .jsonl files here
    python examples/generate.py --check    # exit 1 if they are out of date
    python examples/generate.py --out DIR  # write somewhere else

:func:`build_traces` also returns each trace's ground-truth kind and tags, for
tests that measure how well scorers find what was planted.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

T = TypeVar("T")

SEED: Final = 20261120
HERE: Final = Path(__file__).resolve().parent
FILES: Final = ("traces.jsonl", "nemo.jsonl", "ragas.jsonl")
DAY_START_MS: Final = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp()) * 1000
DAY_MS: Final = 86_400_000

#: How many native traces of each kind (``foreign`` ones are placed separately).
QUOTAS: Final[dict[str, int]] = {
    "faithful": 183,
    "partial": 12,
    "hallucinated": 45,
    "refusal": 24,
    "bad_citation": 15,
    "pii": 9,
    "empty": 4,
}
#: Per kind: how many traces carry feedback, and how many of those are thumbs-down.
FEEDBACK: Final[dict[str, tuple[int, int]]] = {
    "faithful": (22, 2),
    "partial": (4, 2),
    "hallucinated": (25, 20),
    "refusal": (12, 9),
    "bad_citation": (3, 1),
    "pii": (3, 1),
    "empty": (3, 3),
    "foreign": (3, 1),
}
N_DUPLICATE: Final = 5
N_NULL_SCORES: Final = 5

#: The first is the app's instructed refusal; the others are the model going off-script.
REFUSALS: Final = (
    "I don't know based on the provided documents.",
    "I'm sorry, but I couldn't find information about that in the documentation.",
    "The provided context does not contain enough information to answer this question.",
)


# --------------------------------------------------------------------------- #
# Knowledge bases
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrievable passage with the questions it answers."""

    text: str
    questions: tuple[str, ...]
    answer: str
    wrong: str = ""
    lang: str = "en"


@dataclass(frozen=True, slots=True)
class Doc:
    """A source document split into passages (one chunk each)."""

    num: int
    source: str
    title: str
    passages: tuple[Passage, ...]


@dataclass(frozen=True, slots=True)
class App:
    """An application: its knowledge base and the ways its answers go wrong."""

    name: str
    prefix: str
    docs: tuple[Doc, ...]
    off_topic: tuple[tuple[str, str], ...]
    extras: tuple[str, ...]
    pii: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Item:
    """A passage as the retriever sees it: a chunk with an id and a source."""

    app: str
    id: str
    source: str
    title: str
    doc: int
    passage: Passage


def _p(text: str, questions: str | tuple[str, ...], answer: str, wrong: str = "") -> Passage:
    qs = (questions,) if isinstance(questions, str) else questions
    return Passage(text=text, questions=qs, answer=answer, wrong=wrong)


def _doc(num: int, source: str, title: str) -> Doc:
    return Doc(num=num, source=source, title=title, passages=())


def _kb(*entries: Doc | Passage) -> tuple[Doc, ...]:
    """Group a flat list of documents, each followed by its passages."""
    docs: list[Doc] = []
    for entry in entries:
        if isinstance(entry, Doc):
            docs.append(entry)
        else:
            last = docs[-1]
            docs[-1] = Doc(last.num, last.source, last.title, (*last.passages, entry))
    return tuple(docs)


def _foreign(lang: str, text: str, questions: str | tuple[str, ...], answer: str) -> Passage:
    qs = (questions,) if isinstance(questions, str) else questions
    return Passage(text=text, questions=qs, answer=answer, lang=lang)


HELP: Final = "https://help.brightdesk.example"
SUPPORT_KB: Final = _kb(
    _doc(3, f"{HELP}/billing/plans", "Plans and pricing"),
    _p(
        "Brightdesk offers three plans: Starter, Growth and Enterprise. Starter costs $15 per "
        "agent per month, Growth costs $49 per agent per month, and Enterprise is priced by "
        "quote. All prices are in US dollars and exclude sales tax or VAT.",
        (
            "How much does the Growth plan cost?",
            "what's the price per agent on growth",
        ),
        "The Growth plan costs $49 per agent per month, excluding sales tax or VAT.",
        "The Growth plan costs $39 per agent per month, and sales tax is included.",
    ),
    _p(
        "Annual billing gives a 20% discount compared with paying monthly. The discount applies "
        "to Starter and Growth; Enterprise contracts are negotiated separately. You can switch "
        "from monthly to annual billing at any time from Settings > Billing.",
        (
            "Is there a discount for paying yearly?",
            "how do I switch to annual billing",
        ),
        "Yes. Annual billing is 20% cheaper than monthly on the Starter and Growth plans, and you "
        "can switch at any time under Settings > Billing.",
        "Annual billing gives a 35% discount on every plan, including Enterprise, but you have to "
        "contact sales to switch.",
    ),
    _p(
        "Every new workspace starts with a 14-day free trial of the Growth plan. No credit card "
        "is required to start the trial. When the trial ends without a payment method, the "
        "workspace becomes read-only until you choose a plan.",
        (
            "How long is the free trial?",
            "do I need a credit card for the trial",
        ),
        "The free trial lasts 14 days on the Growth plan and doesn't need a credit card. Without "
        "a payment method, the workspace turns read-only when the trial ends.",
        "The free trial lasts 30 days and requires a credit card, which is charged automatically "
        "when the trial ends.",
    ),
    _doc(7, f"{HELP}/billing/invoices", "Invoices and payment methods"),
    _p(
        "Invoices are issued on the first day of each billing period and emailed to the billing "
        "contact. You can download past invoices as PDF from Settings > Billing > Invoice "
        "history. Invoices are kept for seven years.",
        (
            "Where can I download my invoices?",
            "how do i get a pdf of last month's invoice",
        ),
        "Go to Settings > Billing > Invoice history to download past invoices as PDFs. They are "
        "also emailed to the billing contact on the first day of each period.",
        "Invoices are only kept for 12 months and have to be requested from the support team; "
        "they can't be downloaded in the app.",
    ),
    _p(
        "Brightdesk accepts Visa, Mastercard and American Express. Enterprise customers on annual "
        "contracts can also pay by bank transfer (ACH or SEPA) with net-30 terms. PayPal and "
        "cryptocurrency are not supported.",
        (
            "Can I pay with PayPal?",
            "what payment methods do you accept",
        ),
        "PayPal isn't supported. Brightdesk accepts Visa, Mastercard and American Express, and "
        "Enterprise annual contracts can also pay by ACH or SEPA transfer.",
        "Yes, you can pay with PayPal as well as Visa and Mastercard, and bank transfer is "
        "available on every plan.",
    ),
    _p(
        "To change the billing contact, an account owner opens Settings > Billing and edits the "
        "Billing email field. Only users with the Owner role can change payment details. Admins "
        "can view invoices but cannot edit the payment method.",
        (
            "Who can change the payment method?",
            "how do I change the billing email",
        ),
        "Only users with the Owner role can change payment details, including the billing email "
        "under Settings > Billing. Admins can view invoices but can't edit the payment method.",
        "Any Admin can change the payment method and the billing email from the Team page.",
    ),
    _p(
        "If a payment fails, Brightdesk retries the card after 3, 5 and 7 days and emails the "
        "billing contact each time. If all retries fail, the workspace is suspended on day 14. "
        "Suspended workspaces keep their data for 90 days.",
        (
            "What happens if my card payment fails?",
            "my payment failed, will my account be suspended",
        ),
        "Brightdesk retries a failed payment after 3, 5 and 7 days and emails the billing contact "
        "each time. If every retry fails, the workspace is suspended on day 14 and its data is "
        "kept for 90 days.",
        "A failed payment suspends the workspace immediately, and all of its data is deleted "
        "after 30 days.",
    ),
    _doc(11, f"{HELP}/billing/refunds", "Refunds and cancellations"),
    _p(
        "Monthly subscriptions can be cancelled at any time and stay active until the end of the "
        "paid period. Brightdesk does not give prorated refunds for unused days on monthly plans. "
        "Cancel from Settings > Billing > Cancel subscription.",
        (
            "Do I get a refund if I cancel mid-month?",
            "how do I cancel my subscription",
        ),
        "Monthly plans get no prorated refund. You can cancel at any time from Settings > Billing "
        "> Cancel subscription, and the plan stays active until the end of the paid period.",
        "Yes, cancelling mid-month gives you a prorated refund for the unused days within 5 "
        "business days.",
    ),
    _p(
        "Annual plans can be refunded in full within 30 days of purchase. After 30 days, annual "
        "plans are non-refundable, but you can turn off auto-renewal. Refunds go back to the "
        "original payment method within 5 to 10 business days.",
        (
            "Can I get a refund on an annual plan?",
            "what's the refund window for yearly plans",
        ),
        "Annual plans are fully refundable within 30 days of purchase; after that they are "
        "non-refundable, though you can turn off auto-renewal. Refunds reach the original payment "
        "method in 5 to 10 business days.",
        "Annual plans can be refunded within 60 days of purchase, and the refund is issued as "
        "account credit rather than to your card.",
    ),
    _p(
        "Downgrading takes effect at the start of the next billing period. Features that are not "
        "in the lower plan, such as SLA policies and custom roles, are disabled at that point. "
        "Data created with those features is kept but becomes read-only.",
        "What happens when I downgrade from Growth to Starter?",
        "The downgrade takes effect at the next billing period. Growth-only features such as SLA "
        "policies and custom roles are then disabled, and data created with them becomes "
        "read-only.",
        "Downgrading takes effect immediately and permanently deletes all SLA policies and custom "
        "roles.",
    ),
    _doc(14, f"{HELP}/account/seats", "Seats and agents"),
    _p(
        "You pay for each agent seat, whether or not the agent logs in. Light agents, who can "
        "only add internal notes, are free and unlimited on Growth and Enterprise. Adding a seat "
        "mid-cycle is charged pro rata for the remaining days.",
        (
            "Are light agents free?",
            "do I pay for agents who never log in",
        ),
        "Yes, light agents (internal notes only) are free and unlimited on Growth and Enterprise. "
        "Full agent seats are billed whether or not the agent logs in.",
        "Light agents cost $5 per month each, and you are only billed for agents who logged in "
        "during the month.",
    ),
    _p(
        "To remove a seat, deactivate the agent under Settings > Team and then lower the seat "
        "count on the Billing page. Deactivating an agent alone does not reduce the bill. The "
        "credit for removed seats is applied to the next invoice.",
        (
            "I deactivated an agent but I'm still being charged, why?",
            "how do I remove a seat",
        ),
        "Deactivating an agent doesn't reduce the bill by itself; you also need to lower the seat "
        "count on the Billing page. The credit then appears on the next invoice.",
        "Deactivating an agent removes the seat automatically and refunds the remaining days to "
        "your card straight away.",
    ),
    _doc(17, f"{HELP}/account/security", "Account security"),
    _p(
        "Owners can require two-factor authentication for everyone in the workspace under "
        "Settings > Security. Brightdesk supports authenticator apps and hardware security keys "
        "(WebAuthn). SMS codes are not offered.",
        (
            "Does Brightdesk support 2FA by SMS?",
            "how do I enforce two-factor authentication",
        ),
        "SMS codes aren't offered. Owners can require two-factor authentication for the whole "
        "workspace under Settings > Security, using authenticator apps or WebAuthn security keys.",
        "Yes, Brightdesk supports 2FA through SMS codes, and any agent can turn on enforcement "
        "for the workspace.",
    ),
    _p(
        "Single sign-on with SAML 2.0 is available on the Enterprise plan only. Supported "
        "identity providers include Okta, Microsoft Entra ID and Google Workspace. SCIM "
        "provisioning is included with SSO.",
        (
            "Which plan do I need for SAML SSO?",
            "can I use Okta SSO on Growth",
        ),
        "SAML single sign-on is Enterprise-only, so it isn't available on Growth. It supports "
        "Okta, Microsoft Entra ID and Google Workspace, and SCIM provisioning is included.",
        "SAML SSO is included in the Growth plan and supports Okta and OneLogin; SCIM "
        "provisioning costs extra.",
    ),
    _p(
        "If you lose access to your two-factor device, another Owner can reset your 2FA from "
        "Settings > Team. If you are the only Owner, contact support from the email address on "
        "the account; identity verification takes up to 2 business days.",
        "I lost my phone with my authenticator app, how do I get back in?",
        "Another Owner can reset your 2FA from Settings > Team. If you are the only Owner, "
        "contact support from the account's email address; verification takes up to 2 business "
        "days.",
        "Use one of your SMS backup codes to log in, or wait 24 hours and 2FA is disabled "
        "automatically.",
    ),
    _doc(21, f"{HELP}/account/data", "Data export and deletion"),
    _p(
        "Owners can export all tickets, contacts and attachments as JSON from Settings > Data > "
        "Export. Exports run in the background and a download link is emailed when ready. The "
        "link expires after 7 days.",
        (
            "How do I export all my tickets?",
            "how long is the export download link valid",
        ),
        "An Owner can export tickets, contacts and attachments as JSON from Settings > Data > "
        "Export. A download link is emailed when it's ready and expires after 7 days.",
        "Exports are CSV only and must be requested from support; the download link is valid for "
        "24 hours.",
    ),
    _p(
        "When a workspace is deleted, its data is removed from production systems within 30 days "
        "and from backups within 90 days. Deletion cannot be undone. Brightdesk keeps invoices "
        "after deletion because tax law requires it.",
        "How long until my data is deleted after I close my account?",
        "Data is removed from production within 30 days of deleting the workspace and from "
        "backups within 90 days. Invoices are kept because tax law requires it.",
        "All data, including invoices and backups, is permanently erased within 24 hours.",
    ),
    _p(
        "Brightdesk stores EU customers' data in Frankfurt (AWS eu-central-1) when the workspace "
        "is created in the EU region. The region cannot be changed after creation. A Data "
        "Processing Agreement is available on all plans from Settings > Legal.",
        (
            "Can I move my workspace to the EU data center?",
            "where is EU data stored",
        ),
        "EU-region workspaces are stored in Frankfurt (AWS eu-central-1), but the region is "
        "chosen when the workspace is created and can't be changed later.",
        "EU data is stored in Dublin, and support can migrate an existing workspace to the EU "
        "region on request.",
    ),
    _doc(31, f"{HELP}/de/abrechnung/rechnungen", "Rechnungen und Zahlung"),
    _foreign(
        "de",
        "Rechnungen werden am ersten Tag jedes Abrechnungszeitraums erstellt und an die "
        "Rechnungsadresse gesendet. Unter Einstellungen > Abrechnung > Rechnungsverlauf können "
        "Sie alle bisherigen Rechnungen als PDF herunterladen. Rechnungen werden sieben Jahre "
        "lang aufbewahrt.",
        "Wo kann ich meine Rechnungen herunterladen?",
        "Alle bisherigen Rechnungen finden Sie als PDF unter Einstellungen > Abrechnung > "
        "Rechnungsverlauf. Neue Rechnungen werden am ersten Tag des Abrechnungszeitraums "
        "erstellt.",
    ),
    _foreign(
        "de",
        "Monatliche Abonnements können jederzeit gekündigt werden und bleiben bis zum Ende des "
        "bezahlten Zeitraums aktiv. Für nicht genutzte Tage gibt es keine anteilige Erstattung. "
        "Die Kündigung erfolgt unter Einstellungen > Abrechnung > Abonnement kündigen.",
        "Bekomme ich Geld zurück, wenn ich mitten im Monat kündige?",
        "Nein, bei monatlichen Abonnements gibt es keine anteilige Erstattung. Das Abo bleibt "
        "aber bis zum Ende des bezahlten Zeitraums aktiv.",
    ),
    _doc(41, f"{HELP}/es/facturacion/reembolsos", "Reembolsos y prueba gratuita"),
    _foreign(
        "es",
        "Los planes anuales se pueden reembolsar por completo dentro de los 30 días posteriores a "
        "la compra. Pasados 30 días no son reembolsables, pero puede desactivar la renovación "
        "automática. El reembolso se devuelve al método de pago original en un plazo de 5 a 10 "
        "días hábiles.",
        "¿Puedo pedir un reembolso del plan anual?",
        "Sí, dentro de los 30 días posteriores a la compra el reembolso es completo. Después ya "
        "no es reembolsable, aunque puede desactivar la renovación automática.",
    ),
    _foreign(
        "es",
        "La prueba gratuita dura 14 días en el plan Growth y no requiere tarjeta de crédito. Si "
        "no añade un método de pago, el espacio de trabajo pasa a modo de solo lectura al "
        "terminar la prueba.",
        "¿Cuánto dura la prueba gratuita?",
        "La prueba gratuita dura 14 días en el plan Growth y no necesita tarjeta de crédito.",
    ),
)
SUPPORT_BOT: Final = App(
    name="support-bot",
    prefix="kb",
    docs=SUPPORT_KB,
    off_topic=(
        (
            "Do you offer a discount for nonprofits?",
            "Yes, registered nonprofits get 50% off every plan; just send your registration "
            "certificate to the sales team.",
        ),
        (
            "Can I use a custom domain for the help center?",
            "Yes, custom domains are included on all plans and are set up automatically with a "
            "free SSL certificate.",
        ),
        (
            "Is there a Brightdesk mobile app for Android?",
            "Yes, the Brightdesk Android app supports offline replies and is free for Growth "
            "customers.",
        ),
        (
            "What's your uptime SLA?",
            "Brightdesk guarantees 99.99% uptime on every plan and refunds a full month if it is "
            "missed.",
        ),
        (
            "Can I be billed in euros?",
            "Yes, you can pick EUR, GBP or USD as the billing currency under Settings > Billing.",
        ),
    ),
    extras=(
        "You'll also get one free month if you refer another team.",
        "Enterprise customers additionally get a dedicated phone line for billing questions.",
        "This change is also reflected in the mobile app within a few minutes.",
        "Owners receive a confirmation SMS once the change is saved.",
        "Support can make a one-time exception if you ask within 48 hours.",
    ),
    pii=(
        "I can see the card on file is 4111 1111 1111 1111, expiring 08/28; you can update it "
        "under Settings > Billing.",
        "If you need more help, email our billing lead at marta.keller@brightdesk.example.",
        "You can also call billing support at +1 (415) 555-0132.",
    ),
)

DOCS: Final = "https://docs.parcelhop.example/api"
DOCS_KB: Final = _kb(
    _doc(4, f"{DOCS}/authentication", "Authentication"),
    _p(
        "All API requests are authenticated with a bearer token in the Authorization header. Keys "
        "starting with ph_live_ work against production and keys starting with ph_test_ work "
        "against the sandbox. Requests without a valid key return 401 Unauthorized.",
        (
            "How do I authenticate API requests?",
            "difference between ph_live and ph_test keys",
        ),
        "Send your API key as a bearer token in the Authorization header. ph_live_ keys work "
        "against production and ph_test_ keys against the sandbox; a missing or invalid key "
        "returns 401.",
        "Pass your API key in the api_key query parameter; ph_test_ keys also work in production "
        "with a lower rate limit.",
    ),
    _p(
        "API keys are created and revoked in the dashboard under Developers > API keys. A revoked "
        "key stops working within 60 seconds. Each account can have up to 20 active keys.",
        (
            "How quickly does a revoked API key stop working?",
            "how many API keys can I have",
        ),
        "A revoked key stops working within 60 seconds. Keys are managed under Developers > API "
        "keys, and each account can have up to 20 active keys.",
        "Revoked keys keep working for 24 hours, and each account is limited to 5 active keys.",
    ),
    _doc(9, f"{DOCS}/rate-limits", "Rate limits"),
    _p(
        "The API allows 100 requests per second per key in production and 10 requests per second "
        "in the sandbox. Requests over the limit receive HTTP 429 with a Retry-After header "
        "giving the wait in seconds. Limits are applied per key, not per account.",
        (
            "What is the API rate limit?",
            "what happens when I exceed the rate limit",
        ),
        "Production keys can make 100 requests per second and sandbox keys 10. Over the limit you "
        "get HTTP 429 with a Retry-After header saying how many seconds to wait.",
        "The limit is 1,000 requests per minute per account, and requests over the limit are "
        "queued instead of rejected.",
    ),
    _p(
        "Batch endpoints such as POST /v2/labels/batch accept up to 500 items per request and "
        "count as a single request against the rate limit. Batch jobs run asynchronously and "
        "return a job id that you can poll at GET /v2/jobs/{id}.",
        "How many labels can I create in one batch request?",
        "POST /v2/labels/batch accepts up to 500 items and counts as one request for rate "
        "limiting. It runs asynchronously and returns a job id that you poll at GET "
        "/v2/jobs/{id}.",
        "Batch requests accept up to 5,000 labels and return the finished labels synchronously in "
        "the response.",
    ),
    _doc(12, f"{DOCS}/shipments", "Shipments and labels"),
    _p(
        "Create a shipment with POST /v2/shipments, passing the from and to addresses and at "
        "least one parcel with weight and dimensions. Weights are in grams and dimensions in "
        "centimeters. The response includes a shipment id and a list of available rates.",
        (
            "What units does the API use for parcel weight?",
            "how do I create a shipment",
        ),
        "Weights are in grams and dimensions in centimeters. Create a shipment with POST "
        "/v2/shipments, passing the from and to addresses and at least one parcel; the response "
        "has the shipment id and the available rates.",
        "Weights are in pounds and dimensions in inches, as in the carriers' own APIs.",
    ),
    _p(
        "Rates returned with a shipment are valid for 24 hours. To buy a label, call POST "
        "/v2/shipments/{id}/buy with the chosen rate_id. Buying with an expired rate returns 409 "
        "rate_expired, and you must re-quote the shipment.",
        (
            "How long are shipping rates valid?",
            "why am I getting rate_expired",
        ),
        "Rates are valid for 24 hours. Buying with an older rate_id returns 409 rate_expired, so "
        "re-quote the shipment and buy with a fresh rate.",
        "Rates never expire once quoted; rate_expired means your account balance has run out.",
    ),
    _p(
        "Labels can be voided with POST /v2/labels/{id}/void within 30 days if the carrier has "
        "not scanned them. Refunds for voided labels are credited to your balance within 14 days. "
        "USPS labels are voided automatically if unused after 28 days.",
        (
            "Can I cancel a label I already bought?",
            "how do I void a label",
        ),
        "Yes, void it with POST /v2/labels/{id}/void within 30 days, as long as the carrier "
        "hasn't scanned it. The refund is credited to your balance within 14 days.",
        "Labels can't be voided once purchased; you have to ask the carrier for a refund.",
    ),
    _p(
        "Customs information is required for international shipments and for shipments to US "
        "territories. Attach a customs_info object with the contents type, a signer name and one "
        "customs item per product, including its HS tariff number and value in USD.",
        "What do I need for an international shipment?",
        "You need a customs_info object with the contents type, a signer name and one customs "
        "item per product, including its HS tariff number and USD value. It's also required for "
        "shipments to US territories.",
        "International shipments only need the destination country code; customs data is filled "
        "in automatically.",
    ),
    _doc(15, f"{DOCS}/webhooks", "Webhooks"),
    _p(
        "Webhooks are sent as POST requests with a JSON body and an X-Parcelhop-Signature header. "
        "The signature is an HMAC-SHA256 of the raw request body using your endpoint's signing "
        "secret. Always verify the signature before trusting the payload.",
        "How do I verify webhook signatures?",
        "Compute an HMAC-SHA256 of the raw request body with your endpoint's signing secret and "
        "compare it with the X-Parcelhop-Signature header before trusting the payload.",
        "Webhooks are signed with RSA; verify them with the public key from GET "
        "/v2/webhooks/public-key.",
    ),
    _p(
        "If your endpoint does not answer with a 2xx status within 10 seconds, the delivery is "
        "retried with exponential backoff for up to 3 days. After 3 days of failures the endpoint "
        "is disabled and the account owner is notified by email.",
        (
            "How long do webhook retries continue?",
            "my webhook endpoint got disabled, why",
        ),
        "Deliveries without a 2xx answer within 10 seconds are retried with exponential backoff "
        "for up to 3 days. After 3 days of failures the endpoint is disabled and the account "
        "owner gets an email.",
        "Webhooks are retried 3 times, one minute apart, and then dropped without notice.",
    ),
    _p(
        "Tracking updates are delivered with the event type tracker.updated. Each event includes "
        "the carrier status, a normalized status such as in_transit or delivered, and the "
        "estimated delivery date when the carrier provides one.",
        "Which webhook event tells me a package status changed?",
        "The tracker.updated event. It carries the carrier status, a normalized status such as "
        "in_transit or delivered, and the estimated delivery date when available.",
        "Listen for shipment.status_changed, which is sent once a day with the latest status.",
    ),
    _doc(18, f"{DOCS}/pagination", "Pagination"),
    _p(
        "List endpoints use cursor pagination. Pass limit (1 to 100, default 20) and the "
        "next_cursor value from the previous response as cursor. When has_more is false you have "
        "reached the last page.",
        (
            "How does pagination work?",
            "what is the max page size for list endpoints",
        ),
        "List endpoints are cursor-paginated: pass limit (1 to 100, default 20) and the previous "
        "response's next_cursor as cursor until has_more is false.",
        "Use the page and per_page parameters; per_page can be up to 1,000.",
    ),
    _doc(21, f"{DOCS}/errors", "Errors and retries"),
    _p(
        "Errors return a JSON body with type, code and message fields and a request_id. Include "
        "the request_id when contacting support. The SDKs do not retry 4xx errors automatically, "
        "while 5xx and 429 responses are retried up to 3 times.",
        (
            "Do the SDKs retry failed requests?",
            "what should I send support about an error",
        ),
        "The SDKs retry 5xx and 429 responses up to 3 times but don't retry other 4xx errors. "
        "Every error body includes a request_id to give to support.",
        "The SDKs retry every failed request, including 400 errors, up to 10 times.",
    ),
    _p(
        "Idempotency keys make POST requests safe to retry. Send a unique Idempotency-Key header; "
        "repeating the request with the same key within 24 hours returns the original response "
        "instead of creating a duplicate.",
        "How do I avoid creating duplicate shipments when retrying?",
        "Send a unique Idempotency-Key header with the POST. Retrying with the same key within 24 "
        "hours returns the original response instead of creating a duplicate.",
        "Retries are deduplicated automatically by request body for 7 days, so no header is "
        "needed.",
    ),
    _doc(24, f"{DOCS}/sdks", "SDKs"),
    _p(
        "Official SDKs are available for Python, Node.js, Go and Ruby. The Python SDK requires "
        "Python 3.9 or later and is installed with pip install parcelhop. All SDKs read the API "
        "key from the PARCELHOP_API_KEY environment variable if none is passed.",
        (
            "Is there a Python SDK?",
            "which languages have official SDKs",
        ),
        "Yes. Official SDKs exist for Python, Node.js, Go and Ruby; install the Python one with "
        "pip install parcelhop (Python 3.9 or later). The SDKs read PARCELHOP_API_KEY if no key "
        "is passed.",
        "Official SDKs exist for Python, Java and PHP; the Python SDK is installed with pip "
        "install parcelhop-sdk and needs Python 3.6.",
    ),
    _doc(27, f"{DOCS}/sandbox", "Sandbox and testing"),
    _p(
        "The sandbox mirrors production but never contacts carriers. Labels bought in the sandbox "
        "are watermarked SAMPLE and are not charged. Tracking numbers EZ1000000001 through "
        "EZ7000000007 simulate each tracking status.",
        (
            "Are sandbox labels charged?",
            "how do I test tracking statuses",
        ),
        "No, sandbox labels aren't charged and are watermarked SAMPLE. Use the test tracking "
        "numbers EZ1000000001 through EZ7000000007 to simulate each status.",
        "Sandbox labels are charged at 10% of the production rate and refunded monthly.",
    ),
    _doc(30, f"{DOCS}/versioning", "Versioning and addresses"),
    _p(
        "The API is versioned in the URL path, and the current version is v2. Version v1 was "
        "deprecated on 2026-03-01 and will stop working on 2027-03-01. Breaking changes are only "
        "introduced in a new major version.",
        (
            "When will API v1 stop working?",
            "what is the current API version",
        ),
        "v1 was deprecated on 2026-03-01 and stops working on 2027-03-01. The current version is "
        "v2.",
        "v1 stops working on 2026-12-31, and v3 is already the current version.",
    ),
    _p(
        "Addresses can be checked with POST /v2/addresses/verify before creating a shipment. "
        "Verification corrects formatting and returns a deliverable flag. It is free for US "
        "addresses and costs $0.01 per request for international addresses.",
        "Does address verification cost anything?",
        "It's free for US addresses and costs $0.01 per request for international ones. Use POST "
        "/v2/addresses/verify; it corrects formatting and returns a deliverable flag.",
        "Address verification costs $0.05 per request for all addresses.",
    ),
    _doc(44, f"{DOCS}/es/limites", "Límites de uso"),
    _foreign(
        "es",
        "Los límites de uso de la API son de 100 solicitudes por segundo por clave en producción "
        "y de 10 en el entorno de pruebas. Al superarlos, la API responde con el código 429 y la "
        "cabecera Retry-After indica cuántos segundos esperar.",
        "¿Cuál es el límite de solicitudes por segundo de la API?",
        "En producción el límite es de 100 solicitudes por segundo por clave, y de 10 en el "
        "entorno de pruebas. Si se supera, la API devuelve 429 con la cabecera Retry-After.",
    ),
)
DOCS_SEARCH: Final = App(
    name="docs-search",
    prefix="doc",
    docs=DOCS_KB,
    off_topic=(
        (
            "Can I schedule a carrier pickup through the API?",
            "Yes, call POST /v2/pickups with the shipment id and a time window; pickups are free "
            "for all carriers.",
        ),
        (
            "Does Parcelhop support LTL freight shipments?",
            "Yes, LTL freight is supported through POST /v2/freight with the same rate objects.",
        ),
        (
            "Is there a GraphQL endpoint?",
            "Yes, the GraphQL endpoint is at /v2/graphql and supports the same scopes as REST.",
        ),
        (
            "How do I rotate the webhook signing secret?",
            "Call POST /v2/webhooks/{id}/rotate; the old secret keeps working for 7 days.",
        ),
        (
            "What is the uptime SLA for the API?",
            "The API has a 99.995% uptime SLA with service credits paid automatically.",
        ),
    ),
    extras=(
        "The SDKs handle this automatically, so no extra code is needed.",
        "This behaves the same way in API v1.",
        "The limit can be raised to 1,000 per second from the dashboard.",
        "You can also do this with a GraphQL mutation.",
        "Sandbox keys are exempt from this rule.",
    ),
    pii=(
        "For key issues you can contact the integrations engineer directly at "
        "j.okafor@parcelhop.example or +1 646-555-0178.",
        "Your last sandbox purchase was charged to card 5555 5555 5555 4444.",
        "The account owner on file is reachable at ops-team@shipfast-store.example.",
    ),
)

HANDBOOK: Final = "handbook"
HR_KB: Final = _kb(
    _doc(2, f"{HANDBOOK}/time-off/pto.md", "Paid time off"),
    _p(
        "Full-time employees in the US accrue 20 days of paid time off per year, credited each "
        "pay period. Up to 5 unused days can be carried over into the next calendar year. Submit "
        "PTO requests in Workday at least two weeks in advance for absences longer than three "
        "days.",
        (
            "How many PTO days do I get?",
            "can I carry over unused vacation",
        ),
        "US full-time employees accrue 20 PTO days per year, and up to 5 unused days can be "
        "carried over into the next calendar year.",
        "You get 25 PTO days per year, and all unused days carry over indefinitely.",
    ),
    _p(
        "Northwind observes 11 company holidays per year, and the list is published on the "
        "intranet each December. If a holiday falls on a weekend, it is observed on the nearest "
        "weekday. Employees outside the US follow their local holiday calendar.",
        (
            "How many paid holidays are there?",
            "what if a holiday falls on a Saturday",
        ),
        "There are 11 company holidays a year, published on the intranet each December. A holiday "
        "that falls on a weekend is observed on the nearest weekday.",
        "There are 14 company holidays, and holidays that fall on a weekend are not replaced.",
    ),
    _p(
        "Employees receive up to 10 paid sick days per year, separate from PTO. A doctor's note "
        "is only required for absences longer than three consecutive working days. Sick days do "
        "not carry over.",
        (
            "Do I need a doctor's note for a sick day?",
            "how many sick days do I have",
        ),
        "Only for absences longer than three consecutive working days. You have up to 10 paid "
        "sick days a year, separate from PTO, and they don't carry over.",
        "A doctor's note is required for every sick day, and sick days are taken from your PTO "
        "balance.",
    ),
    _doc(5, f"{HANDBOOK}/leave/parental.md", "Parental leave"),
    _p(
        "Birthing parents receive 20 weeks of fully paid parental leave and non-birthing parents "
        "receive 12 weeks. Leave can be taken any time within the first 12 months after birth or "
        "adoption. Employees become eligible after 90 days of employment.",
        (
            "How much parental leave do I get?",
            "am I eligible for parental leave after two months",
        ),
        "Birthing parents get 20 weeks and non-birthing parents 12 weeks of fully paid leave, "
        "usable within 12 months of the birth or adoption. You become eligible after 90 days of "
        "employment.",
        "All parents get 16 weeks of leave at 60% pay, available from the first day of employment.",
    ),
    _p(
        "Employees returning from parental leave can work a reduced 60% schedule at full pay for "
        "their first four weeks back. Notify your manager and HR at least 30 days before your "
        "return date to arrange the phased return.",
        "Is there a phased return after parental leave?",
        "Yes, you can work a 60% schedule at full pay for your first four weeks back. Tell your "
        "manager and HR at least 30 days before you return.",
        "There is no phased return, but you can request unpaid part-time work for up to a year.",
    ),
    _doc(8, f"{HANDBOOK}/remote-work.md", "Remote work"),
    _p(
        "Northwind is remote-friendly: employees may work from home up to three days a week, and "
        "teams agree on shared office days. Fully remote arrangements need approval from a VP and "
        "HR.",
        (
            "How many days can I work from home?",
            "can I go fully remote",
        ),
        "Up to three days a week, with teams agreeing on shared office days. Fully remote "
        "arrangements need approval from a VP and HR.",
        "You can work from home any day you like, and going fully remote needs no approval.",
    ),
    _p(
        "Working from another country is allowed for up to 30 days per calendar year, with "
        "manager approval and a check by the Global Mobility team for tax and immigration issues. "
        "Submit the request in Workday at least three weeks before travel.",
        "Can I work from abroad for a month?",
        "Yes, for up to 30 days per calendar year, with manager approval and a Global Mobility "
        "check. Submit the request in Workday at least three weeks before you travel.",
        "You can work from any country for up to 90 days a year without approval.",
    ),
    _p(
        "New employees receive a one-time $500 home office stipend, reimbursed through Expensify "
        "within their first 90 days. A laptop, monitor and headset are shipped by IT before the "
        "first day.",
        (
            "Is there a home office stipend?",
            "what equipment do new hires get",
        ),
        "Yes, a one-time $500 home office stipend, claimed through Expensify within your first 90 "
        "days. IT ships a laptop, monitor and headset before your first day.",
        "Employees get a $1,500 home office stipend every year.",
    ),
    _doc(11, f"{HANDBOOK}/expenses.md", "Expenses and travel"),
    _p(
        "Business expenses must be submitted in Expensify within 30 days, with an itemized "
        "receipt for anything over $25. Expenses above $1,000 need pre-approval from your manager "
        "and from finance.",
        (
            "Do I need a receipt for small expenses?",
            "what's the deadline for submitting expenses",
        ),
        "Receipts are required for anything over $25, and expenses must be submitted in Expensify "
        "within 30 days. Anything above $1,000 needs pre-approval from your manager and finance.",
        "Receipts are required for every expense, and you have 90 days to submit them.",
    ),
    _p(
        "Economy class is the standard for flights under six hours, and premium economy is "
        "allowed for longer flights. Book travel through Navan so it is covered by the company's "
        "travel insurance. Hotel rates should stay under $250 per night in most cities.",
        (
            "Can I fly business class?",
            "what's the hotel budget per night",
        ),
        "Flights under six hours are economy and premium economy is allowed for longer ones, so "
        "business class isn't covered. Hotels should stay under $250 per night in most cities, "
        "booked through Navan.",
        "Business class is allowed on any flight over three hours, and the hotel limit is $400 "
        "per night.",
    ),
    _p(
        "The meal allowance while traveling is $75 per day in the US. Alcohol is not reimbursable "
        "except at approved client events. Team meals need a director's approval when the total "
        "exceeds $500.",
        (
            "What's the daily meal allowance when traveling?",
            "can I expense drinks",
        ),
        "$75 per day in the US. Alcohol isn't reimbursable except at approved client events.",
        "The meal allowance is $120 per day, and alcohol is reimbursable up to $30.",
    ),
    _doc(14, f"{HANDBOOK}/benefits.md", "Benefits"),
    _p(
        "Northwind matches 401(k) contributions dollar for dollar up to 4% of base salary. The "
        "match vests immediately. Employees can enroll or change their contribution at any time "
        "through Fidelity NetBenefits.",
        (
            "What is the 401k match?",
            "does the 401k match vest immediately",
        ),
        "Northwind matches 401(k) contributions dollar for dollar up to 4% of base salary, and "
        "the match vests immediately. You can enroll or change contributions at any time in "
        "Fidelity NetBenefits.",
        "Northwind matches 50% of contributions up to 6% of salary, vesting over four years.",
    ),
    _p(
        "Health, dental and vision coverage start on the first day of employment. Northwind pays "
        "90% of premiums for employees and 75% for dependents. Open enrollment runs every "
        "November.",
        (
            "When does health insurance start?",
            "how much of the premium does the company pay",
        ),
        "Coverage starts on your first day. Northwind pays 90% of premiums for employees and 75% "
        "for dependents, and open enrollment is every November.",
        "Health coverage starts after 60 days, and the company pays 50% of premiums.",
    ),
    _p(
        "Each employee has a $1,000 annual learning budget for courses, books and conferences. "
        "Unused budget does not roll over. Requests above $300 need manager approval in Workday.",
        (
            "Is there a training budget?",
            "does the learning budget roll over",
        ),
        "Yes, $1,000 per year for courses, books and conferences. It doesn't roll over, and "
        "requests above $300 need manager approval.",
        "The learning budget is $2,500 per year and unused funds roll over.",
    ),
    _doc(17, f"{HANDBOOK}/performance.md", "Performance and referrals"),
    _p(
        "Performance reviews happen twice a year, in April and October. Reviews combine a "
        "self-assessment, peer feedback from two to four colleagues and a manager assessment. "
        "Salary adjustments are decided in the April cycle only.",
        (
            "When are performance reviews?",
            "when do raises happen",
        ),
        "Reviews are held in April and October and combine a self-assessment, peer feedback and a "
        "manager assessment. Salary adjustments are decided only in the April cycle.",
        "Reviews happen once a year in January, and raises are decided every quarter.",
    ),
    _p(
        "Employees can refer candidates through the Greenhouse referral form. A successful "
        "referral earns a $3,000 bonus, paid after the new hire completes 90 days. Referrals for "
        "director-level roles and above earn $5,000.",
        "How much is the referral bonus?",
        "$3,000 for a successful referral, paid after the new hire completes 90 days, or $5,000 "
        "for director-level roles and above.",
        "The referral bonus is $1,000, paid on the new hire's first day.",
    ),
    _doc(20, f"{HANDBOOK}/security.md", "Security and data"),
    _p(
        "All employees must complete security awareness training within their first 14 days and "
        "then annually. Laptops must use full-disk encryption and lock after 5 minutes of "
        "inactivity. Report a lost or stolen device to IT within one hour in the #it-help Slack "
        "channel.",
        (
            "What do I do if I lose my laptop?",
            "how often is security training",
        ),
        "Report it to IT within one hour in the #it-help Slack channel. Security training is due "
        "within your first 14 days and then every year.",
        "Report a lost laptop within a week using the form in Workday; security training is only "
        "required once.",
    ),
    _p(
        "Company data may only be stored in approved tools: Google Drive, Confluence and Slack. "
        "Customer data must never be pasted into external AI tools that are not on the approved "
        "list published by the security team.",
        (
            "Can I paste customer data into ChatGPT?",
            "where can I store company files",
        ),
        "No. Customer data must never be pasted into external AI tools that aren't on the "
        "security team's approved list, and company data belongs in Google Drive, Confluence or "
        "Slack.",
        "Yes, as long as you delete the conversation afterwards.",
    ),
    _doc(90, f"{HANDBOOK}/de/berlin-urlaub.md", "Urlaub (Standort Berlin)"),
    _foreign(
        "de",
        "Mitarbeitende im Berliner Büro haben 28 Urlaubstage pro Kalenderjahr. Nicht genommener "
        "Urlaub kann bis zum 31. März des Folgejahres übertragen werden. Danach verfällt er, "
        "sofern keine schriftliche Ausnahme vorliegt.",
        (
            "Wie viele Urlaubstage habe ich in Berlin?",
            "Kann ich Resturlaub ins nächste Jahr mitnehmen?",
        ),
        "Im Berliner Büro stehen Ihnen 28 Urlaubstage pro Jahr zu. Resturlaub kann bis zum 31. "
        "März des Folgejahres übertragen werden.",
    ),
)
HR_ASSISTANT: Final = App(
    name="hr-assistant",
    prefix="hb",
    docs=HR_KB,
    off_topic=(
        (
            "What is the dress code?",
            "The dress code is business casual, with jeans allowed on Fridays.",
        ),
        (
            "Can I bring my dog to the office?",
            "Yes, dogs are welcome in all offices on Tuesdays and Thursdays.",
        ),
        (
            "Is there a gym membership reimbursement?",
            "Yes, Northwind reimburses up to $75 a month for gym memberships.",
        ),
        (
            "How do I change my tax withholding?",
            "Email payroll with a new W-4 and it takes effect on the next paycheck.",
        ),
        (
            "Do we get a year-end bonus?",
            "Everyone receives a year-end bonus of 10% of base salary in December.",
        ),
    ),
    extras=(
        "Your manager can also approve exceptions on the spot.",
        "Contractors are covered by the same policy.",
        "This also applies to interns from their first day.",
        "Unused amounts are paid out in cash at the end of the year.",
        "HR will confirm by text message within 24 hours.",
    ),
    pii=(
        "For anything else, reach your HR partner Priya Natarajan at "
        "priya.natarajan@northwind.example or +44 20 7946 0958.",
        "You can put it on your corporate card 4242 4242 4242 4242 and attach the receipt.",
        "Questions go to the benefits desk at (312) 555-0199.",
    ),
)

APPS: Final = (SUPPORT_BOT, DOCS_SEARCH, HR_ASSISTANT)
APP_BY_NAME: Final = {a.name: a for a in APPS}

#: Spanish question about an English passage, answered in English.
MISMATCH: Final = (
    "support-bot",
    "To change the billing contact",
    "¿Cómo cambio el correo electrónico de facturación?",
)

#: (app, passage language, index among that app's passages in it, question index).
FOREIGN_PLAN: Final = (
    ("support-bot", "de", 0, 0),
    ("support-bot", "de", 1, 0),
    ("hr-assistant", "de", 0, 0),
    ("hr-assistant", "de", 0, 1),
    ("support-bot", "es", 0, 0),
    ("support-bot", "es", 1, 0),
    ("docs-search", "es", 0, 0),
)

#: How much more (or less) likely a kind is under a given app and prompt version.
KIND_BIAS: Final[dict[tuple[str, str], dict[str, float]]] = {
    ("support-bot", "v3"): {
        "hallucinated": 6.0,
        "partial": 2.5,
        "bad_citation": 2.0,
        "refusal": 0.6,
    },
    ("docs-search", "v2"): {"refusal": 0.5, "bad_citation": 0.5},
    ("hr-assistant", "v2"): {"hallucinated": 0.8},
}

#: Probability that a prompt version cites its sources with ``[n]``.
CITE_RATE: Final[dict[str, float]] = {"v1": 0.15, "v2": 0.6, "v3": 0.5}

COMMENTS_UP: Final = (
    "Thanks, that's exactly what I needed.",
    "Quick and clear.",
    "perfect",
    "Helpful, thank you!",
    "Got it working, thanks.",
)
COMMENTS_DOWN: Final[dict[str, tuple[str, ...]]] = {
    "hallucinated": (
        "This is wrong, the docs say something different.",
        "That number is not what the docs say.",
        "Made-up answer.",
        "The thing it mentions doesn't exist.",
        "Incorrect, I checked the docs.",
    ),
    "refusal": (
        "It's literally in the docs...",
        "Not helpful, it just says it doesn't know.",
        "No answer.",
    ),
    "empty": ("Got a blank response.", "Nothing came back."),
    "other": ("Not what I asked.", "Too vague.", "Partly right but missing details."),
}


# --------------------------------------------------------------------------- #
# Randomness that does not depend on the Python version
# --------------------------------------------------------------------------- #


class Rng:
    """A seeded source built only on ``random.Random.random`` (stable across Pythons)."""

    def __init__(self, seed: int) -> None:
        self._r = random.Random(seed)

    def random(self) -> float:
        """A float in [0, 1)."""
        return self._r.random()

    def below(self, n: int) -> int:
        """An int in [0, n)."""
        return min(int(self._r.random() * n), n - 1)

    def between(self, lo: int, hi: int) -> int:
        """An int in [lo, hi]."""
        return lo + self.below(hi - lo + 1)

    def uniform(self, lo: float, hi: float) -> float:
        """A float in [lo, hi)."""
        return lo + (hi - lo) * self._r.random()

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self._r.random() < p

    def choice(self, seq: Sequence[T]) -> T:
        """One element of ``seq``."""
        return seq[self.below(len(seq))]

    def shuffle(self, items: list[T]) -> None:
        """Shuffle ``items`` in place (Fisher-Yates)."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def sample(self, seq: Sequence[T], k: int) -> list[T]:
        """``k`` distinct elements of ``seq`` in random order."""
        pool = list(seq)
        for i in range(min(k, len(pool))):
            j = i + self.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]

    def weighted(self, weights: Sequence[float]) -> int:
        """An index drawn with the given (non-negative, not all zero) weights."""
        x = self._r.random() * sum(weights)
        for i, w in enumerate(weights):
            x -= w
            if x < 0 and w > 0:
                return i
        return max(i for i, w in enumerate(weights) if w > 0)


# --------------------------------------------------------------------------- #
# Trace construction
# --------------------------------------------------------------------------- #


@dataclass(slots=True)
class Example:
    """A generated native trace with its ground truth.

    ``kind`` is one of ``faithful``, ``partial``, ``hallucinated``, ``refusal``,
    ``bad_citation``, ``pii``, ``empty``, ``foreign``. ``tags`` add detail:
    ``off_topic`` (question not in the knowledge base), ``wrong_topic`` (the right
    passage was not retrieved), ``unneeded`` (a refusal though the answer was
    retrieved), ``cited``, ``duplicate_chunks``, ``null_scores``, ``lang_de``,
    ``lang_es``, ``lang_mismatch``, ``epoch_timestamp``.
    """

    row: dict[str, Any]
    kind: str
    tags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Slot:
    t_ms: int
    app: str
    model: str
    version: str
    retriever: str
    kind: str = ""
    tags: list[str] = field(default_factory=list)
    foreign: tuple[str, str, int, int] | None = None
    thumbs: str | None = None


def items_of(app: App) -> list[Item]:
    """Every passage of ``app`` as a chunk, in document order."""
    out = []
    for doc in app.docs:
        for i, passage in enumerate(doc.passages):
            out.append(
                Item(
                    app=app.name,
                    id=f"{app.name}/{app.prefix}-{doc.num:03d}#{i}",
                    source=doc.source,
                    title=doc.title,
                    doc=doc.num,
                    passage=passage,
                )
            )
    return out


ITEMS: Final = {a.name: items_of(a) for a in APPS}

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$¿¡\"(])")


def sentences(text: str) -> list[str]:
    """Split prose into sentences."""
    return [s for s in _SENTENCE.split(text.strip()) if s]


def _cite(text: str, n: int) -> str:
    """Put ``[n]`` before the final punctuation of ``text``."""
    if text and text[-1] in ".!?":
        return f"{text[:-1]} [{n}]{text[-1]}"
    return f"{text} [{n}]"


def _scores(rng: Rng, related: Sequence[bool], lo: float, hi: float) -> list[float]:
    """Descending similarity scores starting in [lo, hi), floored at 0.2.

    Related chunks (the answer's passage and its document) sit close together; the
    first unrelated chunk after them drops further.
    """
    top = rng.uniform(lo, hi)
    out = []
    for i, rel in enumerate(related):
        if i > 0:
            gap = rng.uniform(0.01, 0.05) if rel else rng.uniform(0.02, 0.07)
            if related[i - 1] and not rel:
                gap += rng.uniform(0.06, 0.16)
            top -= gap
        out.append(round(max(top, 0.2), 3))
    return out


def _chunk(item: Item, score: float | None) -> dict[str, Any]:
    return {"id": item.id, "text": item.passage.text, "score": score, "source": item.source}


def _retrieve(
    rng: Rng, app: str, target: Item | None, n: int, *, on_topic: bool, lang: str = "en"
) -> tuple[list[Item], int]:
    """Pick ``n`` chunks; return them in rank order and the target's rank (-1 if absent)."""
    items = ITEMS[app]
    if not on_topic or target is None:
        avoid = target.doc if target is not None else -1
        pool = [it for it in items if it.doc != avoid and it.passage.lang == "en"]
        return rng.sample(pool, n), -1
    same_doc = [
        it for it in items if it is not target and it.doc == target.doc and it.passage.lang == lang
    ]
    others = rng.sample(same_doc, rng.between(0, min(2, len(same_doc))))
    if lang != "en":  # a multilingual retriever ranks same-language passages first
        others += [
            it for it in items if it.passage.lang == lang and it is not target and it not in others
        ]
    rest = [it for it in items if it.passage.lang == "en" and it is not target and it not in others]
    others += rng.sample(rest, max(0, n - 1 - len(others)))
    others = others[: n - 1]
    x = rng.random()
    rank = 0 if x < 0.75 else 1 if x < 0.95 else 2
    rank = min(rank, len(others))
    ranked = [*others[:rank], target, *others[rank:]]
    return ranked, rank


def _faithful(rng: Rng, item: Item, rank: int, cite_p: float, tags: list[str]) -> str:
    """An answer supported by ``item``: its reference answer or sentences copied from it."""
    if rng.chance(0.3):
        parts = sentences(item.passage.text)
        if len(parts) > 2 and rng.chance(0.4):
            parts = parts[:-1]
    else:
        parts = sentences(item.passage.answer)
    if rank >= 0 and rng.chance(cite_p):
        tags.append("cited")
        parts[0] = _cite(parts[0], rank + 1)
        if len(parts) > 1 and rng.chance(0.5):
            parts[-1] = _cite(parts[-1], rank + 1)
    return " ".join(parts)


def _timestamp(rng: Rng, t_ms: int, tags: list[str]) -> str | float | int:
    epoch_ms = DAY_START_MS + t_ms
    if rng.chance(0.15):
        tags.append("epoch_timestamp")
        return epoch_ms // 1000 if rng.chance(0.4) else epoch_ms / 1000
    dt = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{epoch_ms % 1000:03d}Z"


def _labels(rng: Rng, app: str, t_ms: int) -> tuple[str, str, str]:
    """(model, prompt_version, retriever) for ``app`` at ``t_ms`` into the day."""
    hour = t_ms / 3_600_000
    if app == "support-bot":
        if hour < 6:
            version = "v1" if rng.chance(0.7) else "v2"
        elif hour < 12:
            version = "v2"
        else:
            version = "v3" if rng.chance(0.6) else "v2"  # v3 rolled out at noon: worse
        return "gpt-4o-mini", version, "pgvector-hnsw"
    if app == "docs-search":
        version = "v1" if hour < 10 or rng.chance(0.25) else "v2"
        model = "llama-3.1-8b-instruct" if rng.chance(0.6) else "llama-3.1-70b-instruct"
        retriever = "hybrid-bm25-e5" if rng.chance(0.7) else "es-bm25"
        return model, version, retriever
    return "qwen2.5-7b-instruct", "v1" if rng.chance(0.5) else "v2", "faiss-e5-small"


def _times(rng: Rng, n: int) -> list[int]:
    """``n`` sorted offsets (ms) into the day, busier during European/US working hours."""
    out: list[int] = []
    while len(out) < n:
        t = rng.below(DAY_MS)
        hour = t / 3_600_000
        busy = 1.0 if 7 <= hour < 22 else 0.35
        if rng.chance(busy):
            out.append(t)
    return sorted(out)


def _plan(rng: Rng, n: int) -> list[_Slot]:
    """Decide every trace's time, labels, kind and tags."""
    slots = []
    for t in _times(rng, n):
        app = APPS[rng.weighted([0.45, 0.30, 0.25])].name
        model, version, retriever = _labels(rng, app, t)
        slots.append(_Slot(t, app, model, version, retriever))
    # Foreign-language traces go to random slots of their app.
    taken: set[int] = set()
    plans: list[tuple[str, str, int, int]] = [*FOREIGN_PLAN, (MISMATCH[0], "mismatch", 0, 0)]
    for plan in plans:
        free = [i for i, s in enumerate(slots) if s.app == plan[0] and i not in taken]
        i = rng.choice(free)
        taken.add(i)
        slots[i].kind = "foreign"
        slots[i].foreign = plan
    # Every other slot draws a kind, weighted by the quota left and the version's bias.
    left = dict(QUOTAS)
    order = [i for i in range(len(slots)) if i not in taken]
    rng.shuffle(order)
    kinds = list(left)
    for i in order:
        s = slots[i]
        bias = KIND_BIAS.get((s.app, s.version), {})
        k = kinds[rng.weighted([left[k] * bias.get(k, 1.0) for k in kinds])]
        left[k] -= 1
        s.kind = k
    # Overlays: duplicated chunks on some faithful traces, score-less retriever on hr.
    faithful = [s for s in slots if s.kind == "faithful"]
    for s in rng.sample(faithful, N_DUPLICATE):
        s.tags.append("duplicate_chunks")
    hr = [s for s in slots if s.app == "hr-assistant" and s.kind in ("faithful", "partial", "pii")]
    hr = [s for s in hr if "duplicate_chunks" not in s.tags]
    for s in rng.sample(hr, N_NULL_SCORES):
        s.tags.append("null_scores")
        s.retriever = "sharepoint-search"
    # Feedback: exact counts per kind; the Spanish question answered in English gets a 👎.
    for kind, (n_feedback, n_down) in FEEDBACK.items():
        group = [s for s in slots if s.kind == kind]
        first = [s for s in group if s.foreign is not None and s.foreign[1] == "mismatch"]
        rest = [s for s in group if not any(s is f for f in first)]
        chosen = first + rng.sample(rest, n_feedback - len(first))
        for j, s in enumerate(chosen):
            s.thumbs = "down" if j < n_down else "up"
    return slots


class _State:
    """What carries over between traces: sessions and which PII sentence is next."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[str, int]] = {}
        self.pii: dict[str, int] = {}

    def next_pii(self, app: App) -> str:
        """The app's PII sentences in turn."""
        i = self.pii.get(app.name, 0)
        self.pii[app.name] = i + 1
        return app.pii[i % len(app.pii)]

    def session(self, rng: Rng, app: str, t_ms: int) -> str:
        """A session id: a user often asks a few questions in a row."""
        prev = self.last.get(app)
        if prev is not None and t_ms - prev[1] < 20 * 60_000 and rng.chance(0.4):
            sid = prev[0]
        else:
            sid = f"sess-{rng.below(1 << 32):08x}"
        self.last[app] = (sid, t_ms)
        return sid


_BASE_LATENCY: Final = {
    "gpt-4o-mini": 850,
    "llama-3.1-8b-instruct": 520,
    "llama-3.1-70b-instruct": 1400,
    "qwen2.5-7b-instruct": 610,
}


def _feedback(rng: Rng, thumbs: str | None, kind: str, tags: list[str]) -> dict[str, Any] | None:
    """The user's feedback (``thumbs`` was planned), with a rating or comment sometimes."""
    if thumbs is None:
        return None
    down = thumbs == "down"
    fb: dict[str, Any] = {"thumbs": thumbs}
    if rng.chance(0.45):
        fb["rating"] = rng.between(1, 2) if down else rng.between(4, 5)
    if "lang_mismatch" in tags:
        fb["comment"] = "Pregunté en español, ¿por qué responde en inglés?"
    elif rng.chance(0.4):
        bank = COMMENTS_DOWN.get(kind, COMMENTS_DOWN["other"]) if down else COMMENTS_UP
        fb["comment"] = rng.choice(bank)
    return fb


def _build(rng: Rng, idx: int, slot: _Slot, state: _State) -> Example:
    app = APP_BY_NAME[slot.app]
    tags = list(slot.tags)
    kind = slot.kind
    n = rng.between(3, 5 if "duplicate_chunks" in tags else 6)
    fabricated = ""
    english = [it for it in ITEMS[app.name] if it.passage.lang == "en"]
    picked = rng.choice(english)
    target: Item | None = picked
    query = rng.choice(picked.passage.questions)
    on_topic = True
    cite_p = CITE_RATE[slot.version]

    if kind == "foreign":
        assert slot.foreign is not None
        _, lang, pos, q = slot.foreign
        if lang == "mismatch":
            target = next(it for it in english if it.passage.text.startswith(MISMATCH[1]))
            query = MISMATCH[2]
            tags += ["lang_es", "lang_mismatch"]
        else:
            target = [it for it in ITEMS[app.name] if it.passage.lang == lang][pos]
            query = target.passage.questions[q]
            tags.append(f"lang_{lang}")
    elif kind == "hallucinated":
        x = rng.random()
        if x < 0.18:
            tags.append("off_topic")
            target = None
        elif x < 0.40:
            tags.append("wrong_topic")
            on_topic = False
    elif kind == "refusal":
        if rng.chance(0.6):
            tags.append("off_topic")
            target = None
        else:
            tags.append("unneeded")
    off_topic = "off_topic" in tags
    if off_topic:
        query, fabricated = rng.choice(app.off_topic)

    chosen, rank = _retrieve(
        rng,
        app.name,
        target,
        n,
        on_topic=on_topic and not off_topic,
        lang=target.passage.lang if target is not None else "en",
    )
    if rank < 0:
        scores: list[float | None] = list(_scores(rng, [False] * n, 0.3, 0.46))
    else:
        assert target is not None
        related = [it is target or it.doc == target.doc for it in chosen]
        scores = list(_scores(rng, related, 0.74, 0.95))
    chunks = [_chunk(it, s) for it, s in zip(chosen, scores, strict=True)]
    if "duplicate_chunks" in tags:
        at = max(rank, 0)
        dup = dict(chunks[at])
        if rng.chance(0.4):
            dup["id"] = dup["id"].replace("#", "-v2#")  # the same text indexed twice
        dup["score"] = round(float(chunks[at]["score"]) - 0.001, 3)
        chunks.insert(at + 1, dup)
    if "null_scores" in tags:
        for c in chunks:
            c["score"] = None
    n = len(chunks)

    # The answer.
    if kind in ("faithful", "foreign"):
        assert target is not None
        answer = _faithful(rng, target, rank, cite_p if kind == "faithful" else 0.0, tags)
    elif kind == "partial":
        assert target is not None
        first = sentences(_faithful(rng, target, rank, cite_p, tags))[0]
        answer = f"{first} {rng.choice(app.extras)}"
    elif kind == "hallucinated":
        if off_topic:
            answer = fabricated
        else:
            assert target is not None
            answer = target.passage.wrong
            if rank >= 0 and rng.chance(0.4):
                tags.append("cited")
                answer = _cite(answer, rank + 1)
    elif kind == "refusal":
        answer = REFUSALS[0] if rng.chance(0.75) else rng.choice(REFUSALS[1:])
    elif kind == "bad_citation":
        assert target is not None
        parts = sentences(target.passage.answer)
        bad = n + rng.between(1, 3)
        if len(parts) > 1 and rng.chance(0.5):
            parts[0] = _cite(parts[0], rank + 1)
            parts[-1] = _cite(parts[-1], bad)
        else:
            parts[0] = _cite(parts[0], bad)
        answer = " ".join(parts)
    elif kind == "pii":
        assert target is not None
        answer = f"{_faithful(rng, target, rank, cite_p, tags)} {state.next_pii(app)}"
    else:  # empty
        answer = ""

    row: dict[str, Any] = {
        "trace_id": f"tr-{idx:06d}",
        "timestamp": _timestamp(rng, slot.t_ms, tags),
        "app": app.name,
        "model": slot.model,
        "prompt_version": slot.version,
        "retriever": slot.retriever,
        "query": query,
        "answer": answer,
        "chunks": chunks,
    }
    if target is not None and not off_topic and rng.chance(0.25):
        row["reference"] = target.passage.answer
    feedback = _feedback(rng, slot.thumbs, kind, tags)
    if feedback is not None:
        row["feedback"] = feedback
    words = len(answer.split())
    latency = _BASE_LATENCY[slot.model] + 14 * words + rng.below(450)
    if kind == "empty":
        latency = 30_000 + rng.below(200)
    row["metadata"] = {
        "session_id": state.session(rng, app.name, slot.t_ms),
        "latency_ms": latency,
        "completion_tokens": round(words * 1.35),
    }
    return Example(row=row, kind=kind, tags=tags)


def build_traces(n: int = sum(QUOTAS.values()) + len(FOREIGN_PLAN) + 1) -> list[Example]:
    """The native example traces, in time order, with their ground truth."""
    rng = Rng(SEED)
    slots = _plan(rng, n)
    state = _State()
    return [_build(rng, i + 1, s, state) for i, s in enumerate(slots)]


# --------------------------------------------------------------------------- #
# NeMo Evaluator and RAGAS rows
# --------------------------------------------------------------------------- #


def _eval_cases(rng: Rng, count: int) -> list[tuple[Item, list[Item], str, str]]:
    """(target, contexts, answer, kind) for ``count`` English passages across apps."""
    english = [it for a in APPS for it in ITEMS[a.name] if it.passage.lang == "en"]
    cases = []
    for k, target in enumerate(rng.sample(english, count)):
        contexts, _ = _retrieve(rng, target.app, target, rng.between(2, 4), on_topic=True)
        kind = "hallucinated" if k % 5 == 3 else "refusal" if k % 10 == 7 else "faithful"
        if kind == "faithful":
            answer = _faithful(rng, target, -1, 0.0, [])
        elif kind == "hallucinated":
            answer = target.passage.wrong
        else:
            answer = REFUSALS[0]
        cases.append((target, contexts, answer, kind))
    return cases


def build_nemo() -> list[dict[str, Any]]:
    """Rows in NeMo Evaluator's RAG format (no ids)."""
    rng = Rng(SEED + 1)
    return [
        {
            "query": rng.choice(target.passage.questions),
            "retrieved_docs": [{"title": c.title, "text": c.passage.text} for c in contexts],
            "reference": target.passage.answer,
            "output": answer,
        }
        for target, contexts, answer, _ in _eval_cases(rng, 20)
    ]


def build_ragas() -> list[dict[str, Any]]:
    """Rows in RAGAS format: the old and the new column names (no ids)."""
    rng = Rng(SEED + 2)
    rows: list[dict[str, Any]] = []
    for k, (target, contexts, answer, _) in enumerate(_eval_cases(rng, 20)):
        question = rng.choice(target.passage.questions)
        texts = [c.passage.text for c in contexts]
        if k % 2 == 0:
            rows.append(
                {
                    "user_input": question,
                    "retrieved_contexts": texts,
                    "response": answer,
                    "reference": target.passage.answer,
                }
            )
        elif k == 9:
            rows.append(
                {
                    "question": question,
                    "contexts": texts,
                    "answer": answer,
                    "ground_truths": [target.passage.answer],
                }
            )
        else:
            rows.append(
                {
                    "question": question,
                    "contexts": texts,
                    "answer": answer,
                    "ground_truth": target.passage.answer,
                }
            )
    return rows


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


def _jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def render() -> dict[str, bytes]:
    """Every example file's name and exact bytes."""
    return {
        "traces.jsonl": _jsonl([e.row for e in build_traces()]),
        "nemo.jsonl": _jsonl(build_nemo()),
        "ragas.jsonl": _jsonl(build_ragas()),
    }


def stale(directory: Path = HERE) -> list[str]:
    """The example files in ``directory`` that differ from a fresh render."""
    return [
        name
        for name, data in render().items()
        if not (directory / name).is_file() or (directory / name).read_bytes() != data
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check``, verify) the example files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: here)")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.out)
        for name in bad:
            print(f"stale: {args.out / name} (run examples/generate.py)", file=sys.stderr)
        return 1 if bad else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in render().items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
