"""The rag-sidecar Grafana dashboards as code (grafana-foundation-sdk, the 11.6 build).

``promql`` (selectors and expressions), ``panels`` (targets and panel builders), ``board`` (the
dashboard frame and variables), then one module per board (``overview`` with
``overview_signals``, ``operations`` with ``operations_judge``). ``build_all`` renders them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .operations import operations
from .overview import overview

DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "rag-sidecar-overview.json": overview,
    "rag-sidecar-operations.json": operations,
}


def render(data: dict[str, Any]) -> str:
    """The committed text of a dashboard: sorted keys, two-space indent, final newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_all() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {name: render(make()) for name, make in DASHBOARDS.items()}
