"""Scorers: cheap heuristics on every trace, an LLM judge on a sample."""
