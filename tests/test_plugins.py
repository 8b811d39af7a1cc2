"""Third-party plugins through entry points: tasks, model kinds and scorers, found without import,
loaded when used, and a broken one failing alone with one error naming its package.

The plugin packages here are real distributions as importlib.metadata sees them (a .dist-info folder
with entry_points.txt) on PYTHONPATH of the CLI subprocess, so the test environment is never changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import harness_env, metric, read_records, read_summary, run_cli

BROKEN_TASK = 'raise ImportError("needs the frobnicate package")\n'
CANNED_BACKEND = """
from harness.backends.base import Backend
from harness.types import Completion, Request


class Canned(Backend):
    kind = "canned"

    async def generate(self, request: Request) -> Completion:
        return Completion(text=f"Canned answer from {self.model}.", model=self.model)
"""
SCORERS = """
from harness.judging.refusal_rules import REFUSAL_LABELS
from harness.judging.scorers import Scorer
from harness.types import Score


async def always_refusal(prompt, response, ctx):
    return Score(scorer="always_refusal", label="full_refusal", value=1.0)


async def length(prompt, response, ctx):
    return Score(scorer="length", value=float(len(response)))


ALWAYS = Scorer(always_refusal, labels=REFUSAL_LABELS)
LENGTH = Scorer(length)
NOT_A_SCORER = "just a string"
"""


def add_distribution(
    site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]
) -> None:
    """An installed distribution as importlib.metadata reads it: METADATA, entry_points.txt, modules."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    groups = [f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(groups), encoding="utf-8")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source, encoding="utf-8")


@pytest.fixture
def plugin_cli(tmp_path: Path):
    """run_cli with two plugin packages installed: goodplug 1.2 (works) and brokenplug 0.3 (fails to import)."""
    site = tmp_path / "site"
    add_distribution(
        site,
        "goodplug",
        "1.2",
        {
            "harness.backends": {"canned": "goodplug_backend:Canned"},
            "harness.scorers": {
                "always": "goodplug_scorers:ALWAYS",
                "length": "goodplug_scorers:LENGTH",
                "notscorer": "goodplug_scorers:NOT_A_SCORER",
            },
            "harness.tasks": {"fortress": "goodplug_backend:Canned", "twin": "goodplug_backend:Canned"},
        },
        {"goodplug_backend": CANNED_BACKEND, "goodplug_scorers": SCORERS},
    )
    add_distribution(
        site,
        "brokenplug",
        "0.3",
        {
            "harness.tasks": {"broken": "brokenplug_task:TASK", "twin": "brokenplug_task:TASK"},
            "harness.backends": {"flaky": "brokenplug_task:Backend"},
        },
        {"brokenplug_task": BROKEN_TASK},
    )
    env = harness_env(tmp_path, {"PYTHONPATH": str(site)})
    return lambda args: run_cli(args, tmp_path, env=env)


def one_error_line(out, *parts: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def test_list_shows_where_each_task_comes_from_and_survives_a_broken_plugin(plugin_cli) -> None:
    out = plugin_cli(["list"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("overrefusal  [built in]  Over-refusal") for line in lines)
    assert any(line.startswith("fortress  [built in] (also registered by goodplug 1.2)  Adversarial") for line in lines)
    [broken] = [line for line in lines if line.startswith("broken  ")]
    assert "[brokenplug 0.3]" in broken and "ImportError: needs the frobnicate package" in broken
    assert "model kinds: canned [goodplug 1.2], flaky [brokenplug 0.3], local, openai, replay, scripted, vllm" in lines
    assert (
        "scorers: always [goodplug 1.2], hybrid, judge, length [goodplug 1.2], notscorer [goodplug 1.2], rules" in lines
    )


def test_plugin_backend_and_refusal_scorer_run_beside_a_broken_plugin(plugin_cli, tmp_path: Path) -> None:
    out = plugin_cli(
        [
            "run",
            "--model",
            "canned/m1",
            "--tasks",
            "overrefusal",
            "--refusal-scorer",
            "always",
            "--limit",
            "4",
            "--run-dir",
            "run",
            "--no-progress",
        ]
    )
    assert out.returncode == 0, out.stderr
    records = read_records(tmp_path / "run")
    assert len(records) == 4
    assert {r["exchanges"][0]["completion"]["text"] for r in records} == {"Canned answer from m1."}
    assert {r["scores"]["refusal"]["scorer"] for r in records} == {"always_refusal"}
    summary = read_summary(tmp_path / "run")
    assert metric(summary, "overrefusal", "overrefusal.safe_refusal")["value"] == 100.0


def test_a_broken_plugin_is_one_error_naming_its_package_when_used(plugin_cli) -> None:
    one_error_line(
        plugin_cli(["run", "--model", "scripted/echo", "--tasks", "broken", "--no-progress"]),
        "task 'broken' from package brokenplug 0.3 failed to load",
        "ImportError: needs the frobnicate package",
        "uninstall brokenplug",
    )
    one_error_line(
        plugin_cli(["run", "--model", "flaky/x", "--tasks", "overrefusal", "--limit", "1"]),
        "model kind 'flaky' from package brokenplug 0.3 failed to load",
    )


def test_plugins_of_the_wrong_type_or_name_are_clear_errors(plugin_cli) -> None:
    one_error_line(
        plugin_cli(["run", "--model", "scripted/echo", "--tasks", "twin"]),
        "task 'twin' is registered by several packages",
        "brokenplug 0.3",
        "goodplug 1.2",
    )
    one_error_line(
        plugin_cli(["run", "--model", "scripted/echo", "--tasks", "overrefusal", "--refusal-scorer", "length"]),
        "scorer 'length' cannot classify refusals",
    )
    one_error_line(
        plugin_cli(["run", "--model", "scripted/echo", "--tasks", "overrefusal", "--refusal-scorer", "notscorer"]),
        "scorer 'notscorer' from package goodplug 1.2",
        "is not a",
    )
    one_error_line(
        plugin_cli(["run", "--model", "scripted/echo", "--tasks", "overrefusal", "--refusal-scorer", "nosuch"]),
        "unknown scorer 'nosuch'; available: always, hybrid, judge",
    )
    one_error_line(
        plugin_cli(["run", "--model", "nokind/x", "--tasks", "overrefusal"]),
        "known kinds: canned/<name>, flaky/<name>, local/<name>",
    )
