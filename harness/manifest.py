"""Run provenance: what ran, on what data, with which models and settings (never secrets)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

import harness
from harness.backends.base import BackendOptions
from harness.secrets import public_url, redact_urls
from harness.task import DatasetInfo


def harness_version() -> str:
    """The installed distribution's version (the package's own as a fallback)."""
    try:
        return importlib.metadata.version("harness")
    except importlib.metadata.PackageNotFoundError:
        return harness.__version__


class RoleManifest(BaseModel):
    role: str
    spec: str
    endpoint: str | None = None  # the server called, without credentials (None: in-process)
    options: dict[str, Any] = Field(default_factory=dict)  # connection and engine options, without credentials
    identity: dict[str, Any]
    generate: dict[str, Any]
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    connections: dict[str, Any] | None = None  # --max-connections auto: the limit now, lowest, highest, changes
    answer_mode: str = "free"  # how the role answered choice questions (free, constrained, logprob)
    answer_forms: dict[str, str] = Field(default_factory=dict)  # constrained/logprob: request form each mode used


class TaskManifest(BaseModel):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    protocol: str = "default"  # "paper": the source paper's protocol (-T protocol=paper)
    generate: dict[str, Any] = Field(default_factory=dict)  # the task's settings for the model (before user flags)
    dataset: DatasetInfo
    templates: dict[str, str] = Field(default_factory=dict)  # prompt/judge template -> sha256
    planned: int = 0


class RunManifest(BaseModel):
    """Everything needed to know how a run's numbers were produced."""

    harness_version: str = Field(default_factory=harness_version)
    git_commit: str | None = None
    command: list[str] = Field(default_factory=list)
    python: str = platform.python_version()
    platform: str = platform.platform()
    fingerprint: dict[str, Any] = Field(default_factory=dict)
    tasks: list[TaskManifest] = Field(default_factory=list)
    roles: list[RoleManifest] = Field(default_factory=list)
    seed: int = 0
    repeats: int = 1
    limit: int | None = None
    started_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    status: str = "running"  # running, complete, interrupted, failed, budget (stopped by --budget-usd)
    counts: dict[str, int] = Field(default_factory=dict)
    error_kinds: dict[str, int] = Field(default_factory=dict)  # errored records by kind (generation, judge, ...)
    failure: str | None = None  # why the run is 'failed' (the error-rate policy), else None
    source_run: str | None = None  # set by rejudge
    budget: dict[str, Any] | None = None  # --budget-usd: limit_usd, spent_usd, rest_usd, remaining


def source_tree() -> Path | None:
    """The source checkout harness is imported from (an editable install), or None (a regular install)."""
    tree = Path(harness.__file__).resolve().parent.parent
    return tree if (tree / "pyproject.toml").is_file() else None


def git_commit() -> str | None:
    """Commit of the harness source tree of an editable install, only when that tree is the top level of
    its git checkout: never the commit of a repository that merely contains it, nor the cwd's."""
    tree = source_tree()
    if tree is None:
        return None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=tree, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split("\n")
    if out.returncode != 0 or len(lines) < 2 or Path(lines[0]).resolve() != tree:
        return None
    return lines[1].strip() or None


def public_options(options: BackendOptions) -> dict[str, Any]:
    """A role's options for the manifest: the endpoint without credentials, the key's variable name only."""
    data = options.model_dump(mode="json")
    if options.base_url:
        data["base_url"] = public_url(options.base_url)
    return data


def command_line() -> list[str]:
    """sys.argv with URLs reduced to their public form and credentials redacted."""
    return [redact_urls(arg) for arg in sys.argv]
