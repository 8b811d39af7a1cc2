"""PersuSafety task files (unethical tasks and neutral scenes) and persona profiles -> validated data.

Unethical tasks carry `harmfulness_level`; neutral scenes carry `persuader_benefit` and
`persuader_pressure` instead. One file may hold either kind or both. Errors name file, entry and field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.datasets import bundled_path as data_file
from harness.datasets import file_hash, first_row_number, is_local_source, load_hub, read_table, require_text, rows_hash
from harness.errors import UserError
from harness.task import DatasetInfo
from harness.types import Sample

DOMAINS = ("relationship", "marketing", "career", "financial", "digital", "health")
LEVELS = ("low", "medium", "high")
UNETHICAL, NEUTRAL = "unethical", "neutral"
TEXT_FIELDS = ("persuasion_task", "persuader_prompt", "persuadee_prompt", "fact", "vulnerability")
CONSTRAINT_FIELDS = ("persuader_benefit", "persuader_pressure")
RESISTANCE_FIELDS = ("resistance", "strong_resistance")  # optional in neutral scenes
BUNDLED_TASKS = "persuasion_tasks.json"
BUNDLED_PERSUADEES = "profiles_persuadee.json"
BUNDLED_PERSUADERS = "profiles_persuader.json"


def bundled_path(name: str) -> Path:
    return data_file("harness_tasks.persuasion", name)


def load_tasks(data: str | None) -> tuple[list[Sample], DatasetInfo]:
    """Samples from `data` (None: bundled sample; an existing path: local JSON/JSONL/CSV/parquet; else a
    hub id, split train)."""
    if data is None:
        path = bundled_path(BUNDLED_TASKS)
        samples = to_samples(read_table(path), path)
        return samples, DatasetInfo(
            source=f"bundled:persuasion/data/{BUNDLED_TASKS}", content_hash=file_hash(path), n_samples=len(samples)
        )
    local = Path(data)
    if is_local_source(data):
        samples = to_samples(read_table(local), local)
        return samples, DatasetInfo(source=str(local), content_hash=file_hash(local), n_samples=len(samples))
    rows = load_hub(data, split="train")
    samples = to_samples(rows, f"hf:{data}")
    return samples, DatasetInfo(source=f"hf:{data}", content_hash=rows_hash(rows), n_samples=len(samples))


def content_id(meta: dict[str, Any]) -> str:
    """A stable id for a row without one (upstream's neutral scenes have none): 12 hex digits of the SHA-256 of
    its text fields, so the same scene gets the same id in every file order and run."""
    fields = {f: meta.get(f) for f in (*TEXT_FIELDS, *CONSTRAINT_FIELDS, "domain")}
    return "c" + hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]


def to_samples(rows: list[dict[str, Any]], origin: Any) -> list[Sample]:
    """Validate rows of either kind; sample ids are the upstream id (neutral scenes: 'neutral-<id>'), or
    one derived from the row's content when it has none."""
    samples, seen = [], set()
    for number, row in enumerate(rows, start=first_row_number(origin)):
        meta = row_metadata(row, origin, number)
        raw_id = row.get("id")
        if isinstance(raw_id, float) and raw_id.is_integer():
            raw_id = int(raw_id)
        if _present(raw_id):
            upstream_id = require_text(origin, number, {"id": raw_id}, "id").strip()
        else:
            upstream_id = content_id(meta)
        sample_id = upstream_id if meta["kind"] == UNETHICAL else f"neutral-{upstream_id}"
        if sample_id in seen:
            raise UserError(f"{origin}: row {number}, field 'id': duplicate {meta['kind']} id '{upstream_id}'")
        seen.add(sample_id)
        samples.append(Sample(id=sample_id, input=meta["persuasion_task"], metadata={"id": upstream_id, **meta}))
    return samples


def row_metadata(row: dict[str, Any], origin: Any, number: int) -> dict[str, Any]:
    """The validated fields of one row, with its kind (unethical task or neutral scene)."""
    meta: dict[str, Any] = {field: require_text(origin, number, row, field).strip() for field in TEXT_FIELDS}
    domain = require_text(origin, number, row, "domain").strip()
    if _present(row.get("harmfulness_level")):
        level = require_text(origin, number, row, "harmfulness_level").strip().lower()
        if level not in LEVELS:
            raise UserError(
                f"{origin}: row {number}, field 'harmfulness_level': '{level}' is not one of {', '.join(LEVELS)}"
            )
        if domain.lower() not in DOMAINS:
            raise UserError(f"{origin}: row {number}, field 'domain': '{domain}' is not one of {', '.join(DOMAINS)}")
        return {**meta, "kind": UNETHICAL, "domain": domain.lower(), "harmfulness_level": level}
    if not any(_present(row.get(f)) for f in CONSTRAINT_FIELDS):
        raise UserError(
            f"{origin}: row {number}, field 'harmfulness_level': missing (an unethical task needs it; "
            f"a neutral scene needs {' and '.join(CONSTRAINT_FIELDS)} instead)"
        )
    for field in CONSTRAINT_FIELDS:
        meta[field] = require_text(origin, number, row, field).strip()
    resistance = next((str(row[f]).strip() for f in RESISTANCE_FIELDS if _present(row.get(f))), None)
    return {**meta, "kind": NEUTRAL, "domain": domain, "harmfulness_level": NEUTRAL, "resistance": resistance}


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and bool(str(value).strip())


def load_profiles(path: str | None, bundled: str) -> tuple[dict[str, str], str]:
    """Persona profiles `{name: description}` (upstream profiles_*.json schema) and where they came from."""
    file = Path(path) if path is not None else bundled_path(bundled)
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise UserError(f"{file}: persona profile file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: cannot read persona profiles ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{file}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
    if not isinstance(data, dict) or not data:
        raise UserError(f"{file}: expected a JSON object mapping persona names to descriptions")
    for name, text in data.items():
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{file}: entry '{name}': the description must be non-empty text")
    return {name: " ".join(text.split()) for name, text in data.items()}, str(file)


def persona_text(name: str, path: str | None, bundled: str, option: str) -> str | None:
    """The description of persona `name` from the profiles file ('none' -> None, without reading it);
    unknown names list the available ones."""
    if name.lower() == "none":
        return None
    profiles, origin = load_profiles(path, bundled)
    if name not in profiles:
        raise UserError(
            f"task persuasion: -T {option}={name} is not in {origin}; available: none, {', '.join(profiles)}"
        )
    return profiles[name]
