"""In-process vLLM backend: concurrent requests are batched into single `LLM.chat` calls on one engine
per model, shared by every role that names that model."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness.backends.arrivals import ArrivalWindow
from harness.backends.base import Backend, BackendOptions, BackendResources, split_reasoning
from harness.backends.choices import constraint, continuation_tokens, scored_completion, scored_mode
from harness.errors import BackendError, UserError
from harness.types import ALL_ANSWER_MODES, Completion, GenerateConfig, Request, Usage

INSTALL_HINT = (
    "vLLM is not installed: pip install 'harness[vllm]' (needs a CUDA GPU), "
    "or run `vllm serve <model>` and use openai/<model> --base-url http://localhost:8000/v1"
)
DEFAULT_MAX_TOKENS = 1024  # vLLM's own SamplingParams default (16) would silently truncate answers
# Engine arguments that change speed or memory but not outputs; left out of the cache identity.
PERFORMANCE_ARGS = frozenset(
    {
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "data_parallel_size",
        "gpu_memory_utilization",
        "swap_space",
        "cpu_offload_gb",
        "enforce_eager",
        "max_num_seqs",
        "max_num_batched_tokens",
        "disable_log_stats",
        "distributed_executor_backend",
    }
)
Pending = tuple[Request, "asyncio.Future[tuple[Any, float]]"]
PromptKey = tuple[int, str | None]  # (request index, answer option it continues with, or None: the prompt itself)


@dataclass
class Prompt:
    """One conversation sent to `LLM.chat`: a request's own prompt, or its prompt continued by an option."""

    key: PromptKey
    conversation: list[dict[str, str]]
    params: Any
    continuing: bool = False


@dataclass
class OptionOutputs:
    """The engine's outputs for a logprob request: its prompt alone, and its prompt continued by each option."""

    prompt: Any
    options: dict[str, Any]


def sampling_kwargs(config: GenerateConfig) -> dict[str, Any]:
    """SamplingParams keyword arguments for a GenerateConfig; None fields keep vLLM's defaults."""
    kwargs: dict[str, Any] = {
        "n": config.n,
        "max_tokens": config.max_tokens if config.max_tokens is not None else DEFAULT_MAX_TOKENS,
    }
    for name in ("temperature", "top_p", "seed", "stop"):
        value = getattr(config, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def structured_outputs(vllm: Any, request: Request) -> dict[str, Any]:
    """SamplingParams keyword restricting decoding to the request's choice: `structured_outputs=
    StructuredOutputsParams(choice=... | regex=... | json=...)` in current vLLM, `guided_decoding=GuidedDecodingParams(...)` in
    versions before 0.11 (removed in 0.12)."""
    if scored_mode(request) != "constrained" or request.choice is None:
        return {}
    kind, value = constraint(request.choice)
    module = vllm.sampling_params
    if hasattr(module, "StructuredOutputsParams"):
        return {"structured_outputs": module.StructuredOutputsParams(**{kind: value})}
    return {"guided_decoding": module.GuidedDecodingParams(**{kind: value})}


def request_prompts(vllm: Any, index: int, request: Request) -> list[Prompt]:
    """The conversations a request needs: its own (constrained if asked); for logprob mode its prompt once (for
    its token ids) and once continued by each option (the assistant's answer, `continue_final_message`), with
    `prompt_logprobs` so each option's tokens are scored."""
    conversation = [m.model_dump() for m in request.messages]
    if scored_mode(request) != "logprob":
        params = vllm.SamplingParams(**sampling_kwargs(request.config), **structured_outputs(vllm, request))
        return [Prompt((index, None), conversation, params)]
    assert request.choice is not None and request.choice.options is not None
    scoring = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
    prompts = [Prompt((index, None), conversation, scoring)]
    for option in request.choice.options:
        prompts.append(
            Prompt((index, option), [*conversation, {"role": "assistant", "content": option}], scoring, continuing=True)
        )
    return prompts


def option_logprob(prompt: Any, continued: Any) -> float:
    """Sum of the prompt logprobs of the option's tokens (those after the prompt's own tokens)."""
    ids = list(continued.prompt_token_ids)
    start = continuation_tokens(list(prompt.prompt_token_ids), ids)
    return float(sum(continued.prompt_logprobs[i][ids[i]].logprob for i in range(start, len(ids))))


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise UserError(INSTALL_HINT) from exc
    return vllm


class VLLMEngine:
    """One `vllm.LLM` and the thread that drives it; requests pending together go into one `LLM.chat`.

    A batch is flushed once no new request has arrived for `batch_window_s`; requests arriving while a
    batch runs form the next one. There is no cap on a batch: vLLM schedules it itself.
    """

    batch_window_s = 0.03

    def __init__(self, model: str, engine_args: dict[str, Any]):
        self.model, self.engine_args = model, engine_args
        self._llm: Any = None
        self._arrivals: ArrivalWindow[Pending] = ArrivalWindow(self.batch_window_s, self._run_batch, lambda p: p[1])
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vllm")

    async def generate(self, request: Request) -> tuple[Any, float]:
        """(the engine's RequestOutput for `request`, seconds its batch took); BackendError for this request
        alone, UserError when the engine cannot start."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, float]] = loop.create_future()
        self._arrivals.add((request, future))
        return await future

    async def _run_batch(self, batch: list[Pending]) -> None:
        """Generate for every request of the batch and resolve their futures."""
        started = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._chat_isolating, [request for request, _ in batch]
            )
        except UserError as exc:
            results = [UserError(str(exc)) for _ in batch]
        except Exception as exc:  # noqa: BLE001 - an engine failure (not one prompt's) fails the whole batch
            results = [BackendError(f"vLLM engine error: {type(exc).__name__}: {exc}") for _ in batch]
        latency = time.perf_counter() - started
        for (_, future), result in zip(batch, results):
            if future.done():  # the caller was cancelled
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result((result, latency))

    def _chat_isolating(self, requests: list[Request]) -> list[Any]:
        """Blocking: `LLM.chat` for all requests, one result (output or BackendError) per request.

        vLLM checks every prompt before it generates anything and rejects the whole call with a ValueError
        when one is bad (e.g. longer than max_model_len); the batch is then split in halves until the bad
        prompts stand alone, so each fails by itself and every other prompt is generated exactly once.
        Prompts continued by an answer option (logprob mode) go into a second call (other chat-template flags).
        """
        vllm = import_vllm()
        llm = self._loaded(vllm)
        results: list[Any] = [None] * len(requests)
        prompts: list[Prompt] = []
        for index, request in enumerate(requests):
            try:
                prompts += request_prompts(vllm, index, request)
            except (TypeError, ValueError) as exc:
                results[index] = BackendError(f"vLLM rejected the generation settings: {exc}")
        outputs: dict[PromptKey, Any] = {}

        def chat(part: list[Prompt], continuing: bool) -> None:
            try:
                answers = llm.chat(
                    [p.conversation for p in part],
                    sampling_params=[p.params for p in part],
                    use_tqdm=False,
                    add_generation_prompt=not continuing,
                    continue_final_message=continuing,
                )
            except ValueError as exc:
                if len(part) == 1:
                    outputs[part[0].key] = BackendError(f"vLLM rejected the prompt: {exc}")
                    return
                middle = len(part) // 2
                chat(part[:middle], continuing)
                chat(part[middle:], continuing)
                return
            if len(answers) != len(part):
                raise RuntimeError(f"engine returned {len(answers)} outputs for {len(part)} prompts")
            outputs.update((p.key, answer) for p, answer in zip(part, answers))

        for continuing in (False, True):
            part = [p for p in prompts if p.continuing == continuing]
            if part:
                chat(part, continuing)
        for index, request in enumerate(requests):
            if results[index] is None:
                results[index] = _collect(index, request, outputs)
        return results

    def _loaded(self, vllm: Any) -> Any:
        """The `vllm.LLM`, created on first use with the model's own chat template."""
        if self._llm is None:
            try:
                self._llm = vllm.LLM(model=self.model, **self.engine_args)
            except Exception as exc:  # noqa: BLE001 - bad model name, engine args, GPU memory ...
                raise UserError(f"could not start vLLM for '{self.model}': {type(exc).__name__}: {exc}") from exc
        return self._llm

    async def aclose(self) -> None:
        self._arrivals.cancel()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._release)
        self._executor.shutdown()

    def _release(self) -> None:
        self._llm = None


def _collect(index: int, request: Request, outputs: dict[PromptKey, Any]) -> Any:
    """A request's result: its output, its OptionOutputs (logprob mode), or the first BackendError among them."""
    prompt = outputs[(index, None)]
    if scored_mode(request) != "logprob" or isinstance(prompt, BackendError):
        return prompt
    assert request.choice is not None and request.choice.options is not None
    options = {option: outputs[(index, option)] for option in request.choice.options}
    failed = next((o for o in options.values() if isinstance(o, BackendError)), None)
    return failed or OptionOutputs(prompt, options)


class VLLMBackend(Backend):
    """`vllm/<hf-id-or-path>`: roles naming the same model share one VLLMEngine (and must then agree on
    its engine arguments). With `n > 1` the text is the first sample, and usage counts the tokens of all
    samples. `<think>...</think>` reasoning is split from the answer."""

    kind = "vllm"
    answer_modes = ALL_ANSWER_MODES
    batches_requests = True

    def __init__(self, model: str, options: BackendOptions | None = None):
        super().__init__(model, options)
        self.engine_args = dict(self.options.engine_args)

    def share(self, resources: BackendResources) -> None:
        super().share(resources)
        self._engine()  # a conflict with another role's engine arguments shows now, before any work

    def _engine(self) -> VLLMEngine:
        engine = self.resources.shared(
            ("vllm", self.model), lambda: VLLMEngine(self.model, self.engine_args), VLLMEngine.aclose
        )
        if engine.engine_args != self.engine_args:
            raise UserError(
                f"vllm/{self.model} is used by several roles with different engine arguments "
                f"({engine.engine_args} and {self.engine_args}); they share one engine, so give them the same"
            )
        return engine

    def identity(self) -> dict[str, Any]:
        args = {k: v for k, v in sorted(self.engine_args.items()) if k not in PERFORMANCE_ARGS}
        return {**super().identity(), "engine_args": args}

    def max_in_flight(self) -> int | None:
        return None

    def answer_forms(self) -> dict[str, str]:
        return {
            "constrained": "structured outputs (choice, regex or json)",
            "logprob": "full continuation (prompt_logprobs of the option's tokens)",
        }

    async def generate(self, request: Request) -> Completion:
        output, latency = await self._engine().generate(request)
        if isinstance(output, OptionOutputs):
            logprobs: dict[str, float | None] = {o: option_logprob(output.prompt, c) for o, c in output.options.items()}
            return scored_completion(
                logprobs,
                self.model,
                latency_s=latency,
                usage=Usage(prompt_tokens=len(output.prompt.prompt_token_ids or [])),
            )
        first = output.outputs[0]
        answer, reasoning = split_reasoning(first.text, self.reasoning)
        return Completion(
            text=answer,
            reasoning=reasoning,
            model=self.model,
            usage=Usage(
                prompt_tokens=len(output.prompt_token_ids or []),
                completion_tokens=sum(len(o.token_ids) for o in output.outputs),
            ),
            latency_s=latency,
            finish_reason=first.finish_reason,
            answer_mode=scored_mode(request),
        )
