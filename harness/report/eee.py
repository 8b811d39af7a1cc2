"""Export to the Every Eval Ever schema (evaleval/every_eval_ever, v0.2.1).

Per (model, run) of the leaderboard: `<out>/<model>/<run>.json`, an aggregate record with one
`evaluation_results` entry per metric, and `<out>/<model>/<run>.jsonl`, instance-level lines (one per record
and metric with per-record values, see `Task.metric_values`). How harness fields map, and what differs,
is documented in harness/report/README.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.report.examples import ideal_value
from harness.report.leaderboard import Board
from harness.report.summary import LoadedRun, judge_specs, load_run, model_role, model_spec
from harness.types import GenerateConfig, Metric, Record

SCHEMA_VERSION = "0.2.1"
INSTANCE_SCHEMA_VERSION = "instance_level_eval_0.2.1"
GENERATION_ARGS = ("temperature", "top_p", "max_tokens")


def strings(data: dict[str, Any]) -> dict[str, str]:
    """EEE `additional_details`: string values only, None dropped."""
    return {k: v if isinstance(v, str) else json.dumps(v, default=str) for k, v in data.items() if v is not None}


def model_info(run: LoadedRun) -> dict[str, Any]:
    spec = model_spec(run.manifest)
    kind, _, name = spec.partition("/")
    role = model_role(run.manifest)
    return {
        "name": spec,
        "id": name or spec,
        "inference_platform": kind,
        "additional_details": strings({"harness_spec": spec, **(role.get("identity") or {})}),
    }


def source_data(task: str, dataset: dict[str, Any]) -> dict[str, Any]:
    source = str(dataset.get("source", ""))
    details = strings(
        {"source": source, "revision": dataset.get("revision"), "content_hash": dataset.get("content_hash")}
    )
    if source.startswith("hf:"):
        return {
            "dataset_name": task,
            "source_type": "hf_dataset",
            "hf_repo": source[3:],
            "samples_number": int(dataset.get("n_samples") or 0),
            "additional_details": details,
        }
    return {"dataset_name": task, "source_type": "other", "additional_details": details}


def score_range(m: Metric) -> tuple[float, float, str]:
    """(min, max, how known): percentages span 0..100 (-100..100 for signed differences)."""
    bounds = [v for v in (m.value, m.ci_low, m.ci_high) if v is not None]
    if m.unit == "%":
        return (-100.0 if any(v < 0 for v in bounds) else 0.0), 100.0, "percentage"
    return (min(bounds, default=0.0), max(bounds, default=0.0), "observed (no declared range)")


def generation_config(run: LoadedRun, task: str) -> dict[str, Any]:
    role = model_role(run.manifest)
    # as SampleContext.effective_config: the task's defaults, overridden by what the user set
    config = run.tasks[task].generate_config.merged(GenerateConfig(**(role.get("generate") or {})))
    args = {k: getattr(config, k) for k in GENERATION_ARGS if getattr(config, k) is not None}
    args["execution_command"] = " ".join(run.manifest.get("command") or [])
    m = run.manifest
    return {
        "generation_args": args,
        "additional_details": strings(
            {"seed": m.get("seed"), "repeats": m.get("repeats"), "limit": m.get("limit"), "stop": config.stop}
        ),
    }


def evaluation_result(run: LoadedRun, task: str, m: Metric) -> dict[str, Any]:
    dataset: dict[str, Any] = next((t["dataset"] for t in run.manifest.get("tasks", []) if t["name"] == task), {})
    low, high, how = score_range(m)
    score: dict[str, Any] = {"score": m.value, "details": strings({"unit": m.unit, "note": m.note})}
    uncertainty: dict[str, Any] = {"num_samples": m.n}
    if m.ci_low is not None and m.ci_high is not None:
        uncertainty["confidence_interval"] = {"lower": m.ci_low, "upper": m.ci_high, "confidence_level": 0.95}
    score["uncertainty"] = uncertainty
    judges = judge_specs(run.manifest)
    return {
        "evaluation_name": m.name,
        "source_data": source_data(task, dataset),
        "evaluation_timestamp": str(run.manifest.get("finished_at") or run.manifest.get("started_at")),
        "metric_config": {
            "evaluation_description": f"{m.name}: {run.tasks[task].description}",
            "lower_is_better": m.direction == "lower",
            "score_type": "continuous",
            "min_score": low,
            "max_score": high,
            "additional_details": strings(
                {"direction": m.direction, "unit": m.unit, "score_range": how, "judges": ", ".join(judges) or None}
            ),
        },
        "score_details": score,
        "generation_config": generation_config(run, task),
    }


def transcript(record: Record) -> list[dict[str, Any]]:
    """The last model exchange's messages and its completion, as EEE messages."""
    model = [ex for ex in record.exchanges if ex.role == "model"]
    if not model:
        return []
    last = model[-1]
    turns = [{"turn_idx": i, "role": msg.role, "content": msg.content} for i, msg in enumerate(last.messages)]
    if last.completion is not None:
        turns.append({"turn_idx": len(turns), "role": "assistant", "content": last.completion.text})
    return turns


def instance(evaluation_id: str, model_id: str, metric: Metric, record: Record, value: float) -> dict[str, Any]:
    model_calls = [ex for ex in record.exchanges if ex.role == "model"]
    first = model_calls[0] if model_calls else None
    prompt = next((msg.content for msg in reversed(first.messages) if msg.role == "user"), "") if first else ""
    score_name, score = next(iter(record.scores.items()), ("", None))
    extracted = "" if score is None else str(score.label if score.label is not None else score.value)
    ideal = ideal_value(metric)
    single = len(model_calls) == 1
    turns = transcript(record)
    line: dict[str, Any] = {
        "schema_version": INSTANCE_SCHEMA_VERSION,
        "evaluation_id": evaluation_id,
        "model_id": model_id,
        "evaluation_name": metric.name,
        "sample_id": record.sample_id,
        "sample_hash": hashlib.sha256(prompt.encode()).hexdigest(),
        "interaction_type": "single_turn" if single else "multi_turn",
        "input": {"raw": prompt, "reference": []},
        "output": {"raw": [first.completion.text if first and first.completion else ""]} if single else None,
        "messages": None if single else turns,
        "answer_attribution": [
            {
                "turn_idx": 0 if single else max(len(turns) - 1, 0),
                "source": "output.raw" if single else f"messages[{max(len(turns) - 1, 0)}].content",
                "extracted_value": extracted,
                "extraction_method": (score.scorer if score else "") or score_name,
                "is_terminal": True,
            }
        ],
        "evaluation": {
            "score": value,
            "is_correct": ideal is not None and value == ideal,
            "num_turns": max(len(model_calls), 1),
        },
        "token_usage": {
            "input_tokens": sum(ex.completion.usage.prompt_tokens for ex in model_calls if ex.completion),
            "output_tokens": sum(ex.completion.usage.completion_tokens for ex in model_calls if ex.completion),
        },
        "performance": {"latency_ms": 1000 * sum(ex.completion.latency_s for ex in model_calls if ex.completion)},
        "error": record.error,
        "metadata": strings(
            {
                **record.metadata,
                "repetition": record.repetition,
                "task": record.task,
                "is_correct_applicable": ideal is not None,
            }
        ),
    }
    usage = line["token_usage"]
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return line


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def export_run(run: LoadedRun, tasks: list[str], out_dir: Path) -> Path:
    """Write the aggregate JSON and instance JSONL of `tasks` from one run; returns the JSON path."""
    info = model_info(run)
    evaluation_id = f"harness/{info['id']}/{run.run_dir.name}"
    results, lines = [], []
    for result in (r for r in run.results if r.task in tasks):
        values = {name: v.values for name, v in run.values.get(result.task, {}).items()}
        by_key = {(r.sample_id, r.repetition): r for r in run.records.get(result.task, [])}
        for m in result.metrics:
            if m.value is not None:
                results.append(evaluation_result(run, result.task, m))
            for key, value in sorted(values.get(m.name, {}).items()):
                if key in by_key:
                    lines.append(instance(evaluation_id, info["id"], m, by_key[key], value))
    folder = out_dir / slug(info["name"])
    folder.mkdir(parents=True, exist_ok=True)
    jsonl = folder / f"{slug(run.run_dir.name)}.jsonl"
    payload = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    jsonl.write_text(payload, encoding="utf-8")
    manifest = run.manifest
    aggregate = {
        "schema_version": SCHEMA_VERSION,
        "evaluation_id": evaluation_id,
        "evaluation_timestamp": str(manifest.get("finished_at") or manifest.get("started_at")),
        "retrieved_timestamp": str(int(time.time())),
        "source_metadata": {
            "source_name": "harness",
            "source_type": "evaluation_run",
            "source_organization_name": "unknown",
            "evaluator_relationship": "other",
            "additional_details": strings({"run": run.run_dir.name, "status": manifest.get("status")}),
        },
        "eval_library": {
            "name": "harness",
            "version": str(manifest.get("harness_version") or "unknown"),
            "additional_details": strings({"git_commit": manifest.get("git_commit")}),
        },
        "model_info": info,
        "evaluation_results": results,
        "detailed_evaluation_results": {
            "format": "jsonl",
            "file_path": jsonl.name,
            "hash_algorithm": "sha256",
            "checksum": hashlib.sha256(payload.encode("utf-8")).hexdigest(),
            "total_rows": len(lines),
        },
    }
    path = folder / f"{slug(run.run_dir.name)}.json"
    path.write_text(json.dumps(aggregate, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def export(board: Board, out_dir: Path) -> list[Path]:
    """One aggregate + instance file pair per (model, run) the leaderboard draws on."""
    tasks_by_run: dict[Path, list[str]] = defaultdict(list)
    for row in board.rows:
        for task, entry in row.runs.items():
            tasks_by_run[entry.path].append(task)
    return [export_run(load_run(path), tasks, Path(out_dir)) for path, tasks in sorted(tasks_by_run.items())]
