"""Shards: `--shard k/n` runs the samples whose id hashes to slice k of n, so n workers split one run.

The slice of a sample depends only on its task and id (a stable hash), never on the order of the data or
on `--limit`: `--limit` picks the first N samples of each task, then the shard keeps its slice of those,
so shards 1/n ... n/n together hold exactly the samples of the unsharded run (harness merge joins them).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from harness.errors import UserError


@dataclass(frozen=True)
class Shard:
    """Slice `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, task: str, sample_id: str) -> bool:
        """Whether the sample `sample_id` of `task` belongs to this shard."""
        return shard_index(task, sample_id, self.count) == self.index


def shard_index(task: str, sample_id: str, count: int) -> int:
    """The shard (1..count) a sample belongs to: sha256 of task and id, modulo count."""
    digest = hashlib.sha256(f"{task}\x00{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(text: str) -> Shard:
    """'2/4' -> Shard(index=2, count=4); anything else is a UserError naming --shard."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UserError(f"--shard expects k/n with 1 <= k <= n (e.g. 2/4), got '{text}'")
    return Shard(index=int(match[1]), count=int(match[2]))
