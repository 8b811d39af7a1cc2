"""`harness rejudge`: score a finished run's stored responses again with other judges, never generating.

The new run directory gets the source's responses (model and simulator exchanges, copied unchanged),
fresh scores and judge exchanges, a manifest whose `source_run` names the source, its reports and a
`drift.json`: per metric old, new and delta, and per score the agreement of old and new labels.
Records that failed during generation are copied as they are. Re-judging with the same judges hits
the response cache and reproduces the source's metrics exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

from harness.cache import ResponseCache
from harness.config import RoleConfig, RunConfig
from harness.errors import UserError
from harness.judging.refusal import check_refusal_scorer
from harness.manifest import RoleManifest, RunManifest, TaskManifest, command_line, git_commit
from harness.registry import task_class
from harness.report.summary import LoadedRun, load_run, write_run_reports
from harness.runner import WorkItem, build_judge_roles, check_resumable, execute, run_fingerprint
from harness.stats import cohen_kappa, kappa_undefined
from harness.store import MANIFEST, RunStore, write_json
from harness.types import GenerateConfig, Record, is_judge_role

DRIFT = "drift.json"


def default_rejudge_dir(source: Path) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return source.parent / f"{source.name}_rejudge-{stamp}"


def rejudge_config(
    source: Path,
    manifest: dict[str, Any],
    judges: list[RoleConfig],
    refusal_scorer: str | None,
    run_dir: Path,
    cache_path: Path | None,
    max_samples: int,
) -> RunConfig:
    """The source run's settings with new judges (and optionally another refusal scorer)."""
    fp = manifest.get("fingerprint") or {}
    if "model" not in fp:
        raise UserError(f"{source / MANIFEST}: no run fingerprint; is this a harness run directory?")
    scorer = refusal_scorer or fp.get("refusal_scorer", "rules")
    check_refusal_scorer(scorer, len(judges))
    return RunConfig(
        model=RoleConfig(spec=fp["model"], generate=GenerateConfig(**fp.get("model_generate", {}))),
        judges=judges,
        simulator=RoleConfig(spec=fp["simulator"]) if fp.get("simulator") else None,
        refusal_scorer=scorer,
        tasks=[t["name"] for t in manifest.get("tasks", [])],
        task_options=fp.get("task_options", {}),
        limit=manifest.get("limit"),
        repeats=manifest.get("repeats", 1),
        seed=manifest.get("seed", 0),
        max_samples=max_samples,
        run_dir=run_dir,
        cache_path=cache_path,
        progress=False,
    )


def plan_rejudge(
    manifest: dict[str, Any], records: list[Record], done: dict[tuple[str, str, int], str | None]
) -> tuple[list[WorkItem], list[Record], list[TaskManifest]]:
    """Items to re-score, records to copy unchanged (generation failures) and the task manifests.

    `done` maps the new run's finished records to their error kind (None: succeeded). Reloads each task's
    data and insists it is the data the source run used.
    """
    tasks, samples, task_manifests = {}, {}, []
    for entry in manifest.get("tasks", []):
        task = task_class(entry["name"])(entry.get("options") or {})
        loaded, info = task.load()
        expected = (entry.get("dataset") or {}).get("content_hash")
        if expected and info.content_hash != expected:
            raise UserError(
                f"task {task.name}: the dataset ({info.source}) differs from the one the source run used "
                f"(sha256 {info.content_hash[:12]} vs {expected[:12]}); rejudge needs the same data"
            )
        tasks[task.name] = task
        samples.update({(task.name, s.id): s for s in loaded})
        task_manifests.append(TaskManifest.model_validate(entry))
    items, copies = [], []
    for record in records:
        if record.key in done and done[record.key] is None:
            continue  # re-scored in an earlier, interrupted rejudge
        if record.task not in tasks:
            raise UserError(f"record of task '{record.task}' but the source manifest does not list that task")
        if record.error and record.error_kind in ("generation", "truncated", "simulator"):  # no response to score
            copies.append(record)
            continue
        sample = samples.get((record.task, record.sample_id))
        if sample is None:
            raise UserError(f"task {record.task}: sample '{record.sample_id}' of the source run is not in the dataset")
        items.append(WorkItem(tasks[record.task], sample, record.repetition, previous=record))
    return items, copies, task_manifests


def rejudge(source: Path, config: RunConfig, source_manifest: dict[str, Any]) -> dict[str, Any]:
    """Re-score into `config.run_dir` (resumable), write reports and drift.json; returns the drift."""
    if config.run_dir.resolve() == source.resolve():
        raise UserError("rejudge writes a new run: pass a --run-dir other than the source run")
    old = load_run(source)
    records = [r for task_records in old.records.values() for r in task_records]
    if not records:
        raise UserError(f"{source}: the run has no records to re-judge")
    store = RunStore(config.run_dir)
    items, copies, task_manifests = plan_rejudge(source_manifest, records, store.outcomes(repair=True))
    fingerprint = run_fingerprint(config, task_manifests)
    check_resumable(fingerprint, store)
    cache = ResponseCache(config.cache_path) if config.cache_path else None
    roles = build_judge_roles(config.judges, cache)
    kept_roles = [
        RoleManifest.model_validate(
            {**r, "calls": 0, "cache_hits": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0}
        )
        for r in source_manifest.get("roles", [])
        if not is_judge_role(r["role"])
    ]
    manifest = RunManifest(
        git_commit=git_commit(),
        command=command_line(),
        fingerprint=fingerprint,
        tasks=task_manifests,
        roles=kept_roles,
        seed=config.seed,
        repeats=config.repeats,
        limit=config.limit,
        source_run=str(source.resolve()),
    )
    for record in copies:
        store.append(record)
    silent = lambda total: contextlib.nullcontext(lambda record: None)  # noqa: E731
    outcome = asyncio.run(
        execute(items, roles, store, config, manifest, cache, silent, {"copied_generation_errors": len(copies)})
    )
    if outcome.interrupted:
        raise KeyboardInterrupt
    new = load_run(config.run_dir)
    write_run_reports(new)
    drift = compute_drift(old, new)
    write_json(config.run_dir / DRIFT, drift)
    return drift


def compute_drift(old: LoadedRun, new: LoadedRun) -> dict[str, Any]:
    """Per metric old/new/delta, and per (task, score) agreement and Cohen's kappa of old vs new labels."""
    old_metrics = {(r.task, m.name): m.value for r in old.results for m in r.metrics}
    metrics = []
    for result in new.results:
        for m in result.metrics:
            before = old_metrics.get((result.task, m.name))
            delta = None if before is None or m.value is None else m.value - before
            metrics.append({"task": result.task, "metric": m.name, "old": before, "new": m.value, "delta": delta})
    new_by_key = {r.key: r for task_records in new.records.values() for r in task_records}
    labels: dict[tuple[str, str], tuple[list, list]] = {}
    for record in (r for task_records in old.records.values() for r in task_records):
        fresh = new_by_key.get(record.key)
        if fresh is None or record.error or fresh.error:
            continue
        for name, old_score in record.scores.items():
            new_score = fresh.scores.get(name)
            if (
                new_score is None
                or old_score.error
                or new_score.error
                or old_score.label is None
                or new_score.label is None
            ):
                continue
            pair = labels.setdefault((record.task, name), ([], []))
            pair[0].append(old_score.label)
            pair[1].append(new_score.label)
    agreement = [
        {
            "task": task,
            "score": name,
            "n": len(a),
            "agreement_%": 100 * sum(x == y for x, y in zip(a, b)) / len(a),
            "kappa": cohen_kappa(a, b),
            "kappa_note": kappa_undefined(a, b),
        }
        for (task, name), (a, b) in sorted(labels.items())
    ]
    return {"source_run": str(old.run_dir), "run": str(new.run_dir), "metrics": metrics, "label_agreement": agreement}


def format_drift(drift: dict[str, Any]) -> str:
    """The drift table printed by `harness rejudge`."""

    def num(value: float | None, sign: bool = False) -> str:
        return "n/a" if value is None else (f"{value:+.2f}" if sign else f"{value:.2f}")

    lines = [f"drift: {drift['source_run']} -> {drift['run']}", f"{'metric':40} {'old':>9} {'new':>9} {'delta':>9}"]
    lines += [
        f"{m['metric']:40} {num(m['old']):>9} {num(m['new']):>9} {num(m['delta'], True):>9}" for m in drift["metrics"]
    ]
    lines += ["", "old vs new labels", f"{'task / score':40} {'n':>5} {'agree %':>9} {'kappa':>9}"]
    lines += [
        f"{a['task'] + ' / ' + a['score']:40} {a['n']:>5} {a['agreement_%']:>9.1f} {num(a['kappa']):>9}"
        + (f"  ({a['kappa_note']})" if a.get("kappa_note") else "")
        for a in drift["label_agreement"]
    ]
    return "\n".join(lines)
