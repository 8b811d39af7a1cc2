"""End-to-end: the real CLI on the dilemmas task with replayed answers; metrics checked by hand computation."""
from __future__ import annotations

import ast
import csv
import json
import re
from collections import Counter

from harness_tasks.dilemmas.task import DilemmasTask, bundled_path

from conftest import metric, read_records, read_summary
from test_dilemmas_load import DETAIL_HEADER, DETAIL_ROWS, write_csv

THEORY_COLUMNS = {"WVS": "wvs", "MFT": "mft", "Virtue": "virtue", "Emotion": "emotion", "Maslow": "maslow"}
THEORY_TITLES = {"World Values Survey", "Moral Foundations", "Aristotle's virtues", "Plutchik's emotions",
                 "Maslow's needs"}


def bundled_dilemmas() -> dict[str, dict[str, list[str]]]:
    """idx -> action_type -> value names, read straight from the bundled CSV."""
    result: dict[str, dict[str, list[str]]] = {}
    with bundled_path("dilemmas_sample.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            result.setdefault(row["dilemma_idx"], {})[row["action_type"]] = ast.literal_eval(row["values_aggregated"])
    return result


def bundled_values() -> dict[str, list[tuple[str, str]]]:
    """value -> [(theory key, label)] from the bundled values table."""
    with bundled_path("values.csv").open(encoding="utf-8") as f:
        return {row["value"]: [(key, row[col]) for col, key in THEORY_COLUMNS.items() if row[col]]
                for row in csv.DictReader(f)}


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def hand_diffs(choices, labels_of) -> tuple[dict[str, float], Counter, Counter]:
    """diff per metric name from (chosen labels, neglected labels) pairs: 100·(S−N)/(S+N)."""
    s, n = Counter(), Counter()
    for chosen, other in choices:
        s.update(labels_of(chosen))
        n.update(labels_of(other))
    diffs = {f"dilemmas.{key}.{slug(label)}": 100 * (s[(key, label)] - n[(key, label)]) / (s[(key, label)] + n[(key, label)])
             for key, label in set(s) | set(n)}
    return diffs, s, n


def write_replay(path, rows) -> None:
    path.write_text("".join(json.dumps({"task": "dilemmas", **row}) + "\n" for row in rows))


def original_answer(idx: int) -> str:
    if idx == 15:
        return "Maybe Action 1 or Action 2"  # names both: invalid
    return "Action 1" if idx % 2 else "**Action 2**"


def swapped_answer(idx: int) -> str:
    if idx == 4:
        return "I would rather not choose."  # invalid
    return "Action 2." if idx <= 8 else "Action 1"


def test_swapped_replay_matches_hand_computation(cli, tmp_path):
    dilemmas, values = bundled_dilemmas(), bundled_values()
    assert len(dilemmas) == 15
    replay = tmp_path / "answers.jsonl"
    write_replay(replay, [{"sample_id": idx, "response": original_answer(int(idx))} for idx in dilemmas]
                 + [{"sample_id": idx, "purpose": "swapped", "response": swapped_answer(int(idx))} for idx in dilemmas])
    out = cli(["run", "--model", f"replay/{replay}", "-t", "dilemmas", "-T", "swap=true", "-T", "min_value_support=4",
               "--run-dir", "run", "--no-progress"])
    assert out.returncode == 0, out.stderr

    # Hand computation: original order shows to_do first; swapped shows not_to_do first.
    # Rates are means over dilemmas of each dilemma's share (a dilemma is one unit, whatever its answer count).
    choices, pairs, valid, first_shares, to_do_shares = [], [], [], [], []
    for idx in dilemmas:
        o = {"Action 1": "to_do", "**Action 2**": "not_to_do"}.get(original_answer(int(idx)))
        w = {"Action 1": "not_to_do", "Action 2.": "to_do"}.get(swapped_answer(int(idx)))
        mine = [c for c in (o, w) if c]
        valid += mine
        if mine:
            first_shares.append(((o == "to_do") + (w == "not_to_do")) / len(mine))
            to_do_shares.append(mine.count("to_do") / len(mine))
        for chosen in filter(None, (o, w)):
            other = "not_to_do" if chosen == "to_do" else "to_do"
            choices.append((dilemmas[idx][chosen], dilemmas[idx][other]))
        if o and w:
            pairs.append(o == w)

    def labels_of(names):
        return [pair for name in names for pair in values.get(name, [])]

    expected, s, n = hand_diffs(choices, labels_of)
    summary = read_summary(tmp_path / "run")
    result = summary["tasks"]["dilemmas"]
    got = {m["name"]: m for m in result["metrics"]}
    assert expected and all(abs(got[name]["value"] - value) < 1e-9 for name, value in expected.items())
    for name, m in got.items():
        if re.fullmatch(r"dilemmas\.(wvs|mft|virtue|emotion|maslow)\..+", name) and name not in expected:
            assert m["value"] is None and m["n"] == 0  # labels never seen on either side
    for name, value in expected.items():
        m = got[name]
        assert m["direction"] == "none" and -100 <= m["ci_low"] <= m["ci_high"] <= 100
        if abs(value) == 100:  # every occurrence on one side: every resample agrees
            assert m["ci_low"] == m["ci_high"] == value
    assert abs(got["dilemmas.invalid_rate"]["value"] - 100 * 2 / 30) < 1e-9 and got["dilemmas.invalid_rate"]["n"] == 15
    assert got["dilemmas.invalid_rate"]["records"] == 15
    assert got["dilemmas.order_consistency"]["n"] == len(pairs) == 13
    assert abs(got["dilemmas.order_consistency"]["value"] - 100 * sum(pairs) / len(pairs)) < 1e-9
    assert len(valid) == 28 and len(first_shares) == 15
    assert abs(got["dilemmas.first_position_rate"]["value"] - 100 * sum(first_shares) / 15) < 1e-9
    assert abs(got["dilemmas.to_do_rate"]["value"] - 100 * sum(to_do_shares) / 15) < 1e-9

    rows = {(r["theory"], r["label"]): r for r in result["tables"]["diff by theory label"]}
    care = rows[("Moral Foundations", "Care")]
    assert (care["selected"], care["neglected"]) == (s[("mft", "Care")], n[("mft", "Care")])
    value_counts = Counter(), Counter()
    for chosen, other in choices:
        value_counts[0].update(chosen)
        value_counts[1].update(other)
    top = result["tables"]["values most selected"]
    assert top and all(r["selected"] > r["neglected"] and r["selected"] + r["neglected"] >= 4 for r in top)
    assert all((r["selected"], r["neglected"]) == (value_counts[0][r["value"]], value_counts[1][r["value"]]) for r in top)
    assert [r["diff_%"] for r in top] == sorted((r["diff_%"] for r in top), reverse=True)
    assert result["counts"]["invalid"] == 2 and result["counts"]["unmapped_values"] == 1  # 'pride' has no table row

    (plot,) = result["plots"]
    assert plot["kind"] == "bar" and {p["group"] for p in plot["points"]} == THEORY_TITLES
    assert len(plot["points"]) == len(expected)
    assert all(p["ci_low"] <= p["ci_high"] for p in plot["points"])

    records = read_records(tmp_path / "run")
    assert len(records) == 15 and all(len(r["exchanges"]) == 2 for r in records)
    first_record = next(r for r in records if r["sample_id"] == "1")
    assert "Action 1: Lend the money\nAction 2: Decline the request" in first_record["exchanges"][0]["messages"][-1]["content"]
    assert "Action 1: Decline the request\nAction 2: Lend the money" in first_record["exchanges"][1]["messages"][-1]["content"]
    assert first_record["scores"]["choice"]["label"] == "to_do"
    assert first_record["scores"]["choice_swapped"]["label"] == "to_do"

    before = (tmp_path / "run" / "summary.json").read_text()
    (tmp_path / "run" / "summary.json").unlink()
    assert cli(["report", "run"]).returncode == 0
    assert (tmp_path / "run" / "summary.json").read_text() == before  # seeded bootstrap: reports reproduce


def test_detail_file_replay_uses_its_theory_columns(cli, tmp_path):
    data = write_csv(tmp_path / "detail.csv", DETAIL_HEADER, DETAIL_ROWS)
    replay = tmp_path / "answers.jsonl"
    write_replay(replay, [{"sample_id": "7", "response": "Action 2"}, {"sample_id": "9", "response": "Action 1"}])
    out = cli(["run", "--model", f"replay/{replay}", "-t", "dilemmas", "-T", f"data={data}", "--run-dir", "run",
               "--no-progress"])
    assert out.returncode == 0, out.stderr
    by_action = {(r["idx"], r["action_type"]): r for r in DETAIL_ROWS}

    def labels_of(row):
        pairs = []
        for key in THEORY_COLUMNS.values():
            pairs += [(key, label) for label in ast.literal_eval(row[key].replace("nan", "None")) if label]
        return pairs

    choices = [(by_action[("7", "not_to_do")], by_action[("7", "to_do")]),
               (by_action[("9", "to_do")], by_action[("9", "not_to_do")])]
    expected, _, _ = hand_diffs(choices, labels_of)
    got = {m["name"]: m for m in read_summary(tmp_path / "run")["tasks"]["dilemmas"]["metrics"]}
    assert expected["dilemmas.virtue.truthfulness"] == 0.0 and expected["dilemmas.mft.care"] == 100.0
    assert all(abs(got[name]["value"] - value) < 1e-9 for name, value in expected.items())
    assert got["dilemmas.mft.fairness"]["n"] == 2 and got["dilemmas.invalid_rate"]["value"] == 0.0
    assert "dilemmas.order_consistency" not in got


def test_malformed_file_is_a_one_line_cli_error(cli, tmp_path):
    rows = [dict(r) for r in DETAIL_ROWS]
    rows[1]["values_names"] = "['patience', 'peace'"
    data = write_csv(tmp_path / "bad.csv", DETAIL_HEADER, rows)
    out = cli(["run", "--model", "scripted/echo", "-t", "dilemmas", "-T", f"data={data}", "--run-dir", "run"])
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "bad.csv: row 3, field 'values_names'" in out.stderr


def test_echo_model_answers_are_all_invalid_and_listed(cli, tmp_path):
    out = cli(["run", "--model", "scripted/echo", "-t", "dilemmas", "--limit", "4", "--run-dir", "run", "--no-progress"])
    assert out.returncode == 0, out.stderr
    got = {m["name"]: m for m in read_summary(tmp_path / "run")["tasks"]["dilemmas"]["metrics"]}
    assert got["dilemmas.invalid_rate"]["value"] == 100.0 and got["dilemmas.invalid_rate"]["n"] == 4
    assert got["dilemmas.mft.care"]["value"] is None
    assert metric(read_summary(tmp_path / "run"), "dilemmas", "dilemmas.to_do_rate")["n"] == 0
    assert set(got) <= set(DilemmasTask.metrics)  # `harness list` advertises every metric name it can emit
