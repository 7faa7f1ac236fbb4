"""Source and sink URIs, parsed once into typed specs.

``file:PATH`` / a bare path / ``-`` (stdin or stdout), ``kafka://HOST:PORT[,…]/TOPIC[,…]``
(``?group=``, ``?pattern=`` for sources) and ``otlp+http://HOST:PORT`` /
``otlp+grpc://HOST:PORT`` (sources). Parse errors are ``ValueError`` with a one-line message;
the settings turn them into configuration errors at start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A JSONL file (``file:PATH``); ``path=None`` means stdin/stdout (``-``)."""

    path: Path | None
    uri: str

    @property
    def name(self) -> str:
        """A short, label-safe name for metrics."""
        return "stdin" if self.path is None else "file"


@dataclass(frozen=True, slots=True)
class KafkaSpec:
    """``kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC][?group=G&pattern=REGEX]``."""

    bootstrap: tuple[str, ...]
    topics: tuple[str, ...]
    uri: str
    group: str | None = None
    pattern: str | None = None

    @property
    def name(self) -> str:
        """A short, label-safe name for metrics."""
        return "kafka"


@dataclass(frozen=True, slots=True)
class OtlpSpec:
    """``otlp+http://HOST:PORT`` (OTLP/HTTP, port 4318 by default) or ``otlp+grpc://…`` (4317)."""

    transport: Literal["http", "grpc"]
    host: str
    port: int
    uri: str

    @property
    def name(self) -> str:
        """A short, label-safe name for metrics."""
        return "otlp"


SourceSpec = FileSpec | KafkaSpec | OtlpSpec
SinkSpec = FileSpec | KafkaSpec


def _parse_otlp_uri(uri: str) -> OtlpSpec:
    scheme, _, rest = uri.partition("://")
    transport: Literal["http", "grpc"] = "http" if scheme == "otlp+http" else "grpc"
    parts = urlsplit(f"//{rest}")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"an OTLP source URI is otlp+http://HOST:PORT, got {uri!r}")
    host = parts.hostname or "0.0.0.0"
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in {uri!r}") from None
    if port is None:
        port = 4318 if transport == "http" else 4317
    return OtlpSpec(transport, host, port, uri)


_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def _parse_kafka_uri(uri: str, what: str) -> KafkaSpec:
    parts = urlsplit(uri)
    hosts = tuple(h for h in parts.netloc.split(",") if h)
    if not hosts:
        raise ValueError(f"{what} URI {uri!r} names no bootstrap server")
    for host in hosts:
        _, sep, port = host.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"bootstrap server {host!r} in {uri!r} must be HOST:PORT")
    topics = tuple(t for t in parts.path.strip("/").split(",") if t)
    query = parse_qs(parts.query)
    unknown = set(query) - {"group", "pattern"}
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)} in {uri!r}")
    group = query.get("group", [None])[-1]
    pattern = query.get("pattern", [None])[-1]
    if pattern is not None:
        if what != "source":
            raise ValueError(f"pattern= is only valid for sources: {uri!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad topic pattern {pattern!r}: {exc}") from None
        if topics:
            raise ValueError(f"give topics or pattern=, not both: {uri!r}")
    elif not topics:
        raise ValueError(f"{what} URI {uri!r} names no topic")
    if what != "source" and len(topics) != 1:
        raise ValueError(f"a sink URI names exactly one topic: {uri!r}")
    if what != "source" and group is not None:
        raise ValueError(f"group= is only valid for sources: {uri!r}")
    for topic in topics:
        if not _TOPIC_RE.match(topic):
            raise ValueError(f"invalid Kafka topic name {topic!r}")
    return KafkaSpec(hosts, topics, uri, group, pattern)


def _parse_file_uri(uri: str, what: str) -> FileSpec:
    uri = uri.strip()
    if uri == "-":
        return FileSpec(None, uri)
    if uri.startswith("file://"):
        rest = uri[len("file://") :]
    elif uri.startswith("file:"):
        rest = uri[len("file:") :]
    elif "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise ValueError(f"unsupported {what} URI scheme {scheme!r} in {uri!r}")
    else:
        rest = uri  # a bare path
    if not rest:
        raise ValueError(f"empty path in {what} URI {uri!r}")
    return FileSpec(Path(rest), uri)


def parse_source_uri(uri: str) -> SourceSpec:
    """Parse a source URI: ``file:PATH``, a path, ``-`` (stdin), ``kafka://…``, ``otlp+http://…``."""
    if uri.startswith("kafka://"):
        return _parse_kafka_uri(uri, "source")
    if uri.startswith(("otlp+http://", "otlp+grpc://")):
        return _parse_otlp_uri(uri)
    return _parse_file_uri(uri, "source")


def parse_sink_uri(uri: str) -> SinkSpec:
    """Parse an events or dead-letter URI: ``file:PATH``, a path, ``-`` (stdout) or ``kafka://...``."""
    if uri.startswith("kafka://"):
        return _parse_kafka_uri(uri, "sink")
    return _parse_file_uri(uri, "sink")
