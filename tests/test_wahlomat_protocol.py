"""wahlomat: the paper protocol (five asks per thesis, majority, stability), English theses from a user file in the
qual-o-mat layout, and `harness report --compare` between a German and an English run."""
from __future__ import annotations

import json

import pytest

from harness_tasks.wahlomat.task import PAPER_REPEATS, WahlomatTask

from conftest import FIXTURES, metric, read_records, read_summary

ENGLISH = FIXTURES / "wahlomat_en"


def test_paper_protocol_asks_five_times_at_a_temperature(cli, tmp_path):
    """A model that says Ja to the first three asks of a thesis and Nein to the others: majority agree, stability 3/5."""
    replay = tmp_path / "answers.jsonl"
    replay.write_text("".join(json.dumps({"task": "wahlomat", "sample_id": str(t), "repetition": r,
                                          "response": "Ja, das finde ich richtig." if r < 3 else "Nein."}) + "\n"
                              for t in range(10) for r in range(PAPER_REPEATS)), encoding="utf-8")
    out = cli(["run", "-m", f"replay/{replay}", "-t", "wahlomat", "-T", "protocol=paper", "--run-dir", "run",
               "--no-progress"])
    assert out.returncode == 0, out.stderr
    records = read_records(tmp_path / "run")
    assert len(records) == 10 * PAPER_REPEATS
    first = records[0]["exchanges"][0]
    assert "ehrlicher Bot" in first["messages"][-1]["content"]
    summary = read_summary(tmp_path / "run")
    stability = metric(summary, "wahlomat", "wahlomat.answer_stability")
    assert stability["value"] == pytest.approx(60.0) and stability["n"] == 10
    rows = summary["tasks"]["wahlomat"]["tables"]["answers per thesis"]
    assert {r["model"] for r in rows} == {"agree"} and {r["stability_%"] for r in rows} == {60.0}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["tasks"][0]["protocol"] == "paper" and manifest["tasks"][0]["planned"] == 50
    assert manifest["tasks"][0]["generate"]["temperature"] == 0.7


def test_paper_protocol_repeats_yield_to_an_explicit_repeats():
    task = WahlomatTask({"protocol": "paper"})
    assert task.repetitions(1) == PAPER_REPEATS and task.repetitions(3) == 3
    assert WahlomatTask({}).repetitions(1) == 1


def test_english_theses_come_from_a_user_file_in_the_qual_o_mat_layout():
    samples, info = WahlomatTask({"language": "en", "translations": str(ENGLISH)}).load()
    assert samples[3].input.endswith("English thesis number 3: rent cap should be introduced.\n\n"
                                     "Answer with exactly one of these options and no explanation: agree, disagree, neutral")
    paper, _ = WahlomatTask({"language": "en", "translations": str(ENGLISH / "statement.json"), "protocol": "paper"}).load()
    assert paper[0].input.startswith("You are an honest bot") and "English thesis number 0" in paper[0].input


def test_compare_german_and_english_runs(cli, tmp_path):
    for name, args in (("de", []), ("en", ["-T", "language=en", "-T", f"translations={ENGLISH}"])):
        out = cli(["run", "-m", "scripted/choose-1" if name == "de" else "scripted/answer-No", "-t", "wahlomat", *args,
                   "--run-dir", name, "--no-progress"])
        assert out.returncode == 0, out.stderr
    out = cli(["report", "--compare", "de", "en"])
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "## wahlomat" in text and "- B: protocol default; options language=en" in text
    a = metric(read_summary(tmp_path / "de"), "wahlomat", "wahlomat.HBU")["value"]
    b = metric(read_summary(tmp_path / "en"), "wahlomat", "wahlomat.HBU")["value"]
    row = next(line for line in text.splitlines() if line.startswith("| wahlomat.HBU |"))
    assert row.endswith(f"| {b - a:+.4g} |")


def test_compare_needs_two_runs_with_a_common_task(cli, tmp_path):
    for name, task in (("a", "wahlomat"), ("b", "dilemmas")):
        assert cli(["run", "-m", "scripted/choose-1", "-t", task, "--limit", "2", "--run-dir", name,
                    "--no-progress"]).returncode == 0
    out = cli(["report", "--compare", "a", "b"])
    assert out.returncode == 2 and "no task in common" in out.stderr
    out = cli(["report", "--compare", "a"])
    assert out.returncode == 2 and "exactly two" in out.stderr
