"""The package layout keeps data flowing one way: tasks -> backends -> scorers -> records -> report.

Every module belongs to one layer, and a layer imports only the layers listed in ALLOWED:

- core: errors, types, stats, metrics, datasets, secrets, the Task contract, plugin discovery
- backends (harness.backends): model calls; see neither tasks, scorers nor reports
- scorers (harness.judging): judges and refusal scorers
- tasks (harness_tasks and plugin tasks): only the core and the scorers
- run: registry, runner, per-sample context, config, cache, store, manifest
- report (harness.report): reads records and the registry, never the runner
- commands: the CLI and the commands built from all of the above

ALLOWED is a DAG, so no import cycle can cross layers (registry, tasks and report included). Imports under
`if TYPE_CHECKING:` are annotations only and exempt. A new module must be given a layer here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from string import Template

import harness
import harness_tasks

LAYERS = {
    "core": [
        "harness",
        "harness.errors",
        "harness.types",
        "harness.stats",
        "harness.metrics",
        "harness.datasets",
        "harness.secrets",
        "harness.task",
        "harness.plugins",
    ],
    "backends": ["harness.backends"],
    "scorers": ["harness.judging"],
    "tasks": ["harness_tasks"],
    "run": [
        "harness.registry",
        "harness.runner",
        "harness.context",
        "harness.config",
        "harness.cache",
        "harness.store",
        "harness.manifest",
        "harness.run_file",
        "harness.shard",
        "harness.costs",
        "harness.budget",
    ],
    "report": ["harness.report"],
    "commands": [
        "harness.cli",
        "harness.cli_run",
        "harness.cli_report",
        "harness.cli_analyze",
        "harness.__main__",
        "harness.rejudge",
        "harness.calibrate",
        "harness.scaffold",
        "harness.sweep",
        "harness.merge",
    ],
}
ALLOWED = {
    "core": {"core"},
    "backends": {"core", "backends"},
    "scorers": {"core", "scorers"},
    "tasks": {"core", "scorers", "tasks"},
    "run": {"core", "backends", "scorers", "run"},
    "report": {"core", "scorers", "run", "report"},
    "commands": set(LAYERS),
}


def layer_of(module: str) -> str | None:
    """The layer of a module: its own entry in LAYERS, else that of the nearest listed package above it."""
    for layer, prefixes in LAYERS.items():
        if module in prefixes:
            return layer
    for layer, prefixes in LAYERS.items():
        if any(module.startswith(p + ".") and p != "harness" for p in prefixes):
            return layer
    return None


def source_modules() -> dict[str, Path]:
    """Module name -> source file for every module of harness and harness_tasks."""
    found = {}
    for package in (harness, harness_tasks):
        root = Path(package.__path__[0])
        for path in root.rglob("*.py"):
            parts = [package.__name__, *path.relative_to(root).with_suffix("").parts]
            found[".".join(p for p in parts if p != "__init__")] = path
    return found


def imported_modules(source: str) -> set[str]:
    """Every module a source imports at run time (any depth, lazy ones too; TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(source)
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {n for n in names if n.split(".")[0] in ("harness", "harness_tasks")}


def violations(module: str, source: str, known: set[str]) -> list[str]:
    layer = layer_of(module)
    found = []
    for target in sorted(imported_modules(source) & known):
        target_layer = layer_of(target)
        if target_layer not in ALLOWED[layer]:
            found.append(f"{module} ({layer}) imports {target} ({target_layer})")
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in source_modules() if layer_of(m) is None)
    assert not unplaced, f"give these modules a layer in tests/test_layering.py LAYERS: {unplaced}"


def test_imports_respect_the_layers() -> None:
    modules = source_modules()
    found = [v for module, path in modules.items() for v in violations(module, path.read_text(), set(modules))]
    assert not found, "\n".join(found)


def test_the_layer_rules_are_acyclic() -> None:
    done: set[str] = set()

    def visit(layer: str, path: tuple[str, ...]) -> None:
        assert layer not in path, f"layer cycle: {' -> '.join((*path, layer))}"
        for lower in ALLOWED[layer] - {layer}:
            if lower not in done:
                visit(lower, (*path, layer))
        done.add(layer)

    for layer in LAYERS:
        visit(layer, ())


def test_the_new_task_template_imports_only_core_and_scorers() -> None:
    template = resources.files("harness") / "templates/new_task/task.py.tmpl"
    source = Template(template.read_text(encoding="utf-8")).substitute(name="demo", class_name="DemoTask")
    assert imported_modules(source), "the template should use the harness"
    assert not violations("harness_tasks.demo.task", source, set(source_modules())), source


def test_a_forbidden_import_is_caught() -> None:
    """The checker itself: a task importing the runner, and a backend importing a report, are violations."""
    known = set(source_modules())
    assert violations("harness_tasks.demo.task", "def f():\n    from harness.runner import evaluate\n", known)
    assert violations("harness.backends.demo", "import harness.report.summary\n", known)
    assert not violations(
        "harness.backends.demo",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness.task import Task\n",
        known,
    )


IMPORT_AND_LIST = """
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("harness", "harness_tasks"))))
"""


def loaded_after_importing(modules: list[str]) -> list[str]:
    """In a fresh interpreter, import `modules` in order; return every harness module then loaded."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_LIST, json.dumps(modules)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    modules = sorted(m for m in source_modules() if m != "harness.__main__")
    assert set(modules) <= set(loaded_after_importing(modules))


def test_backends_and_tasks_load_only_their_layers_in_a_fresh_interpreter() -> None:
    modules = sorted(source_modules())
    for layer in ("backends", "scorers", "tasks"):
        own = [m for m in modules if layer_of(m) == layer]
        loaded = loaded_after_importing(own)
        beyond = [m for m in loaded if layer_of(m) not in ALLOWED[layer]]
        assert not beyond, f"importing the {layer} layer loaded {beyond}"
