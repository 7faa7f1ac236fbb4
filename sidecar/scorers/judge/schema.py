"""The JSON schema of one judge reply, sized to the trace being judged.

Sent as ``response_format`` so that endpoints with constrained decoding (vLLM,
llama.cpp, Ollama, OpenAI structured outputs, NIM) cannot return a reply of the
wrong shape: exactly one grade per chunk shown, chunk numbers within range,
known verdict words, grades within their scales. Small judges need this most:
without it a 1.5B model graded a single chunk three times, or looped
``0,0,0,…`` until ``max_tokens``. The schema follows OpenAI's strict subset
(every property required, no additional properties, ``null`` by type union),
and :func:`~.parse.parse_reply` still validates every reply: a schema is a
hint to the endpoint, never trusted.

Two wire forms, chosen by :class:`~.client.JudgeClient` (``judge.json_mode``):

* ``json_schema`` — ``{"type": "json_schema", "json_schema": {"name", "strict", "schema"}}``
  (OpenAI, vLLM, llama.cpp's own server, Ollama, NIM);
* ``inline`` — ``{"type": "json_object", "schema": ...}`` (llama-cpp-python's server).
"""

from __future__ import annotations

from typing import Any, Final

SCHEMA_NAME: Final = "rag_judgement"
MAX_CLAIMS: Final = 10
MAX_FACTS: Final = 10


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _chunk_ref(n_chunks: int) -> dict[str, Any]:
    """A 1-based chunk number that exists, or null."""
    if n_chunks == 0:
        return {"type": "null"}
    return {"anyOf": [{"type": "integer", "enum": list(range(1, n_chunks + 1))}, {"type": "null"}]}


def _grade(top: int) -> dict[str, Any]:
    return {"type": "integer", "enum": list(range(top + 1))}


def reply_schema(
    n_chunks: int, *, with_reference: bool, with_rubric: bool, with_factual: bool = False
) -> dict[str, Any]:
    """The schema of the reply the prompt asks for, for a trace with ``n_chunks`` shown.

    ``with_factual`` puts the whole-answer verdict first, so that a model decoding in
    schema order gives it before it lists claims.
    """
    claim = _obj(
        {
            "claim": {"type": "string"},
            "verdict": {"type": "string", "enum": ["supported", "contradicted", "not_in_context"]},
            "chunk": _chunk_ref(n_chunks),
            "quote": {"type": "string"},
        }
    )
    properties: dict[str, Any] = {"factual": {"type": "boolean"}} if with_factual else {}
    properties |= {
        "claims": {"type": "array", "items": claim, "maxItems": MAX_CLAIMS},
        "answer_relevance": _grade(3),
        "chunk_relevance": {
            "type": "array",
            "items": _grade(2),
            "minItems": n_chunks,
            "maxItems": n_chunks,
        },
        "sufficient": {"type": "boolean"},
    }
    if with_reference:
        fact = _obj(
            {
                "fact": {"type": "string"},
                "answer": {"type": "string", "enum": ["stated", "contradicted", "missing"]},
                "chunk": _chunk_ref(n_chunks),
            }
        )
        properties["reference_facts"] = {"type": "array", "items": fact, "maxItems": MAX_FACTS}
    if with_rubric:
        properties["rubric"] = _obj(
            {
                "clarity": _grade(4),
                "completeness": _grade(2),
                "conciseness": _grade(2),
                "groundedness": _grade(2),
                "harmfulness": _grade(2),
            }
        )
    return _obj(properties)


def response_format(form: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``response_format`` request field for wire form ``form`` (None: send none).

    ``form`` is one of ``json_schema``, ``inline``, ``json_object``, ``none``; the
    two schema forms fall back to plain ``json_object`` when there is no schema.
    """
    if form == "none":
        return None
    if schema is None or form == "json_object":
        return {"type": "json_object"}
    if form == "inline":
        return {"type": "json_object", "schema": schema}
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": schema},
    }
