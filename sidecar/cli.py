"""Command-line interface: ``rag-sidecar run|score|check-config|schema``.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
Errors are one line on stderr; tracebacks only with ``--log-level DEBUG``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError, SidecarError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", type=Path, help="YAML settings file (env RAG_SIDECAR_* and flags win)."
    )
    p.add_argument("--judge-rate", type=float, help="Share of traces hash-sampled for the judge.")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-format", choices=["json", "text"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag-sidecar", description="Online evaluator for production RAG traces."
    )
    parser.add_argument("--version", action="version", version=f"rag-sidecar {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="Score traces continuously; serve /metrics.")
    _common(run)
    run.add_argument(
        "--source",
        action="append",
        metavar="URI",
        help="file:PATH, a path, or '-' for stdin (repeatable).",
    )
    run.add_argument("--events", metavar="URI", help="Scored events sink: file:PATH or '-'.")
    run.add_argument("--dead-letter", metavar="URI", help="Dead-letter sink: file:PATH or '-'.")
    run.add_argument("--metrics-port", type=int, help="HTTP port for /metrics (default 9464).")
    run.add_argument("--metrics-host", help="HTTP bind address (default 0.0.0.0).")
    run.add_argument("--follow", action="store_true", default=None, help="Tail file sources.")
    run.add_argument(
        "--exit-when-done",
        action="store_true",
        help="Exit once finite sources are drained instead of serving until signalled.",
    )

    score = sub.add_parser("score", help="Score files in batch; write events and a report.")
    _common(score)
    score.add_argument("files", nargs="+", type=Path, metavar="FILE")
    score.add_argument("--out", type=Path, required=True, metavar="DIR")

    check = sub.add_parser("check-config", help="Validate settings and print them resolved.")
    _common(check)
    check.add_argument("--source", action="append", metavar="URI")
    check.add_argument("--events", metavar="URI")

    schema = sub.add_parser("schema", help="Print a JSON Schema.")
    schema.add_argument("which", choices=["trace", "event"])
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags that were given, as nested settings."""
    out: dict[str, Any] = {}
    if getattr(args, "source", None):
        out["sources"] = args.source
    for flag in ("events", "dead_letter", "follow"):
        if getattr(args, flag, None) is not None:
            out[flag] = getattr(args, flag)
    http = {
        k: v
        for k, v in (
            ("port", getattr(args, "metrics_port", None)),
            ("host", getattr(args, "metrics_host", None)),
        )
        if v is not None
    }
    if http:
        out["http"] = http
    if args.judge_rate is not None:
        out["sampling"] = {"rate": args.judge_rate}
    log = {k: v for k, v in (("level", args.log_level), ("format", args.log_format)) if v}
    if log:
        out["log"] = log
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    from . import logs
    from .app import Sidecar
    from .config import FileSpec, load_settings
    from .summary import summarize

    settings = load_settings(args.config, **_overrides(args))
    if not settings.sources:
        raise ConfigError("no source configured: pass --source URI or set RAG_SIDECAR_SOURCES")
    for spec in settings.source_specs():
        if (
            isinstance(spec, FileSpec)
            and spec.path is not None
            and not settings.follow
            and not spec.path.is_file()
        ):
            raise ConfigError(f"source file not found: {spec.path}")
    logs.configure(settings.log.level, settings.log.format)
    sidecar = Sidecar(settings)

    def on_drained() -> None:
        print(summarize(sidecar.registry), file=sys.stderr, flush=True)
        if not args.exit_when_done:
            print(
                f"serving http://{settings.http.host}:{sidecar.http.bound_port}/metrics "
                "— Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )

    sidecar.on_drained = on_drained  # type: ignore[method-assign]
    return asyncio.run(sidecar.run(exit_when_done=args.exit_when_done))


def _cmd_score(args: argparse.Namespace) -> int:
    from . import logs
    from .batch import score_files
    from .config import load_settings

    for f in args.files:
        if not f.is_file():
            raise ConfigError(f"cannot read {f}: no such file")
    settings = load_settings(args.config, **_overrides(args))
    logs.configure(settings.log.level, settings.log.format)
    summary = asyncio.run(score_files(settings, args.files, args.out))
    print(summary, file=sys.stderr)
    return EXIT_OK


def _cmd_check_config(args: argparse.Namespace) -> int:
    from .config import load_settings

    settings = load_settings(args.config, **_overrides(args))
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from .events import event_json_schema
    from .trace import Trace

    doc = Trace.model_json_schema() if args.which == "trace" else event_json_schema()
    print(json.dumps(doc, indent=2))
    return EXIT_OK


_COMMANDS = {
    "run": _cmd_run,
    "score": _cmd_score,
    "check-config": _cmd_check_config,
    "schema": _cmd_schema,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rag-sidecar`` console script."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"rag-sidecar: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SidecarError as exc:
        print(f"rag-sidecar: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
