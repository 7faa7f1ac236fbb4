"""Interpreting span values: queries and answers in their common JSON shapes,
chat messages and retrieved documents.

Everything here is lenient: a value of the wrong type or unparsable JSON gives
``None`` (or is skipped), never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final

import orjson

from ...trace import Chunk

QUERY_KEYS: Final = (
    "query",
    "question",
    "input",
    "query_str",
    "user_input",
    "prompt",
    "search_query",
    "q",
    "text",
    "message",
    "content",
    "inputs",
)
ANSWER_KEYS: Final = (
    "answer",
    "output",
    "response",
    "result",
    "output_text",
    "generation",
    "text",
    "content",
    "message",
    "outputs",
)
_NESTED: Final = ("kwargs", "data")
_DOC_ID_KEYS: Final = ("doc_id", "document_id", "chunk_id", "node_id", "id", "source")
_DOC_SOURCE_KEYS: Final = ("source", "file_path", "url", "uri", "file_name", "title")
_DOC_TEXT_KEYS: Final = ("content", "text", "page_content", "document", "chunk")
_USER_ROLES: Final = frozenset({"user", "human", "humanmessage"})
_ASSISTANT_ROLES: Final = frozenset({"assistant", "ai", "aimessage", "model", "bot"})
_MAX_DEPTH: Final = 4


def loads(text: str) -> Any:
    """JSON-decode ``text`` if it looks like a JSON object, array or string; else None."""
    head = text.lstrip()[:1]
    if head not in ("{", "[", '"'):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def as_float(value: Any) -> float | None:
    """A finite float from a number or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def as_text(value: Any) -> str | None:
    """A string as is, a number as its text; anything else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


# ------------------------------------------------------------------ messages


def role_of(message: dict[str, Any]) -> str:
    """Normalised role of a chat message: ``user``, ``assistant`` or the raw value."""
    role = message.get("role")
    if role is None:
        role = message.get("type")
        if role == "constructor":  # LangChain serialised message
            ids = message.get("id")
            role = ids[-1] if isinstance(ids, list) and ids else None
    text = str(role or "").lower()
    if text in _USER_ROLES:
        return "user"
    if text in _ASSISTANT_ROLES:
        return "assistant"
    return text


def message_text(message: dict[str, Any]) -> str | None:
    """The text of one message in OpenAI, GenAI (parts), LangChain or OpenInference form."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return _parts_text(content, "text")
    parts = message.get("parts")
    if isinstance(parts, list):
        return _parts_text(parts, "content")
    if isinstance(content, dict):  # OpenAI Assistants / Azure AI Agents
        text = content.get("text")
        text = text.get("value") if isinstance(text, dict) else text
        return text if isinstance(text, str) else None
    kwargs = message.get("kwargs")
    if isinstance(kwargs, dict):
        return message_text(kwargs)
    # OpenInference flattened multi-part: contents.{j}.message_content.text
    texts = [
        (key, value)
        for key, value in message.items()
        if key.startswith("contents.") and key.endswith(".message_content.text")
    ]
    if texts:
        texts.sort(key=lambda kv: _index_in(kv[0]))
        return "".join(str(v) for _, v in texts if isinstance(v, str))
    text = message.get("text")  # OpenInference llm.prompts / llm.choices: prompt.text, …
    return text if isinstance(text, str) else None


def _parts_text(parts: list[Any], field: str) -> str | None:
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type", "text") == "text":
            value = part.get(field, part.get("text"))
            if isinstance(value, str):
                texts.append(value)
    return "".join(texts) if texts else None


def _index_in(key: str) -> int:
    try:
        return int(key.split(".", 2)[1])
    except (IndexError, ValueError):
        return 0


def messages_of(value: Any) -> list[dict[str, Any]]:
    """GenAI messages (a JSON string or structured list) as a list of dicts."""
    if isinstance(value, str):
        value = loads(value)
    if isinstance(value, dict):
        value = value.get("messages", [value])
    if not isinstance(value, list):
        return []
    return [m for m in value if isinstance(m, dict)]


def pick_message(messages: Iterable[dict[str, Any]], role: str, *, last: bool) -> str | None:
    """Text of the first (or last) message with ``role``; the first/last of any role if none."""
    found: str | None = None
    fallback: str | None = None
    for message in messages:
        text = message_text(message)
        if text is None:
            continue
        if role_of(message) == role:
            if not last:
                return text
            found = text
        elif fallback is None or last:
            fallback = text
    return found if found is not None else fallback


# ----------------------------------------------------------- query / answer


def text_from(value: Any, keys: tuple[str, ...], role: str, depth: int = 0) -> str | None:
    """The query (``role="user"``) or answer (``"assistant"``) inside an input/output value.

    Plain strings are returned as they are; JSON strings are decoded and searched
    by ``keys`` (``{"query": …}``, ``{"input": …}``), chat message lists (the
    last message of ``role``) and OpenLLMetry's ``{"args": […]}``.
    """
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, str):
        decoded = loads(value)
        if decoded is None:
            return value
        return text_from(decoded, keys, role, depth + 1)
    if isinstance(value, dict):
        if "role" in value or value.get("type") in ("human", "ai", "constructor"):
            return message_text(value)
        for key in keys:
            if key in value:
                found = text_from(value[key], keys, role, depth + 1)
                if found is not None:
                    return found
        if isinstance(value.get("messages"), list):
            return text_from(value["messages"], keys, role, depth + 1)
        args = value.get("args")
        if isinstance(args, list) and args:
            return text_from(args[0], keys, role, depth + 1)
        for key in _NESTED:
            if isinstance(value.get(key), dict):
                found = text_from(value[key], keys, role, depth + 1)
                if found is not None:
                    return found
        return None
    if isinstance(value, list) and value:
        if all(isinstance(m, dict) for m in value):
            return pick_message(value, role, last=True)
        return text_from(value[0], keys, role, depth + 1)
    return None


def query_from(value: Any) -> str | None:
    """The user's question inside an input value, or None."""
    text = text_from(value, QUERY_KEYS, "user")
    return text if text and text.strip() else None


def answer_from(value: Any) -> str | None:
    """The answer inside an output value, or None (an explicit empty answer is ``""``)."""
    return text_from(value, ANSWER_KEYS, "assistant")


# ---------------------------------------------------------------- documents


def chunks_from_items(items: list[dict[str, Any]]) -> list[Chunk]:
    """OpenInference flattened documents (``content``, ``id``, ``score``, ``metadata``)."""
    return [_chunk(item) for item in items]


def chunks_from_genai(value: Any) -> list[Chunk]:
    """``gen_ai.retrieval.documents``: a JSON string or structured list of ``{id, score, …}``;
    also OpenLLMetry's retriever output ``{"documents": [{page_content, metadata}]}``."""
    if isinstance(value, str):
        value = loads(value)
    if isinstance(value, dict):
        value = value.get("documents")
    if not isinstance(value, list):
        return []
    return [_chunk(doc) for doc in value if isinstance(doc, dict)]


def _chunk(doc: dict[str, Any]) -> Chunk:
    meta = doc.get("metadata")
    if isinstance(meta, str):
        meta = loads(meta)
    if not isinstance(meta, dict):
        meta = {}
    doc_id = as_text(doc.get("id"))
    if not doc_id:
        doc_id = next((t for k in _DOC_ID_KEYS if (t := as_text(meta.get(k)))), "")
    text = next((v for k in _DOC_TEXT_KEYS if isinstance(v := doc.get(k), str)), "")
    source = next(
        (t for k in _DOC_SOURCE_KEYS if (t := as_text(doc.get(k) or meta.get(k)))),
        None,
    )
    return Chunk(id=doc_id, text=text, score=as_float(doc.get("score")), source=source)
