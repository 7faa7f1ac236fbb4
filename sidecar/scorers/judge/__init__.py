"""The LLM judge: faithfulness, relevance and context quality of sampled traces.

One request per judged trace to any OpenAI-compatible chat-completions endpoint
(:class:`JudgeClient`), a versioned prompt (:mod:`.prompts`), strict parsing
(:mod:`.parse`), verification of everything code can check (:mod:`.verify`),
scores (:mod:`.scoring`), a budget (:mod:`.budget`), a content-hash cache
(:mod:`.cache`) and the pipeline stage that runs it all in the background
(:class:`JudgeStage`). Metrics: :mod:`.metrics`. Several judges (primary, shadow,
escalation) sit behind one :class:`JudgeRouter`, with canaries (:mod:`.canary`) and
agreement between judges and with user feedback (:mod:`.agreement`).
"""

from __future__ import annotations

from .agreement import AgreementTracker, auroc, cohen_kappa, pair_stats
from .breaker import CircuitBreaker
from .budget import Budget, is_priority
from .cache import LruCache, content_key
from .canary import CANARY_APP, Canary, CanaryMetrics, CanaryRunner, is_canary, load_canaries
from .client import Completion, JudgeClient, parse_retry_after
from .metrics import REQUEST_OUTCOMES, SKIP_REASONS, JudgeMetrics
from .parse import JudgeReply, parse_reply
from .prompts import JudgeInput, PromptSet, judge_version, load_prompts, prepare_input
from .router import JudgeRouter, build_judge, check_judges, escalation_reasons, judge_list
from .scorer import Judgement, JudgeScorer, Ledger
from .scoring import JUDGE_FLAGS, JUDGE_METRICS, compute_scores, ndcg_at_k, precision_at_k
from .settings import (
    AgreementSettings,
    BreakerSettings,
    CanarySettings,
    EscalationSettings,
    JudgeSettings,
    JudgeTimeouts,
    RubricSettings,
)
from .stage import JudgeStage
from .verify import CheckedClaim, CheckedFact, verify

__all__ = [
    "CANARY_APP",
    "JUDGE_FLAGS",
    "JUDGE_METRICS",
    "REQUEST_OUTCOMES",
    "SKIP_REASONS",
    "AgreementSettings",
    "AgreementTracker",
    "BreakerSettings",
    "Budget",
    "Canary",
    "CanaryMetrics",
    "CanaryRunner",
    "CanarySettings",
    "CheckedClaim",
    "CheckedFact",
    "CircuitBreaker",
    "Completion",
    "EscalationSettings",
    "JudgeClient",
    "JudgeInput",
    "JudgeMetrics",
    "JudgeReply",
    "JudgeRouter",
    "JudgeScorer",
    "JudgeSettings",
    "JudgeStage",
    "JudgeTimeouts",
    "Judgement",
    "Ledger",
    "LruCache",
    "PromptSet",
    "RubricSettings",
    "auroc",
    "build_judge",
    "check_judges",
    "cohen_kappa",
    "compute_scores",
    "content_key",
    "escalation_reasons",
    "is_canary",
    "is_priority",
    "judge_list",
    "judge_version",
    "load_canaries",
    "load_prompts",
    "ndcg_at_k",
    "pair_stats",
    "parse_reply",
    "parse_retry_after",
    "precision_at_k",
    "prepare_input",
    "verify",
]
