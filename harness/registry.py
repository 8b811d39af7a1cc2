"""Task registry: built-in tasks from `tasks/<name>/task.py`, third-party ones from entry points.

A built-in task module exposes its Task subclass as `TASK`. An outside package registers
`name = "package.module:ClassName"` in the `harness.tasks` entry-point group.
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from importlib.metadata import entry_points

from harness.errors import UserError
from harness.task import Task

ENTRY_POINT_GROUP = "harness.tasks"


@cache
def task_locations() -> dict[str, str]:
    """Task name -> 'module:attribute', without importing any task."""
    import harness_tasks

    found = {
        info.name: f"harness_tasks.{info.name}.task:TASK"
        for info in pkgutil.iter_modules(harness_tasks.__path__)
        if info.ispkg
    }
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return dict(sorted(found.items()))


def task_class(name: str) -> type[Task]:
    """Import and return the Task class registered as `name`."""
    locations = task_locations()
    if name not in locations:
        raise UserError(f"unknown task '{name}'; available: {', '.join(locations) or 'none'}")
    module_name, _, attr = locations[name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr or "TASK")
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UserError(f"task '{name}' ({locations[name]}) is not a harness.task.Task subclass")
    return cls


def parse_task_list(text: str) -> list[str]:
    """'a,b' -> ['a', 'b'] (validated); 'all' -> every registered task."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(task_locations())
    for name in names:
        task_class(name)
    return names
