"""The run directory: manifest, append-only records, atomic writes of derived files."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import ValidationError

from harness.errors import UserError
from harness.types import Record

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
T = TypeVar("T")


def os_reason(exc: OSError) -> str:
    """'File exists: results' rather than a bare errno text that does not say which path is at fault."""
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return exc.strerror or str(exc)


def cannot_write(path: Path, exc: OSError) -> UserError:
    """The user-facing error for a file the run cannot create or write (read-only folder, a file where a
    folder should be, full disk)."""
    return UserError(
        f"{path}: cannot write ({os_reason(exc)}); choose a writable location "
        "(e.g. another --run-dir) or free some space"
    )


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A handle on a temporary file that replaces `path` when the block ends without error, so readers
    see either the old or the new content, never a torn one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise cannot_write(path, exc) from None
        raise


def atomic_write(path: Path, text: str) -> None:
    """Write a whole text file atomically (see atomic_file)."""
    with atomic_file(path) as handle:
        handle.write(text)


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({os_reason(exc)})") from None


Key = tuple[str, str, int]  # (task, sample_id, repetition)


class RunStore:
    """Reads and appends the records of one run directory."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.records_path = self.run_dir / RECORDS
        self._handle: IO[str] | None = None

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, bytes) of each line, streamed; only a final line may lack its newline."""
        try:
            with open(self.records_path, "rb") as handle:
                yield from enumerate(handle, start=1)
        except OSError as exc:
            raise UserError(f"{self.records_path}: cannot read ({os_reason(exc)})") from None

    def load_records(self, *, repair: bool = False) -> list[Record]:
        """All records, the last one per (task, sample, repetition) winning.

        Records are written as whole lines, so a final segment without its newline is a torn write
        from a crash: it is dropped (and with `repair` cut from the file). A corrupt complete line is
        a user error naming the line. The file is streamed: only the parsed records are held.
        """
        return list(self._scan(_parse_record, repair).values())

    def outcomes(self, *, repair: bool = False) -> dict[Key, str | None]:
        """How each finished (task, sample, repetition) ended: its error kind, or None when it succeeded
        (see _error_kind); read without building records."""
        return self._scan(_record_outcome, repair)

    def errored_records(self) -> dict[Key, Record]:
        """The records that currently end in an error, by key (what --retry-errors redoes)."""
        return {key: record for key, record in self._scan(_parse_errored, False).items() if record is not None}

    def _scan(self, parse: Callable[[bytes], tuple[Key, Any]], repair: bool) -> dict[Key, Any]:
        """Parse every complete line into {key: value}, dropping (and with `repair` cutting) a torn tail."""
        if not self.records_path.exists():
            return {}
        latest: dict[Key, Any] = {}
        complete_bytes, torn = 0, False
        for number, line in self._lines():
            if not line.endswith(b"\n"):
                torn = True
                break
            complete_bytes += len(line)
            if line.strip():
                key, value = self._parse(number, line, parse)
                latest[key] = value
        if torn and repair:
            try:
                os.truncate(self.records_path, complete_bytes)
            except OSError as exc:
                raise cannot_write(self.records_path, exc) from None
        return latest

    def _parse(self, number: int, line: bytes, parse: Callable[[bytes], T]) -> T:
        try:
            return parse(line)
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise UserError(
                f"{self.records_path}: line {number} is not a valid record ({reason}); remove that line to continue"
            ) from None

    def append(self, record: Record) -> None:
        """Append one final record and flush it to the OS (survives a process kill)."""
        try:
            if self._handle is None:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.records_path, "a", encoding="utf-8")
            self._handle.write(record.model_dump_json() + "\n")
            self._handle.flush()
        except OSError as exc:
            raise cannot_write(self.records_path, exc) from None

    def compact(self) -> dict[Key, str | None]:
        """Rewrite records.jsonl with exactly one line per key (superseded records and a torn tail removed);
        returns what `outcomes()` would.

        Streams the file twice without holding records: one pass finds the last line of each key, and
        only when some line is superseded or torn does a second pass copy the kept lines.
        """
        self.close()
        if not self.records_path.exists():
            return {}
        last: dict[Key, int] = {}
        errored: dict[Key, str | None] = {}
        lines = 0
        for number, line in self._lines():
            lines += 1
            if line.endswith(b"\n") and line.strip():
                key, failed = self._parse(number, line, _record_outcome)
                errored[key], last[key] = failed, number
        keep = set(last.values())
        if len(keep) == lines:
            return errored
        with atomic_file(self.records_path, "wb") as out:
            for number, line in self._lines():
                if number in keep:
                    out.write(line)
        return errored

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _parse_record(line: bytes) -> tuple[Key, Record]:
    record = Record.model_validate_json(line)
    return record.key, record


def _parse_errored(line: bytes) -> tuple[Key, Record | None]:
    """(key, the record if it ended in an error, else None)."""
    key, kind = _record_outcome(line)
    return key, None if kind is None else Record.model_validate_json(line)


def _error_kind(data: dict[str, Any]) -> str | None:
    """The error kind of a record (generation, judge, simulator, scoring, task), None if it has no error;
    records written before kinds existed count as 'generation'."""
    return (data.get("error_kind") or "generation") if data.get("error") else None


def _record_outcome(line: bytes) -> tuple[Key, str | None]:
    """(key, error kind or None) of a record line, without building the Record."""
    data = json.loads(line)
    return (data["task"], data["sample_id"], data.get("repetition", 0)), _error_kind(data)
