"""One trace → semantic scores, from the trace's own vectors or the local model.

Runs in the stage's worker thread (never on the event loop); the sentence cache
is used from that one thread only. It holds ``cache_size`` vectors, each its own
copy, keyed by a 16-byte digest of its text: a long sentence costs no more memory
than a short one.

* ``answer_relevance_semantic``: cosine of the query and the whole answer (citations
  removed).
* ``groundedness_semantic``: each answer sentence's best cosine against any chunk
  sentence, averaged; ``groundedness_semantic_min``: the weakest sentence's.

Sentences: split after ``.``/``!``/``?`` followed by white space, and at line
breaks; bracketed citations (``[1]``, ``[1, 2]``) are removed first. Answer
fragments under three words ("Yes.") are not scored on their own (an answer made
only of such fragments is scored whole).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, Protocol

import numpy as np

from ...trace import Trace
from .model import MODEL_ID
from .settings import EmbeddingsSettings
from .stage import Outcome
from .supplied import from_metadata, score_supplied
from .vectors import Matrix, cosine, support

_SPLIT_RE: Final = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\s*\n\s*")
_CITATION_RE: Final = re.compile(r"\s*\[\d+(?:\s*[,\-–]\s*\d+)*\]")
_WORD_RE: Final = re.compile(r"[^\W_]+")
_MIN_ANSWER_WORDS: Final = 3


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, citations removed, blanks dropped."""
    text = _CITATION_RE.sub("", text)
    return [s for s in (p.strip() for p in _SPLIT_RE.split(text)) if s]


def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences worth scoring (see the module doc)."""
    parts = [s for s in split_sentences(answer) if len(_WORD_RE.findall(s)) >= _MIN_ANSWER_WORDS]
    if parts:
        return parts
    whole = _CITATION_RE.sub("", answer).strip()
    return [whole] if whole else []


class Texts(NamedTuple):
    """What the model embeds for one trace."""

    query: str
    answer: str
    """The whole answer, citations removed."""
    answers: list[str]
    """Answer sentences, at most ``max_answer_sentences``."""
    chunks: list[str]
    """Chunk sentences in rank order, at most ``max_chunk_sentences``."""
    truncated: bool

    def distinct(self) -> list[str]:
        """Every non-blank text once, in order."""
        every = (self.query, self.answer, *self.answers, *self.chunks)
        return list(dict.fromkeys(t for t in every if t))


def trace_texts(trace: Trace, settings: EmbeddingsSettings) -> Texts:
    """Split a trace into the texts to embed, within the settings' caps."""
    answer = _CITATION_RE.sub("", trace.answer).strip()
    found = answer_sentences(answer)
    answers = found[: settings.max_answer_sentences]
    chunks: list[str] = []
    total = 0
    for chunk in trace.chunks:
        parts = split_sentences(chunk.text)
        total += len(parts)
        chunks.extend(parts[: max(0, settings.max_chunk_sentences - len(chunks))])
    truncated = len(found) > len(answers) or total > len(chunks)
    return Texts(trace.query.strip(), answer, answers, chunks, truncated)


def _key(text: str) -> bytes:
    """The sentence cache's key for ``text``."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class TextEncoder(Protocol):
    """What the scorer needs of a model (:class:`~.model.Encoder`, or a fake in tests)."""

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Unit vectors of ``texts``, one row each, in order."""
        ...


class EmbeddingScorer:
    """Callable scorer for :class:`~.stage.EmbeddingStage` (one thread at a time)."""

    def __init__(
        self,
        settings: EmbeddingsSettings,
        encoder: TextEncoder | None,
        *,
        model_name: str = MODEL_ID,
    ) -> None:
        self.settings = settings
        self.encoder = encoder
        self.model_name = model_name
        self._cache: OrderedDict[bytes, Matrix] = OrderedDict()

    def __call__(self, trace: Trace) -> Outcome:
        """Score one trace (trace-supplied vectors win over the model; null is absent)."""
        if self.settings.trace_embeddings and trace.metadata.get("embeddings") is not None:
            scores, skipped, detail = score_supplied(from_metadata(trace.metadata["embeddings"]))
            return Outcome("trace", scores, skipped, detail)
        if self.encoder is None:
            return Outcome(None)
        return self._with_model(trace, self.encoder)

    def _embed(self, texts: list[str], encoder: TextEncoder) -> tuple[dict[str, Matrix], int, int]:
        """Unit vectors of distinct ``texts`` (cached ones reused); (vectors, hits, encoded)."""
        cache, size = self._cache, self.settings.cache_size
        out: dict[str, Matrix] = {}
        missing: list[str] = []
        for t in texts:
            key = _key(t)
            hit = cache.get(key)
            if hit is None:
                missing.append(t)
            else:
                cache.move_to_end(key)
                out[t] = hit
        if missing:
            vectors = encoder.encode(missing)
            for t, v in zip(missing, vectors, strict=True):
                out[t] = v
                if size:
                    cache[_key(t)] = v.copy()  # a view would keep the whole batch alive
            while len(cache) > size:
                cache.popitem(last=False)
        return out, len(texts) - len(missing), len(missing)

    def _with_model(self, trace: Trace, encoder: TextEncoder) -> Outcome:
        query, answer, answers, chunks, truncated = texts = trace_texts(trace, self.settings)
        wanted = texts.distinct()
        vecs, hits, encoded = self._embed(wanted, encoder) if wanted else ({}, 0, 0)
        out = Outcome("model", cache_hits=hits, encoded=encoded)
        detail: dict[str, Any] = {"model": self.model_name}
        if query and answer:
            out.scores["answer_relevance_semantic"] = cosine(vecs[query], vecs[answer])
        else:
            out.skipped["answer_relevance_semantic"] = "empty"
        if answers and chunks:
            best = support(
                np.stack([vecs[a] for a in answers]), np.stack([vecs[c] for c in chunks])
            )
            out.scores["groundedness_semantic"] = float(best.mean())
            out.scores["groundedness_semantic_min"] = float(best.min())
            detail["support"] = [round(float(x), 3) for x in best]
            detail["weakest_sentence"] = int(best.argmin())
        else:
            out.skipped["groundedness_semantic"] = "empty"
            out.skipped["groundedness_semantic_min"] = "empty"
        detail["answer_sentences"] = len(answers)
        detail["chunk_sentences"] = len(chunks)
        if truncated:
            detail["truncated"] = True
        out.detail = detail
        return out
