"""Refusal scoring for any task: the 3-label scheme of specs/refusal.md as a Score."""
from __future__ import annotations

from harness.judging.refusal_rules import RULES_VERSION, classify_refusal, is_refusal
from harness.types import Score


def refusal_score(response: str) -> Score:
    """Rule-based 3-label refusal verdict; `value` is 1.0 for (full or partial) refusal."""
    label = classify_refusal(response)
    return Score(
        scorer=f"refusal_rules@{RULES_VERSION}",
        label=label,
        value=1.0 if is_refusal(label) else 0.0,
    )
