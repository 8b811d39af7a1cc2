"""Per-sample context handed to tasks: model calls by role, recorded as exchanges."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from harness.backends.base import Backend
from harness.errors import BackendError, GenerationFailed, NoAnswer
from harness.types import (
    AnswerMode,
    Choice,
    Completion,
    Exchange,
    GenerateConfig,
    Message,
    Request,
    Usage,
    is_judge_role,
    messages_hash,
)

if TYPE_CHECKING:
    from harness.budget import Budget
    from harness.cache import ResponseCache


class RoleClient:
    """One model role (model, judge, simulator): backend + cache namespace + concurrency + token tally."""

    def __init__(
        self,
        role: str,
        backend: Backend,
        config: GenerateConfig,
        cache: "ResponseCache | None" = None,
        answer_mode: AnswerMode = "free",
    ):
        self.role = role
        self.backend = backend
        self.config = config
        self.cache = cache
        self.answer_mode = answer_mode  # how this role answers choice questions (--answer-mode)
        limit = backend.max_in_flight()
        self._limit = asyncio.Semaphore(limit) if limit else None
        self.usage = Usage()
        self.calls = 0
        self.cache_hits = 0
        self.retries = 0
        self.budget: Budget | None = None  # the run's --budget-usd, shared by every role

    def cache_key(self, request: Request, extra: dict | None = None) -> dict:
        key = {
            "namespace": self.role,
            "backend": self.backend.identity(),
            "task": request.task,
            "sample_id": request.sample_id,
            "repetition": request.repetition,
            "purpose": request.purpose,
            "messages": [m.model_dump() for m in request.messages],
            "config": request.config.model_dump(),
        }
        if extra:
            key["extra"] = extra
        if request.choice is not None and request.answer_mode != "free":  # free answers keep their old keys
            key["choice"] = request.choice.model_dump(exclude_none=True)
            key["answer_mode"] = request.answer_mode
        return key

    async def complete(self, request: Request, cache_extra: dict | None = None) -> Completion:
        """Cached generation; errors propagate and are never cached. `cache_extra` joins the key."""
        key = self.cache_key(request, cache_extra) if self.cache is not None else None
        if key is not None and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.cache_hits += 1
                return hit.model_copy(update={"cached": True})
        self.calls += 1
        booking = self.budget.reserve(self.role, request, self.backend.options.batch) if self.budget else None
        completion = None
        try:
            completion = await self._send(request)
        except BackendError as exc:
            self.retries += len(exc.retries)
            raise
        finally:
            if self.budget is not None and booking is not None:
                self.budget.settle(booking, self.role, completion)
        self.retries += len(completion.retries)
        self.usage = self.usage + completion.usage
        check_answer(completion, self.backend.reasoning)
        if key is not None and self.cache is not None:
            self.cache.put(key, completion)
        return completion

    async def _send(self, request: Request) -> Completion:
        if self._limit is None:
            return await self.backend.generate(request)
        async with self._limit:
            return await self.backend.generate(request)


def check_answer(completion: Completion, reasoning_model: bool) -> None:
    """NoAnswer when a completion has no final answer: cut off by the token limit before any answer, or
    empty from a reasoning model (or after reasoning text). A plain empty answer of another model stays an
    answer (the benchmarks' convention, e.g. XSTest: empty = refusal); a content filter's stop too."""
    if completion.text.strip() or completion.finish_reason == "content_filter":
        return
    if completion.finish_reason == "length":
        raise NoAnswer(
            "no final answer: the token limit was reached"
            + (" while the model was reasoning" if completion.reasoning else ""),
            completion,
        )
    if reasoning_model or completion.reasoning:
        raise NoAnswer("empty answer after reasoning", completion)


class SampleContext:
    """What a task sees while solving and scoring one (sample, repetition)."""

    def __init__(
        self,
        task: str,
        sample_id: str,
        repetition: int,
        roles: dict[str, RoleClient],
        seed: int | None = None,
        exchanges: list[Exchange] | None = None,
        refusal_scorer: str = "rules",
        task_config: GenerateConfig | None = None,
        reuse: list[Exchange] | None = None,
    ):
        """`reuse`: exchanges of an earlier, failed attempt at this sample; a call identical to one of
        them that succeeded (same role, purpose and messages) gets its stored answer instead of a new one."""
        self.task = task
        self.sample_id = sample_id
        self.repetition = repetition
        self.roles = roles
        self.seed = seed
        self.exchanges: list[Exchange] = exchanges if exchanges is not None else []
        self.refusal_scorer = refusal_scorer  # rules | judge | hybrid (see harness.judging.refusal)
        self.task_config = task_config or GenerateConfig()  # the task's defaults for the model under test
        self._reusable: dict[tuple[str, str, str], list[Completion]] = {}
        for ex in reuse or []:
            if ex.error is None and ex.completion is not None:
                self._reusable.setdefault(_call_key(ex.role, ex.purpose, ex.messages), []).append(ex.completion)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def judges(self) -> list[str]:
        """Names of the judge roles of this run, in --judge order."""
        return [name for name in self.roles if is_judge_role(name)]

    def effective_config(self, role: str, config: GenerateConfig | None = None) -> GenerateConfig:
        """The generation config a call to `role` sends: `config` (for the model under test by default the
        task's `generate_config`), overridden by what the user set for the role (e.g. --max-tokens), plus a
        per-repetition seed."""
        if config is None:
            config = self.task_config if role == "model" else GenerateConfig()
        cfg = config.merged(self.roles[role].config)
        if cfg.seed is None and self.seed is not None:
            cfg = cfg.model_copy(update={"seed": self.seed + self.repetition})
        return cfg

    async def generate(
        self,
        messages: list[Message],
        *,
        role: str = "model",
        purpose: str = "response",
        config: GenerateConfig | None = None,
        cache_extra: dict | None = None,
        choice: Choice | None = None,
    ) -> Completion:
        """Call the model playing `role`; the call is stored as an exchange of this sample.

        `cache_extra` adds to the cache key what the messages do not show (e.g. a judge template hash).
        `choice` states the allowed answers of a choice question: the role's answer mode (free, constrained,
        logprob) then decides how the backend answers it.
        """
        client = self.roles.get(role)
        if client is None:
            raise GenerationFailed(f"no model given for role '{role}' (pass --{role})")
        cfg = self.effective_config(role, config)
        mode = client.answer_mode if choice is not None else "free"
        budget = choice.token_budget() if choice is not None and mode != "free" else None
        if budget is not None and cfg.max_tokens is not None and cfg.max_tokens < budget:
            cfg = cfg.model_copy(update={"max_tokens": budget})  # a task's short budget must not cut an option
        request = Request(
            messages=messages,
            config=cfg,
            task=self.task,
            sample_id=self.sample_id,
            repetition=self.repetition,
            purpose=purpose,
            choice=choice,
            answer_mode=mode,
        )
        exchange = Exchange(role=role, purpose=purpose, messages=messages)
        self.exchanges.append(exchange)
        stored = self._reusable.get(_call_key(role, purpose, messages))
        if stored:
            exchange.completion = stored.pop(0)
            return exchange.completion
        started = time.perf_counter()
        try:
            completion = await client.complete(request, cache_extra)
        except NoAnswer as exc:
            exchange.error, exchange.completion = str(exc), exc.completion
            raise GenerationFailed(f"{role} call '{purpose}' gave no answer: {exc}", kind=exc.kind) from exc
        except BackendError as exc:
            exchange.error = str(exc)
            exchange.completion = Completion(
                text="",
                model=client.backend.model,
                retries=exc.retries,
                latency_s=time.perf_counter() - started,
            )
            raise GenerationFailed(f"{role} call '{purpose}' failed: {exc}") from exc
        exchange.completion = completion
        return completion

    def response(self, purpose: str = "response") -> str | None:
        """Text of the model-under-test's completion for `purpose`, if any."""
        for ex in self.exchanges:
            if ex.role == "model" and ex.purpose == purpose and ex.completion is not None and ex.error is None:
                return ex.completion.text
        return None


def _call_key(role: str, purpose: str, messages: list[Message]) -> tuple[str, str, str]:
    return role, purpose, messages_hash(messages)
