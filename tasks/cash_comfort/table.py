"""Published response tables (the authors' data_log: model, reward_value, quantity, experiment, output)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.datasets import file_hash, first_row_number, is_local_source, load_hub, read_table, require_text, rows_hash
from harness.errors import UserError
from harness_tasks.cash_comfort.analysis import Observation, observe

COLUMNS = ("model", "reward_value", "quantity", "experiment", "output")


def _number(origin: Any, number: int, row: dict, field: str) -> float:
    value = row.get(field)
    try:
        result = float(str(value).strip())
    except ValueError:
        result = math.nan
    if not math.isfinite(result):
        raise UserError(f"{origin}: row {number}, field '{field}': expected a number, got '{value}'")
    return result


def read_responses(source: str, scenario: str, framing: str) -> tuple[dict[str, list[Observation]], str, str]:
    """Parsed answers per model, the source's description and its content hash. `source` is a local
    table (.csv, .jsonl, .json, .parquet) or a Hugging Face hub dataset id."""
    local = Path(source)
    origin: Path | str
    if is_local_source(source):
        rows = read_table(local, COLUMNS)
        origin, digest = local, file_hash(local)
    else:
        rows = load_hub(source)
        origin, digest = f"hf:{source}", rows_hash(rows)
        missing = [c for c in COLUMNS if rows and c not in rows[0]]
        if missing:
            raise UserError(f"{origin}: missing column(s) {', '.join(missing)}")
    by_model: dict[str, list[Observation]] = {}
    for number, row in enumerate(rows, start=first_row_number(origin)):
        model = require_text(origin, number, row, "model")
        amount = _number(origin, number, row, "reward_value")
        if amount <= 0:
            raise UserError(f"{origin}: row {number}, field 'reward_value': must be positive, got {amount:g}")
        quantity = _number(origin, number, row, "quantity")
        if quantity < 0:
            raise UserError(f"{origin}: row {number}, field 'quantity': must not be negative, got {quantity:g}")
        if not _number(origin, number, row, "experiment").is_integer():
            raise UserError(f"{origin}: row {number}, field 'experiment': expected a whole repetition number")
        output = row.get("output")
        text = "" if output is None or (isinstance(output, float) and math.isnan(output)) else str(output)
        by_model.setdefault(model, []).append(observe(scenario, framing, amount, quantity, text))
    return by_model, str(origin), digest
