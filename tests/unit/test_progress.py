"""The progress line: redrawn in place on a terminal, plain periodic lines elsewhere."""

from __future__ import annotations

import io

from sidecar.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_line() -> None:
    out = Tty()
    p = Progress(10, label="replaying ", stream=out, interval=0)
    p.advance(4)
    p.advance(6)
    p.close()
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "10/10 (100.0%)" in text


def test_a_log_gets_plain_lines_every_log_interval() -> None:
    out = io.StringIO()
    p = Progress(100, label="replaying ", stream=out, log_interval=3600)
    p.advance(1)  # the first line at once, so a Job's log shows it started
    for _ in range(50):
        p.advance(1)  # within the hour: no more lines
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert lines[0].startswith("replaying 1/100") and lines[1].startswith("replaying 51/100")
    assert "ETA" in lines[1]


def test_more_than_the_estimate_says_so_instead_of_105_percent() -> None:
    """The total is the brokers' end offsets, which some under-report (tansu)."""
    p = Progress(284, label="replaying ", stream=io.StringIO())
    p.advance(301)
    line = p.line()
    assert line.startswith("replaying 301 (past the estimated 284)") and "%" not in line
