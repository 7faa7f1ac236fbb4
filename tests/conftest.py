"""Shared fixtures: free ports, external tools, trace factories."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from typing import Any

import orjson
import pytest


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_tool(name: str) -> str:
    """Path of an external program; skip locally, fail under scripts/test when missing."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not installed (scripts/tools.sh installs it)"
        if os.environ.get("RAG_SIDECAR_REQUIRE_TOOLS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def make_trace(**over: Any) -> dict[str, Any]:
    """A native trace as a dict; keyword arguments override fields."""
    doc: dict[str, Any] = {
        "trace_id": "t-1",
        "timestamp": "2026-11-20T10:00:00Z",
        "app": "support-bot",
        "model": "gpt-4o-mini",
        "prompt_version": "v1",
        "retriever": "bm25",
        "query": "How do I reset my password?",
        "answer": "Open Settings, choose Security and click Reset password [1].",
        "chunks": [
            {
                "id": "kb-1",
                "text": "To reset your password open Settings, choose Security "
                "and click Reset password.",
                "score": 0.82,
                "source": "kb/security.md",
            },
            {"id": "kb-2", "text": "Billing happens monthly on the first day.", "score": 0.41},
        ],
    }
    doc.update(over)
    return doc


@pytest.fixture
def trace_line() -> Callable[..., bytes]:
    """Factory: a JSONL line (bytes, no newline) for a native trace."""

    def factory(**over: Any) -> bytes:
        return orjson.dumps(make_trace(**over))

    return factory
