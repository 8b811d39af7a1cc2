"""FORTRESS rows (upstream schema) -> validated Samples, from the hub, a local file or the bundled sample."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from harness.datasets import (
    bundled_path,
    file_hash,
    first_row_number,
    is_local_source,
    load_hub,
    read_table,
    require_text,
    rows_hash,
)
from harness.errors import UserError
from harness.task import DatasetInfo
from harness.types import Sample

HUB_ID = "ScaleAI/fortress_public"
HUB_REVISION = "0c096becbc75bb12065c8059a53960c7f0d4d35c"
COLUMNS = ("ID", "adversarial_prompt", "rubric", "risk_domain", "risk_subdomain", "benign_prompt")
BUNDLED = "fortress_sample.jsonl"

_NUMBERED = re.compile(r"^\s*\d+\s*[.)]\s+")


def bundled_sample_path() -> Path:
    return bundled_path("harness_tasks.fortress", BUNDLED)


def load_fortress(data: str | None, revision: str) -> tuple[list[Sample], DatasetInfo]:
    """Samples from `data` (None: bundled sample; an existing path: local file; else a hub id)."""
    if data is None:
        path = bundled_sample_path()
        samples = to_samples(read_table(path, COLUMNS), path)
        return samples, DatasetInfo(
            source=f"bundled:fortress/data/{BUNDLED}", content_hash=file_hash(path), n_samples=len(samples)
        )
    local = Path(data)
    if is_local_source(data):
        samples = to_samples(read_table(local, COLUMNS), local)
        return samples, DatasetInfo(source=str(local), content_hash=file_hash(local), n_samples=len(samples))
    rows = load_hub(data, split="train", revision=revision)
    origin = f"hf:{data}@{revision}"
    missing = [c for c in COLUMNS if rows and c not in rows[0]]
    if missing:
        raise UserError(f"{origin}: missing column(s) {', '.join(missing)}")
    samples = to_samples(rows, origin)
    return samples, DatasetInfo(
        source=f"hf:{data}", revision=revision, content_hash=rows_hash(rows), n_samples=len(samples)
    )


def to_samples(rows: list[dict[str, Any]], origin: Any) -> list[Sample]:
    """Validate rows; errors name the file (or hub id), the row number and the field."""
    samples, seen = [], set()
    for number, row in enumerate(rows, start=first_row_number(origin)):
        sample_id = _identifier(origin, number, row)
        if sample_id in seen:
            raise UserError(f"{origin}: row {number}, field 'ID': duplicate ID '{sample_id}'")
        seen.add(sample_id)
        subdomain = require_text(origin, number, row, "risk_subdomain").strip()
        samples.append(
            Sample(
                id=sample_id,
                input=require_text(origin, number, row, "adversarial_prompt"),
                metadata={
                    "domain": require_text(origin, number, row, "risk_domain").strip(),
                    "subdomain": subdomain.split(":", 1)[0].strip(),
                    "subdomain_description": subdomain,
                    "rubric": parse_rubric(origin, number, row.get("rubric")),
                    "benign_prompt": require_text(origin, number, row, "benign_prompt"),
                },
            )
        )
    return samples


def _identifier(origin: Any, number: int, row: dict[str, Any]) -> str:
    value = row.get("ID")
    if isinstance(value, float) and value.is_integer():  # integer column read with missing values
        value = int(value)
    return require_text(origin, number, {"ID": value}, "ID").strip()


def parse_rubric(origin: Any, number: int, value: Any) -> list[str]:
    """A non-empty list of non-empty strings, given as a list, a JSON string or a Python-literal string."""
    where = f"{origin}: row {number}, field 'rubric'"
    if value is None or (isinstance(value, float) and value != value):
        raise UserError(f"{where}: missing or empty")
    if hasattr(value, "tolist"):  # parquet list columns arrive as numpy arrays
        value = value.tolist()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(text)  # literals only: never executes code
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise UserError(
                    f"{where}: not a list of questions (expected a JSON or Python list of strings)"
                ) from None
    if not isinstance(value, (list, tuple)) or not value:
        raise UserError(f"{where}: expected a non-empty list of yes/no questions, got {type(value).__name__}")
    for index, item in enumerate(value, start=1):
        if not isinstance(item, str) or not item.strip():
            raise UserError(f"{where}: item {index} is not a non-empty string")
    return [item.strip() for item in value]


def numbered_questions(rubric: list[str]) -> list[str]:
    """Rubric items as judge lines, each numbered exactly once (items may carry their own '1. ')."""
    return [item if _NUMBERED.match(item) else f"{index}. {item}" for index, item in enumerate(rubric, start=1)]
