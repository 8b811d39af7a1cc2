"""Answering choice questions the non-free ways: grammars for constrained decoding, and option scores from
token log-probabilities (shared by the llama.cpp, vLLM and OpenAI backends)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from harness.errors import BackendError
from harness.types import AnswerMode, Choice, Completion, Request


def gbnf(choice: Choice) -> str:
    """A llama.cpp GBNF grammar admitting exactly the choice's options or regex. A regex must use only what
    GBNF and regular expressions share (literals, character classes, {m,n} repetition)."""
    if choice.options is None:
        return f"root ::= {choice.regex}\n"
    return "root ::= " + " | ".join(json.dumps(option, ensure_ascii=False) for option in choice.options) + "\n"


def constraint(choice: Choice) -> tuple[str, Any]:
    """The choice as vLLM's structured-output kind and value: ("choice", [...]), ("regex", ...) or ("json", ...)."""
    if choice.options is not None:
        return "choice", list(choice.options)
    if choice.regex is not None:
        return "regex", choice.regex
    return "json", choice.schema_


def scored_mode(request: Request) -> AnswerMode:
    """The mode a backend uses for `request`: a regex choice cannot be scored option by option, so logprob
    falls back to constrained there; no choice means free."""
    if request.choice is None:
        return "free"
    if request.answer_mode == "logprob" and request.choice.options is None:
        return "constrained"
    return request.answer_mode


def best_option(logprobs: dict[str, float | None]) -> str:
    """The option with the highest log-probability (the first one on ties)."""

    def score(option: str) -> float:
        value = logprobs[option]
        return -math.inf if value is None else value

    return max(logprobs, key=score)


def scored_completion(logprobs: dict[str, float | None], model: str, **fields: Any) -> Completion:
    """A logprob-mode Completion: the argmax option as the answer, every option's logprob kept."""
    return Completion(
        text=best_option(logprobs),
        model=model,
        answer_mode="logprob",
        option_logprobs=logprobs,
        finish_reason="stop",
        **fields,
    )


def continuation_tokens(context: Sequence[int], full: Sequence[int]) -> int:
    """Where an option's tokens start in `full` (prompt + option): after the longest common prefix with the
    prompt's own tokens (a boundary token the option merged into counts as the option's)."""
    shared = 0
    for a, b in zip(context, full):
        if a != b:
            break
        shared += 1
    if shared == len(full):
        raise BackendError("an answer option adds no tokens to the prompt")
    return shared


def top_logprob_scores(options: Sequence[str], tokens: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each option's log-probability from a chat completion's `logprobs.content` (token, logprob,
    top_logprobs per generated position), where only the top logprobs exist.

    The generated tokens are followed while they spell a prefix of the option; at the first position where the
    option leaves the generated path, the top alternatives that continue the option are added (their
    logprobs summed). An option already complete on the path gets the path's logprob up to there. An option
    none of whose continuing tokens is among the top logprobs gets None (its probability is below them).
    Leading whitespace of the answer is ignored."""
    scores: dict[str, float | None] = {}
    for option in options:
        spelled, path = "", 0.0
        score: float | None = None
        for position in tokens:
            alternatives = [
                alt for alt in position.get("top_logprobs") or [] if _continues(spelled, alt["token"], option)
            ]
            token = position["token"]
            if not _continues(spelled, token, option):
                if alternatives:
                    score = path + math.log(sum(math.exp(alt["logprob"]) for alt in alternatives))
                break
            path += position["logprob"]
            spelled = (spelled + token).lstrip()
            if spelled.startswith(option):
                score = path
                break
        scores[option] = score
    return scores


def _continues(spelled: str, token: str, option: str) -> bool:
    """Does `token`, after the text `spelled` so far, keep spelling `option` (or complete it)?"""
    text = (spelled + token).lstrip()
    if not text:
        return bool(token) and not spelled  # leading whitespace before the answer
    return option.startswith(text) or (text.startswith(option) and not text[len(option) : len(option) + 1].isalnum())
