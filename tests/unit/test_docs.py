"""The README documents every score, flag and metric name the code emits."""

from __future__ import annotations

from pathlib import Path

from sidecar.errors import REASONS
from sidecar.scorers.heuristics.registry import FLAGS, METRICS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_score_flag_and_reason_is_documented() -> None:
    missing = [n for n in [*METRICS, *FLAGS, *REASONS] if f"`{n}`" not in README]
    assert not missing, f"undocumented in README: {missing}"


def test_readme_commands_exist() -> None:
    root = Path(__file__).resolve().parents[2]
    assert "./scripts/demo" in README and (root / "scripts/demo").is_file()
    assert "./scripts/test" in README and (root / "scripts/test").is_file()
    assert "scripts/test" in (root / ".ci/run").read_text()


def test_judge_scores_and_flags_are_documented() -> None:
    from sidecar.scorers.judge import JUDGE_FLAGS, JUDGE_METRICS

    missing = [n for n in [*JUDGE_METRICS, *JUDGE_FLAGS] if f"`{n}`" not in README]
    assert not missing, f"undocumented in README: {missing}"
