"""Sweeps through the real CLI: several models x tasks, one run dir each, resumed, extended, one leaderboard."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import read_records

TASKS = ["overrefusal", "wahlomat"]
MODELS = ["scripted/refuse-30", "scripted/comply-all", "scripted/refuse-all"]


def sweep(cli, models: list[str], tasks: list[str], *extra: str):
    return cli(["run", "--model", ",".join(models), "--tasks", ",".join(tasks), "--limit", "6",
                "--sweep-dir", "S", "--no-progress", *extra])


def slug(model: str) -> str:
    return model.replace("/", "-")


def run_dirs(tmp_path: Path, models: list[str], tasks: list[str]) -> list[Path]:
    return [tmp_path / "S" / slug(m) / t for m in models for t in tasks]


def leaderboard_models(tmp_path: Path) -> list[str]:
    with open(tmp_path / "S" / "leaderboard.csv", newline="", encoding="utf-8") as handle:
        return sorted(row["model"] for row in csv.DictReader(handle))


def test_sweep_runs_each_model_and_task_then_resumes_and_extends(cli, tmp_path):
    first = sweep(cli, MODELS, TASKS)
    assert first.returncode == 0, first.stderr
    dirs = run_dirs(tmp_path, MODELS, TASKS)
    for run_dir in dirs:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "complete" and [t["name"] for t in manifest["tasks"]] == [run_dir.name]
        assert manifest["fingerprint"]["model"] in MODELS and slug(manifest["fingerprint"]["model"]) == run_dir.parent.name
    for fmt in ("md", "csv", "html"):
        assert (tmp_path / "S" / f"leaderboard.{fmt}").is_file()
    assert leaderboard_models(tmp_path) == sorted(MODELS)
    assert "scripted/refuse-all" in (tmp_path / "S" / "leaderboard.html").read_text()
    records = {d: (d / "records.jsonl").read_bytes() for d in dirs}

    again = sweep(cli, MODELS, TASKS)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("finished records kept, 0 new") == len(dirs)
    assert all((d / "records.jsonl").read_bytes() == records[d] for d in dirs)

    models, tasks = [*MODELS, "scripted/echo"], [*TASKS, "dilemmas"]
    extended = sweep(cli, models, tasks)
    assert extended.returncode == 0, extended.stderr
    assert extended.stdout.count("finished records kept, 0 new") == len(dirs)  # only new pairs did work
    assert all((d / "records.jsonl").read_bytes() == records[d] for d in dirs)
    new = [d for d in run_dirs(tmp_path, models, tasks) if d not in records]
    assert len(new) == 4 * 3 - 6 and all(read_records(d) for d in new)
    assert leaderboard_models(tmp_path) == sorted(models)
    header = (tmp_path / "S" / "leaderboard.md").read_text().splitlines()[2]
    assert "dilemmas." in header and "wahlomat." in header and "overrefusal." in header


def test_a_failing_run_does_not_stop_the_sweep_and_sets_the_exit_code(cli, tmp_path):
    """comply-all's overrefusal dir holds a run with another seed: that run is a user error (exit 2), the
    other five runs finish and the leaderboard is written."""
    clash = Path("S", "scripted-comply-all", "overrefusal")
    first = cli(["run", "--model", "scripted/comply-all", "-t", "overrefusal", "--limit", "6", "--seed", "5",
                 "--run-dir", str(clash), "--no-progress"])
    assert first.returncode == 0, first.stderr
    out = sweep(cli, MODELS, TASKS)
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(clash) in errors[0] and "seed" in errors[0]
    finished = [d for d in run_dirs(tmp_path, MODELS, TASKS) if d != tmp_path / clash]
    assert all(json.loads((d / "manifest.json").read_text())["status"] == "complete" for d in finished)
    assert f"error        {clash}" in out.stdout
    assert leaderboard_models(tmp_path) == sorted(MODELS)  # comply-all still has its wahlomat run


def test_run_file_models_share_the_model_block(cli, tmp_path):
    (tmp_path / "eval.yaml").write_text(
        "model: {max_connections: 3}\n"
        "models: [scripted/refuse-30, {spec: scripted/comply-all, max_connections: 5}]\n"
        "tasks: overrefusal\nlimit: 4\nsweep_dir: S\nno_progress: true\n", encoding="utf-8")
    out = cli(["run", "--config", "eval.yaml"])
    assert out.returncode == 0, out.stderr
    limits = {}
    for model in ("scripted/refuse-30", "scripted/comply-all"):
        manifest = json.loads((tmp_path / "S" / slug(model) / "overrefusal" / "manifest.json").read_text())
        limits[model] = next(r for r in manifest["roles"] if r["role"] == "model")["options"]["max_connections"]
    assert limits == {"scripted/refuse-30": 3, "scripted/comply-all": 5}
    assert leaderboard_models(tmp_path) == ["scripted/comply-all", "scripted/refuse-30"]


def test_sweep_input_errors_are_one_line_before_any_work(cli, tmp_path):
    cases = [
        (["--model", "scripted/echo,scripted/echo"], "scripted/echo is given twice"),
        (["--model", "scripted/a:b,scripted/a-b"], "share the folder name 'scripted-a-b'"),
        (["--model", "scripted/echo,scripted/comply-all", "--run-dir", "r"], "give --sweep-dir, not --run-dir"),
        (["--model", "scripted/echo,scripted/comply-all", "--shard", "1/2"], "--shard splits one run"),
    ]
    for args, message in cases:
        out = cli(["run", *args, "-t", "overrefusal", "--limit", "2", "--sweep-dir", "S", "--no-progress"])
        assert out.returncode == 2, args
        assert out.stderr.count("error:") == 1 and message in out.stderr, out.stderr
        assert not (tmp_path / "S").exists() and not (tmp_path / "r").exists()
    (tmp_path / "bad.yaml").write_text("model: scripted/echo\nmodels: [scripted/comply-all]\n", encoding="utf-8")
    out = cli(["run", "--config", "bad.yaml"])
    assert out.returncode == 2 and "key 'models'" in out.stderr and "bad.yaml" in out.stderr


def test_a_failed_run_does_not_stop_the_sweep_and_exits_1(cli, tmp_path):
    """choose-2 finds no options in overrefusal prompts: every sample of that run ends in an error, so the run
    is failed (error-rate policy). The sweep goes on, and exits 1 as that run alone does."""
    out = cli(["run", "--model", "scripted/choose-2,scripted/refuse-30", "-t", "overrefusal", "--limit", "4",
               "--sweep-dir", "S", "--no-progress"])
    failing = json.loads((tmp_path / "S" / "scripted-choose-2" / "overrefusal" / "manifest.json").read_text())
    assert failing["status"] == "failed" and failing["counts"]["errors"] == failing["counts"]["records"] == 4
    other = json.loads((tmp_path / "S" / "scripted-refuse-30" / "overrefusal" / "manifest.json").read_text())
    assert other["status"] == "complete" and other["counts"]["errors"] == 0
    alone = cli(["run", "--model", "scripted/choose-2", "-t", "overrefusal", "--limit", "4", "--run-dir", "alone",
                 "--no-progress"])
    assert out.returncode == alone.returncode == 1
    assert "failed       S/scripted-choose-2/overrefusal" in out.stdout
    assert leaderboard_models(tmp_path) == ["scripted/refuse-30"]  # failed runs stay off the leaderboard


def test_a_budget_stop_ends_the_sweep_with_exit_3(cli, tmp_path):
    (tmp_path / "prices.yaml").write_text("refuse-30: {input: 100000, output: 100000}\n", encoding="utf-8")
    out = sweep(cli, ["scripted/refuse-30", "scripted/comply-all"], TASKS, "--prices", "prices.yaml",
                "--budget-usd", "5")
    assert out.returncode == 3 and "budget stop" in out.stderr
    assert "[2/4]" not in out.stdout and not (tmp_path / "S" / "scripted-comply-all").exists()
