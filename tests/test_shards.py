"""Shards through the real CLI: --shard k/n slices, harness merge gives the unsharded run's numbers exactly."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import read_records, read_summary
from hypothesis import given
from hypothesis import strategies as st
from scripted_judges import judge_yaml

from harness.shard import Shard, shard_index

# fortress.ars: a mean of per-row harm shares (1/n of n rubric questions) with a bootstrap interval, which
# depends on the order of its values; overrefusal: rates with Wilson intervals.
RUN = ["--model", "scripted/refuse-30", "--tasks", "overrefusal,fortress", "--judge", "scripted/j.yaml",
       "--limit", "12", "--no-progress"]


@pytest.fixture(autouse=True)
def judge(tmp_path):
    judge_yaml(tmp_path / "j.yaml", lambda n: "Y" + "N" * (n - 1))


def keys(run_dir) -> list[tuple]:
    return [(r["task"], r["sample_id"], r["repetition"]) for r in read_records(run_dir)]


def run_shards(cli, *extra: str) -> None:
    for k in (1, 2, 3):
        out = cli(["run", *RUN, "--shard", f"{k}/3", "--run-dir", f"s{k}", *extra])
        assert out.returncode == 0, out.stderr


def errors(out) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("error:")]


def test_merged_shards_equal_the_unsharded_run(cli, tmp_path):
    full = cli(["run", *RUN, "--repeats", "2", "--run-dir", "full"])
    assert full.returncode == 0, full.stderr
    run_shards(cli, "--repeats", "2")
    parts = [set(keys(tmp_path / f"s{k}")) for k in (1, 2, 3)]
    assert all(parts) and sum(map(len, parts)) == len(set().union(*parts))  # disjoint, none empty
    assert set().union(*parts) == set(keys(tmp_path / "full"))  # --limit first, then the shard
    out = cli(["merge", "s1", "s2", "s3", "--out", "merged"])
    assert out.returncode == 0, out.stderr
    assert keys(tmp_path / "full") != keys(tmp_path / "merged")  # another record order ...
    merged, unsharded = read_summary(tmp_path / "merged"), read_summary(tmp_path / "full")
    assert merged["metrics"] == unsharded["metrics"]  # ... the same values, intervals and n
    assert merged["tasks"] == unsharded["tasks"]
    assert any(m["ci_low"] is not None and m["ci_low"] < m["value"] for m in merged["metrics"].values())
    manifest = json.loads((tmp_path / "merged" / "manifest.json").read_text())
    full_manifest = json.loads((tmp_path / "full" / "manifest.json").read_text())
    assert manifest["fingerprint"] == full_manifest["fingerprint"] and manifest["status"] == "complete"
    assert [t["planned"] for t in manifest["tasks"]] == [t["planned"] for t in full_manifest["tasks"]]
    assert manifest["counts"]["records"] == len(keys(tmp_path / "full"))
    roles = [next(r for r in m["roles"] if r["role"] == "model") for m in (manifest, full_manifest)]
    assert roles[0]["calls"] + roles[0]["cache_hits"] == roles[1]["calls"] + roles[1]["cache_hits"] > 0
    resumed = cli(["run", *RUN, "--repeats", "2", "--run-dir", "merged"])  # the merge is the unsharded run
    assert resumed.returncode == 0 and "finished records kept, 0 new" in resumed.stdout
    board = cli(["leaderboard", "."])
    assert "shard 2/3 of a run" in board.stderr and board.stdout.count("`scripted/refuse-30`") == 1


def test_bad_merges_are_one_error_naming_the_shard(cli, tmp_path):
    run_shards(cli)
    cli(["run", *RUN, "--shard", "2/3", "--seed", "7", "--run-dir", "other-seed"])
    shutil.copytree(tmp_path / "s1", tmp_path / "tampered")
    stray = next(line for line in (tmp_path / "s2" / "records.jsonl").read_text().splitlines() if line)
    with open(tmp_path / "tampered" / "records.jsonl", "a", encoding="utf-8") as handle:
        handle.write(stray + "\n")
    cases = [
        (["s1", "s2", "s2", "s3"], "shard 2/3 is given twice: s2 and s2"),
        (["s1", "s3"], "shard 2/3 is missing"),
        (["s1", "other-seed", "s3"], "shard 2/3 (other-seed) is not a slice of the same run as shard 1/3 (s1): "
                                     "fingerprint.seed differ"),
        (["tampered", "s2", "s3"], "shard 1/3 (tampered) holds sample"),
    ]
    for dirs, message in cases:
        out = cli(["merge", *dirs, "--out", "merged"])
        assert out.returncode == 2 and len(errors(out)) == 1, out.stderr
        assert message in errors(out)[0], out.stderr
        assert not (tmp_path / "merged").exists()


def test_a_shard_resumes_only_as_the_same_shard(cli, tmp_path):
    run_shards(cli)
    out = cli(["run", *RUN, "--shard", "2/3", "--run-dir", "s1"])
    assert out.returncode == 2 and "shard" in errors(out)[0]
    for bad in ("0/3", "4/3", "1", "a/b"):
        out = cli(["run", *RUN, "--shard", bad, "--run-dir", "x"])
        assert out.returncode == 2 and errors(out) == [f"error: --shard expects k/n with 1 <= k <= n (e.g. 2/4), got '{bad}'"]


def test_reports_do_not_depend_on_the_order_of_records(cli, tmp_path):
    assert cli(["run", *RUN, "--run-dir", "run"]).returncode == 0
    before = read_summary(tmp_path / "run")
    path = tmp_path / "run" / "records.jsonl"
    path.write_text("".join(reversed(path.read_text().splitlines(keepends=True))), encoding="utf-8")
    assert cli(["report", "run"]).returncode == 0
    after = read_summary(tmp_path / "run")
    assert after["metrics"] == before["metrics"] and after["tasks"] == before["tasks"]


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30, unique=True), st.integers(1, 7))
def test_every_sample_is_in_exactly_one_shard(ids, count):
    for sample_id in ids:
        holders = [k for k in range(1, count + 1) if Shard(k, count).holds("task", sample_id)]
        assert holders == [shard_index("task", sample_id, count)]


def test_the_merged_run_gets_the_error_policy_of_the_union(cli, tmp_path):
    """choose-2 answers no overrefusal prompt: the merged run is failed (exit 1) like the unsharded one."""
    args = ["run", "--model", "scripted/choose-2", "-t", "overrefusal", "--limit", "6", "--no-progress"]
    shards = [cli([*args, "--shard", f"{k}/2", "--run-dir", f"f{k}"]) for k in (1, 2)]
    assert [s.returncode for s in shards] == [1, 1]
    out = cli(["merge", "f1", "f2", "--out", "merged"])
    assert out.returncode == 1 and "error: run failed: 6 of 6 samples ended in errors" in out.stderr
    manifest = json.loads((tmp_path / "merged" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error_kinds"] == {"generation": 6}
    assert read_summary(tmp_path / "merged")["status"] == "failed"


def test_a_run_file_sets_the_shard_and_the_flag_overrides_it(cli, tmp_path):
    (tmp_path / "eval.yaml").write_text("shard: 2/3\n", encoding="utf-8")
    out = cli(["run", *RUN, "--config", "eval.yaml", "--run-dir", "from-file"])
    assert out.returncode == 0, out.stderr
    out = cli(["run", *RUN, "--shard", "2/3", "--run-dir", "from-flag"])
    assert out.returncode == 0, out.stderr
    assert keys(tmp_path / "from-file") == keys(tmp_path / "from-flag")
    out = cli(["run", *RUN, "--config", "eval.yaml", "--shard", "1/3", "--run-dir", "overridden"])
    assert out.returncode == 0, out.stderr
    assert set(keys(tmp_path / "overridden")).isdisjoint(keys(tmp_path / "from-file"))
    (tmp_path / "bad.yaml").write_text("shard: 4/3\n", encoding="utf-8")
    out = cli(["run", *RUN, "--config", "bad.yaml", "--run-dir", "bad"])
    assert out.returncode == 2 and len(errors(out)) == 1
    assert "bad.yaml" in errors(out)[0] and "shard" in errors(out)[0] and "'4/3'" in errors(out)[0]
