"""The dashboard frame: ``Board`` (settings shared by both boards, panel ids in order,
the grid layout) and the template variables."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

from .panels import DS
from .promql import QA, QAM

CANARY_APP = "rag-sidecar-canary"


class Board:
    """A dashboard under construction: assigns panel ids in order, lays out rows."""

    def __init__(self, uid: str, title: str, description: str, tags: list[str]) -> None:
        self.b = (
            db.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(tags)
            .editable()
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .time("now-6h", "now")
            .refresh("1m")
            .timezone("browser")
            .annotation(
                db.AnnotationQuery()
                .name("Annotations & Alerts")
                .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                .enable(True)
                .hide(True)
                .icon_color("rgba(0, 211, 255, 1)")
                .type("dashboard")
                .built_in(1)
            )
            .link(
                db.DashboardLink("rag-sidecar")
                .type(dm.DashboardLinkType.DASHBOARDS)
                .tags(["rag-sidecar"])
                .as_dropdown(False)
                .include_vars(True)
                .keep_time(True)
            )
        )
        self._id = 0

    def _next(self) -> int:
        self._id += 1
        return self._id

    def variables(self, *variables: Any) -> Board:
        for v in variables:
            self.b = self.b.with_variable(v)
        return self

    def row(self, title: str) -> Board:
        self.b = self.b.with_row(db.Row(title).id(self._next()))
        return self

    def add(self, panel: Any, w: int = 12, h: int = 8) -> Board:
        self.b = self.b.with_panel(panel.id(self._next()).span(w).height(h))
        return self

    def build(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(self.b.build(), cls=JSONEncoder))
        return out


def datasource_var() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(True)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def quality_vars() -> list[db.QueryVariable]:
    """app, model, prompt_version: chained label_values over the score histogram."""
    return [
        query_var(
            "app", "App", f'label_values(rag_sidecar_score_count{{app!="{CANARY_APP}"}}, app)'
        ),
        query_var("model", "Model", f"label_values(rag_sidecar_score_count{{{QA}}}, model)"),
        query_var(
            "prompt_version",
            "Prompt version",
            f"label_values(rag_sidecar_score_count{{{QAM}}}, prompt_version)",
        ),
    ]
