"""A llama.cpp OpenAI-compatible server for the real-LLM test and the judge benchmarks.

``scripts/llm.sh`` installs llama-cpp-python into ``.tools/llm-venv`` and the GGUF models into
``.tools/models`` (outside the product's venv; never at run time). :func:`llama_server` starts
``python -m llama_cpp.server`` on a free loopback port, waits until ``/v1/models`` answers and
stops it afterwards; it raises :class:`LlamaServerError` with the server's log tail when
something is missing or the server dies.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
LLM_PYTHON = ROOT / ".tools" / "llm-venv" / "bin" / "python"
MODELS = ROOT / ".tools" / "models"
MODEL_05B = MODELS / "qwen2.5-coder-0.5b-q4_k_m.gguf"
MODEL_15B = MODELS / "qwen2.5-coder-1.5b-q4_k_m.gguf"


class LlamaServerError(RuntimeError):
    """The server could not be started or did not become ready."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_server(
    model: Path, *, n_ctx: int = 4096, threads: int = 2, ready_s: float = 180.0
) -> Iterator[str]:
    """Serve ``model`` as ``judge`` on a free port; yields the ``/v1`` base URL."""
    for need in (LLM_PYTHON, model):
        if not need.is_file():
            raise LlamaServerError(f"{need} missing: run scripts/llm.sh")
    port = _free_port()
    args = [
        str(LLM_PYTHON), "-m", "llama_cpp.server", "--model", str(model),
        "--model_alias", "judge", "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--n_threads", str(threads),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

        def tail() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")[-3000:]

        try:
            deadline = time.monotonic() + ready_s
            while True:
                if proc.poll() is not None:
                    raise LlamaServerError(f"llama server exited {proc.returncode}:\n{tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise LlamaServerError(f"llama server not ready within {ready_s:.0f} s")
                time.sleep(0.25)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
