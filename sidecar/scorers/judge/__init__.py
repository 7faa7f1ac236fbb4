"""The LLM judge: faithfulness, relevance and context quality of sampled traces.

One request per judged trace to any OpenAI-compatible chat-completions endpoint
(:class:`JudgeClient`), a versioned prompt (:mod:`.prompts`), strict parsing
(:mod:`.parse`), verification of everything code can check (:mod:`.verify`),
scores (:mod:`.scoring`), a budget (:mod:`.budget`), a content-hash cache
(:mod:`.cache`) and the pipeline stage that runs it all in the background
(:class:`JudgeStage`). Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

from .breaker import CircuitBreaker
from .budget import Budget, is_priority
from .cache import LruCache, content_key
from .client import Completion, JudgeClient, parse_retry_after
from .metrics import REQUEST_OUTCOMES, SKIP_REASONS, JudgeMetrics
from .parse import JudgeReply, parse_reply
from .prompts import JudgeInput, PromptSet, judge_version, load_prompts, prepare_input
from .scorer import Judgement, JudgeScorer, Ledger
from .scoring import JUDGE_FLAGS, JUDGE_METRICS, compute_scores, ndcg_at_k, precision_at_k
from .settings import BreakerSettings, JudgeSettings, JudgeTimeouts, RubricSettings
from .stage import JudgeStage
from .verify import CheckedClaim, CheckedFact, verify

__all__ = [
    "JUDGE_FLAGS",
    "JUDGE_METRICS",
    "REQUEST_OUTCOMES",
    "SKIP_REASONS",
    "BreakerSettings",
    "Budget",
    "CheckedClaim",
    "CheckedFact",
    "CircuitBreaker",
    "Completion",
    "JudgeClient",
    "JudgeInput",
    "JudgeMetrics",
    "JudgeReply",
    "JudgeScorer",
    "JudgeSettings",
    "JudgeStage",
    "JudgeTimeouts",
    "Judgement",
    "Ledger",
    "LruCache",
    "PromptSet",
    "RubricSettings",
    "compute_scores",
    "content_key",
    "is_priority",
    "judge_version",
    "load_prompts",
    "ndcg_at_k",
    "parse_reply",
    "parse_retry_after",
    "precision_at_k",
    "prepare_input",
    "verify",
]
