"""In-process vLLM backend: concurrent requests are micro-batched into single `LLM.chat` calls."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.backends.base import Backend, BackendOptions
from harness.errors import BackendError, UserError
from harness.types import Completion, GenerateConfig, Request, Usage

INSTALL_HINT = (
    "vLLM is not installed: pip install 'harness[vllm]' (needs a CUDA GPU), "
    "or run `vllm serve <model>` and use openai/<model> --base-url http://localhost:8000/v1"
)
DEFAULT_MAX_TOKENS = 1024  # vLLM's own SamplingParams default (16) would silently truncate answers
# Engine arguments that change speed or memory but not outputs; left out of the cache identity.
PERFORMANCE_ARGS = frozenset({
    "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "gpu_memory_utilization",
    "swap_space", "cpu_offload_gb", "enforce_eager", "max_num_seqs", "max_num_batched_tokens",
    "disable_log_stats", "distributed_executor_backend",
})


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


class VLLMBackend(Backend):
    """`vllm/<hf-id-or-path>`: one engine per process; requests pending together share one `LLM.chat`.

    A batch is flushed once no new request has arrived for `batch_window_s`, or when
    `max_batch_size` requests are waiting; requests arriving while a batch runs form the next one.
    With `n > 1` the text is the first sample, and usage counts the tokens of all samples.
    """

    kind = "vllm"
    batch_window_s = 0.03
    max_batch_size = 4096

    def __init__(self, model: str, options: BackendOptions | None = None):
        super().__init__(model, options)
        self.engine_args = dict(self.options.engine_args)
        self._llm: Any = None
        self._pending: list[tuple[Request, asyncio.Future[Completion]]] = []
        self._last_arrival = 0.0
        self._flusher: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None  # one thread creates and drives the engine

    def identity(self) -> dict[str, Any]:
        args = {k: v for k, v in sorted(self.engine_args.items()) if k not in PERFORMANCE_ARGS}
        return {**super().identity(), "engine_args": args}

    def max_in_flight(self) -> int | None:
        return None

    async def generate(self, request: Request) -> Completion:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self._pending.append((request, future))
        self._last_arrival = loop.time()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        return await future

    async def _flush_loop(self) -> None:
        """Run batches one after another until nothing is pending."""
        loop = asyncio.get_running_loop()
        while self._pending:
            while len(self._pending) < self.max_batch_size:
                wait = self._last_arrival + self.batch_window_s - loop.time()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            batch = [item for item in self._pending[: self.max_batch_size] if not item[1].done()]
            del self._pending[: self.max_batch_size]
            if batch:  # empty when every caller was cancelled
                await self._run_batch(batch)

    async def _run_batch(self, batch: list[tuple[Request, asyncio.Future[Completion]]]) -> None:
        """Generate for every request of the batch and resolve their futures."""
        started = time.perf_counter()
        results: list[Completion | Exception]
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vllm")
            requests = [request for request, _ in batch]
            outputs = await asyncio.get_running_loop().run_in_executor(self._executor, self._chat, requests)
            if len(outputs) != len(batch):
                raise RuntimeError(f"engine returned {len(outputs)} outputs for {len(batch)} prompts")
            latency = time.perf_counter() - started
            results = [self._completion(output, latency) for output in outputs]
        except UserError as exc:
            results = [UserError(str(exc)) for _ in batch]
        except Exception as exc:  # noqa: BLE001 - any engine failure fails the whole batch
            message = f"vLLM engine error: {type(exc).__name__}: {exc}"
            results = [BackendError(message) for _ in batch]
        for (_, future), result in zip(batch, results):
            if future.done():  # the caller was cancelled
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _chat(self, requests: list[Request]) -> list[Any]:
        """Blocking: one `LLM.chat` call for all requests (on the engine thread)."""
        vllm = self._import_vllm()
        llm = self._engine(vllm)
        conversations = [[m.model_dump() for m in r.messages] for r in requests]
        params = [vllm.SamplingParams(**sampling_kwargs(r.config)) for r in requests]
        return llm.chat(conversations, sampling_params=params, use_tqdm=False, add_generation_prompt=True)

    @staticmethod
    def _import_vllm() -> Any:
        try:
            import vllm
        except ImportError as exc:
            raise UserError(INSTALL_HINT) from exc
        return vllm

    def _engine(self, vllm: Any) -> Any:
        """The `vllm.LLM`, created on first use with the model's own chat template."""
        if self._llm is None:
            try:
                self._llm = vllm.LLM(model=self.model, **self.engine_args)
            except Exception as exc:  # noqa: BLE001 - bad model name, engine args, GPU memory ...
                raise UserError(f"could not start vLLM for '{self.model}': {type(exc).__name__}: {exc}") from exc
        return self._llm

    def _completion(self, output: Any, latency: float) -> Completion:
        first = output.outputs[0]
        return Completion(
            text=first.text,
            model=self.model,
            usage=Usage(
                prompt_tokens=len(output.prompt_token_ids or []),
                completion_tokens=sum(len(o.token_ids) for o in output.outputs),
            ),
            latency_s=latency,
            finish_reason=first.finish_reason,
        )

    async def aclose(self) -> None:
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._release)
            self._executor.shutdown()
            self._executor = None

    def _release(self) -> None:
        self._llm = None
