"""The `harness run` command: options -> RunConfig -> runner -> reports -> terminal summary."""
from __future__ import annotations

import contextlib
import datetime as dt
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from harness.backends.base import BackendOptions
from harness.cache import default_cache_path
from harness.config import (DEFAULT_MODEL, RoleConfig, RunConfig, parse_key_values, split_key_values,
                            split_task_options)
from harness.judging.refusal import check_refusal_scorer
from harness.registry import parse_task_list, task_class
from harness.secrets import register_secret_env
from harness.types import GenerateConfig


def backend_options(opts: dict[str, Any]) -> BackendOptions:
    """BackendOptions from the shared model options of the CLI (see cli.model_options)."""
    register_secret_env(opts["api_key_env"])
    return BackendOptions(
        base_url=opts["base_url"],
        api_key_env=opts["api_key_env"],
        max_connections=opts["max_connections"],
        timeout_s=opts["timeout"],
        max_retries=opts["max_retries"],
        threads=opts["threads"],
        engine_args=split_key_values(opts["vllm_args"], "--vllm-arg"),  # BackendOptions parses them
    )


def cache_file(opts: dict[str, Any]) -> Path | None:
    """The response cache to use, or None with --no-cache."""
    return None if opts["no_cache"] else (opts["cache_path"] or default_cache_path())


def split_specs(text: str | None) -> list[str]:
    """'a, b' -> ['a', 'b'] (a comma-separated judge panel)."""
    return [spec.strip() for spec in (text or "").split(",") if spec.strip()]


def role_config(spec: str, opts: dict[str, Any], generate: GenerateConfig | None = None) -> RoleConfig:
    return RoleConfig(spec=spec, options=backend_options(opts), generate=generate or GenerateConfig())


def default_run_dir(model: str) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model).strip("-")[:60]
    return Path("results") / f"{stamp}_{slug}"


def build_config(opts: dict[str, Any]) -> RunConfig:
    """Validate the command-line options into a RunConfig."""
    model = opts["model"]
    if model is None:
        model = DEFAULT_MODEL
        click.echo(f"no --model given: using the embedded default {DEFAULT_MODEL} (SmolLM2-135M-Instruct on CPU)")
    tasks = parse_task_list(opts["tasks"])
    accepted = {name: set(task_class(name).Options.model_fields) for name in tasks}
    task_options = split_task_options(parse_key_values(opts["task_args"], "-T"), tasks, accepted)
    generate = GenerateConfig(temperature=opts["temperature"], top_p=opts["top_p"], max_tokens=opts["max_tokens"])
    generate = GenerateConfig(**generate.model_dump(exclude_none=True))
    judges = split_specs(opts["judge"])
    if opts["model"] is None and not judges:
        judges = [DEFAULT_MODEL]
        click.echo(f"no --judge given: judging with {DEFAULT_MODEL} too (a demonstration, not evidence of quality)")
    check_refusal_scorer(opts["refusal_scorer"], len(judges))
    return RunConfig(
        model=role_config(model, opts, generate),
        judges=[role_config(j, opts) for j in judges],
        simulator=role_config(opts["simulator"], opts) if opts["simulator"] else None,
        refusal_scorer=opts["refusal_scorer"],
        tasks=tasks,
        task_options=task_options,
        limit=opts["limit"],
        repeats=opts["repeats"],
        seed=opts["seed"],
        max_samples=opts["max_samples"],
        run_dir=opts["run_dir"] or default_run_dir(model),
        cache_path=cache_file(opts),
        retry_errors=opts["retry_errors"],
        max_error_rate=opts["max_error_rate"],
        progress=not opts["no_progress"],
    )


@contextlib.contextmanager
def rich_progress(total: int, enabled: bool):
    """Progress bar with counts, throughput, ETA and an error tally; yields advance(record)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    errors = 0
    started = time.perf_counter()
    columns = [
        TextColumn("[bold]samples"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        TextColumn("{task.fields[errors]}"),
    ]
    with Progress(*columns, disable=not enabled, transient=False) as progress:
        bar = progress.add_task("run", total=total, rate="", errors="")

        def advance(record) -> None:
            nonlocal errors
            errors += bool(record.error)
            done = progress.tasks[0].completed + 1
            rate = done / max(time.perf_counter() - started, 1e-9)
            progress.update(bar, advance=1, rate=f"{rate:.1f}/s", errors=f"[red]{errors} errors" if errors else "")

        yield advance


def metric_line(m: dict[str, Any]) -> str:
    """One metric (as in summary.json) for the terminal: value, 95% CI, unit, n, note, direction."""
    value = "n/a" if m["value"] is None else f"{m['value']:.4g}"
    has_ci = m["ci_low"] is not None and m["ci_high"] is not None
    ci = f" [{m['ci_low']:.4g}, {m['ci_high']:.4g}]" if has_ci else ""
    unit = f" {m['unit']}" if m.get("unit") and m["unit"] != "%" else ""
    note = f"  ({m['note']})" if m.get("note") else ""
    better = {"lower": " (lower is better)", "higher": " (higher is better)"}.get(m["direction"], "")
    return f"  {m['name']:40} {value}{ci}{unit}  n={m['n']}{better}{note}"


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    for task, result in summary["tasks"].items():
        click.echo(click.style(task, bold=True))
        for m in result["metrics"]:
            click.echo(metric_line(m))
    click.echo(f"results: {run_dir}/report.md, summary.json, records.jsonl")


def execute_run(opts: dict[str, Any]) -> None:
    from harness.report.summary import write_reports
    from harness.runner import run

    config = build_config(opts)
    click.echo(f"run directory: {config.run_dir}")
    outcome = run(config, lambda total: rich_progress(total, config.progress))
    if outcome.skipped:
        click.echo(f"resumed: {outcome.skipped} finished records kept, {outcome.finished} new")
    if outcome.interrupted:
        raise KeyboardInterrupt
    if outcome.errors:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.errors_by_kind.items()))
        click.echo(f"warning: {outcome.errors} samples ended in errors ({kinds}); "
                   "re-run with --retry-errors to retry only those", err=True)
        click.echo(f"first error: {outcome.first_error}", err=True)
    print_summary(write_reports(config.run_dir), config.run_dir)
    exit_if_failed(config.run_dir)


def exit_if_failed(run_dir: Path) -> None:
    """Exit with EXIT_RUN_FAILED, after one line saying why, when the run's status is 'failed'."""
    from harness.cli import EXIT_RUN_FAILED
    from harness.store import MANIFEST, read_json

    manifest = read_json(run_dir / MANIFEST)
    if manifest.get("status") == "failed":
        click.echo(f"error: run failed: {manifest.get('failure')}; its reports are marked failed", err=True)
        sys.exit(EXIT_RUN_FAILED)
