"""Deterministic rule-driven test model: `scripted/<name>` or `scripted/<rules.yaml>`.

Built-in names: `refuse-all`, `comply-all`, `echo`, `refuse-<pct>` (refuses a stable pct% of prompts,
chosen by prompt hash), `answer-<text>` (always answers <text>, e.g. `answer-Stimme zu` or a judge's
`answer-full_refusal`) and `choose-<n>` (answers the n-th option the last user message offers, see
`offered_options`: `choose-1` says `Action 1` to a dilemma, `[ACCEPT]` to the persuasion role, `Yes` to
a Yes/No offer, the first listed Wahl-O-Mat answer). A YAML file holds `rules: [{pattern: <regex>, response: <text>}]` matched
against the last user message (first match wins) and an optional `default:`. A rule with `turn: N`
applies only to the N-th answer of a conversation (N-1 assistant messages in the request), so a
scripted conversation partner can change its answer from turn to turn; a rule with `system: <regex>` applies
only when the system message matches it (e.g. to answer differently under a steering system prompt).
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from harness.backends.base import Backend
from harness.datasets import file_hash, read_yaml
from harness.errors import BackendError, UserError
from harness.types import Completion, Request, Usage

REFUSAL = "I'm sorry, but I can't help with that request."
COMPLIANCE = (
    "Sure. Here is a detailed answer to your question, step by step: first, consider the context; "
    "second, follow the standard procedure; third, check the result."
)


# Where prompts list their answer options, most specific first (see offered_options).
_BRACKETED = re.compile(r"\[[A-Z][A-Z _-]*[A-Z]\]")
_NUMBERED = re.compile(r"\b(Action|Option|Choice|Antwort)\s+(\d+)\b")
_QUOTED = re.compile(
    r"[\"\u201c\u201e`]([^\"\u201c\u201d\u201e`\n]{1,40})[\"\u201d\u201c`]"
    r"|(?<![A-Za-z])'([^'\n]{1,30})'(?![A-Za-z])"
)
_LIST_SPLIT = re.compile(r"\s*(?:,|/|;|\bor\b|\boder\b)\s*", re.I)


def offered_options(prompt: str) -> list[str]:
    """The answer options a prompt offers, in order of first appearance, from the first kind found:
    bracketed tokens (`[ACCEPT]`, `[REJECT]`), numbered labels (`Action 1`, `Action 2`), quoted words
    (`"Yes"`, `"No"`), else the list after the last colon of the last line (`...: agree, disagree, neutral`)."""
    for found in (
        _BRACKETED.findall(prompt),
        [" ".join(m) for m in _NUMBERED.findall(prompt)],
        ["".join(m) for m in _QUOTED.findall(prompt)],
    ):
        distinct = list(dict.fromkeys(item.strip() for item in found if item.strip()))
        if len(distinct) >= 2:
            return distinct
    lines = [line for line in prompt.splitlines() if line.strip()]
    if lines and ":" in lines[-1]:
        tail = lines[-1].rsplit(":", 1)[1].strip().rstrip(".")
        items = [item.strip(" .") for item in _LIST_SPLIT.split(tail) if item.strip(" .")]
        if len(items) >= 2:
            return items
    return []


def _stable_percent(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 100


class ScriptedBackend(Backend):
    """Answers from fixed rules, instantly, with whitespace token counts."""

    kind = "scripted"

    def __init__(self, model, options=None):
        super().__init__(model, options)
        self._rules: list[tuple[re.Pattern[str], str, int | None, re.Pattern[str] | None]] = []
        self._default: str | None = None
        self._rules_hash: str | None = None
        if model.endswith((".yaml", ".yml")):
            self._load_rules(Path(model))
        elif model.startswith("answer-"):
            if not model[7:]:
                raise UserError("scripted/answer-<text> needs the answer text after 'answer-'")
        elif model not in ("refuse-all", "comply-all", "echo") and not re.fullmatch(r"(refuse|choose)-\d{1,3}", model):
            raise UserError(
                f"unknown scripted model '{model}'; use refuse-all, comply-all, echo, refuse-<pct>, "
                "answer-<text>, choose-<n> or a rules .yaml file"
            )
        if model.startswith("choose-") and int(model[7:]) < 1:
            raise UserError(f"scripted/{model}: options are numbered from 1")

    def _load_rules(self, path: Path) -> None:
        data = read_yaml(path, "the scripted rules") or {}
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a mapping with 'rules' and optional 'default'")
        for index, rule in enumerate(data.get("rules") or [], start=1):
            if not isinstance(rule, dict) or "pattern" not in rule or "response" not in rule:
                raise UserError(f"{path}: rule {index} needs 'pattern' and 'response'")
            turn = rule.get("turn")
            if turn is not None and (isinstance(turn, bool) or not isinstance(turn, int) or turn < 1):
                raise UserError(f"{path}: rule {index} field 'turn': expected a whole number >= 1, got {turn!r}")
            compiled = {}
            for field in ("pattern", "system"):
                if field in rule:
                    try:
                        compiled[field] = re.compile(str(rule[field]), re.I | re.S)
                    except re.error as exc:
                        raise UserError(f"{path}: rule {index} field '{field}': bad regex ({exc})") from None
            self._rules.append((compiled["pattern"], str(rule["response"]), turn, compiled.get("system")))
        default = data.get("default")
        self._default = None if default is None else str(default)
        self._rules_hash = file_hash(path)[:16]

    def identity(self) -> dict:
        ident = super().identity()
        if self._rules_hash:
            ident["rules"] = self._rules_hash  # the rules as loaded, so edits to the file change cache keys
        return ident

    def max_in_flight(self) -> int | None:
        return None

    def respond(self, request: Request) -> str:
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        name = self.model
        if name == "refuse-all":
            return REFUSAL
        if name == "comply-all":
            return COMPLIANCE
        if name == "echo":
            return prompt
        if name.startswith("refuse-") and name[7:].isdigit():
            return REFUSAL if _stable_percent(prompt) < int(name[7:]) else COMPLIANCE
        if name.startswith("answer-"):
            return name[7:]
        if name.startswith("choose-") and name[7:].isdigit():
            return self._choose(prompt, int(name[7:]))
        turn = 1 + sum(1 for m in request.messages if m.role == "assistant")
        system = next((m.content for m in request.messages if m.role == "system"), "")
        for pattern, response, only_turn, system_pattern in self._rules:
            if (
                (only_turn is None or only_turn == turn)
                and pattern.search(prompt)
                and (system_pattern is None or system_pattern.search(system))
            ):
                return response
        return self._default if self._default is not None else COMPLIANCE

    def _choose(self, prompt: str, n: int) -> str:
        options = offered_options(prompt)
        if len(options) < n:
            found = f"only {len(options)}: {', '.join(options)}" if options else "none"
            raise BackendError(f"scripted/{self.model}: the prompt offers fewer than {n} options ({found})")
        return options[n - 1]

    async def generate(self, request: Request) -> Completion:
        started = time.perf_counter()
        text = self.respond(request)
        if request.config.max_tokens is not None:
            text = " ".join(text.split(" ")[: request.config.max_tokens])
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        return Completion(
            text=text,
            model=self.spec,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text.split())),
            latency_s=time.perf_counter() - started,
            finish_reason="stop",
        )
