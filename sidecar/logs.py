"""Structured logging: JSON lines by default, human-readable text on request.

Policy: never log trace contents (queries, answers, chunks may hold personal
data) at INFO or above, and never secrets. Pass structured fields with
``log.info("msg", extra={"fields": {...}})``; only ids, counts, reasons and
durations belong there.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import orjson

_RESERVED = "fields"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, _RESERVED, None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level logger: msg key=value ...`` for terminals."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _RESERVED, None)
        tail = ""
        if isinstance(fields, dict):
            tail = " " + " ".join(f"{k}={v}" for k, v in fields.items())
        line = (
            f"{time.strftime('%H:%M:%S', time.localtime(record.created))} "
            f"{record.levelname.lower():7s} {record.name}: {record.getMessage()}{tail}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure the ``sidecar`` logger hierarchy (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("sidecar")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
