"""The run file of `harness run --config eval.yaml`: every option of `run` in YAML, validated once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from harness.datasets import read_yaml
from harness.errors import UserError
from harness.secrets import redact_urls


class RoleSettings(BaseModel):
    """One role (model, a judge, the simulator): its spec and its own endpoint, limits, engine and
    generation settings. Unset fields fall back (see harness.cli_run.resolve_roles)."""

    model_config = ConfigDict(extra="forbid")

    spec: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    max_connections: Annotated[int, Field(ge=1)] | Literal["auto"] | None = None
    timeout: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0)
    max_retry_after: float | None = Field(default=None, ge=0)
    threads: int | None = Field(default=None, ge=1)
    engine_args: dict[str, Any] | None = None
    reasoning: bool | None = None
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    batch: bool | None = None
    answer_mode: Literal["free", "constrained", "logprob"] | None = None
    server: Literal["vllm", "llama.cpp", "openai"] | None = None  # the software behind an openai/ base_url

    @model_validator(mode="before")
    @classmethod
    def _spec_alone(cls, data: Any) -> Any:
        """`judges: [openai/a, openai/b]`: a bare string is the spec."""
        return {"spec": data} if isinstance(data, str) else data

    @field_validator("max_connections", mode="before")
    @classmethod
    def _connections(cls, value: Any) -> Any:
        """A whole number of at least 1, or auto (one message, whichever is wrong)."""
        if value is None or value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        if isinstance(value, int):
            raise ValueError("input should be greater than or equal to 1")
        raise ValueError("expected a whole number of at least 1, or auto")

    @field_validator("spec")
    @classmethod
    def _known_kind(cls, spec: str | None) -> str | None:
        from harness.backends import parse_model_spec

        return accepted_by(parse_model_spec, spec)


class RunFile(BaseModel):
    """The options of `harness run`, as a YAML mapping; the role blocks take RoleSettings."""

    model_config = ConfigDict(extra="forbid")

    model: RoleSettings | None = None
    judges: list[RoleSettings] | None = None
    simulator: RoleSettings | None = None
    models: list[RoleSettings] | None = Field(default=None, min_length=1)  # a sweep; each entry over `model`
    tasks: list[str] | None = None
    task_options: dict[str, dict[str, Any]] | None = None
    refusal_scorer: str | None = None  # a registered refusal scorer (rules, judge, hybrid or a plugin)
    limit: int | None = Field(default=None, ge=1)
    seed: int | None = None
    repeats: int | None = Field(default=None, ge=1)
    max_samples: int | None = Field(default=None, ge=1)
    run_dir: Path | None = None
    sweep_dir: Path | None = None
    shard: str | None = None  # k/n: this worker's slice of every task (see README "Scaling out")
    cache: Path | None = None
    no_cache: bool | None = None
    retry_errors: bool | None = None
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    no_progress: bool | None = None
    judge_calibrations: list[Path] | None = None  # calibration files from `harness calibrate`
    panel_rule: Literal["majority", "weighted", "unanimous"] | None = None
    prices: Path | None = None
    budget_usd: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_model_key(self) -> RunFile:
        if self.models is not None and self.model is not None and self.model.spec is not None:
            raise ValueError(
                "key 'models' lists the models of a sweep: 'model' may hold their shared settings, not a spec"
            )
        return self

    @field_validator("tasks", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return [t.strip() for t in value.split(",") if t.strip()] if isinstance(value, str) else value

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str] | None) -> list[str] | None:
        from harness.registry import parse_task_list

        return None if tasks is None else as_value_error(parse_task_list, ",".join(tasks))

    @field_validator("shard")
    @classmethod
    def _valid_shard(cls, shard: str | None) -> str | None:
        from harness.shard import parse_shard

        return accepted_by(parse_shard, shard)

    @field_validator("judges", "simulator", "models")
    @classmethod
    def _spec_given(cls, value: Any) -> Any:
        """Judges, the simulator and the models of a sweep have no default model."""
        roles = value if isinstance(value, list) else [value]
        for number, role in enumerate(roles, start=1):
            if role is not None and role.spec is None:
                raise ValueError(f"{'entry ' + str(number) + ' ' if len(roles) > 1 else ''}has no spec (kind/name)")
        return value


def as_value_error(check: Any, value: Any) -> Any:
    """`check(value)`, with its UserError turned into the ValueError pydantic reports under the key."""
    try:
        return check(value)
    except UserError as exc:
        raise ValueError(str(exc)) from None


def accepted_by(check: Any, value: str | None) -> str | None:
    """`value` as given, once `check` accepts it (None is not checked); see as_value_error."""
    if value is not None:
        as_value_error(check, value)
    return value


def load_run_file(path: Path) -> RunFile:
    """Read and validate a run file; any problem is one UserError naming the file, the key and the problem."""
    data = read_yaml(path, "the run file")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of run options (model, judges, tasks, ...)")
    try:
        return RunFile.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe(exc.errors()[0])}") from None


def describe(error: Any) -> str:
    """'key judges[1].max_connections: input should be greater than or equal to 1 (got 0)'."""
    key = ""
    for part in error["loc"]:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    if error["type"] == "extra_forbidden":
        known = RunFile.model_fields if len(error["loc"]) == 1 else RoleSettings.model_fields
        return f"key '{key}': unknown key (known: {', '.join(known)})"
    problem = error["msg"].removeprefix("Value error, ")
    problem = problem[0].lower() + problem[1:]
    shown = error.get("input")
    got = f" (got {redact_urls(repr(shown))})" if isinstance(shown, (str, int, float, bool)) else ""
    return f"key '{key}': {problem}{got}" if key else problem
