"""The scorer contract shared by every heuristic family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..trace import Trace


@dataclass(slots=True)
class Scores:
    """What the scorers found for one trace: named values and flags.

    ``values`` maps a snake_case metric name to a float (see the README's score
    table); ``flags`` lists snake_case flag names, each at most once.
    """

    values: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    def flag(self, name: str) -> None:
        """Raise a flag (idempotent)."""
        if name not in self.flags:
            self.flags.append(name)


class HeuristicScorer(Protocol):
    """A pure, synchronous scorer: no I/O, no shared mutable state but caches."""

    name: str

    def score(self, trace: Trace, out: Scores) -> None:
        """Add this family's values and flags for ``trace`` to ``out``."""
        ...
