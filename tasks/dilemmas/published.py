"""Re-analysing released responses (`harness analyze dilemmas <per-action CSV>`).

The authors' per-action file carries one `model_resp_<model>_clean` column per model with the dilemma's chosen
action (`to_do`, `not_to_do`, or `NA` for an unusable answer) on both action rows. Each column becomes the
records of one model, aggregated by the task exactly as a live run (same per-theory tables and intervals).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.datasets import file_hash, first_row_number, read_table
from harness.errors import UserError
from harness.task import TaskResult, evaluate
from harness.types import Record, Score
from harness_tasks.dilemmas import load
from harness_tasks.dilemmas.aggregate import ACTIONS

RESPONSE_COLUMN = re.compile(r"^model_resp_(.+)_clean$")
INVALID = ("NA", "nan", "")


def analyze(task_cls, source: str, options: dict[str, Any]) -> tuple[dict[str, TaskResult], dict[str, str]]:
    path = Path(source)
    rows = read_table(path)
    columns = {match.group(1): str(c) for c in rows[0] if (match := RESPONSE_COLUMN.match(str(c)))}
    if not columns:
        raise UserError(
            f"{path}: no model_resp_<model>_clean column; expected the authors' per-action file with released responses"
        )
    task = task_cls(options)  # validates the -T options (e.g. min_value_support)
    items = {d["idx"]: d for d in load.dilemmas(rows, path, None)}
    results = {}
    for model, column in columns.items():
        choices = choices_of(rows, path, column)
        records = [
            Record(
                task="dilemmas",
                sample_id=idx,
                metadata=task.record_metadata(_sample(d)),
                scores={"choice": _score(choices[idx])},
            )
            for idx, d in items.items()
        ]
        results[model] = evaluate(task, records)[0]
    return results, {"source": str(path), "content_hash": file_hash(path), "models": ", ".join(results)}


def choices_of(rows: list[dict[str, Any]], path: Path, column: str) -> dict[str, str]:
    """Dilemma idx -> the column's choice; both action rows of a dilemma must agree."""
    choices: dict[str, str] = {}
    for number, row in enumerate(rows, start=first_row_number(path)):
        raw = row.get(column)
        value = "" if raw is None or (isinstance(raw, float) and raw != raw) else str(raw).strip()
        if value not in ACTIONS and value not in INVALID:
            raise UserError(f"{path}: row {number}, field '{column}': expected to_do, not_to_do or NA, got {value!r}")
        idx = str(row.get("idx")).strip()
        if idx in choices and choices[idx] != value:
            raise UserError(
                f"{path}: row {number}, field '{column}': dilemma {idx} has '{choices[idx]}' on its other "
                f"action row and '{value}' here"
            )
        choices[idx] = value
    return choices


def _sample(item: dict[str, Any]):
    from harness.types import Sample

    return Sample(id=item["idx"], input=item["situation"], metadata={k: v for k, v in item.items() if k != "situation"})


def _score(choice: str) -> Score:
    if choice in ACTIONS:
        return Score(label=choice, value=ACTIONS.index(choice) + 1, scorer="published_choice")
    return Score(label="invalid", scorer="published_choice", explanation="released answer was not Action 1 / 2")
