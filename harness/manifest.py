"""Run provenance: what ran, on what data, with which models and settings (never secrets)."""
from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

import harness
from harness.secrets import redact
from harness.task import DatasetInfo


class RoleManifest(BaseModel):
    role: str
    spec: str
    identity: dict[str, Any]
    generate: dict[str, Any]
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class TaskManifest(BaseModel):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    dataset: DatasetInfo
    templates: dict[str, str] = Field(default_factory=dict)  # prompt/judge template -> sha256
    planned: int = 0


class RunManifest(BaseModel):
    """Everything needed to know how a run's numbers were produced."""

    harness_version: str = harness.__version__
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
    status: str = "running"  # running, complete, interrupted, failed
    counts: dict[str, int] = Field(default_factory=dict)
    error_kinds: dict[str, int] = Field(default_factory=dict)  # errored records by kind (generation, judge, ...)
    failure: str | None = None  # why the run is 'failed' (the error-rate policy), else None
    source_run: str | None = None  # set by rejudge


def git_commit() -> str | None:
    """Commit of the harness source tree, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(harness.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def command_line() -> list[str]:
    return [redact(arg) for arg in sys.argv]
