"""Agreement of refusal classifiers with human labels."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.calibrate import agreement, format_report
from harness.judging.labelled_sets import load_labelled_set

FIXTURES = Path(__file__).parent / "fixtures"
C, R, P = "full_compliance", "full_refusal", "partial_refusal"


def test_kappa_matches_hand_computation() -> None:
    human = [C, C, R, R, P, C]
    predicted = [C, R, R, R, P, C]
    report = agreement(human, predicted)
    # Observed agreement 5/6. Marginals: human C3 R2 P1, predicted C2 R3 P1.
    # Chance agreement (3*2 + 2*3 + 1*1) / 36 = 13/36; kappa = (30/36 - 13/36) / (23/36) = 17/23.
    assert report.n == 6
    assert report.accuracy == pytest.approx(5 / 6)
    assert report.kappa == pytest.approx(17 / 23)
    # Binary (refusal = R or P): human 3 yes / 3 no, predicted 4 yes / 2 no, observed 5/6.
    # Chance (3*4 + 3*2) / 36 = 1/2; kappa = (5/6 - 1/2) / (1/2) = 2/3.
    assert report.binary_agreement == pytest.approx(5 / 6)
    assert report.binary_kappa == pytest.approx(2 / 3)
    compliance = report.per_class[C]
    assert (compliance.precision, compliance.recall, compliance.support) == (1.0, pytest.approx(2 / 3), 3)
    # One-vs-rest for C: human 3/3, predicted 2/4, observed 5/6, chance 1/2 -> kappa 2/3.
    assert compliance.kappa == pytest.approx(2 / 3)
    assert report.per_class[R].precision == pytest.approx(2 / 3)
    assert report.confusion[C] == {C: 2, R: 1, P: 0}


def test_perfect_agreement_has_kappa_one() -> None:
    labels = [C, R, P, C, R]
    report = agreement(labels, labels)
    assert report.accuracy == report.binary_agreement == 1.0
    assert report.kappa == report.binary_kappa == 1.0


def test_numbered_labels_are_accepted_and_mismatched_lengths_rejected() -> None:
    assert agreement(["1_full_compliance", "2_full_refusal"], [C, R]).accuracy == 1.0
    with pytest.raises(ValueError):
        agreement([C], [C, R])


def test_loads_xstest_completions_format() -> None:
    rows = load_labelled_set(FIXTURES / "xstest_completions_labelled.csv").rows
    assert len(rows) >= 30
    assert {r.refusal_label for r in rows} == {C, R, P}
    first = rows[0]
    assert first.id == "fx-1" and first.categories == {"type": "homonyms"} and first.refusal_label == C
    assert any(r.response == "" and r.refusal_label == R for r in rows)


def test_loads_simple_format_with_plain_and_numbered_labels() -> None:
    rows = load_labelled_set(FIXTURES / "labelled_simple.csv").rows
    assert [r.refusal_label for r in rows] == [C, R, P, C, R, P]
    assert rows[0].id is None


def test_format_report_mentions_every_metric() -> None:
    text = format_report(agreement([C, R, P], [C, R, R]))
    for needle in ("accuracy", "binary agreement", "kappa", "precision", "confusion", P):
        assert needle in text


@pytest.mark.parametrize("name, expected", [
    ("bad_label.csv", ["bad_label.csv", "row 3", "'label'", "'refused'"]),
    ("bad_missing_column.csv", ["bad_missing_column.csv", "row 1", "'completion'"]),
    ("bad_encoding.csv", ["bad_encoding.csv", "row 2", "'prompt'", "UTF-8"]),
    ("bad_empty.csv", ["bad_empty.csv", "empty"]),
])
def test_bad_files_name_file_row_and_field(name: str, expected: list[str]) -> None:
    with pytest.raises(UserError) as info:
        load_labelled_set(FIXTURES / name)
    for needle in expected:
        assert needle in str(info.value)


def test_short_row_and_header_only_file(tmp_path: Path) -> None:
    short = tmp_path / "short.csv"
    short.write_text("prompt,completion,label\nHi,Hello,full_compliance\nHow?\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"short\.csv: row 3, field 'completion'"):
        load_labelled_set(short)
    header_only = tmp_path / "header.csv"
    header_only.write_text("prompt,completion,label\n", encoding="utf-8")
    with pytest.raises(UserError, match="no data rows"):
        load_labelled_set(header_only)


def test_calibrate_command_on_xstest_completions_format(cli) -> None:
    """The CLI prints 3-class accuracy, binary agreement and Cohen's kappa of the rule classifier."""
    import csv

    from harness.judging.refusal_rules import classify_refusal, is_refusal

    path = FIXTURES / "xstest_completions_labelled.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    human = [r["final_label"].split("_", 1)[1] for r in rows]
    rules = [classify_refusal(r["completion"]) for r in rows]
    accuracy = sum(h == p for h, p in zip(human, rules)) / len(rows)
    binary = sum(is_refusal(h) == is_refusal(p) for h, p in zip(human, rules)) / len(rows)
    out = cli(["calibrate", str(path)])
    assert out.returncode == 0, out.stderr
    assert f"accuracy (3-class)    {accuracy:.3f}" in out.stdout
    assert f"binary agreement      {binary:.3f}" in out.stdout
    # Cohen's kappa from its definition: (observed - chance) / (1 - chance), chance from the two marginals.
    chance = sum(human.count(c) * rules.count(c) for c in set(human) | set(rules)) / len(rows) ** 2
    assert f"Cohen's kappa         {(accuracy - chance) / (1 - chance):.3f} (3-class)" in out.stdout


def test_oversized_field_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("prompt,completion,label\np," + "x" * 200_000 + ",full_compliance\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"huge\.csv: row 2: malformed CSV \(field larger than field limit"):
        load_labelled_set(path)
