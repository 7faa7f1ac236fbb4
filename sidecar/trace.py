"""The trace model and the decoders that turn raw records into traces.

A trace is one answered RAG request: the query, the retrieved chunks in rank
order, the answer and, when the user gave it, feedback. Three input formats are
accepted and detected from their keys:

* native — ``trace_id``, ``query``, ``answer``, ``chunks`` (this module's schema);
* NVIDIA NeMo Evaluator RAG rows — ``query``, ``retrieved_docs[{title,text}]``,
  ``output``, ``reference``;
* RAGAS rows — ``question``/``user_input``, ``contexts``/``retrieved_contexts``,
  ``answer``/``response``, ``ground_truth``/``reference``.

Rows without an id get a deterministic ``trace_id`` hashed from their content,
so the same row gets the same id on every replica and on replay.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidInputError

TraceFormat = Literal["native", "nemo", "ragas"]


def id_text(value: Any) -> Any:
    """An integer id (a database key) as text; anything else as given."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Chunk(BaseModel):
    """One retrieved chunk, in rank order."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field("", description="Chunk id; defaults to its rank (0-based) when absent.")
    text: str = Field(description="The chunk's text as given to the LLM.")
    score: float | None = Field(
        None, description="Retriever similarity in the retriever's own units, if known."
    )
    source: str | None = Field(None, description="Document or URL the chunk came from.")

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        return id_text(value)


class Feedback(BaseModel):
    """What the user said about the answer."""

    model_config = ConfigDict(extra="ignore")

    thumbs: Literal["up", "down"] | None = None
    rating: float | None = Field(
        None, allow_inf_nan=False, description="A numeric rating in the app's own scale."
    )
    comment: str | None = None


def parse_timestamp(text: str) -> float:
    """RFC 3339 (with a zone; ``Z`` allowed, seconds optional) or epoch seconds → epoch seconds."""
    value = _to_epoch(text)
    return float(value)


def epoch_seconds(value: Any) -> Any:
    """A record's timestamp as epoch seconds: RFC 3339, or a number in seconds, or in
    milliseconds, microseconds or nanoseconds (told apart by magnitude: 1e11 s is the
    year 5138), as JavaScript's ``Date.now()`` and OpenTelemetry clocks write them."""
    if not isinstance(value, float):  # a float (the common case) needs no parsing
        value = _to_epoch(value)
    if isinstance(value, (int, float)) and abs(value) >= 1e11:
        for scale in (1e3, 1e6, 1e9):
            if abs(value) < 1e11 * scale:
                return value / scale
    return value


def _to_epoch(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if ":" not in text:  # never in a number; RFC 3339 skips the failing float()
            try:
                return float(text)
            except ValueError:
                pass
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError("timestamp must be RFC 3339 or epoch seconds") from exc
        if parsed.tzinfo is None:
            raise ValueError("timestamp must carry a time zone (e.g. 'Z')")
        return parsed.timestamp()
    if isinstance(value, bool):
        raise ValueError("timestamp must be RFC 3339 or epoch seconds")
    return value


class Trace(BaseModel):
    """One RAG request as the sidecar scores it (the native input format)."""

    model_config = ConfigDict(extra="ignore")

    trace_id: Annotated[str, Field(min_length=1, max_length=256)]
    timestamp: float = Field(
        default_factory=time.time,
        allow_inf_nan=False,
        description="RFC 3339 string or epoch seconds (milliseconds, microseconds and "
        "nanoseconds are recognised by magnitude); stored as epoch seconds. "
        "Defaults to the Kafka record timestamp, else the arrival time.",
        json_schema_extra={
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]
        },
    )
    app: str | None = Field(None, description="The application (label).")
    model: str | None = Field(None, description="The LLM that wrote the answer (label).")
    prompt_version: str | None = Field(None, description="Prompt template version (label).")
    retriever: str | None = Field(None, description="Retriever or index name (label).")
    query: str
    answer: str = Field(description="May be empty: flagged, not rejected.")
    chunks: list[Chunk] = Field(default_factory=list)
    reference: str | None = Field(None, description="Ground-truth answer, when known.")
    feedback: Feedback | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    _timestamp_epoch = field_validator("timestamp", mode="before")(epoch_seconds)
    _trace_id_text = field_validator("trace_id", mode="before")(id_text)

    def model_post_init(self, context: Any, /) -> None:
        for rank, chunk in enumerate(self.chunks):
            if not chunk.id:
                chunk.id = str(rank)


_validate_trace: Final = Trace.__pydantic_validator__.validate_python
"""``Trace.model_validate`` without its keyword handling (per-record hot path)."""


def content_id(row: dict[str, Any]) -> str:
    """A deterministic trace id from a row's content (32 hex characters)."""
    blob = orjson.dumps(row, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def detect_format(row: dict[str, Any]) -> TraceFormat | None:
    """Which accepted format a JSON object is in, or None."""
    if "trace_id" in row and "query" in row and ("answer" in row or "chunks" in row):
        return "native"
    if "retrieved_docs" in row or ("query" in row and "output" in row):
        return "nemo"
    if ("question" in row or "user_input" in row) and (
        "answer" in row or "response" in row or "contexts" in row or "retrieved_contexts" in row
    ):
        return "ragas"
    if "query" in row and "answer" in row:
        return "native"  # native without trace_id: rejected below with a clear reason
    return None


_NEMO_KEYS = ("query", "retrieved_docs", "output", "reference")
_RAGAS_KEYS = (
    "question",
    "user_input",
    "contexts",
    "retrieved_contexts",
    "answer",
    "response",
    "ground_truth",
    "ground_truths",
    "reference",
)


def _first(row: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in row and row[key] is not None:
            return row[key]
    return None


def _from_nemo(row: dict[str, Any]) -> dict[str, Any]:
    docs = row.get("retrieved_docs") or []
    if not isinstance(docs, list):
        raise ValueError("retrieved_docs must be a list")
    chunks: list[dict[str, Any]] = []
    for rank, doc in enumerate(docs):
        if isinstance(doc, str):
            chunks.append({"id": str(rank), "text": doc})
        elif isinstance(doc, dict):
            chunks.append(
                {
                    "id": str(doc.get("id", rank)),
                    "text": doc.get("text", ""),
                    "source": doc.get("title"),
                    "score": doc.get("score"),
                }
            )
        else:
            raise ValueError("retrieved_docs items must be objects or strings")
    extra = {k: v for k, v in row.items() if k not in _NEMO_KEYS}
    return {
        "trace_id": str(row.get("id") or row.get("trace_id") or content_id(row)),
        "query": row.get("query"),
        "answer": row.get("output") if row.get("output") is not None else "",
        "chunks": chunks,
        "reference": row.get("reference"),
        "metadata": {"format": "nemo", **extra},
        **{k: row[k] for k in ("app", "model", "prompt_version", "timestamp") if k in row},
    }


def _from_ragas(row: dict[str, Any]) -> dict[str, Any]:
    contexts = _first(row, "retrieved_contexts", "contexts") or []
    if not isinstance(contexts, list):
        raise ValueError("contexts must be a list of strings")
    reference = _first(row, "reference", "ground_truth")
    if reference is None and isinstance(row.get("ground_truths"), list) and row["ground_truths"]:
        reference = row["ground_truths"][0]
    answer = _first(row, "response", "answer")
    extra = {k: v for k, v in row.items() if k not in _RAGAS_KEYS}
    return {
        "trace_id": str(row.get("id") or row.get("trace_id") or content_id(row)),
        "query": _first(row, "user_input", "question"),
        "answer": answer if answer is not None else "",
        "chunks": [{"id": str(i), "text": c} for i, c in enumerate(contexts)],
        "reference": reference,
        "metadata": {"format": "ragas", **extra},
        **{k: row[k] for k in ("app", "model", "prompt_version", "timestamp") if k in row},
    }


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def trace_from_object(row: Any) -> Trace:
    """Validate a decoded JSON value in any accepted format into a :class:`Trace`.

    Raises :class:`~sidecar.errors.InvalidInputError` with a reason code.
    """
    if not isinstance(row, dict):
        raise InvalidInputError("not_object", f"expected a JSON object, got {type(row).__name__}")
    fmt = detect_format(row)
    if fmt is None:
        keys = ", ".join(sorted(str(k) for k in row)[:8])
        raise InvalidInputError("unknown_format", f"no known trace format matches keys [{keys}]")
    try:
        if fmt == "nemo":
            row = _from_nemo(row)
        elif fmt == "ragas":
            row = _from_ragas(row)
        trace: Trace = _validate_trace(row)
        return trace
    except ValidationError as exc:
        raise InvalidInputError("invalid_trace", f"{fmt}: {_short(exc)}") from None
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("invalid_trace", f"{fmt}: {exc}") from None


def decode_trace(raw: bytes | str, *, max_bytes: int = 1 << 20) -> Trace:
    """Parse one JSON record (a JSONL line or a message value) into a :class:`Trace`."""
    if len(raw) > max_bytes:
        raise InvalidInputError("too_large", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError("not_json", str(exc).split(":", 1)[0]) from None
    return trace_from_object(row)
