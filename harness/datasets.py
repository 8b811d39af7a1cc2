"""Reading dataset files in their upstream formats, with errors that name file, row and field."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

from harness.errors import UserError

TABLE_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def bundled_path(package: str, name: str) -> Path:
    """The file `name` in the `data` folder of the installed package `package` (e.g. "harness_tasks.fortress")."""
    return Path(str(resources.files(package) / "data" / name))


def rows_hash(rows: list[dict[str, Any]]) -> str:
    """SHA-256 of rows in canonical JSON (for data that did not come from one file)."""
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


def read_yaml(path: Path, what: str) -> Any:
    """The parsed content of a YAML file (yaml.safe_load: data only, never objects); an unreadable file,
    text that is not UTF-8 or invalid YAML is one UserError naming the file, `what` it is and where it broke."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: {what} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML in {what} ({yaml_problem(exc)})") from None


def yaml_problem(exc: Exception) -> str:
    """One line describing a YAML error: what went wrong and where it started."""
    parts = []
    for what, mark in (("context", "context_mark"), ("problem", "problem_mark")):
        text, where = getattr(exc, what, None), getattr(exc, mark, None)
        if text:
            parts.append(f"{text} at line {where.line + 1}" if where is not None else text)
    return "; ".join(parts) or str(exc).replace("\n", " ")


def read_table(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows of a CSV, JSONL, JSON-array or parquet file; checks that `required` columns exist."""
    path = Path(path)
    if path.suffix not in TABLE_SUFFIXES:
        raise UserError(f"{path}: unsupported file type '{path.suffix}'; use one of {', '.join(TABLE_SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    if path.suffix == ".parquet":
        import pandas as pd

        try:
            rows = pd.read_parquet(path).to_dict(orient="records")
        except Exception as exc:  # pyarrow raises many types for bad files
            raise UserError(f"{path}: cannot read parquet ({exc})") from None
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read ({exc.strerror}); check the file's permissions") from None
        if not text.strip():
            raise UserError(f"{path}: file is empty")
        rows = _parse_text(path, text)
    if not rows:
        raise UserError(f"{path}: no rows")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, rows[0]))}")
    return rows


def _parse_text(path: Path, text: str) -> list[dict[str, Any]]:
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            return list(reader)
        except csv.Error as exc:
            raise UserError(
                f"{path}: row {reader.line_num}: malformed CSV ({exc}); check its quoting or shorten the field"
            ) from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise UserError(f"{path}: expected a JSON array of objects")
        return data
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: row {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}: row {number} is not a JSON object")
        rows.append(row)
    return rows


def load_hub(
    dataset_id: str, *, config: str | None = None, split: str = "train", revision: str | None = None
) -> list[dict[str, Any]]:
    """Rows of a Hugging Face hub dataset (needs the `hub` extra and network access)."""
    try:
        import datasets
    except ImportError:
        raise UserError(
            f"loading '{dataset_id}' from the hub needs the datasets package: pip install 'harness[hub]' "
            "(or pass -T data=<local file in the upstream format>)"
        ) from None
    try:
        ds = datasets.load_dataset(dataset_id, config, split=split, revision=revision)
    except Exception as exc:
        raise UserError(
            f"cannot load '{dataset_id}' from the hub ({type(exc).__name__}); offline, pass -T data=<local file>"
        ) from None
    return [dict(row) for row in ds]


def is_local_source(value: str) -> bool:
    """True when a `-T data=` value names a local file (existing, or with a table suffix) rather than a hub id."""
    return Path(value).expanduser().exists() or value.lower().endswith(TABLE_SUFFIXES)


def first_row_number(origin: Any) -> int:
    """How error messages number the first data row: CSV counts the header as row 1, JSON lines from 1."""
    return 2 if str(origin).endswith(".csv") else 1


def require_text(path: Any, row_number: int, row: dict[str, Any], field: str) -> str:
    """The non-empty string in `row[field]`, or a UserError naming file, row and field."""
    value = row.get(field)
    if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
        raise UserError(f"{path}: row {row_number}, field '{field}': missing or empty")
    return str(value)
