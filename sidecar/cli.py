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
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import FileSpec, KafkaSpec
from .errors import ConfigError, SidecarError, Terminated

if TYPE_CHECKING:
    from .sources.replay import ReplayRange

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports it


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", type=Path, help="YAML settings file (env RAG_SIDECAR_* and flags win)."
    )
    p.add_argument("--judge-rate", type=float, help="Share of traces hash-sampled for the judge.")
    p.add_argument(
        "--judge-url",
        metavar="URL",
        help="OpenAI-compatible base URL (e.g. http://vllm:8000/v1); enables the judge. "
        "The key comes from env RAG_SIDECAR_JUDGE_API_KEY or RAG_SIDECAR_JUDGE_API_KEY_FILE.",
    )
    p.add_argument("--judge-model", metavar="NAME", help="Model name sent to the judge endpoint.")
    p.add_argument(
        "--judge-per-minute",
        type=float,
        metavar="N",
        help="Judge budget: judged traces per minute (token bucket; judge.rate_per_minute).",
    )
    p.add_argument(
        "--judge-daily-usd",
        type=float,
        metavar="USD",
        help="Judge budget: daily spend cap from the endpoint's usage tokens and the configured "
        "prices (judge.daily_usd_cap).",
    )
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
        help="file:PATH, a path, '-' (stdin), kafka://HOST:PORT[,HOST:PORT]/TOPIC[?group=G], "
        "otlp+http://HOST:PORT or otlp+grpc://HOST:PORT (repeatable).",
    )
    run.add_argument(
        "--events",
        metavar="URI",
        help="Scored events sink: file:PATH, '-' or kafka://HOST:PORT/TOPIC.",
    )
    run.add_argument(
        "--dead-letter",
        metavar="URI",
        help="Dead-letter sink: file:PATH, '-' or kafka://HOST:PORT/TOPIC.",
    )
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

    replay = sub.add_parser(
        "replay", help="Re-score a time or offset range of a Kafka topic (backfill)."
    )
    _common(replay)
    replay.add_argument("--bootstrap", required=True, metavar="HOST:PORT[,HOST:PORT]")
    replay.add_argument("--topic", required=True)
    replay.add_argument(
        "--from",
        dest="start",
        metavar="TIME",
        help="RFC 3339 (e.g. 2026-11-01T00:00Z) or epoch seconds.",
    )
    replay.add_argument("--to", dest="end", metavar="TIME", help="End (exclusive); default: now.")
    replay.add_argument("--from-offset", type=int, metavar="N", help="Start offset per partition.")
    replay.add_argument("--to-offset", type=int, metavar="N", help="End offset (exclusive).")
    replay.add_argument(
        "--events", metavar="URI", help="file:PATH, '-' or kafka://HOST:PORT/TOPIC."
    )
    replay.add_argument("--dead-letter", metavar="URI", default="file:replay-dead-letter.jsonl")
    replay.add_argument(
        "--openmetrics",
        type=Path,
        metavar="FILE",
        help="Also write scores as OpenMetrics with the traces' own timestamps.",
    )
    replay.add_argument(
        "--step",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="OpenMetrics sample step, 0.001 to 300 (default 60; Prometheus looks back "
        "5 minutes for a sample, so longer steps leave gaps in graphs).",
    )
    replay.add_argument(
        "--stall-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="Fail when no record arrives this long while partitions are short of "
        "their end (default 120).",
    )
    replay.add_argument(
        "--backfill-id", help="Value of the backfill label (default: scorer version)."
    )

    check = sub.add_parser("check-config", help="Validate settings and print them resolved.")
    _common(check)
    check.add_argument("--source", action="append", metavar="URI")
    check.add_argument("--events", metavar="URI")

    schema = sub.add_parser("schema", help="Print a JSON Schema.")
    schema.add_argument("which", choices=["trace", "event", "feedback"])
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
    judge = {
        k: v
        for k, v in (
            ("url", getattr(args, "judge_url", None)),
            ("model", getattr(args, "judge_model", None)),
            ("rate_per_minute", getattr(args, "judge_per_minute", None)),
            ("daily_usd_cap", getattr(args, "judge_daily_usd", None)),
        )
        if v is not None and v != ""
    }
    if judge:
        out["judge"] = judge
    log = _log_overrides(args)
    if log:
        out["log"] = log
    return out


def _log_overrides(args: argparse.Namespace) -> dict[str, str]:
    return {k: v for k, v in (("level", args.log_level), ("format", args.log_format)) if v}


def _cmd_run(args: argparse.Namespace) -> int:
    from . import logs
    from .app import Sidecar
    from .config import load_settings
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


def _cmd_replay(args: argparse.Namespace) -> int:
    from . import logs
    from .batch import ReplayRequest, replay_topic
    from .config import load_settings, parse_sink_uri, parse_source_uri
    from .sources.replay import ReplayRange
    from .trace import parse_timestamp

    if args.events is None and args.openmetrics is None:
        raise ConfigError("replay needs --events URI and/or --openmetrics FILE")
    if args.start is not None and args.from_offset is not None:
        raise ConfigError("give --from or --from-offset, not both")
    if args.end is not None and args.to_offset is not None:
        raise ConfigError("give --to or --to-offset, not both")
    try:
        spec = parse_source_uri(f"kafka://{args.bootstrap}/{args.topic}")
        rng = ReplayRange(
            start_time=None if args.start is None else parse_timestamp(args.start),
            end_time=None if args.end is None else parse_timestamp(args.end),
            start_offset=args.from_offset,
            end_offset=args.to_offset,
        )
        events = None if args.events is None else parse_sink_uri(args.events)
        dead_letter = parse_sink_uri(args.dead_letter)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not 0.001 <= args.step <= 300:
        raise ConfigError("--step must be between 0.001 and 300 seconds")
    if args.stall_timeout <= 0:
        raise ConfigError("--stall-timeout must be positive")
    _check_range(rng)
    settings = load_settings(args.config, **_overrides(args))
    logs.configure(settings.log.level, settings.log.format)
    assert isinstance(spec, KafkaSpec)
    req = ReplayRequest(
        bootstrap=spec.bootstrap,
        topic=args.topic,
        range=rng,
        events=events,
        dead_letter=dead_letter,
        openmetrics=args.openmetrics,
        step_s=args.step,
        backfill_id=args.backfill_id,
        stall_s=args.stall_timeout,
    )
    print(asyncio.run(replay_topic(settings, req)), file=sys.stderr)
    return EXIT_OK


_YEAR_5000 = 95_617_584_000.0


def _check_range(rng: ReplayRange) -> None:
    """Refuse ranges that can only be mistakes (they would replay nothing, with exit 0)."""
    for flag, t in (("--from", rng.start_time), ("--to", rng.end_time)):
        if t is not None and not 0 <= t < _YEAR_5000:
            hint = " (epoch milliseconds? give seconds)" if t >= _YEAR_5000 else ""
            raise ConfigError(f"{flag} is out of range{hint}")
    if rng.start_time is not None and rng.end_time is not None and rng.end_time <= rng.start_time:
        raise ConfigError("--to must be later than --from")
    for flag, n in (("--from-offset", rng.start_offset), ("--to-offset", rng.end_offset)):
        if n is not None and n < 0:
            raise ConfigError(f"{flag} must be >= 0")
    if (
        rng.start_offset is not None
        and rng.end_offset is not None
        and rng.end_offset <= rng.start_offset
    ):
        raise ConfigError("--to-offset must be greater than --from-offset")


def _cmd_check_config(args: argparse.Namespace) -> int:
    from .config import load_settings

    settings = load_settings(args.config, **_overrides(args))
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from .events import event_json_schema
    from .feedback import feedback_json_schema
    from .trace import Trace

    make = {
        "trace": Trace.model_json_schema,
        "event": event_json_schema,
        "feedback": feedback_json_schema,
    }[args.which]
    print(json.dumps(make(), indent=2))
    return EXIT_OK


_COMMANDS = {
    "run": _cmd_run,
    "score": _cmd_score,
    "replay": _cmd_replay,
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
    except Terminated as exc:
        print(f"rag-sidecar: {exc}", file=sys.stderr)
        return EXIT_TERMINATED
    except SidecarError as exc:
        print(f"rag-sidecar: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
