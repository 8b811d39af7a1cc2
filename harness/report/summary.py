"""Aggregate a run's records into summary.json, report.md and report.html (records are the single source)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.metrics import MetricValues
from harness.registry import task_class
from harness.report.cards import TaskCard, task_card
from harness.store import MANIFEST, SUMMARY, RunStore, atomic_write, read_json, write_json
from harness.task import Task, TaskResult, evaluate
from harness.types import Metric, Record, is_judge_role

SUMMARY_VERSION = 1
OPTION_TABLE = "option_probabilities"


@dataclass
class LoadedRun:
    """A run directory read back: manifest, each task's plugin instance, records, aggregated result and the
    per-record values of its mean-type metrics (task -> metric -> values)."""

    run_dir: Path
    manifest: dict[str, Any]
    tasks: dict[str, Task]
    records: dict[str, list[Record]]
    results: list[TaskResult]
    values: dict[str, dict[str, MetricValues]]
    usage: dict[str, Any] = field(default_factory=dict)  # tokens and cost (harness.report.usage)
    cards: dict[str, TaskCard] = field(default_factory=dict)  # task -> its first-screen card

    def metrics(self) -> dict[str, Metric]:
        return {m.name: m for result in self.results for m in result.metrics}


def judge_counts(records: list[Record]) -> dict[str, int]:
    """Scores without a verdict (excluded from rates) and failed judge calls, by reason: the same
    definition for every task (harness.judging.panel.judge_error_counts)."""
    from harness.judging.panel import judge_error_counts

    return judge_error_counts(s for r in records for s in r.scores.values())


def load_run(run_dir: Path) -> LoadedRun:
    """Read a run directory and aggregate every task from its records."""
    from harness.report.corrected import add_judge_validity, check_panel_rule, read_judging, revote_records
    from harness.report.usage import run_usage

    run_dir = Path(run_dir)
    manifest = read_json(run_dir / MANIFEST)
    judging = read_judging(run_dir)
    check_panel_rule(judging, judge_specs(manifest))
    records: dict[str, list[Record]] = defaultdict(list)
    ordered = sorted(RunStore(run_dir).load_records(), key=lambda r: r.key)  # results never depend on file order
    for record in revote_records(ordered, judging):
        records[record.task].append(record)
    tasks, results, values = {}, [], {}
    for entry in manifest.get("tasks", []):
        name = entry["name"]
        task = task_class(name)(entry.get("options") or {})
        task_records = records.get(name, [])
        result, values[name] = evaluate(task, task_records)
        result.counts.setdefault("records", len(task_records))
        result.counts.setdefault("generation_errors", sum(1 for r in task_records if r.error))
        result.counts.update(judge_counts(task_records))
        mark_answer_modes(result, task_records)
        tasks[name] = task
        results.append(result)
    run = LoadedRun(run_dir, manifest, tasks, dict(records), results, values)
    run.usage = run_usage(run)
    add_judge_validity(run, judging)
    run.cards = {r.task: task_card(tasks[r.task], r, records.get(r.task, []), judge_specs(manifest)) for r in results}
    return run


def answer_mode_counts(records: list[Record]) -> dict[str, dict[str, int]]:
    """Per role kind (model, judge, simulator) how many answers each non-free answer mode produced."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        for exchange in record.exchanges:
            mode = exchange.completion.answer_mode if exchange.completion is not None else "free"
            if mode != "free":
                counts["judge" if is_judge_role(exchange.role) else exchange.role][mode] += 1
    return {role: dict(modes) for role, modes in counts.items()}


def mark_answer_modes(result: TaskResult, records: list[Record]) -> None:
    """Mark a task's metrics when choice answers were constrained or scored by logprob: such numbers are not
    comparable with free-text runs (the paper protocols answer freely)."""
    counts = answer_mode_counts(records)
    if not counts:
        return
    described = "; ".join(
        f"{role}: " + ", ".join(f"{mode} ({n} answers)" for mode, n in sorted(modes.items()))
        for role, modes in sorted(counts.items())
    )
    result.notes.append(
        f"Answer modes: {described}. Choice answers were not free text, so these metrics are not "
        "comparable with free-text (paper protocol) runs."
    )
    mark = "answers " + "/".join(sorted({mode for modes in counts.values() for mode in modes}))
    for metric in result.metrics:
        metric.note = f"{metric.note}; {mark}" if metric.note else mark
    for role, modes in counts.items():
        for mode, n in modes.items():
            result.counts[f"{role}_{mode}_answers"] = n
    rows = option_probability_rows(records)
    if rows:
        result.tables[OPTION_TABLE] = rows


def option_probability_rows(records: list[Record]) -> list[dict[str, Any]]:
    """One row per logprob-mode answer of the model under test: each option's probability beside the answer
    taken (the argmax), so expected values can be read next to the counted choice."""
    rows = []
    for record in records:
        for exchange in record.exchanges:
            probs = exchange.completion.option_probs if exchange.completion is not None else None
            if exchange.role == "model" and probs:
                rows.append(
                    {
                        "sample": record.sample_id,
                        "repetition": record.repetition,
                        "purpose": exchange.purpose,
                        "answer": exchange.completion.text if exchange.completion else None,
                        **{f"p({option})": round(p, 3) for option, p in probs.items()},
                    }
                )
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return [{column: row.get(column) for column in columns} for row in rows]


def demonstration_notice(manifest: dict[str, Any]) -> str | None:
    """A warning when judges ran on a local CPU model: such verdicts only prove the pipeline works."""
    local = [spec for spec in judge_specs(manifest) if spec.startswith("local/")]
    if not local:
        return None
    return (
        f"Demonstration only: judged by {', '.join(local)}, a small local model. Its verdicts show that the "
        "pipeline runs end to end; they are not evidence about the model under test."
    )


def failure_notice(manifest: dict[str, Any]) -> str | None:
    """A warning for a run whose status is 'failed' (too many samples ended in errors)."""
    if manifest.get("status") != "failed":
        return None
    why = manifest.get("failure") or "see the manifest"
    return (
        f"FAILED RUN: {why}. Its numbers rest on the samples that did not fail and are not a valid "
        "result; re-run with --retry-errors to retry the errored samples."
    )


def model_role(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest entry of the model under test ({} if missing)."""
    return next((r for r in manifest.get("roles", []) if r["role"] == "model"), {})


def model_spec(manifest: dict[str, Any]) -> str:
    return model_role(manifest).get("spec", "?")


def judge_specs(manifest: dict[str, Any]) -> list[str]:
    """Model specs of the judge roles, in --judge order."""
    return [r["spec"] for r in manifest.get("roles", []) if is_judge_role(r["role"])]


def task_summary(result: TaskResult, card: TaskCard) -> dict[str, Any]:
    data = result.model_dump(mode="json", exclude={"task"})
    data["judge_errors"] = result.counts.get("judge_errors", 0)
    data["judge_call_errors"] = result.counts.get("judge_call_errors", 0)
    data["card"] = card.as_json()
    return data


def summary_document(run: LoadedRun) -> dict[str, Any]:
    """summary.json: per task its metrics, tables, plots and counts, plus a flat index of every metric."""
    manifest = run.manifest
    return {
        "summary_version": SUMMARY_VERSION,
        "run": run.run_dir.name,
        "model": model_spec(manifest),
        "judges": judge_specs(manifest),
        "status": manifest.get("status"),
        "failure": manifest.get("failure"),
        "started_at": manifest.get("started_at"),
        "finished_at": manifest.get("finished_at"),
        "confidence_level": 0.95,
        "metrics": {
            m.name: {"task": r.task, **m.model_dump(mode="json", exclude={"name"})}
            for r in run.results
            for m in r.metrics
        },
        "tasks": {r.task: task_summary(r, run.cards[r.task]) for r in run.results},
        "usage": run.usage,
    }


def write_reports(run_dir: Path) -> dict[str, Any]:
    """(Re)write summary.json, report.md and report.html for a run directory; returns the summary."""
    return write_run_reports(load_run(run_dir))


def write_run_reports(run: LoadedRun) -> dict[str, Any]:
    """Write summary.json, report.md and report.html of an already loaded run; returns the summary."""
    from harness.report.html import run_html
    from harness.report.markdown import run_report

    summary = summary_document(run)
    write_json(run.run_dir / SUMMARY, summary)
    atomic_write(run.run_dir / "report.md", run_report(run))
    atomic_write(run.run_dir / "report.html", run_html(run))
    return summary
