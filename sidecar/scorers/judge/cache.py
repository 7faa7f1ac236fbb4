"""Judgements by content hash, so replays and duplicate traces cost nothing twice.

The key hashes the judge's scorer version (prompt version and texts, model,
score-affecting settings) with the query, the answer, the chunk texts in order
and the reference — not the trace id, labels or timestamps — so the same
content judged again is served from memory, for any trace id.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Generic, TypeVar

import orjson

from ...trace import Trace

V = TypeVar("V")


def content_key(version: str, trace: Trace) -> str:
    """The cache key of ``trace`` under judge ``version`` (32 hex characters)."""
    blob = orjson.dumps(
        [version, trace.query, trace.answer, [c.text for c in trace.chunks], trace.reference]
    )
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


class LruCache(Generic[V]):
    """A bounded least-recently-used map; ``max_entries=0`` keeps nothing."""

    __slots__ = ("_entries", "hits", "max_entries", "misses")

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        """The value for ``key`` (now most recently used), or None."""
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        """Remember ``value``, evicting the least recently used entry when full."""
        if self.max_entries <= 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
