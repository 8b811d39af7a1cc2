"""Markdown rendering of run results."""

from __future__ import annotations

import datetime as dt
from typing import Any

from harness.metrics import CONSISTENCY_TABLE, ci_text, consistency_rows
from harness.report.cards import TaskCard
from harness.report.summary import LoadedRun, demonstration_notice, failure_notice, model_spec
from harness.task import Task, TaskResult
from harness.types import Metric

ARROWS = {"lower": "lower is better", "higher": "higher is better", "none": ""}


def cell(value: Any) -> str:
    """Table cell text with Markdown control characters neutralised."""
    text = "" if value is None else (f"{value:.2f}" if isinstance(value, float) else str(value))
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def value_text(m: Metric) -> str:
    """The point estimate: '12.5%', '0.731', a bound ('>1000 EUR'), or 'n/a'."""
    if m.value is None:
        return bound_text(m) or "n/a"
    return f"{m.value:.1f}%" if m.unit == "%" else f"{m.value:.3f}"


def bound_text(m: Metric) -> str:
    """A censored metric's bound with its unit ('>1000 EUR'); '' without one."""
    if m.bound is None:
        return ""
    return m.bound.text() + ("%" if m.unit == "%" else f" {m.unit}" if m.unit else "")


def interval_text(m: Metric) -> str:
    """The 95% interval '[low, high]' at the value's precision; empty without one."""
    return ci_text(m.ci_low, m.ci_high, 1 if m.unit == "%" else 3)


def format_metric_value(m: Metric) -> str:
    """Value and 95% interval: '12.5% [7.1, 21.0]'."""
    interval = interval_text(m) if m.value is not None else ""
    return f"{value_text(m)} {interval}".rstrip()


def metrics_table(metrics: list[Metric], captions: dict[str, str] | None = None) -> str:
    """Metric rows; `captions` add a note after a metric's name."""
    lines = ["| metric | value (95% CI) | n | direction |", "|---|---|---|---|"]
    for m in metrics:
        name = f"`{cell(m.name)}`" + (f" ({cell(captions[m.name])})" if captions and m.name in captions else "")
        lines.append(f"| {name} | {format_metric_value(m)} | {m.n} | {ARROWS[m.direction]} |")
    return "\n".join(lines)


def no_data_lines(groups: dict[str, list[str]]) -> list[str]:
    """One line per reason: 'No data for: `a`, `b` (reason).'"""
    return [
        f"No data for: {', '.join(f'`{cell(n)}`' for n in names)} ({cell(reason)})." for reason, names in groups.items()
    ]


def exclusion_parts(card: TaskCard) -> list[tuple[str, bool]]:
    """What the card's numbers leave out (invalid answers, judge errors, failed records), each with whether
    it is non-zero."""
    parts = []
    if card.invalid is not None:
        parts.append(
            (
                f"invalid answers {format_metric_value(card.invalid)} ({card.invalid.name}), n={card.invalid.n}",
                bool(card.invalid.value),
            )
        )
    if card.judged:
        parts.append(
            (
                f"judge errors {card.judge_errors} of {card.judged} judged ({card.judge_error_rate:.1f}%)",
                bool(card.judge_errors),
            )
        )
    parts.append((f"failed records {card.failed_records} of {card.records}", bool(card.failed_records)))
    return parts


def card_markdown(card: TaskCard) -> str:
    """A task's first-screen card: headline metrics, exclusions, metrics without data."""
    with_data = [m for m in card.headline if m.has_result]
    protocol = f" (protocol {card.protocol})" if card.protocol != "default" else ""
    parts = [f"### {card.task}{protocol}", f"Excluded: {cell('; '.join(text for text, _ in exclusion_parts(card)))}."]
    if with_data:
        parts.append(metrics_table(with_data, card.captions))
    parts += no_data_lines(card.headline_no_data())
    if others := card.other_no_data():
        parts.append(f"{others} more metrics have no data (listed in the task's section).")
    if card.plot is not None:
        parts.append(f"Plot in report.html: {cell(card.plot.title)}.")
    return "\n\n".join(parts)


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no rows_"
    columns = list(dict.fromkeys(column for row in rows for column in row))  # as html.table_html
    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def task_section(task: Task, result: TaskResult, card: TaskCard | None = None) -> str:
    """The task's own report.md section, or else the default one."""
    return task.report_markdown(result) or default_task_section(result, card)


def default_task_section(result: TaskResult, card: TaskCard | None = None) -> str:
    """Metrics, tables, counts and notes; with the run's `card`, metrics without data are folded into one
    line per reason (without records, as in `harness analyze`, every metric gets a row)."""
    if card is None:
        parts = [metrics_table(result.metrics)]
    else:
        parts = [metrics_table([m for m in result.metrics if m.has_result]), *no_data_lines(card.no_data)]
    if rows := consistency_rows(result.metrics):
        parts.append(f"**{CONSISTENCY_TABLE}**\n\n{table(rows)}")
    for name, rows in result.tables.items():
        parts.append(f"**{name}**\n\n{table(rows)}")
    if result.counts:
        parts.append("Counts: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))
    parts += [f"> {note}" for note in result.notes]
    return "\n\n".join(parts)


def usage_section(run: LoadedRun) -> str:
    """## Tokens and cost: the table of harness.report.usage with its notes."""
    from harness.report.usage import SECTION, usage_notes, usage_rows

    notes = [f"> {note}" for note in usage_notes(run.usage, run.manifest)]
    return "\n\n".join([f"## {SECTION}", table(usage_rows(run.usage)), *notes])


def run_report(run: LoadedRun) -> str:
    """The whole report.md of a run."""
    manifest = run.manifest
    roles = manifest.get("roles", [])
    started = manifest.get("started_at")
    when = dt.datetime.fromtimestamp(started, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if started else "?"
    lines = [f"# Evaluation report: {run.run_dir.name}", ""]
    for notice in (failure_notice(manifest), demonstration_notice(manifest)):
        if notice:
            lines += [f"> **{notice}**", ""]
    lines += [
        f"Model `{model_spec(manifest)}`; status {manifest.get('status')}. Headline metrics per task; "
        "every metric, table and note follows below.",
        "",
    ]
    lines += [card_markdown(run.cards[result.task]) + "\n" for result in run.results]
    lines += ["## Run", ""]
    for r in roles:
        lines.append(
            f"- **{r['role']}**: `{r['spec']}` ({r['calls']} calls, {r['cache_hits']} cache hits, "
            f"{r['retries']} retries, {r['prompt_tokens']}+{r['completion_tokens']} tokens)"
        )
    lines += [
        f"- started: {when}; status: {manifest.get('status')}; seed {manifest.get('seed')}; "
        f"repeats {manifest.get('repeats')}; limit {manifest.get('limit')}",
        "",
    ]
    for result in run.results:
        task = run.tasks[result.task]
        lines += [
            f"## {result.task}",
            "",
            task.description,
            "",
            f"Protocol: **{task.protocol}**.",
            "",
            task_section(task, result, run.cards[result.task]),
            "",
        ]
    lines += [usage_section(run), ""]
    lines += [
        "## Provenance",
        "",
        f"harness {manifest.get('harness_version')} "
        f"(commit {manifest.get('git_commit') or 'unknown'}), Python {manifest.get('python')}",
        "",
    ]
    for t in manifest.get("tasks", []):
        d = t["dataset"]
        lines.append(
            f"- {t['name']}: {d['source']} (revision {d.get('revision') or '-'}, "
            f"sha256 {d['content_hash'][:12]}, {d['n_samples']} samples; protocol {t.get('protocol', 'default')})"
        )
    return "\n".join(lines) + "\n"
