"""Run configuration: what the user asked for, validated once at the boundary."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

import harness
from harness.backends.base import BackendOptions, parse_scalar
from harness.costs import Price
from harness.errors import UserError
from harness.secrets import public_url
from harness.shard import Shard
from harness.types import AnswerMode, GenerateConfig, judge_role

DEFAULT_MODEL = "local/smollm2"


class RoleConfig(BaseModel):
    """One model role: its spec, connection options and generation overrides."""

    spec: str
    options: BackendOptions = Field(default_factory=BackendOptions)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    answer_mode: AnswerMode = "free"  # how the role answers choice questions (free, constrained, logprob)

    def endpoint(self) -> dict[str, Any]:
        """Where this role's answers come from: endpoint (credentials removed) and engine arguments."""
        base_url = self.options.base_url
        return {"base_url": public_url(base_url) if base_url else None, "engine_args": self.options.engine_args}


class RunConfig(BaseModel):
    """Everything that defines a run."""

    model: RoleConfig
    judges: list[RoleConfig] = Field(default_factory=list)
    simulator: RoleConfig | None = None
    refusal_scorer: str = "rules"  # a registered refusal scorer, see harness.judging.refusal
    tasks: list[str]
    task_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    limit: int | None = None
    repeats: int = 1
    seed: int = 0
    max_samples: int = 64  # samples in flight at once
    run_dir: Path
    cache_path: Path | None = None  # None disables the response cache
    retry_errors: bool = False
    judge_calibrations: list[Path] = Field(default_factory=list)  # see harness.report.corrected
    panel_rule: Literal["majority", "weighted", "unanimous"] | None = None
    max_error_rate: float = 0.05  # a larger share of errored samples ends the run with status 'failed'
    progress: bool = True
    shard: Shard | None = None  # only this slice of every task's samples; in the fingerprint when set
    prices: dict[str, Price] | None = None  # --prices: USD per million tokens by model (not in the fingerprint)
    budget_usd: float | None = None  # --budget-usd: no request starts that would take the spend past it

    def answer_modes(self) -> dict[str, AnswerMode]:
        """Each role's answer mode (judges as judge, judge2, ...)."""
        return {name: role.answer_mode for name, role in self.roles().items()}

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change results; a resumed run must match them (the runner adds each task's
        data and template hashes)."""
        modes = self.answer_modes()
        return {
            **({"answer_modes": modes} if set(modes.values()) != {"free"} else {}),
            **({"shard": str(self.shard)} if self.shard else {}),
            "model": self.model.spec,
            "model_generate": self.model.generate.model_dump(exclude_none=True),
            "judges": [j.spec for j in self.judges],
            "simulator": self.simulator.spec if self.simulator else None,
            "refusal_scorer": self.refusal_scorer,
            "task_options": self.task_options,
            "repeats": self.repeats,
            "seed": self.seed,
            "endpoints": {name: role.endpoint() for name, role in self.roles().items()},
            "harness_version": harness.__version__,
        }

    def roles(self) -> dict[str, RoleConfig]:
        """Every role by its run name: model, judge, judge2, ..., simulator."""
        judges = {judge_role(i): judge for i, judge in enumerate(self.judges)}
        return {"model": self.model, **judges, **({"simulator": self.simulator} if self.simulator else {})}


def check_judge_panel(judges: list[RoleConfig]) -> None:
    """Refuse two identical judges in one panel unless each has its own seed: they would share cache
    entries (one answer counted twice) and agree by construction."""
    groups: dict[str, list[int]] = {}
    for number, judge in enumerate(judges, start=1):
        same = judge.model_dump_json(exclude={"generate": {"seed"}})
        groups.setdefault(same, []).append(number)
    for numbers in groups.values():
        seeds = [judges[n - 1].generate.seed for n in numbers]
        if len(numbers) > 1 and (None in seeds or len(set(seeds)) < len(seeds)):
            raise UserError(
                f"judges {', '.join(map(str, numbers))} are the same model with the same settings "
                f"({judges[numbers[0] - 1].spec}): they would share cached answers and agree by construction; "
                "give each its own seed (--judge-seed 1,2,... or `seed:` per judge in the run file)"
            )


def split_key_values(pairs: tuple[str, ...] | list[str], flag: str) -> dict[str, str]:
    """['a=1', 'b=x'] -> {'a': '1', 'b': 'x'}; a pair without '=' is a UserError naming `flag`."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} expects key=value, got '{pair}'")
        result[key.strip()] = value
    return result


def parse_key_values(pairs: tuple[str, ...] | list[str], flag: str) -> dict[str, Any]:
    """Like split_key_values, with values that read as JSON scalars turned into numbers/bools."""
    return {key: parse_scalar(value) for key, value in split_key_values(pairs, flag).items()}


def split_task_options(
    options: dict[str, Any], tasks: list[str], accepted: dict[str, set[str]]
) -> dict[str, dict[str, Any]]:
    """Route `-T task.key=v` to one task and `-T key=v` to every task that accepts `key`."""
    routed: dict[str, dict[str, Any]] = {t: {} for t in tasks}
    for key, value in options.items():
        task, dot, field = key.partition(".")
        if dot:
            if task not in routed:
                raise UserError(f"-T {key}: task '{task}' is not selected (selected: {', '.join(tasks)})")
            routed[task][field] = value
            continue
        takers = [t for t in tasks if key in accepted[t]]
        if not takers:
            raise UserError(f"-T {key}: no selected task accepts '{key}'")
        for t in takers:
            routed[t][key] = value
    return {t: o for t, o in routed.items() if o}
