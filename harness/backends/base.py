"""The one async interface every generation backend implements."""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator

from harness.types import Completion, Request

T = TypeVar("T")
DEFAULT_MAX_RETRY_AFTER_S = 600.0
_THINK = re.compile(r"^\s*(?P<open><think>)?(?P<reasoning>.*?)</think>(?P<answer>.*)$", re.S)


def parse_scalar(value: Any) -> Any:
    """Command-line text such as '2', '0.9', 'true' or '{"level": 3}' -> Python value; other text stays."""
    if not isinstance(value, str):
        return value
    if value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    try:
        return json.loads(value)
    except ValueError:
        return value


class BackendOptions(BaseModel):
    """Connection and engine options a user passes for one model role."""

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_connections: int | Literal["auto"] = 32  # auto: adapt to the server's 429s (AIMD; openai backend)
    timeout_s: float = 120.0
    max_retries: int = 6
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S  # longest server-requested wait (Retry-After) honoured
    threads: int | None = None  # CPU backends
    reasoning: bool | None = None  # reasoning model (o1/o3/gpt-5 style)? None: decided by the model's name
    server: Literal["vllm", "llama.cpp", "openai"] | None = None  # openai/ endpoints: which server software
    engine_args: dict[str, Any] = Field(default_factory=dict)  # e.g. --vllm-arg tensor_parallel_size=2
    batch: bool = False  # send requests through the provider's batch API (openai backend)

    @field_validator("engine_args")
    @classmethod
    def _parse_engine_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Command-line text becomes numbers/bools/JSON here, once, for every backend."""
        return {key: parse_scalar(value) for key, value in args.items()}


def split_reasoning(text: str, reasoning_model: bool = False) -> tuple[str, str | None]:
    """(answer, reasoning) of a text that starts with `<think>...</think>`; an unclosed `<think>` is all
    reasoning, with no answer yet. For a reasoning model the opening tag may be missing (chat templates
    that end the prompt with it), so there the text up to the first `</think>` is reasoning too."""
    match = _THINK.match(text)
    if match and (match["open"] or reasoning_model):
        return match["answer"].strip(), match["reasoning"].strip()
    if text.lstrip().startswith("<think>"):
        return "", text.lstrip()[len("<think>") :].strip()
    return text, None


class BackendResources:
    """Clients and engines the backends of one run share (one connection pool per endpoint, one engine per
    model). The run creates it and closes it, so nothing outlives a run in module globals."""

    def __init__(self, state_dir: Path | None = None) -> None:
        """`state_dir`: where backends keep state a resumed run needs (the run directory; batch jobs)."""
        self.state_dir = state_dir
        self._shared: dict[Hashable, Any] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []
        # endpoint -> answer mode -> the request form its server accepted (e.g. "json_schema"), learnt this run
        self.answer_forms: dict[str, dict[str, str]] = {}

    def shared(self, key: Hashable, create: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> T:
        """The object stored under `key`, created on first request; `close` releases it in aclose()."""
        if key not in self._shared:
            item = create()
            self._shared[key] = item
            self._closers.append(lambda: close(item))
        return self._shared[key]

    async def aclose(self) -> None:
        """Close everything, newest first (afterwards the object starts empty again)."""
        closers, self._closers, self._shared = self._closers, [], {}
        for close in reversed(closers):
            await close()


class Backend(abc.ABC):
    """Turns Requests into Completions. Subclasses keep heavy imports inside their methods."""

    kind: str = ""
    batches_requests = False  # True: concurrent requests are batched in-process, so more in flight is faster
    answer_modes: frozenset[str] = frozenset({"free"})  # how it can answer choice questions (see Request.choice)

    def __init__(self, model: str, options: BackendOptions | None = None):
        self.model = model
        self.options = options or BackendOptions()
        self.reasoning = bool(self.options.reasoning)  # a reasoning model: its empty answers are truncations
        self.resources = BackendResources()  # this backend's own, until share() gives it the run's
        self._owns_resources = True

    def share(self, resources: BackendResources) -> None:
        """Use the run's shared clients and engines; the run closes them."""
        self.resources, self._owns_resources = resources, False

    @property
    def spec(self) -> str:
        return f"{self.kind}/{self.model}"

    def identity(self) -> dict[str, Any]:
        """Everything about this backend that changes outputs (goes into cache keys and manifests)."""
        return {"kind": self.kind, "model": self.model}

    def endpoint(self) -> str | None:
        """The server this backend calls, without credentials (None: it runs in-process)."""
        return None

    def max_in_flight(self) -> int | None:
        """How many requests the runner should keep in flight for this backend (None = no limit)."""
        return None if self.options.max_connections == "auto" else self.options.max_connections

    def connection_report(self) -> dict[str, Any] | None:
        """How an adaptive connection limit moved during the run (None: the limit was fixed)."""
        return None

    def answer_forms(self) -> dict[str, str]:
        """Answer mode -> how this backend asks for it (e.g. {"constrained": "grammar"}); empty: free only."""
        return {}

    @abc.abstractmethod
    async def generate(self, request: Request) -> Completion:
        """Return one completion, or raise BackendError."""

    async def aclose(self) -> None:
        """Release connections or engines this backend holds on its own (shared ones close with the run)."""
        if self._owns_resources:
            await self.resources.aclose()
