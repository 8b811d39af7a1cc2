"""Core data types passed between tasks, backends, scorers and the run store."""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]


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


class Request(BaseModel):
    """What a task asks a model for; identifies the sample so replay and caching can key on it."""

    messages: list[Message]
    config: GenerateConfig = Field(default_factory=GenerateConfig)
    task: str | None = None
    sample_id: str | None = None
    repetition: int = 0
    purpose: str = "response"  # e.g. "response", "benign", "judge:refusal", "turn-3"

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
    error_kind: str | None = None  # "generation" (model call), "truncated" (no final answer), "judge", "simulator", "scoring" or "task"
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


class Metric(BaseModel):
    """A headline number with its 95% interval."""

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
