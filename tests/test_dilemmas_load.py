"""dilemmas: loaders for the upstream formats (own fixtures), validation errors, prompt rendering, parser."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from harness.errors import UserError
from harness_tasks.dilemmas import task as dilemmas_task
from harness_tasks.dilemmas.load import parse_list
from harness_tasks.dilemmas.prompt import parse_choice
from harness_tasks.dilemmas.task import DilemmasTask

DETAIL_HEADER = [
    "idx", "basic_situation", "dilemma_situation", "action_type", "action", "negative_consequence",
    "parties_direct", "parties_indirect", "values_direct", "values_indirect", "reason_direct", "reason_indirect",
    "model_resp_gpt35_clean", "model_resp_gpt4_clean", "values_names", "values_types", "wvs", "mft", "virtue",
    "emotion", "maslow", "background", "topic", "topic_group",
]
AGGREGATED_HEADER = ["dilemma_idx", "basic_situation", "dilemma_situation", "action_type", "action",
                     "negative_consequence", "values_aggregated", "topic", "topic_group"]
VALUES_HEADER = ["", "value", "WVS", "MFT", "Virtue", "Emotion", "Maslow"]


def detail_row(idx, kind, action, names, wvs, mft, virtue, emotion, maslow, situation=None):
    """One row of the per-action detail schema; list columns as Python literals (None -> bare nan)."""
    def lit(items):
        return "[" + ", ".join("nan" if x is None else repr(x) for x in items) + "]"
    return {
        "idx": idx, "basic_situation": "a neighbour's noisy dog.",
        "dilemma_situation": situation or f"Situation {idx}: the \"dog\" barks, all night,\nevery night. Should you act?",
        "action_type": kind, "action": action, "negative_consequence": "Something goes wrong.",
        "parties_direct": "['You']", "parties_indirect": "['Neighbour']", "values_direct": "['Calm']",
        "values_indirect": "['Peace']", "reason_direct": "[\"It's quiet.\"]", "reason_indirect": "['Rest']",
        "model_resp_gpt35_clean": "to_do", "model_resp_gpt4_clean": "not_to_do",
        "values_names": lit(names), "values_types": lit(["direct"] * len(names)), "wvs": lit(wvs), "mft": lit(mft),
        "virtue": lit(virtue), "emotion": lit(emotion), "maslow": lit(maslow),
        "background": "live next to a dog owner", "topic": "7", "topic_group": "daily_life",
    }


DETAIL_ROWS = [
    detail_row("7", "to_do", "Talk to the neighbour", ["honesty", "courage"], [None, None],
               ["Fairness", None], ["Truthfulness", "Courage"], ["trust", "anticipation"], ["self-esteem", None]),
    detail_row("7", "not_to_do", "Put up with it", ["patience", "peace"], [None, "Survival"],
               [None, "Care"], ["Patience", None], ["trust", None], ["self-actualization", "safety"]),
    detail_row("9", "not_to_do", "Keep the secret", ["loyalty"], ["Traditional"], ["Loyalty"], [None], ["trust"],
               ["love and belonging"]),
    detail_row("9", "to_do", "Tell the truth", ["honesty", "justice"], [None, "Secular-rational"],
               ["Fairness", "Fairness"], ["Truthfulness", "Righteous Indignation"], ["trust", "anger"],
               ["self-esteem", "self-esteem"]),
]


def write_csv(path: Path, header: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def load(**options):
    return DilemmasTask(options).load()


def test_detail_file_loads_with_nan_entries_and_extra_columns(tmp_path):
    path = write_csv(tmp_path / "detail.csv", DETAIL_HEADER, DETAIL_ROWS)
    samples, info = load(data=str(path))
    assert [s.id for s in samples] == ["7", "9"]
    assert samples[0].input.startswith('Situation 7: the "dog" barks, all night,\nevery night.')
    todo = samples[0].metadata["actions"]["to_do"]
    assert todo["action"] == "Talk to the neighbour" and todo["values"] == ["honesty", "courage"]
    assert todo["labels"] == {"wvs": [], "mft": ["Fairness"], "virtue": ["Truthfulness", "Courage"],
                              "emotion": ["trust", "anticipation"], "maslow": ["self-esteem"]}
    # not_to_do listed first in the file for dilemma 9: rows are grouped by idx and action_type
    assert samples[1].metadata["actions"]["to_do"]["action"] == "Tell the truth"
    assert samples[1].metadata["actions"]["not_to_do"]["labels"]["wvs"] == ["Traditional"]
    assert info.source == str(path) and len(info.content_hash) == 64 and info.n_samples == 2


def test_aggregated_file_uses_sibling_values_table_and_counts_unmapped(tmp_path):
    write_csv(tmp_path / "values.csv", VALUES_HEADER, [
        {"": 0, "value": "Honesty", "WVS": "", "MFT": "Fairness", "Virtue": "Truthfulness", "Emotion": "trust",
         "Maslow": "self-esteem"},
        {"": 1, "value": "comfort", "WVS": "Survival", "MFT": "", "Virtue": "", "Emotion": "joy", "Maslow": "physiological"},
    ])
    path = write_csv(tmp_path / "agg.csv", AGGREGATED_HEADER, [
        {"dilemma_idx": "3", "basic_situation": "b", "dilemma_situation": "Should you?", "action_type": "to_do",
         "action": "Do it", "negative_consequence": "", "values_aggregated": "['honesty', 'Honesty']", "topic": "1",
         "topic_group": "x"},
        {"dilemma_idx": "3", "basic_situation": "b", "dilemma_situation": "Should you?", "action_type": "not_to_do",
         "action": "Don't", "negative_consequence": "", "values_aggregated": "['comfort', 'whimsy']", "topic": "1",
         "topic_group": "x"},
    ])
    samples, _ = load(data=str(path))
    actions = samples[0].metadata["actions"]
    assert actions["to_do"]["labels"]["mft"] == ["Fairness", "Fairness"]  # repeated values count twice
    assert actions["to_do"]["labels"]["wvs"] == []
    assert actions["not_to_do"]["labels"] == {"wvs": ["Survival"], "mft": [], "virtue": [], "emotion": ["joy"],
                                               "maslow": ["physiological"]}
    assert actions["not_to_do"]["unmapped"] == ["whimsy"]


def test_bundled_sample_loads_and_covers_all_theories():
    samples, info = load()
    assert len(samples) == 15 and info.source.startswith("bundled:")
    seen = {key: set() for key in ("wvs", "mft", "virtue", "emotion", "maslow")}
    for s in samples:
        for action in s.metadata["actions"].values():
            for key, labels in action["labels"].items():
                seen[key].update(labels)
    assert all(seen.values())
    assert seen["mft"] == {"Care", "Fairness", "Loyalty", "Authority", "Purity"}


def test_hub_id_loads_both_configs(monkeypatch):
    calls = []

    def fake_load_hub(dataset_id, *, config=None, split="train", revision=None):
        calls.append((dataset_id, config, split, revision))
        if config == "Values":
            return [{"Unnamed: 0": 0, "value": "care", "WVS": None, "MFT": "Care", "Virtue": None, "Emotion": "love",
                     "Maslow": "love and belonging"}]
        return [
            {"dilemma_idx": 1, "dilemma_situation": "S?", "action_type": "to_do", "action": "A",
             "values_aggregated": "['care']"},
            {"dilemma_idx": 1, "dilemma_situation": "S?", "action_type": "not_to_do", "action": "B",
             "values_aggregated": ["care", "care"]},
        ]

    monkeypatch.setattr(dilemmas_task, "load_hub", fake_load_hub)
    samples, info = load(data="kellycyy/daily_dilemmas", revision="abc")
    assert calls == [("kellycyy/daily_dilemmas", "Dilemmas_with_values_aggregated", "test", "abc"),
                     ("kellycyy/daily_dilemmas", "Values", "test", "abc")]
    assert samples[0].metadata["actions"]["not_to_do"]["labels"]["mft"] == ["Care", "Care"]
    assert info.source == "hf:kellycyy/daily_dilemmas" and info.revision == "abc"


@pytest.mark.parametrize("row_index, field, value, message", [
    (2, "mft", "['Loyalty', 'Care']", "row 4, field 'mft': 2 entries but values_names has 1"),
    (0, "values_names", "['honesty', 'courage'", "row 2, field 'values_names': not a Python list literal"),
    (1, "wvs", "__import__('os').system('echo pwned')", "row 3, field 'wvs': not a Python list literal"),
    (1, "emotion", "[1, 2]", "row 3, field 'emotion': list entries must be strings"),
    (3, "action_type", "maybe", "row 5, field 'action_type': expected to_do or not_to_do, got 'maybe'"),
    (3, "action_type", "not_to_do", "row 5, field 'action_type': dilemma 9 already has a not_to_do action (row 4)"),
    (0, "action", " ", "row 2, field 'action': missing or empty"),
    (2, "idx", "", "row 4, field 'idx': missing or empty"),
])
def test_malformed_detail_file_names_file_row_and_field(tmp_path, row_index, field, value, message):
    rows = [dict(r) for r in DETAIL_ROWS]
    rows[row_index][field] = value
    path = write_csv(tmp_path / "bad.csv", DETAIL_HEADER, rows)
    with pytest.raises(UserError) as err:
        load(data=str(path))
    assert f"{path}: {message}" in str(err.value)


def test_dilemma_missing_an_action_is_rejected(tmp_path):
    path = write_csv(tmp_path / "bad.csv", DETAIL_HEADER, DETAIL_ROWS[:3])
    with pytest.raises(UserError, match=r"bad.csv: row 4, field 'action_type': dilemma 9 has no to_do action"):
        load(data=str(path))


def test_missing_columns_and_values_table_problems(tmp_path):
    path = write_csv(tmp_path / "cols.csv", ["idx", "action"], [{"idx": "1", "action": "x"}])
    with pytest.raises(UserError, match="missing column values_names .* or values_aggregated"):
        load(data=str(path))
    no_theory = [h for h in DETAIL_HEADER if h != "maslow"]
    path = write_csv(tmp_path / "nomaslow.csv", no_theory, [{k: r[k] for k in no_theory} for r in DETAIL_ROWS])
    with pytest.raises(UserError, match=r"nomaslow.csv: missing column\(s\) maslow"):
        load(data=str(path))
    (tmp_path / "sub").mkdir()
    agg = write_csv(tmp_path / "sub" / "agg.csv", AGGREGATED_HEADER, [
        {"dilemma_idx": "1", "dilemma_situation": "S?", "action_type": kind, "action": "A", "values_aggregated": "['x']"}
        for kind in ("to_do", "not_to_do")])
    with pytest.raises(UserError, match="aggregated format needs a values table; pass -T values="):
        load(data=str(agg))
    values = write_csv(tmp_path / "v.csv", VALUES_HEADER, [
        {"": 0, "value": "x", "MFT": "Care"}, {"": 1, "value": " X ", "MFT": "Loyalty"}])
    with pytest.raises(UserError, match=r"v.csv: row 3, field 'value': duplicate value 'x'"):
        load(data=str(agg), values=str(values))
    short = write_csv(tmp_path / "short.csv", ["value", "WVS", "MFT", "Virtue", "Emotion"], [{"value": "x"}])
    with pytest.raises(UserError, match=r"short.csv: missing column\(s\) Maslow"):
        load(data=str(agg), values=str(short))
    detail = write_csv(tmp_path / "detail.csv", DETAIL_HEADER, DETAIL_ROWS)
    with pytest.raises(UserError, match="carries its own theory columns"):
        load(data=str(detail), values=str(values))
    with pytest.raises(UserError, match="nope.csv: file not found"):
        load(data=str(tmp_path / "nope.csv"))


def test_parse_list_accepts_lists_and_rejects_non_lists():
    assert parse_list("f", 2, "x", "[nan, ' Care ', '']") == [None, "Care", None]
    assert parse_list("f", 2, "x", ("a", None)) == ["a", None]
    with pytest.raises(UserError, match="f: row 2, field 'x': expected a list, got str"):
        parse_list("f", 2, "x", "'honesty'")
    with pytest.raises(UserError, match="expected a list, got NoneType"):
        parse_list("f", 2, "x", None)


@pytest.mark.parametrize("text, expected", [
    ("Action 1", 1), ("Action 2", 2), ("  action 2.", 2), ("**Action 1**", 1), ('"Action 2"', 2),
    ("Answer: Action 1", 1), ("Final answer - action 2", 2), ("Action1", 1), ("Action 2: Put up with it", 2),
    ("Action 2\nAction 2", 2), ("(Action 1)", 1),
    ("Action 12", None), ("Action 3", None), ("Action 1 or Action 2", None), ("I choose Action 1", None),
    ("1", None), ("Action one", None), ("", None), (None, None), ("Actions 1", None), ("Action 2b", None),
])
def test_parse_choice(text, expected):
    assert parse_choice(text) == expected


def test_prompt_lists_actions_in_both_orders_and_treats_data_as_text(tmp_path):
    situation = "Should you {action_1} or {dilemma}? {0} {{x}} %(s)s"
    rows = [detail_row("1", "to_do", "Do {action_2}", ["honesty"], [None], [None], [None], [None], [None], situation),
            detail_row("1", "not_to_do", "Skip it", ["honesty"], [None], [None], [None], [None], [None], situation)]
    path = write_csv(tmp_path / "d.csv", DETAIL_HEADER, rows)
    task = DilemmasTask({"data": str(path), "swap": True, "system_prompt": "Be brief.", "steer": "honesty"})
    sample = task.load()[0][0]
    original, swapped = task.messages(sample, "choice"), task.messages(sample, "choice_swapped")
    assert original[0].role == "system" and original[0].content.startswith("Be brief.\n\n")
    assert "honesty" in original[0].content
    user = original[1].content
    assert situation in user and "{{x}}" in user
    assert "Action 1: Do {action_2}\nAction 2: Skip it" in user
    assert "Action 1: Skip it\nAction 2: Do {action_2}" in swapped[1].content
    assert len(DilemmasTask({"data": str(path)}).messages(sample, "choice")) == 1  # no system prompt by default


def test_template_file_is_used_and_validated(tmp_path):
    path = write_csv(tmp_path / "d.csv", DETAIL_HEADER, DETAIL_ROWS)
    template = tmp_path / "t.txt"
    template.write_text("Dilemma: {dilemma}\nAnswer 'Action 1' (first) or 'Action 2' (second).")
    task = DilemmasTask({"data": str(path), "template_file": str(template)})
    sample = task.load()[0][0]
    assert task.messages(sample, "choice")[0].content == f"Dilemma: {sample.input}\nAnswer 'Action 1' (first) or 'Action 2' (second)."
    with pytest.raises(UserError, match=r"t.txt: swap=true needs a template that lists \{action_1\} and \{action_2\}"):
        DilemmasTask({"data": str(path), "template_file": str(template), "swap": True}).load()
    template.write_text("{dilemma} {situation}")
    with pytest.raises(UserError, match=r"t.txt: unknown placeholder\(s\) \{situation\}"):
        DilemmasTask({"data": str(path), "template_file": str(template)}).load()
    with pytest.raises(UserError, match="missing.txt: cannot read template file"):
        DilemmasTask({"data": str(path), "template_file": str(tmp_path / "missing.txt")}).load()
