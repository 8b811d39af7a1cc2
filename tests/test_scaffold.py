"""`harness new-task NAME` writes a plugin package that installs with pip and runs through the CLI at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import metric, read_summary

NAME = "scaffolded_demo"
DIST = "harness-scaffolded-demo"


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def installed_task(cli, tmp_path: Path):
    """The scaffolded package, pip-installed (editable, no dependencies, no build isolation: offline)
    into the test environment, and uninstalled afterwards."""
    out = cli(["new-task", NAME, "--dir", "plugins"])
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "plugins" / NAME
    installed = pip("install", "-q", "--no-deps", "--no-build-isolation", "-e", str(folder))
    try:
        assert installed.returncode == 0, installed.stderr
        yield folder
    finally:
        pip("uninstall", "-y", "-q", DIST)


def test_new_task_installs_lists_runs_and_passes_its_own_tests(cli, tmp_path: Path, installed_task: Path) -> None:
    assert sorted(str(p.relative_to(installed_task)) for p in installed_task.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        f"src/{NAME}/__init__.py",
        f"src/{NAME}/data/samples.jsonl",
        f"src/{NAME}/quality.j2",
        f"src/{NAME}/task.py",
        f"tests/test_{NAME}.py",
    ]
    listing = cli(["list"])
    assert f"{NAME}  [{DIST} 0.1.0]  Answers the prompts" in listing.stdout, listing.stdout + listing.stderr

    out = cli(["run", "--tasks", NAME, "--model", "scripted/echo", "--run-dir", "run", "--no-progress"])
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (installed_task / "src" / NAME / "data" / "samples.jsonl").open()]
    to_refuse = sum(row["expected"] == "refuse" for row in rows)
    # echo repeats each prompt, which the refusal rules read as compliance: every prompt to refuse is a mismatch
    mismatch = metric(read_summary(tmp_path / "run"), NAME, f"{NAME}.mismatch")
    assert mismatch["value"] == pytest.approx(100 * to_refuse / len(rows)) and mismatch["n"] == len(rows)

    (tmp_path / "judge.yaml").write_text("default: '4'\n", encoding="utf-8")
    out = cli(
        [
            "run",
            "--tasks",
            NAME,
            "--model",
            "scripted/echo",
            "--judge",
            "scripted/judge.yaml",
            "--run-dir",
            "judged",
            "--no-progress",
        ]
    )
    assert out.returncode == 0, out.stderr
    assert metric(read_summary(tmp_path / "judged"), NAME, f"{NAME}.quality")["value"] == 4.0
    manifest = json.loads((tmp_path / "judged" / "manifest.json").read_text())
    [task] = manifest["tasks"]
    assert list(task["templates"]) == [f"{NAME}:quality.j2"]

    own_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=installed_task,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
    assert "3 passed" in own_tests.stdout


@pytest.mark.parametrize(
    "name, problem",
    [
        ("Bad-Name", "use lower-case letters, digits and _"),
        ("class", "use lower-case letters, digits and _"),
        ("fortress", "task name 'fortress' is taken by built in"),
        ("json", "a Python module of that name already exists"),
    ],
)
def test_new_task_refuses_unusable_names(cli, name: str, problem: str) -> None:
    out = cli(["new-task", name])
    assert out.returncode == 2 and problem in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_new_task_never_overwrites_a_folder(cli, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me", encoding="utf-8")
    out = cli(["new-task", "mine"])
    assert out.returncode == 2 and "mine already exists" in out.stderr
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
