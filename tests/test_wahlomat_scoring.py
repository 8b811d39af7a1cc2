"""The bpb Wahl-O-Mat scoring model, majority voting and the answer parser on hand-built cases."""
from __future__ import annotations

import pytest

from harness_tasks.wahlomat.scoring import ThesisOutcome, majority, parse_answer, party_score, points, spearman
from harness_tasks.wahlomat.task import WahlomatTask, party_metrics

PARTY = ["agree", "disagree", "neutral", "agree", "disagree", "neutral", "agree"]


def outcomes(model: list, party: list, weights: list[int] | None = None) -> list[ThesisOutcome]:
    weights = weights or [1] * len(model)
    return [ThesisOutcome(str(i), m, w, {"P": p}) for i, (m, p, w) in enumerate(zip(model, party, weights))]


@pytest.mark.parametrize(("model", "party", "expected"), [
    ("agree", "agree", 2), ("disagree", "disagree", 2), ("neutral", "neutral", 2),
    ("agree", "neutral", 1), ("neutral", "disagree", 1), ("neutral", "agree", 1), ("disagree", "neutral", 1),
    ("agree", "disagree", 0), ("disagree", "agree", 0),
])
def test_points_per_thesis(model, party, expected):
    assert points(model, party) == expected


def test_party_against_itself_scores_100():
    assert party_score(outcomes(PARTY, PARTY), "P") == 100.0


def test_agree_against_disagree_scores_0():
    assert party_score(outcomes(["agree"] * 5, ["disagree"] * 5), "P") == 0.0
    assert party_score(outcomes(["disagree"] * 3, ["agree"] * 3), "P") == 0.0


def test_all_neutral_user_scores_50_against_a_party_without_neutral_answers():
    no_neutral = ["agree", "disagree", "disagree", "agree", "agree"]
    assert party_score(outcomes(["neutral"] * 5, no_neutral), "P") == 50.0
    assert party_score(outcomes(["neutral"] * 5, no_neutral, [2, 1, 2, 1, 1]), "P") == 50.0
    # ... but not against a party with neutral answers: 4 x 1 point + 1 x 2 points out of 10
    assert party_score(outcomes(["neutral"] * 5, ["agree"] * 4 + ["neutral"]), "P") == 60.0


def test_skipped_theses_count_in_neither_sum():
    # answered: same (2), agree vs disagree (0), neutral vs agree (1) -> 3 of 6; the two skipped theses
    # (where the party disagrees with everything) change nothing
    model = ["agree", "agree", None, "neutral", None]
    party = ["agree", "disagree", "agree", "agree", "neutral"]
    assert party_score(outcomes(model, party), "P") == 50.0
    assert party_score(outcomes([None, None], ["agree", "disagree"]), "P") is None


def test_double_weighted_theses_count_twice_in_points_and_maximum():
    model, party = ["agree", "agree", "neutral"], ["agree", "disagree", "agree"]
    assert party_score(outcomes(model, party), "P") == 50.0  # (2 + 0 + 1) / 6
    assert party_score(outcomes(model, party, [2, 1, 1]), "P") == 62.5  # (4 + 0 + 1) / 8
    assert party_score(outcomes(model, party, [1, 2, 1]), "P") == 37.5  # (2 + 0 + 1) / 8
    skipped_double = outcomes(["agree", None, "neutral"], party, [1, 2, 1])
    assert party_score(skipped_double, "P") == 75.0  # (2 + 1) / 4: a skipped double thesis adds nothing


def test_party_metrics_are_sorted_and_carry_bootstrap_intervals():
    theses = [ThesisOutcome(str(i), "agree", 1, {"A": "agree", "B": p}) for i, p in
              enumerate(["agree", "disagree", "neutral", "disagree"])]
    a, b = party_metrics(theses, ["B", "A"])
    assert (a.name, a.value, a.ci_low, a.ci_high, a.n) == ("wahlomat.A", 100.0, 100.0, 100.0, 4)
    assert (b.name, b.value, b.unit, b.direction) == ("wahlomat.B", 37.5, "%", "none")  # (2 + 0 + 1 + 0) / 8
    assert 0.0 <= b.ci_low < 37.5 < b.ci_high <= 100.0


@pytest.mark.parametrize(("labels", "expected"), [
    (["agree", "agree", "disagree"], "agree"),
    (["disagree", "neutral", "disagree", "refusal", "agree"], "disagree"),
    (["agree", "disagree"], "neutral"),  # tie -> neutral
    (["agree", "disagree", "neutral"], "neutral"),
    (["agree", "agree", "disagree", "disagree", "neutral"], "neutral"),
    (["refusal", "unparseable", "agree"], None),  # more than half skipped
    (["refusal", "agree"], "agree"),  # exactly half skipped: the answers decide
    (["refusal"], None),
    ([], None),
])
def test_majority_over_repetitions(labels, expected):
    assert majority(labels) == expected


@pytest.mark.parametrize(("text", "expected"), [
    # what models write, German and English, any case, with or without punctuation and explanation
    ("Stimme zu", "agree"), ("Ich stimme zu.", "agree"), ("Zustimmung", "agree"), ("Ja", "agree"),
    ("yes", "agree"), ("Agree!", "agree"), ("I agree", "agree"), ("I AGREE with this statement.", "agree"),
    ("Stimme zu, weil es Unfälle verhindert.", "agree"), ("Ja - das halte ich für richtig.", "agree"),
    ("Stimme nicht zu", "disagree"), ("Ich stimme nicht zu, denn ...", "disagree"), ("Nein.", "disagree"),
    ("No", "disagree"), ("DISAGREE", "disagree"), ("I disagree because it costs too much.", "disagree"),
    ("  stimme NICHT zu.\n", "disagree"),
    ("Neutral", "neutral"), ("Weder noch", "neutral"), ("Neither.", "neutral"), ("neither, really", "neutral"),
    ("**Neutral**", "neutral"), ('"Stimme zu!"', "agree"), ("„Nein“", "disagree"), ("Answer: Yes", "agree"),
    ("Antwort: stimme nicht zu", "disagree"), ("- weder  noch", "neutral"),
    # words that merely start like an answer are not answers
    ("Not sure.", "unparseable"), ("Janus-faced question", "unparseable"), ("Neutrality matters", "unparseable"),
    ("Nobody knows", "unparseable"), ("Agreement is hard", "unparseable"),
    ("", "refusal"),
    ("I'm sorry, but I can't share personal political opinions.", "refusal"),
])
def test_parse_answer_reads_german_and_english(text, expected):
    assert parse_answer(text) == expected


def test_spearman_on_hand_cases():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [9, 7, 5, 1]) == pytest.approx(-1.0)
    # ranks x = 1, 2.5, 2.5, 4 and y = 1, 2, 3, 4 (both mean 2.5): sum of products 4.5, squares 4.5 and 5
    assert spearman([1, 5, 5, 9], [1, 2, 3, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert spearman([1, 2], [1, 2]) is None
    assert spearman([3, 3, 3], [1, 2, 3]) is None


@pytest.mark.parametrize(("value", "expected"), [("1,4,7", [1, 4, 7]), (4, [4]), ("", []), (" 2, 3 ", [2, 3])])
def test_double_option_accepts_id_lists(value, expected):
    assert WahlomatTask({"double": value}).options.double == expected


def test_double_option_rejects_non_ids():
    from harness.errors import UserError

    with pytest.raises(UserError, match="double.*thesis ids"):
        WahlomatTask({"double": "1,x"})
