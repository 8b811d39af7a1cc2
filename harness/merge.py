"""`harness merge`: join the shard runs of one run (`--shard 1/n` ... `n/n`) into one run directory.

The shards must be one run apart from the slice: the same fingerprint without the shard, --limit, tasks,
data and templates. Each must have finished (complete or failed; an interrupted shard is resumed first),
hold only samples of its own slice, and every slice 1..n must be given exactly once; any of these problems
is one error naming the shard. The merged directory holds the union of the records (sorted by task, sample
and repetition) and a manifest with the unsharded run's fingerprint, per-role call and token counts summed
over the shards, and the status the error-rate policy gives the union; its summary therefore equals that
of the unsharded run.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.manifest import command_line
from harness.report.corrected import JUDGING
from harness.runner import error_policy
from harness.shard import Shard, parse_shard
from harness.store import MANIFEST, RECORDS, RunStore, atomic_file, read_json, write_json
from harness.types import Record

FINISHED = ("complete", "failed")


@dataclass
class ShardRun:
    run_dir: Path
    shard: Shard
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        """'shard 2/3 (results/run-2)', how errors name it."""
        return f"shard {self.shard} ({self.run_dir})"


def read_shard(run_dir: Path) -> ShardRun:
    """A shard run directory's manifest and slice; a run that is not a finished shard is a UserError."""
    manifest = read_json(run_dir / MANIFEST)
    text = manifest.get("fingerprint", {}).get("shard")
    if text is None:
        raise UserError(f"{run_dir}: not a shard (it was not run with --shard k/n)")
    shard = ShardRun(run_dir, parse_shard(text), manifest)
    if manifest.get("status") not in FINISHED:
        raise UserError(
            f"{shard.name} has status '{manifest.get('status')}': re-run its command to finish it, then merge"
        )
    return shard


def check_slices(shards: list[ShardRun]) -> None:
    """Every slice 1..n exactly once, all of the same n."""
    first = shards[0]
    seen: dict[int, ShardRun] = {}
    for shard in shards:
        if shard.shard.count != first.shard.count:
            raise UserError(f"{shard.name} is a slice of {shard.shard.count}, {first.name} of {first.shard.count}")
        if shard.shard.index in seen:
            raise UserError(
                f"shard {shard.shard} is given twice: {seen[shard.shard.index].run_dir} and {shard.run_dir}"
            )
        seen[shard.shard.index] = shard
    missing = [str(Shard(k, first.shard.count)) for k in range(1, first.shard.count + 1) if k not in seen]
    if missing:
        raise UserError(
            f"shard {', '.join(missing)} is missing (given: {', '.join(str(k) for k in sorted(seen))} "
            f"of {first.shard.count})"
        )


def run_identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """What shards of one run share: fingerprint without the slice, limit, and each task's options and data."""
    fingerprint = {k: v for k, v in manifest.get("fingerprint", {}).items() if k != "shard"}
    tasks = {
        t["name"]: {
            "options": t.get("options"),
            "protocol": t.get("protocol"),
            "templates": t.get("templates"),
            "data": t.get("dataset", {}).get("content_hash"),
        }
        for t in manifest.get("tasks", [])
    }
    return {"fingerprint": fingerprint, "limit": manifest.get("limit"), "tasks": tasks}


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: the leaves of nested dicts by dotted name."""
    if not isinstance(data, dict) or not data:
        return {prefix: data}
    return {name: leaf for key, value in data.items() for name, leaf in flatten(value, f"{prefix}{key}.").items()}


def check_same_run(shards: list[ShardRun]) -> None:
    first = flatten(run_identity(shards[0].manifest))
    for shard in shards[1:]:
        other = flatten(run_identity(shard.manifest))
        differing = sorted(k.rstrip(".") for k in set(first) | set(other) if first.get(k) != other.get(k))
        if differing:
            raise UserError(
                f"{shard.name} is not a slice of the same run as {shards[0].name}: {', '.join(differing)} differ"
            )


def shard_records(shard: ShardRun) -> list[Record]:
    """The shard's records, each checked to belong to its slice (a misplaced one would be counted twice)."""
    records = RunStore(shard.run_dir).load_records()
    for record in records:
        if not shard.shard.holds(record.task, record.sample_id):
            raise UserError(
                f"{shard.name} holds sample {record.task}/{record.sample_id}, which belongs to another "
                "shard: its records overlap another shard's"
            )
    return records


def summed(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The first entry with every top-level number replaced by its sum over all entries."""
    total = dict(entries[0])
    for key, value in total.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = sum(entry.get(key, 0) for entry in entries)
    return total


def merged_manifest(shards: list[ShardRun]) -> dict[str, Any]:
    """The unsharded run's manifest: shard 1's, without the slice, with counts summed over the shards."""
    manifests = [s.manifest for s in shards]
    merged = dict(manifests[0])
    merged["fingerprint"] = run_identity(manifests[0])["fingerprint"]
    merged["tasks"] = [
        summed([next(t for t in m["tasks"] if t["name"] == task["name"]) for m in manifests])
        for task in manifests[0].get("tasks", [])
    ]
    merged["roles"] = [
        summed([next(r for r in m["roles"] if r["role"] == role["role"]) for m in manifests])
        for role in manifests[0].get("roles", [])
    ]
    counts: Counter[str] = Counter()
    for manifest in manifests:
        counts.update(manifest.get("counts", {}))
    merged["counts"] = dict(counts)
    merged.update(
        started_at=min(m.get("started_at") or 0 for m in manifests),
        finished_at=max(m.get("finished_at") or 0 for m in manifests),
        command=command_line(),
        merged_from=[str(s.run_dir) for s in shards],
        budget=None,  # a shard's --budget-usd spend is not the merged run's
    )
    return merged


def merge_shards(run_dirs: list[Path], out: Path, max_error_rate: float) -> int:
    """Check the shards and write their union into `out` (records and manifest; judging settings of shard
    1 if any); returns the number of records. The union's status follows the error-rate policy of a run
    (harness.runner.error_policy), whatever each shard's was. Reports are left to the caller."""
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: already exists and is not empty; merge into a new --out directory")
    shards = [read_shard(Path(d)) for d in run_dirs]
    check_slices(shards)
    shards.sort(key=lambda s: s.shard.index)
    check_same_run(shards)
    records = sorted((r for s in shards for r in shard_records(s)), key=lambda r: r.key)
    with atomic_file(out / RECORDS) as handle:
        for record in records:
            handle.write(record.model_dump_json() + "\n")
    if (shards[0].run_dir / JUDGING).exists():
        shutil.copyfile(shards[0].run_dir / JUDGING, out / JUDGING)
    manifest = merged_manifest(shards)
    kinds = Counter(kind for kind in RunStore(out).outcomes().values() if kind is not None)
    manifest["error_kinds"] = dict(sorted(kinds.items()))
    manifest["failure"] = error_policy(len(records), manifest["error_kinds"], max_error_rate)
    manifest["status"] = "failed" if manifest["failure"] else "complete"
    write_json(out / MANIFEST, manifest)
    return len(records)
