# Shared set-up for the project's scripts: a virtual environment with the package installed.
# Sourced, not executed. Idempotent: re-installs only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "rag-sidecar needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing rag-sidecar and its dev tools into .venv" >&2
  if ! .venv/bin/python -m pip install -e ".[dev]" >.venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "installation failed (log above, also in .venv/install.log)" >&2
    exit 1
  fi
  (cd / && "$ROOT/.venv/bin/python" -c 'import sidecar.cli') # the install must work from anywhere
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$ROOT/.tools/bin:$PATH"
