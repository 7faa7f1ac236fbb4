"""Prometheus HTTP API helpers for tests."""

from __future__ import annotations

import httpx


def query(url: str, expr: str, at: float) -> dict[str, float]:
    """An instant query's result as {app (or ''): value}."""
    r = httpx.get(f"{url}/api/v1/query", params={"query": expr, "time": at}, timeout=10)
    body = r.json()
    assert body["status"] == "success", body
    return {s["metric"].get("app", ""): float(s["value"][1]) for s in body["data"]["result"]}
