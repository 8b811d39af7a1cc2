"""Sweeps: `harness run --model a,b,c --tasks x,y` (or `models:` in the run file) runs every model on every
task, each pair into its own run directory <sweep-dir>/<model slug>/<task>/, with the same judges, settings
and response cache, then writes the sweep's leaderboard (leaderboard.md, .csv, .html) into the sweep dir.

One run directory per model and task keeps every run under the strict resume fingerprint: re-running the
command resumes each run (a finished one does no work), and adding a model or a task only adds run
directories. A failing run does not stop the others; the exit code is the worst run's (0 all complete,
1 a run failed, 2 a user error in some run). Ctrl-C stops the sweep (130), keeping finished records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.cli import EXIT_RUN_FAILED, EXIT_USER_ERROR
from harness.cli_run import build_config, model_slug, report_failure, run_one, split_specs, utc_stamp
from harness.config import RunConfig
from harness.errors import UserError
from harness.run_file import RoleSettings, RunFile
from harness.store import atomic_write

LEADERBOARD_FORMATS = ("md", "csv", "html")


def is_sweep(opts: dict[str, Any], given: set[str], file: RunFile) -> bool:
    """Several models (--model a,b or `models:`), or a sweep directory, make `harness run` a sweep."""
    several = len(split_specs(opts["model"])) > 1 if "model" in given else file.models is not None
    return several or "sweep_dir" in given or file.sweep_dir is not None


def sweep_dir(opts: dict[str, Any], given: set[str], file: RunFile) -> Path:
    if "sweep_dir" in given:
        return Path(opts["sweep_dir"])
    return file.sweep_dir or Path("results") / f"sweep-{utc_stamp()}"


def model_configs(opts: dict[str, Any], given: set[str], file: RunFile) -> list[RunConfig]:
    """One validated RunConfig (all tasks) per model of the sweep, in the order given."""
    if "model" in given:
        return [build_config({**opts, "model": spec}, given, file) for spec in split_specs(opts["model"])]
    if file.models is None:
        return [build_config(opts, given, file)]
    shared = file.model.model_dump(exclude_none=True) if file.model else {}
    return [
        build_config(
            opts,
            given,
            file.model_copy(
                update={
                    "model": RoleSettings.model_validate({**shared, **entry.model_dump(exclude_none=True)}),
                    "models": None,
                }
            ),
        )
        for entry in file.models
    ]


def plan_sweep(opts: dict[str, Any], given: set[str], file: RunFile, root: Path) -> list[RunConfig]:
    """The sweep's runs, one per (model, task), each with its run directory under `root`."""
    if "run_dir" in given or file.run_dir is not None:
        raise UserError("a sweep writes one run directory per model and task: give --sweep-dir, not --run-dir")
    if opts.get("shard") or file.shard is not None:
        raise UserError("--shard splits one run: shard each model's run on its own and merge it (see README)")
    configs = model_configs(opts, given, file)
    slugs: dict[str, str] = {}
    for config in configs:
        spec, slug = config.model.spec, model_slug(config.model.spec)
        if slug in slugs:
            same = "is given twice" if slugs[slug] == spec else f"and {slugs[slug]} share the folder name '{slug}'"
            raise UserError(f"sweep: model {spec} {same}; list each model once, under distinct names")
        slugs[slug] = spec
    return [
        config.model_copy(
            update={
                "tasks": [task],
                "task_options": {k: v for k, v in config.task_options.items() if k == task},
                "run_dir": root / model_slug(config.model.spec) / task,
            }
        )
        for config in configs
        for task in config.tasks
    ]


def run_code(config: RunConfig) -> tuple[int, str]:
    """Run one (model, task) of the sweep: (exit code, outcome word); user errors are reported, not raised."""
    try:
        run_one(config)
    except UserError as exc:
        from harness.secrets import redact

        click.echo(f"error: {redact(str(exc))}", err=True)
        return EXIT_USER_ERROR, "error"
    return (EXIT_RUN_FAILED, "failed") if report_failure(config.run_dir) else (0, "complete")


def write_leaderboard(root: Path) -> list[Path]:
    """The sweep's leaderboard over every run below `root`, as leaderboard.md, .csv and .html."""
    from harness.report.leaderboard import FORMATS, build

    board = build(root)
    paths = [root / f"leaderboard.{fmt}" for fmt in LEADERBOARD_FORMATS]
    for fmt, path in zip(LEADERBOARD_FORMATS, paths):
        atomic_write(path, FORMATS[fmt](board))
    return paths


def run_sweep(opts: dict[str, Any], given: set[str], file: RunFile) -> int:
    """Run (or resume, or extend) the sweep; returns the worst run's exit code."""
    root = sweep_dir(opts, given, file)
    runs = plan_sweep(opts, given, file, root)
    models = len({config.model.spec for config in runs})
    click.echo(
        f"sweep directory: {root} ({models} models, {len(runs)} runs); "
        f"re-run with --sweep-dir {root} to resume or extend it"
    )
    outcomes = []
    for number, config in enumerate(runs, start=1):
        click.echo(click.style(f"[{number}/{len(runs)}] {config.model.spec} on {config.tasks[0]}", bold=True))
        outcomes.append((config, *run_code(config)))
    click.echo(click.style("sweep", bold=True))
    for config, _, word in outcomes:
        click.echo(f"  {word:12} {config.run_dir}")
    paths = write_leaderboard(root)
    click.echo(f"leaderboard: {', '.join(str(p) for p in paths)}")
    return max(code for _, code, _ in outcomes)
