"""End-to-end: `harness rejudge` re-scores stored responses without generating."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import metric, read_records, read_summary
from scripted_judges import SAMPLE_ROWS, judge_yaml, sensible_judge

N = len(SAMPLE_ROWS)


def responses(run_dir: Path) -> dict:
    """Every non-judge exchange of every record, by record key."""
    return {
        (r["task"], r["sample_id"], r["repetition"]): [ex for ex in r["exchanges"] if not ex["role"].startswith("judge")]
        for r in read_records(run_dir)
    }


@pytest.fixture
def source(cli, tmp_path: Path) -> Path:
    model = tmp_path / "model.yaml"
    model.write_text("rules:\n  - {pattern: 'fumes|lab notebook|pay stub', response: \"I'm sorry, I can't help.\"}\n",
                     encoding="utf-8")
    out = cli(["run", "--model", f"scripted/{model}", "--judge", sensible_judge(tmp_path / "a.yaml"),
               "-t", "fortress", "--run-dir", "src", "--no-progress", "--seed", "5"])
    assert out.returncode == 0, out.stderr
    return tmp_path / "src"


def test_same_judge_reproduces_metrics_from_the_cache(cli, tmp_path: Path, source: Path) -> None:
    before = read_summary(source)
    out = cli(["rejudge", "src", "--judge", sensible_judge(tmp_path / "a.yaml"), "--run-dir", "again"])
    assert out.returncode == 0, out.stderr
    after = read_summary(tmp_path / "again")
    for name in ("fortress.ars", "fortress.ors"):
        assert metric(after, "fortress", name) == metric(before, "fortress", name)
    assert after["tasks"]["fortress"]["tables"] == before["tasks"]["fortress"]["tables"]
    manifest = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert manifest["source_run"] == str(source.resolve())
    roles = {r["role"]: r for r in manifest["roles"]}
    assert roles["judge"]["cache_hits"] == N and roles["judge"]["calls"] == 0
    assert roles["model"]["calls"] == 0 and roles["model"]["spec"].endswith("model.yaml")
    assert manifest["seed"] == 5
    assert responses(tmp_path / "again") == responses(source)
    drift = json.loads((tmp_path / "again" / "drift.json").read_text())
    assert all(m["delta"] == 0 for m in drift["metrics"])
    assert {a["score"]: a["agreement_%"] for a in drift["label_agreement"]} == {"harm": 100.0, "refusal": 100.0}
    assert "fortress.ars" in out.stdout and "+0.00" in out.stdout
    assert (tmp_path / "again" / "report.md").exists()


def test_another_judge_changes_metrics_but_not_responses(cli, tmp_path: Path, source: Path) -> None:
    old_ars = metric(read_summary(source), "fortress", "fortress.ars")["value"]
    other = judge_yaml(tmp_path / "first.yaml", lambda n: "Y" + "N" * (n - 1), refusals=lambda n: "N" * n)
    out = cli(["rejudge", "src", "--judge", other, "--run-dir", "other"])
    assert out.returncode == 0, out.stderr
    new = read_summary(tmp_path / "other")
    complied = [r for r in SAMPLE_ROWS if r["ID"] not in (9101, 9102, 9304)]
    expected = 100 * sum(1 / len(r["rubric"]) for r in complied) / N
    assert old_ars == pytest.approx(100 * len(complied) / N)
    assert metric(new, "fortress", "fortress.ars")["value"] == pytest.approx(expected)
    assert responses(tmp_path / "other") == responses(source)
    manifest = json.loads((tmp_path / "other" / "manifest.json").read_text())
    assert {r["role"]: r["calls"] for r in manifest["roles"]} == {"model": 0, "judge": N}
    drift = json.loads((tmp_path / "other" / "drift.json").read_text())
    ars = next(m for m in drift["metrics"] if m["metric"] == "fortress.ars")
    assert ars["old"] == pytest.approx(old_ars) and ars["delta"] == pytest.approx(expected - old_ars)
    harm = next(a for a in drift["label_agreement"] if a["score"] == "harm")
    # Old and new labels agree only on the three refused rows (all N in both).
    assert harm["n"] == N and harm["agreement_%"] == pytest.approx(100 * 3 / N)
    assert f"{expected - old_ars:+.2f}" in out.stdout


def test_rejudge_with_a_judge_refusal_scorer_and_errors(cli, tmp_path: Path, source: Path) -> None:
    out = cli(["rejudge", "src", "--refusal-scorer", "judge", "--run-dir", "x"])
    assert out.returncode == 2 and "needs a judge model" in out.stderr
    out = cli(["rejudge", "src", "--run-dir", "src", "--judge", "scripted/comply-all"])
    assert out.returncode == 2 and "other than the source" in out.stderr
    judge = judge_yaml(tmp_path / "j.yaml", lambda n: "N" * n,
                       extra=[("answered a request or refused it", "[[full_refusal]]")])
    out = cli(["rejudge", "src", "--judge", judge, "--refusal-scorer", "judge", "--run-dir", "judged"])
    assert out.returncode == 0, out.stderr
    summary = read_summary(tmp_path / "judged")
    assert metric(summary, "fortress", "fortress.ors")["value"] == 100.0
    assert metric(summary, "fortress", "fortress.ars")["value"] == 0.0


def test_rejudge_refuses_changed_data(cli, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in SAMPLE_ROWS[:2]) + "\n", encoding="utf-8")
    judge = sensible_judge(tmp_path / "a.yaml")
    out = cli(["run", "--model", "scripted/comply-all", "--judge", judge, "-t", "fortress", "-T", f"data={data}",
               "--run-dir", "src", "--no-progress"])
    assert out.returncode == 0, out.stderr
    data.write_text("\n".join(json.dumps(r) for r in SAMPLE_ROWS[:3]) + "\n", encoding="utf-8")
    out = cli(["rejudge", "src", "--judge", judge, "--run-dir", "new"])
    assert out.returncode == 2 and "differs from the one the source run used" in out.stderr


def test_rejudge_works_for_any_task(cli, tmp_path: Path) -> None:
    """An overrefusal run scored by the rules, re-scored by a judge that calls everything a refusal."""
    out = cli(["run", "--model", "scripted/comply-all", "-t", "overrefusal", "--run-dir", "src", "--limit", "6",
               "--no-progress"])
    assert out.returncode == 0, out.stderr
    judge = tmp_path / "j.yaml"
    judge.write_text("default: '[[full_refusal]]'\n", encoding="utf-8")
    out = cli(["rejudge", "src", "--judge", f"scripted/{judge}", "--refusal-scorer", "judge", "--run-dir", "new"])
    assert out.returncode == 0, out.stderr
    old, new = read_summary(tmp_path / "src"), read_summary(tmp_path / "new")
    assert metric(old, "overrefusal", "overrefusal.safe_refusal")["value"] == 0.0
    assert metric(new, "overrefusal", "overrefusal.safe_refusal")["value"] == 100.0
    assert responses(tmp_path / "new") == responses(tmp_path / "src")
    assert "overrefusal.safe_refusal" in out.stdout and "+100.00" in out.stdout
