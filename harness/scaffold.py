"""`harness new-task NAME`: write a task plugin package that installs and runs at once.

The files come from `harness/templates/new_task/` (package data); `$name`, `$dist` and `$class_name`
in them are replaced with string.Template, so the templates hold no code that runs here.
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from string import Template

from harness.errors import UserError

TEMPLATES = "templates/new_task"
FILES = {  # template file -> path in the new package ({name} is the task name)
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "src/{name}/__init__.py",
    "task.py.tmpl": "src/{name}/task.py",
    "quality.j2": "src/{name}/quality.j2",
    "samples.jsonl": "src/{name}/data/samples.jsonl",
    "test_task.py.tmpl": "tests/test_{name}.py",
}
NAME = re.compile(r"[a-z][a-z0-9_]*")


def check_name(name: str) -> None:
    """UserError unless `name` can be a new task and its Python package."""
    from harness.registry import task_locations

    if not NAME.fullmatch(name) or keyword.iskeyword(name):
        raise UserError(f"task name '{name}': use lower-case letters, digits and _, starting with a letter")
    if name in task_locations():
        raise UserError(f"task name '{name}' is taken by {task_locations()[name].origin}; pick another name")
    spec = find_spec(name)
    if spec is not None and spec.origin not in (None, "namespace"):  # a bare folder of that name is no module
        raise UserError(f"task name '{name}': a Python module of that name already exists; pick another name")


def write_task_package(name: str, parent: Path) -> Path:
    """Write the package folder `parent/name` (which must not exist yet) and return it."""
    folder = parent / name
    if folder.exists():
        raise UserError(f"{folder} already exists; remove it or pick another name")
    check_name(name)
    values = {
        "name": name,
        "dist": "harness-" + name.replace("_", "-"),
        "class_name": "".join(part.title() for part in name.split("_")) + "Task",
    }
    source = resources.files("harness") / TEMPLATES
    for template, target in FILES.items():
        path = folder / target.format(name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template((source / template).read_text(encoding="utf-8")).substitute(values), encoding="utf-8")
    return folder
