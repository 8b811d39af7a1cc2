"""The run directory: manifest, append-only records, atomic writes of derived files."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.backends.base import UserError
from harness.types import Record

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
SUMMARY = "summary.json"


def atomic_write(path: Path, text: str) -> None:
    """Write a file so readers see either the old or the new content, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None


class RunStore:
    """Reads and appends the records of one run directory."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.records_path = self.run_dir / RECORDS
        self._handle = None

    def load_records(self, *, repair: bool = False) -> list[Record]:
        """All records, the last one per (task, sample, repetition) winning.

        Records are written as whole lines, so a final segment without its newline is a torn write
        from a crash: it is dropped (and with `repair` cut from the file). A corrupt complete line is
        a user error naming the line.
        """
        if not self.records_path.exists():
            return []
        raw = self.records_path.read_bytes()
        complete, _, torn = raw.rpartition(b"\n")
        if not complete and b"\n" not in raw:
            complete, torn = b"", raw
        latest: dict[tuple[str, str, int], Record] = {}
        for number, line in enumerate(complete.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                record = Record.model_validate_json(line)
            except ValidationError as exc:
                raise UserError(
                    f"{self.records_path}: line {number} is not a valid record "
                    f"({exc.errors()[0]['msg']}); remove that line to continue"
                ) from None
            latest[record.key] = record
        if repair and torn:
            with open(self.records_path, "r+b") as handle:
                handle.truncate(len(raw) - len(torn))
        return list(latest.values())

    def append(self, record: Record) -> None:
        """Append one final record and flush it to the OS (survives a process kill)."""
        if self._handle is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.records_path, "a", encoding="utf-8")
        self._handle.write(record.model_dump_json() + "\n")
        self._handle.flush()

    def compact(self) -> None:
        """Rewrite records.jsonl with exactly one line per key (superseded error records removed)."""
        self.close()
        if not self.records_path.exists():
            return
        records = self.load_records()
        line_count = sum(1 for line in self.records_path.read_bytes().split(b"\n") if line.strip())
        if line_count != len(records):
            atomic_write(self.records_path, "".join(r.model_dump_json() + "\n" for r in records))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
