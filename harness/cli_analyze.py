"""The `harness analyze` command: a task's metrics computed from a table of published responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.errors import UserError


def report_markdown(task_cls, info: dict[str, str], summary: dict[str, Any], results: dict) -> str:
    from harness.report.markdown import task_section

    lines = [
        f"# Analysis of published responses: {info['source']}",
        "",
        f"- task: `{summary['task']}`; sha256 {info['content_hash'][:12]}",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items() if k not in ("source", "content_hash")]
    lines.append("")
    for model, result in results.items():
        lines += [f"## {model}", "", task_section(task_cls({}), result), ""]
    return "\n".join(lines) + "\n"


def execute_analyze(task_name: str, source: str, task_args: tuple[str, ...], out: Path | None) -> None:
    """Analyse `source` with the task's `analyze_table` hook; print the metrics, optionally write files."""
    from harness.cli_run import metric_line
    from harness.config import parse_key_values
    from harness.registry import task_class, task_locations
    from harness.store import atomic_write, write_json

    cls = task_class(task_name)
    hook = getattr(cls, "analyze_table", None)
    if hook is None:
        able = [n for n in task_locations() if hasattr(task_class(n), "analyze_table")]
        raise UserError(
            f"task {task_name} cannot analyse published responses; tasks that can: {', '.join(able) or 'none'}"
        )
    results, info = hook(source, parse_key_values(task_args, "-T"))
    summary = {
        "task": task_name,
        **info,
        "models": {model: r.model_dump(mode="json", exclude={"task"}) for model, r in results.items()},
    }
    for model, result in summary["models"].items():
        click.echo(click.style(model, bold=True))
        for m in result["metrics"]:
            click.echo(metric_line(m))
    if out is not None:
        write_json(out / "summary.json", summary)
        atomic_write(out / "report.md", report_markdown(cls, info, summary, results))
        click.echo(f"wrote {out / 'summary.json'} and {out / 'report.md'}")
