"""Core data types passed between tasks, backends, scorers and the run store."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

Role = Literal["system", "user", "assistant"]
AnswerMode = Literal["free", "constrained", "logprob"]
ALL_ANSWER_MODES: frozenset[str] = frozenset({"free", "constrained", "logprob"})


class Message(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(frozen=True)
    role: Role
    content: str


class GenerateConfig(BaseModel):
    """Sampling settings shared by every backend; None means 'backend default'."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    n: int = 1

    def merged(self, override: "GenerateConfig | None") -> "GenerateConfig":
        """Return a copy where every field set in `override` replaces ours."""
        if override is None:
            return self
        data = self.model_dump()
        data.update(override.model_dump(exclude_unset=True, exclude_none=True))
        return GenerateConfig(**data)


class Choice(BaseModel):
    """The allowed answers of a choice question, in one of three forms: the exact option strings (each one a
    whole answer the task's parser reads, e.g. "Yes" / "No"); a regular expression the answer must match in
    full (answers too many to list, e.g. one Y/N letter per rubric question); or a JSON schema the whole answer
    follows (structured verdicts, e.g. a score per strategy). Only options can be scored by log-probability."""

    model_config = ConfigDict(frozen=True)
    options: tuple[str, ...] | None = None
    regex: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    @model_validator(mode="after")
    def _one_form(self) -> "Choice":
        if sum(form is not None for form in (self.options, self.regex, self.schema_)) != 1:
            raise ValueError("a Choice has exactly one of options, regex or schema")
        if self.options is not None and (len(self.options) < 2 or len(set(self.options)) < len(self.options)):
            raise ValueError("a Choice needs at least two distinct options")
        return self

    def token_budget(self) -> int | None:
        """Tokens enough to spell any option, even wrapped as {"answer": ...} and one byte per token (a
        grammar may force a model through short tokens); None for a regex choice."""
        if self.options is None:
            return None
        return max(len(json.dumps({"answer": option}, ensure_ascii=False).encode()) for option in self.options) + 1

    def json_schema(self) -> dict[str, Any]:
        """JSON schema for servers that constrain by schema: the schema choice itself, else that of the answer
        object {"answer": <option>}."""
        if self.schema_ is not None:
            return self.schema_
        answer: dict[str, Any] = {"type": "string"}
        if self.options is not None:
            answer["enum"] = list(self.options)
        else:
            answer["pattern"] = f"^(?:{self.regex})$"
        return {
            "type": "object",
            "properties": {"answer": answer},
            "required": ["answer"],
            "additionalProperties": False,
        }


class Request(BaseModel):
    """What a task asks a model for; identifies the sample so replay and caching can key on it."""

    messages: list[Message]
    config: GenerateConfig = Field(default_factory=GenerateConfig)
    task: str | None = None
    sample_id: str | None = None
    repetition: int = 0
    purpose: str = "response"  # e.g. "response", "benign", "judge:refusal", "turn-3"
    choice: Choice | None = None  # the allowed answers, when the question is a choice question
    answer_mode: AnswerMode = "free"  # how a choice question is answered (the role's --answer-mode)

    def prompt_hash(self) -> str:
        """Stable hash of the rendered messages alone (used by replay files)."""
        return messages_hash(self.messages)


def messages_hash(messages: list[Message]) -> str:
    payload = json.dumps([m.model_dump() for m in messages], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def is_judge_role(role: str) -> bool:
    """Judge roles are named judge, judge2, judge3, ... (one per --judge model, in order)."""
    return re.fullmatch(r"judge\d*", role) is not None


def judge_role(index: int) -> str:
    """The role name of the index-th --judge model (0 -> judge, 1 -> judge2, ...)."""
    return "judge" if index == 0 else f"judge{index + 1}"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0  # the part of completion_tokens spent reasoning (as OpenAI reports it)

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class Completion(BaseModel):
    """A model's answer with its cost and timing."""

    text: str  # the final answer only: reasoning never lands here
    reasoning: str | None = None  # a reasoning model's thinking (reasoning_content or <think>...</think>)
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: str | None = None
    retries: list[str] = Field(default_factory=list)  # one entry per failed attempt that was retried
    cached: bool = False
    batch: bool = False  # answered through a provider's batch API (billed at the batch price)
    answer_mode: AnswerMode = "free"  # how this answer was produced (see Request.answer_mode)
    # logprob mode: each option's log-probability (None: below the top logprobs the API returned)
    option_logprobs: dict[str, float | None] | None = None

    @computed_field  # type: ignore[prop-decorator]  # stored in records beside the logprobs
    @property
    def option_probs(self) -> dict[str, float] | None:
        """Each option's probability, renormalised over the options (logprob mode only)."""
        return option_probs(self.option_logprobs) if self.option_logprobs else None


def option_probs(logprobs: dict[str, float | None]) -> dict[str, float]:
    """Softmax of the options' log-probabilities; an option without one (None) gets 0."""
    known = [lp for lp in logprobs.values() if lp is not None]
    if not known:
        return {option: 1.0 / len(logprobs) for option in logprobs}
    top = max(known)
    weights = {option: 0.0 if lp is None else math.exp(lp - top) for option, lp in logprobs.items()}
    total = sum(weights.values())
    return {option: w / total for option, w in weights.items()}


class Sample(BaseModel):
    """One dataset item after loading and validation."""

    id: str
    input: str | list[Message]
    target: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Score(BaseModel):
    """One scorer's verdict on one response; `error` set means 'no verdict' (excluded from rates)."""

    value: float | str | None = None
    label: str | None = None
    explanation: str | None = None
    raw: Any = None
    error: str | None = None
    scorer: str = ""


class Exchange(BaseModel):
    """One model call made while solving a sample: what was sent and what came back."""

    role: str  # model role: "model", "judge", "simulator"
    purpose: str
    messages: list[Message]
    completion: Completion | None = None
    error: str | None = None


class Record(BaseModel):
    """The final, append-only result for one (task, sample, repetition)."""

    task: str
    sample_id: str
    repetition: int = 0
    exchanges: list[Exchange] = Field(default_factory=list)
    scores: dict[str, Score] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = (
        None  # "generation" (model call), "truncated" (no final answer), "judge", "simulator", "scoring" or "task"
    )
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.task, self.sample_id, self.repetition)

    def response(self, purpose: str = "response") -> str | None:
        """Text of the first model-role completion with this purpose."""
        for ex in self.exchanges:
            if ex.role == "model" and ex.purpose == purpose and ex.completion is not None:
                return ex.completion.text
        return None


class Bound(BaseModel):
    """A one-sided result: the data give no point estimate but put the value above (or below) `at`, e.g. a
    price when every offer up to 1000 EUR was declined (the spec's '>max')."""

    side: Literal["above", "below"]
    at: float

    def text(self) -> str:
        """'>1000' or '<0.1'."""
        return f"{'>' if self.side == 'above' else '<'}{self.at:.4g}"


def stored_bound_text(metric: dict[str, Any]) -> str | None:
    """The bound of a metric as stored in summary.json ('>1000'), or None when it has none."""
    return Bound.model_validate(metric["bound"]).text() if metric.get("bound") else None


class Metric(BaseModel):
    """A headline number with its 95% interval (or, without a point estimate, possibly a `bound`)."""

    name: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0  # independent units the interval is over: samples (a sample's repetitions count once)
    records: int | None = None  # per-record values behind a mean-type metric (n x repetitions, less exclusions)
    repeated: int | None = None  # samples with two or more per-record values (None: no repeats)
    consistency: float | None = None  # % of the repeated samples whose repetitions all agree
    direction: Literal["lower", "higher", "none"] = "none"  # which way is better
    unit: str = "%"
    note: str | None = None
    bound: Bound | None = None  # only when value is None: what the data still say (censored results)

    @property
    def has_result(self) -> bool:
        """A point estimate or a bound: something to show instead of 'no data'."""
        return self.value is not None or self.bound is not None
