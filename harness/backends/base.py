"""The one async interface every generation backend implements."""
from __future__ import annotations

import abc
import json
from typing import Any

from pydantic import BaseModel, Field, field_validator

from harness.types import Completion, Request


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
    max_connections: int = 32
    timeout_s: float = 120.0
    max_retries: int = 6
    threads: int | None = None  # CPU backends
    engine_args: dict[str, Any] = Field(default_factory=dict)  # e.g. --vllm-arg tensor_parallel_size=2

    @field_validator("engine_args")
    @classmethod
    def _parse_engine_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Command-line text becomes numbers/bools/JSON here, once, for every backend."""
        return {key: parse_scalar(value) for key, value in args.items()}


class Backend(abc.ABC):
    """Turns Requests into Completions. Subclasses keep heavy imports inside their methods."""

    kind: str = ""

    def __init__(self, model: str, options: BackendOptions | None = None):
        self.model = model
        self.options = options or BackendOptions()

    @property
    def spec(self) -> str:
        return f"{self.kind}/{self.model}"

    def identity(self) -> dict[str, Any]:
        """Everything about this backend that changes outputs (goes into cache keys and manifests)."""
        return {"kind": self.kind, "model": self.model}

    def max_in_flight(self) -> int | None:
        """How many requests the runner should keep in flight for this backend (None = no limit)."""
        return self.options.max_connections

    @abc.abstractmethod
    async def generate(self, request: Request) -> Completion:
        """Return one completion, or raise BackendError."""

    async def aclose(self) -> None:
        """Release connections or engines."""
