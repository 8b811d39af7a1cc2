"""Plugin discovery: the entry-point groups `harness.tasks`, `harness.backends` and `harness.scorers`.

A package adds a task, a model kind or a scorer by declaring an entry point in its pyproject.toml:

    [project.entry-points."harness.tasks"]
    mytask = "mytask.task:TASK"

The harness registers its own tasks, backends and scorers the same way, so built-in and third-party
plugins are found, listed and loaded by one mechanism. Discovery reads only package metadata; a
plugin's module is imported when it is first used, and an import that fails is one UserError naming
the package (other plugins keep working). A third-party plugin cannot replace a built-in one: the
built-in wins and the other is reported as shadowed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from harness.errors import UserError

TASKS = "harness.tasks"
BACKENDS = "harness.backends"
SCORERS = "harness.scorers"
BUILT_IN = "harness"  # the distribution whose entry points are the built-in plugins
KINDS = {TASKS: "task", BACKENDS: "model kind", SCORERS: "scorer"}


@dataclass(frozen=True)
class Plugin:
    """One registered plugin: its name, `module:attribute` target and the package that provides it."""

    group: str
    name: str
    target: str
    package: str
    version: str
    shadowed: tuple[str, ...] = ()  # origins of other packages registering the same name (ignored or clashing)

    @property
    def built_in(self) -> bool:
        return self.package == BUILT_IN

    @property
    def origin(self) -> str:
        """'built in', or the providing package's name and version."""
        return "built in" if self.built_in else f"{self.package} {self.version}"

    def load(self) -> Any:
        """Import and return the registered object; UserError naming the package if that fails."""
        kind = KINDS[self.group]
        if self.shadowed and not self.built_in:
            raise UserError(
                f"{kind} '{self.name}' is registered by several packages ({self.origin}, "
                f"{', '.join(self.shadowed)}); uninstall all but one"
            )
        try:
            return EntryPoint(self.name, self.target, self.group).load()
        except Exception as exc:  # any failure inside third-party code is that package's problem
            raise UserError(
                f"{kind} '{self.name}' from package {self.origin} failed to load ({self.target}): "
                f"{type(exc).__name__}: {exc}; fix or uninstall {self.package}"
            ) from None


@cache
def plugins(group: str) -> dict[str, Plugin]:
    """Name -> Plugin for every entry point of `group`, sorted by name, without importing anything."""
    found: dict[str, Plugin] = {}
    for ep in entry_points(group=group):
        dist = ep.dist
        plugin = Plugin(group, ep.name, ep.value, dist.name if dist else "unknown", dist.version if dist else "?")
        other = found.get(ep.name)
        if other is None:
            found[ep.name] = plugin
        elif other.built_in or not plugin.built_in:
            found[ep.name] = replace(other, shadowed=(*other.shadowed, plugin.origin))
        else:
            found[ep.name] = replace(plugin, shadowed=(*plugin.shadowed, other.origin))
    return dict(sorted(found.items()))


def lookup(group: str, name: str) -> Plugin:
    """The plugin registered as `name`; UserError listing the available names if there is none."""
    found = plugins(group)
    if name not in found:
        raise UserError(f"unknown {KINDS[group]} '{name}'; available: {', '.join(found) or 'none'}")
    return found[name]
