"""Aggregate a run's records into summary.json and report.md (records are the single source)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.registry import task_class
from harness.store import MANIFEST, SUMMARY, RunStore, atomic_write, read_json, write_json
from harness.task import TaskResult
from harness.types import Record


def task_results(run_dir: Path) -> tuple[dict[str, Any], list[TaskResult]]:
    """The run's manifest and each task's aggregated result."""
    manifest = read_json(Path(run_dir) / MANIFEST)
    records_by_task: dict[str, list[Record]] = defaultdict(list)
    for record in RunStore(run_dir).load_records():
        records_by_task[record.task].append(record)
    results = []
    for entry in manifest.get("tasks", []):
        task = task_class(entry["name"])(entry.get("options") or {})
        result = task.aggregate(records_by_task.get(entry["name"], []))
        result.counts.setdefault("records", len(records_by_task.get(entry["name"], [])))
        result.counts.setdefault(
            "generation_errors", sum(1 for r in records_by_task.get(entry["name"], []) if r.error)
        )
        results.append(result)
    return manifest, results


def model_spec(manifest: dict[str, Any]) -> str:
    return next((r["spec"] for r in manifest.get("roles", []) if r["role"] == "model"), "?")


def summary_document(run_dir: Path, manifest: dict[str, Any], results: list[TaskResult]) -> dict[str, Any]:
    return {
        "run": Path(run_dir).name,
        "model": model_spec(manifest),
        "judges": [r["spec"] for r in manifest.get("roles", []) if r["role"] == "judge"],
        "status": manifest.get("status"),
        "tasks": {r.task: r.model_dump(mode="json", exclude={"task"}) for r in results},
    }


def write_reports(run_dir: Path) -> dict[str, Any]:
    """(Re)write summary.json and report.md for a run directory; returns the summary."""
    from harness.report.markdown import run_report

    run_dir = Path(run_dir)
    manifest, results = task_results(run_dir)
    summary = summary_document(run_dir, manifest, results)
    write_json(run_dir / SUMMARY, summary)
    atomic_write(run_dir / "report.md", run_report(run_dir, manifest, results))
    return summary
