"""Generate the rag-sidecar Grafana dashboards (Grafana JSON model) from code.

    python dashboards/generate.py            # (re)write dashboards/*.json
    python dashboards/generate.py --check    # exit 1 if the committed JSON is stale

Built with grafana-foundation-sdk (the 11.6 build: schemaVersion 41); the boards are defined in
the ``_boards`` package next to this file. The output is deterministic: panel ids are assigned
in order, keys are sorted, nothing depends on time. Every query goes to the ``$datasource``
variable (type prometheus). The quality variables ``app``, ``model`` and ``prompt_version`` are
multi-value, so every selector uses ``=~``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _boards, also when loaded by path

from _boards import DASHBOARDS, build_all, render

__all__ = ["DASHBOARDS", "build_all", "main", "render"]

HERE = Path(__file__).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the JSON files are stale")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build_all().items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)} (run python dashboards/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
