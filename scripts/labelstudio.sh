#!/usr/bin/env bash
# Installs Label Studio (a Django server with SQLite) into its own venv, .tools/ls-venv, for the
# human-review export's integration test (tests/integration/test_labelstudio.py). Its pins
# (pyarrow, opencv, pandas, ~1 GB) stay out of the project's .venv. Idempotent: does nothing
# once the pinned version is installed.
# Usage: scripts/labelstudio.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=1.23.2
VENV="$ROOT/.tools/ls-venv"
STAMP="$VENV/.installed-label-studio-$VERSION"
PY="${PYTHON:-python3}"
[ -f "$STAMP" ] && [ -x "$VENV/bin/label-studio" ] && exit 0

echo "==> installing label-studio==$VERSION into .tools/ls-venv (~1.5 min)" >&2
rm -rf "$VENV"
"$PY" -m venv "$VENV"
log="$ROOT/.tools/ls-install.log"
if ! "$VENV/bin/python" -m pip install -q "label-studio==$VERSION" >"$log" 2>&1; then
  cat "$log" >&2
  echo "label-studio install failed (log above, also in $log)" >&2
  exit 1
fi
# Importing Django's settings is the cheapest check that the install works (no server start).
"$VENV/bin/python" -c 'import label_studio, django; print(label_studio.__version__)' >/dev/null
touch "$STAMP"
