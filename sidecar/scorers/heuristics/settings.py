"""Thresholds and switches of the heuristic suite."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .registry import FAMILIES


class HeuristicsSettings(BaseModel):
    """Settings of :class:`~sidecar.scorers.heuristics.HeuristicSuite`.

    Every field but ``token_cache_size`` can change scores, so it is part of the
    suite's version.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled_families: list[str] | None = Field(
        None, description="Families to run (see the registry); null runs all."
    )
    low_retrieval_score: float | None = Field(
        0.3,
        description="Flag low_retrieval_score below this top retriever score "
        "(assumes higher is better); null disables the flag.",
    )
    low_groundedness: float = Field(
        0.5, ge=0.0, le=1.0, description="Flag low_groundedness below this groundedness_lexical."
    )
    concise_max_tokens: int = Field(
        150, ge=1, description="Answers up to this many tokens have conciseness 1."
    )
    concise_min_tokens: int = Field(
        40, ge=1, description="The query-relative length budget never drops below this."
    )
    concise_query_ratio: float = Field(
        20.0, gt=0.0, description="Length budget per query token (padding penalty)."
    )
    token_cache_size: int = Field(
        10_000,
        ge=0,
        description="Chunk texts kept tokenised (LRU; ~3 KB each for a 100-word chunk); "
        "0 disables the cache.",
    )

    @field_validator("enabled_families")
    @classmethod
    def _known_families(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = sorted(set(value) - FAMILIES.keys())
        if unknown:
            known = ", ".join(FAMILIES)
            raise ValueError(f"unknown heuristic families {unknown}; known: {known}")
        wanted = set(value)
        return [name for name in FAMILIES if name in wanted]  # canonical order, no repeats
