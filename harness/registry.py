"""Task registry: every task is an entry point of the `harness.tasks` group (built-in ones included).

An entry point names the task's Task subclass as `module:attribute` (built-in tasks expose it as `TASK`
in `harness_tasks/<name>/task.py`). Nothing is imported until a task is used.
"""

from __future__ import annotations

from harness.errors import UserError
from harness.plugins import TASKS, Plugin, lookup, plugins
from harness.task import Task


def task_locations() -> dict[str, Plugin]:
    """Task name -> its plugin entry (target and providing package), without importing any task."""
    return plugins(TASKS)


def task_class(name: str) -> type[Task]:
    """Import and return the Task class registered as `name`."""
    plugin = lookup(TASKS, name)
    cls = plugin.load()
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UserError(
            f"task '{name}' from package {plugin.origin} ({plugin.target}) is not a harness.task.Task subclass"
        )
    return cls


def parse_task_list(text: str) -> list[str]:
    """'a,b' -> ['a', 'b'] (validated); 'all' -> every registered task."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        names = list(task_locations())
    for name in names:
        task_class(name)
    return names
