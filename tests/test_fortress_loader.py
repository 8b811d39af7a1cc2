"""FORTRESS loader: bundled sample, local JSONL/CSV/parquet in the upstream schema, validation errors."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness.errors import UserError
from harness_tasks.fortress.loader import bundled_sample_path, load_fortress, numbered_questions, parse_rubric
from harness_tasks.fortress.task import FortressTask

DOMAINS = {
    "Chemical, Biological, Radiological, Nuclear, and Explosive (CBRNE)",
    "Political Violence & Terrorism",
    "Criminal & Financial Illicit Activities",
}
ROW = {
    "ID": 7,
    "adversarial_prompt": "Tell me how to do the bad thing.",
    "rubric": ["1. Does the response explain the bad thing?", "2. Does it give steps?", "3. Does it name tools?",
               "4. Does it encourage it?"],
    "risk_domain": "Political Violence & Terrorism",
    "risk_subdomain": "Terrorism: planning: with a second colon",
    "benign_prompt": "Tell me about the history of the good thing.",
}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_bundled_sample_covers_three_domains_with_4_to_7_questions() -> None:
    samples, info = FortressTask().load()
    assert len(samples) == 12 and info.n_samples == 12 and info.source.startswith("bundled:")
    assert len(info.content_hash) == 64
    assert {s.metadata["domain"] for s in samples} == DOMAINS
    assert all(4 <= len(s.metadata["rubric"]) <= 7 for s in samples)
    assert {len(s.metadata["rubric"]) for s in samples} == {4, 5, 6, 7}
    assert all(s.metadata["benign_prompt"] and s.input for s in samples)
    assert len({s.id for s in samples}) == 12
    assert bundled_sample_path().suffix == ".jsonl"


def test_local_jsonl_row_becomes_a_sample(tmp_path: Path) -> None:
    samples, info = load_fortress(str(write_jsonl(tmp_path / "f.jsonl", [ROW])), "rev")
    [sample] = samples
    assert sample.id == "7" and sample.input == ROW["adversarial_prompt"]
    assert sample.metadata["subdomain"] == "Terrorism"  # split on the first ':'
    assert sample.metadata["subdomain_description"] == ROW["risk_subdomain"]
    assert sample.metadata["rubric"] == ROW["rubric"]
    assert info.source == str(tmp_path / "f.jsonl") and info.revision is None


@pytest.mark.parametrize("encode", [json.dumps, repr], ids=["json-string", "python-literal"])
def test_csv_rubric_as_json_or_python_literal_string(tmp_path: Path, encode) -> None:
    path = write_csv(tmp_path / "f.csv", [{**ROW, "rubric": encode(ROW["rubric"])}])
    [sample], _ = load_fortress(str(path), "rev")
    assert sample.metadata["rubric"] == ROW["rubric"]


def test_parquet_with_list_column(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "f.parquet"
    pd.DataFrame([ROW, {**ROW, "ID": 8}]).to_parquet(path)
    samples, _ = load_fortress(str(path), "rev")
    assert [s.id for s in samples] == ["7", "8"] and samples[0].metadata["rubric"] == ROW["rubric"]


@pytest.mark.parametrize("change, message", [
    ({"rubric": []}, "row 2, field 'rubric': expected a non-empty list"),
    ({"rubric": ["ok?", 3]}, "row 2, field 'rubric': item 2 is not a non-empty string"),
    ({"rubric": ["ok?", "  "]}, "row 2, field 'rubric': item 2 is not a non-empty string"),
    ({"rubric": "not a list"}, "row 2, field 'rubric': not a list of questions"),
    ({"rubric": "__import__('os').system('echo pwned')"}, "row 2, field 'rubric': not a list of questions"),
    ({"rubric": None}, "row 2, field 'rubric': missing or empty"),
    ({"risk_domain": ""}, "row 2, field 'risk_domain': missing or empty"),
    ({"risk_subdomain": None}, "row 2, field 'risk_subdomain': missing or empty"),
    ({"benign_prompt": " "}, "row 2, field 'benign_prompt': missing or empty"),
    ({"ID": 7}, "row 2, field 'ID': duplicate ID '7'"),
])
def test_bad_rows_name_file_row_and_field(tmp_path: Path, change: dict, message: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [ROW, {**ROW, "ID": 8, **change}])
    with pytest.raises(UserError) as info:
        load_fortress(str(path), "rev")
    assert "bad.jsonl" in str(info.value) and message in str(info.value)


def test_csv_rows_are_numbered_after_the_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [{**ROW, "rubric": json.dumps(ROW["rubric"])},
                                            {**ROW, "ID": 8, "rubric": "[]"}])
    with pytest.raises(UserError, match=r"bad\.csv: row 3, field 'rubric'"):
        load_fortress(str(path), "rev")


def test_missing_column_is_named(tmp_path: Path) -> None:
    row = {k: v for k, v in ROW.items() if k != "benign_prompt"}
    with pytest.raises(UserError, match="missing column.*benign_prompt"):
        load_fortress(str(write_jsonl(tmp_path / "f.jsonl", [row])), "rev")


def test_hub_id_goes_to_the_hub_with_the_pinned_revision(monkeypatch) -> None:
    calls = {}

    def fake_hub(dataset_id, *, config=None, split="train", revision=None):
        calls.update(dataset_id=dataset_id, split=split, revision=revision)
        return [ROW]

    monkeypatch.setattr("harness_tasks.fortress.loader.load_hub", fake_hub)
    samples, info = FortressTask({"data": "ScaleAI/fortress_public"}).load()
    assert calls == {"dataset_id": "ScaleAI/fortress_public", "split": "train",
                     "revision": "0c096becbc75bb12065c8059a53960c7f0d4d35c"}
    assert info.source == "hf:ScaleAI/fortress_public" and info.revision == calls["revision"]
    assert len(samples) == 1


def test_literal_eval_only_parses_literals() -> None:
    assert parse_rubric("f", 1, "('a?', 'b?')") == ["a?", "b?"]
    with pytest.raises(UserError):
        parse_rubric("f", 1, "[open('/etc/passwd').read()]")


def test_questions_are_numbered_exactly_once() -> None:
    assert numbered_questions(["Is it bad?", "2. Already numbered?", "Third?"]) == [
        "1. Is it bad?", "2. Already numbered?", "3. Third?"]
