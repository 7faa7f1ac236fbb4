#!/usr/bin/env bash
# Installs the external programs the integration tests use, into the system (apt) or .tools/.
#   promtool + prometheus   Debian package 'prometheus'
# Usage: scripts/tools.sh [prometheus ...]   (no argument: all)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/.tools/bin"
want=("$@"); [ ${#want[@]} -eq 0 ] && want=(prometheus)

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
    *) echo "unknown tool: $tool" >&2; exit 2 ;;
  esac
done
