"""Content-addressed response cache in SQLite (WAL), shared safely by concurrent runs."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from harness.errors import UserError
from harness.store import os_reason
from harness.types import Completion

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    model TEXT NOT NULL,
    completion TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """$HARNESS_CACHE, else ~/.cache/harness/responses.sqlite."""
    env = os.environ.get("HARNESS_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "harness" / "responses.sqlite"


def key_digest(key: dict) -> str:
    """SHA-256 over the canonical JSON of everything that changes the output."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ResponseCache:
    """Completions keyed by request content; only successful completions are ever stored."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._unusable(exc) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise self._unusable(exc) from None

    def _unusable(self, exc: Exception) -> UserError:
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        return UserError(
            f"{self.path}: cannot use as the response cache ({reason}); pass another --cache file, or --no-cache"
        )

    def get(self, key: dict) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT completion FROM responses WHERE key = ?", (key_digest(key),)).fetchone()
        return Completion.model_validate_json(row[0]) if row else None

    def put(self, key: dict, completion: Completion) -> None:
        stored = completion.model_copy(update={"cached": False, "retries": []})
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                (
                    key_digest(key),
                    key.get("namespace", ""),
                    json.dumps(key.get("backend", {}), sort_keys=True),
                    stored.model_dump_json(),
                    time.time(),
                ),
            )

    def stats(self) -> list[tuple[str, str, int]]:
        """(namespace, backend identity, entries) rows."""
        with self._lock:
            return self._db.execute(
                "SELECT namespace, model, COUNT(*) FROM responses GROUP BY namespace, model ORDER BY 1, 2"
            ).fetchall()

    def clear(self, namespace: str | None = None) -> int:
        """Delete entries (of one namespace, or all); returns the number removed."""
        with self._lock:
            if namespace is None:
                cur = self._db.execute("DELETE FROM responses")
            else:
                cur = self._db.execute("DELETE FROM responses WHERE namespace = ?", (namespace,))
            self._db.execute("VACUUM")
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
