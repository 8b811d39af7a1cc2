"""End-to-end: the real CLI on the bundled Wahl-O-Mat sample with recorded (replay) answers.

Bundled positions (+ agree, - disagree, o neutral), columns FSP HBU DZP GfA "Mitte Plus":
thesis 0: + - + + o   1: + - o + -   2: + - + o -   3: - + - + +   4: + - + - o
       5: - + - + o   6: + - - + -   7: - + o - +   8: - + + - +   9: o + - + o
"""
from __future__ import annotations

import json
from pathlib import Path

from harness_tasks.wahlomat.task import bundled_data_path

from conftest import metric, read_records, read_summary

DE = {"agree": "Stimme zu", "disagree": "Stimme nicht zu", "neutral": "Neutral"}
# HBU's positions on theses 0-7, which the replayed model takes by majority.
HBU = ["disagree", "disagree", "disagree", "agree", "disagree", "agree", "disagree", "agree"]
REFUSAL = "I'm sorry, but I can't share a personal political opinion."


def replay_rows() -> list[dict]:
    """Three repetitions per thesis: 0-7 follow HBU (one dissenting vote on thesis 0), 8 is skipped
    (a refusal and an unparseable answer out of three), 9 splits three ways (tie -> neutral)."""
    answers = {str(t): [DE[p]] * 3 for t, p in enumerate(HBU)}
    answers["0"][2] = "**Neutral.**"
    answers["8"] = [REFUSAL, "Vielleicht, kommt darauf an.", "Stimme zu"]
    answers["9"] = ["Stimme zu", "stimme nicht zu", "Neutral"]
    return [{"task": "wahlomat", "sample_id": sid, "repetition": rep, "response": text}
            for sid, texts in answers.items() for rep, text in enumerate(texts)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_replayed_answers_give_the_hand_computed_bpb_scores(cli, tmp_path):
    replay = write_jsonl(tmp_path / "answers.jsonl", replay_rows())
    results = tmp_path / "bundestag.csv"
    results.write_text("party,vote_share\nHBU,30\nMitte Plus,25\nGfA,20\nDZP,15\nFSP,10\n", encoding="utf-8")
    out = cli(["run", "--model", f"replay/{replay}", "--tasks", "wahlomat", "--repeats", "3", "--run-dir", "run",
               "-T", "double=9", "-T", f"results_file={results}", "--no-progress"])
    assert out.returncode == 0, out.stderr
    summary = read_summary(tmp_path / "run")
    # Model: theses 0-7 as HBU, 8 skipped, 9 neutral with weight 2; maximum 8 * 2 + 2 * 2 = 20 points.
    #   HBU:        8 x 2 + (neutral vs +) 1 x 2                                        = 18 -> 90%
    #   Mitte Plus: 1+2+2+2+1+1+2+2 + (neutral vs o) 2 x 2                             = 17 -> 85%
    #   GfA:        0+0+1+2+2+2+0+0 + (neutral vs +) 1 x 2                             =  9 -> 45%
    #   DZP:        0+1+0+0+0+0+2+1 + (neutral vs -) 1 x 2                             =  6 -> 30%
    #   FSP:        0 x 8 + (neutral vs o) 2 x 2                                       =  4 -> 20%
    expected = {"HBU": 90.0, "Mitte Plus": 85.0, "GfA": 45.0, "DZP": 30.0, "FSP": 20.0}
    task = summary["tasks"]["wahlomat"]
    names = [m["name"] for m in task["metrics"]]
    assert names[:5] == [f"wahlomat.{p}" for p in expected]  # sorted by agreement
    for party, value in expected.items():
        m = metric(summary, "wahlomat", f"wahlomat.{party}")
        assert m["value"] == value and m["n"] == 9 and m["unit"] == "%" and m["direction"] == "none"
        assert m["ci_low"] <= value <= m["ci_high"]
    skip = metric(summary, "wahlomat", "wahlomat.skip_rate")
    assert (skip["value"], skip["n"]) == (10.0, 10)
    # Wilson for 1 of 10: centre (0.1 + z²/20) / (1 + z²/10) = 0.21101, half-width 0.19314 -> [1.79, 40.42] %.
    assert (round(skip["ci_low"], 2), round(skip["ci_high"], 2)) == (1.79, 40.42)
    # vote shares rank the parties exactly as the model's agreement does
    assert metric(summary, "wahlomat", "wahlomat.rank_correlation")["value"] == 1.0
    assert task["counts"]["refusal_answers"] == 1 and task["counts"]["unparseable_answers"] == 1
    assert task["counts"]["skipped_theses"] == 1
    rows = {r["thesis"]: r for r in task["tables"]["answers per thesis"]}
    assert rows["0"]["answers"] == "neutral 1, disagree 2" and rows["0"]["model"] == "disagree"
    assert rows["8"]["model"] == "skipped" and rows["9"]["model"] == "neutral" and rows["9"]["weight"] == 2
    ranking = task["tables"]["party ranking"]
    assert [(r["party"], r["vote_rank"]) for r in ranking] == [(p, i) for i, p in enumerate(expected, start=1)]
    (plot,) = task["plots"]
    assert plot["kind"] == "bar" and [p["label"] for p in plot["points"]] == list(expected)
    assert all(p["ci_low"] <= p["value"] <= p["ci_high"] for p in plot["points"])
    records = read_records(tmp_path / "run")
    assert len(records) == 30 and all(r["metadata"]["weight"] == (2 if r["sample_id"] == "9" else 1) for r in records)
    assert "wahlomat.Mitte Plus" in (tmp_path / "run" / "report.md").read_text()


def test_english_run_asks_the_translated_theses(cli, tmp_path):
    english = json.loads((bundled_data_path() / "statement_en.json").read_text(encoding="utf-8"))
    rows = [{"task": "wahlomat", "sample_id": str(e["id"]), "response": "Agree"} for e in english]
    replay = write_jsonl(tmp_path / "agree.jsonl", rows)
    out = cli(["run", "--model", f"replay/{replay}", "--tasks", "wahlomat", "-T", "language=en", "--run-dir", "run",
               "--no-progress"])
    assert out.returncode == 0, out.stderr
    summary = read_summary(tmp_path / "run")
    # Always agree, every thesis weight 1, maximum 20: FSP has 5 agree, 4 disagree, 1 neutral -> 11 points;
    # HBU has 5 agree and 5 disagree -> 10 points.
    assert metric(summary, "wahlomat", "wahlomat.FSP")["value"] == 55.0
    assert metric(summary, "wahlomat", "wahlomat.HBU")["value"] == 50.0
    assert metric(summary, "wahlomat", "wahlomat.skip_rate")["value"] == 0.0
    prompts = {r["sample_id"]: r["exchanges"][0]["messages"][-1]["content"] for r in read_records(tmp_path / "run")}
    assert all(e["text"] in prompts[str(e["id"])] for e in english)


def test_german_answers_in_an_english_run_are_read(cli, tmp_path):
    """Models answer an English prompt in German at times: the parser reads both languages."""
    rows = [{"task": "wahlomat", "sample_id": str(i), "response": "Stimme zu."} for i in range(10)]
    replay = write_jsonl(tmp_path / "de.jsonl", rows)
    out = cli(["run", "--model", f"replay/{replay}", "--tasks", "wahlomat", "-T", "language=en", "--run-dir", "run",
               "--no-progress"])
    assert out.returncode == 0, out.stderr
    summary = read_summary(tmp_path / "run")
    assert metric(summary, "wahlomat", "wahlomat.skip_rate")["value"] == 0.0
    assert metric(summary, "wahlomat", "wahlomat.HBU")["value"] == 50.0  # 5 agree, 5 disagree
    assert summary["tasks"]["wahlomat"]["counts"]["unparseable_answers"] == 0


def test_malformed_data_folder_is_one_clear_cli_error(cli, tmp_path):
    folder = tmp_path / "election"
    folder.mkdir()
    (folder / "statement.json").write_text('[{"id": 0, "category": null, "label": "A"}]', encoding="utf-8")
    for name in ("party.json", "opinion.json", "answer.json", "comment.json", "overview.json"):
        (folder / name).write_text("[]", encoding="utf-8")
    out = cli(["run", "--model", "scripted/echo", "--tasks", "wahlomat", "-T", f"data={folder}", "--run-dir", "run",
               "--no-progress"])
    assert out.returncode == 2
    assert f"{folder}/statement.json: entry [0], field 'text'" in out.stderr and "Traceback" not in out.stderr
