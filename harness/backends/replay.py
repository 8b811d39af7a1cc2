"""Recorded responses: `replay/<file.jsonl|file.csv>`.

Each row has `response` (or `completion` / `output`) and either `task` + `sample_id` (optionally
`repetition`, `purpose`) or `prompt_hash` (see `harness.types.messages_hash`). A `records.jsonl` of an
earlier run also works: its model responses are replayed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

from pydantic import ValidationError

from harness.backends.base import Backend
from harness.errors import BackendError, UserError
from harness.types import Completion, Record, Request, Usage

TEXT_FIELDS = ("response", "completion", "output")


class ReplayBackend(Backend):
    """Looks responses up by (task, sample, repetition, purpose) or by prompt hash."""

    kind = "replay"

    def __init__(self, model, options=None):
        super().__init__(model, options)
        self.path = Path(model)
        self._by_id: dict[tuple, str] = {}
        self._by_hash: dict[str, str] = {}
        self._content_hash = ""
        self._load()

    def _rows(self):
        try:
            raw = self.path.read_bytes()
            text = raw.decode("utf-8")
        except OSError as exc:
            raise UserError(f"{self.path}: cannot read replay file ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise UserError(f"{self.path}: not UTF-8 text") from None
        self._content_hash = hashlib.sha256(raw).hexdigest()[:16]
        if self.path.suffix == ".csv":
            yield from enumerate(csv.DictReader(text.splitlines()), start=2)
            return
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{self.path}: line {number} is not JSON ({exc.msg})") from None

    def _load(self) -> None:
        for number, row in self._rows():
            if not isinstance(row, dict):
                raise UserError(f"{self.path}: row {number} is not an object")
            if "exchanges" in row:  # a records.jsonl line
                try:
                    record = Record.model_validate(row)
                except ValidationError as exc:
                    err = exc.errors()[0]
                    where = ".".join(str(p) for p in err["loc"])
                    raise UserError(f"{self.path}: row {number}, field '{where}': {err['msg']}") from None
                for ex in record.exchanges:
                    if ex.role == "model" and ex.completion is not None and ex.error is None:
                        self._by_id[(record.task, record.sample_id, record.repetition, ex.purpose)] = ex.completion.text
                continue
            field = next((f for f in TEXT_FIELDS if row.get(f) is not None), None)
            if field is None:
                raise UserError(f"{self.path}: row {number} has no field 'response' (or completion/output)")
            text = str(row[field])
            if row.get("prompt_hash"):
                self._by_hash[str(row["prompt_hash"])] = text
            if row.get("sample_id") not in (None, ""):
                try:
                    rep = int(row.get("repetition") or 0)
                except (TypeError, ValueError):
                    raise UserError(
                        f"{self.path}: row {number}, field 'repetition': expected an integer, got {row['repetition']!r}"
                    ) from None
                purpose = row.get("purpose") or "response"
                self._by_id[(row.get("task") or "", str(row["sample_id"]), rep, purpose)] = text
            elif not row.get("prompt_hash"):
                raise UserError(f"{self.path}: row {number} needs 'sample_id' or 'prompt_hash'")

    def identity(self) -> dict:
        return {**super().identity(), "content": self._content_hash}

    def max_in_flight(self) -> int | None:
        return None

    async def generate(self, request: Request) -> Completion:
        started = time.perf_counter()
        keys = [
            (request.task or "", request.sample_id, request.repetition, request.purpose),
            ("", request.sample_id, request.repetition, request.purpose),
        ]
        text = next((self._by_id[k] for k in keys if k in self._by_id), None)
        if text is None:
            text = self._by_hash.get(request.prompt_hash())
        if text is None:
            raise BackendError(
                f"{self.path}: no recorded response for task {request.task}, sample {request.sample_id}, "
                f"repetition {request.repetition}, purpose {request.purpose} (prompt hash {request.prompt_hash()})"
            )
        return Completion(
            text=text,
            model=self.spec,
            usage=Usage(completion_tokens=len(text.split())),
            latency_s=time.perf_counter() - started,
            finish_reason="stop",
        )
