"""A non-editable install must ship every task and its data: pyproject lists packages explicitly."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_every_task_folder_is_a_listed_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(config["packages"])
    task_dirs = {p.parent.name for p in (ROOT / "tasks").glob("*/task.py")}
    assert task_dirs, "no task folders found"
    missing = sorted(f"harness_tasks.{name}" for name in task_dirs if f"harness_tasks.{name}" not in packages)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"
    engine = {".".join(p.relative_to(ROOT).parts[:-1]) for p in (ROOT / "harness").rglob("__init__.py")}
    assert engine <= packages, f"unlisted engine packages: {sorted(engine - packages)}"
    assert "*/data/*" in config["package-data"]["harness_tasks"]


def test_every_task_folder_is_registered_as_an_entry_point():
    registered = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["harness.tasks"]
    task_dirs = {p.parent.name for p in (ROOT / "tasks").glob("*/task.py")}
    assert registered == {name: f"harness_tasks.{name}.task:TASK" for name in task_dirs}
