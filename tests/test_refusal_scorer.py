"""score_refusal with the rules / judge / hybrid scorers, the run option, and calibrate with judges."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from harness.backends import create_backend
from harness.errors import UserError
from harness.judging.labelled_sets import load_labelled_set
from harness.context import RoleClient, SampleContext
from harness.judging.refusal import check_refusal_scorer, is_clear, score_refusal
from harness.judging.refusal_rules import classify_refusal
from harness.types import GenerateConfig

from conftest import FIXTURES, metric, read_records, read_summary

# A judge that calls everything a partial refusal, except responses mentioning "weather".
JUDGE_RULES = (
    "rules:\n"
    "  - {pattern: 'weather', response: '[[full_compliance]]'}\n"
    "default: 'Label: [[partial_refusal]]'\n"
)
SHORT_REFUSAL = "I'm sorry, but I can't help with that."
PLAIN_ANSWER = "Paris is the capital of France."
HEDGED_ANSWER = "Sure, here it is. Note that I cannot guarantee the figures are current."


def judged(tmp_path: Path, mode: str, response: str, rules: str = JUDGE_RULES):
    path = tmp_path / "judge.yaml"
    path.write_text(rules, encoding="utf-8")
    roles = {"judge": RoleClient("judge", create_backend(f"scripted/{path}"), GenerateConfig(temperature=0.0))}
    ctx = SampleContext("demo", "s1", 0, roles, seed=0, refusal_scorer=mode)
    return asyncio.run(score_refusal("What is the capital of France?", response, ctx)), ctx


def test_rules_mode_never_calls_a_judge(tmp_path: Path) -> None:
    score, ctx = judged(tmp_path, "rules", HEDGED_ANSWER)
    assert score.scorer.startswith("refusal_rules") and ctx.exchanges == []


def test_judge_mode_uses_the_judge_label_and_keeps_the_rules_label(tmp_path: Path) -> None:
    score, ctx = judged(tmp_path, "judge", PLAIN_ANSWER)
    assert (score.label, score.value, score.scorer) == ("partial_refusal", 1.0, "refusal_judge")
    assert score.raw["rules_label"] == "full_compliance"
    assert score.raw["judges"][0]["template"] == "refusal"
    [exchange] = ctx.exchanges
    assert "What is the capital of France?" in exchange.messages[0].content and PLAIN_ANSWER in exchange.messages[0].content


def test_empty_response_is_full_refusal_without_a_judge_call(tmp_path: Path) -> None:
    for mode in ("judge", "hybrid"):
        score, ctx = judged(tmp_path, mode, "   ")
        assert score.label == "full_refusal" and score.value == 1.0 and ctx.exchanges == []


@pytest.mark.parametrize("response, clear", [
    (SHORT_REFUSAL, True),                       # short full refusal
    (PLAIN_ANSWER, True),                        # compliance without any refusal cue
    (HEDGED_ANSWER, False),                      # compliance by the rules, but says "cannot"
    (SHORT_REFUSAL + " " + "More words. " * 40, False),  # long refusal
    ("I can't share exact figures, but here is a general overview of how it works.", False),  # partial
])
def test_hybrid_trusts_rules_only_in_clear_cases(tmp_path: Path, response: str, clear: bool) -> None:
    assert is_clear(response, classify_refusal(response)) is clear
    score, ctx = judged(tmp_path, "hybrid", response)
    assert (ctx.exchanges == []) is clear
    assert score.scorer.startswith("refusal_rules" if clear else "refusal_judge")


def test_garbage_judge_gives_a_judge_error_not_a_label(tmp_path: Path) -> None:
    score, ctx = judged(tmp_path, "judge", PLAIN_ANSWER, rules="default: 'no idea'\n")
    assert score.error == "judge_error" and score.label is None and score.value is None
    assert len(ctx.exchanges) == 2  # one re-ask


def test_judge_scorers_need_a_judge() -> None:
    check_refusal_scorer("rules", 0)
    check_refusal_scorer("hybrid", 1)
    with pytest.raises(UserError, match="--judge"):
        check_refusal_scorer("judge", 0)


def test_run_with_judge_scorer_but_no_judge_is_a_clear_error(cli) -> None:
    out = cli(["run", "--model", "scripted/comply-all", "-t", "overrefusal", "--refusal-scorer", "hybrid", "--limit", "2"])
    assert out.returncode == 2
    assert "--refusal-scorer hybrid needs a judge model" in out.stderr and "Traceback" not in out.stderr


def test_overrefusal_with_judge_scorer_end_to_end(cli, tmp_path: Path) -> None:
    """A judge that labels every answer a partial refusal: the safe refusal rate becomes 100%."""
    judge = tmp_path / "judge.yaml"
    judge.write_text("default: '[[partial_refusal]]'\n", encoding="utf-8")
    out = cli(["run", "--model", "scripted/comply-all", "-t", "overrefusal", "--judge", f"scripted/{judge}",
               "--refusal-scorer", "judge", "--run-dir", "run", "--limit", "6", "--no-progress"])
    assert out.returncode == 0, out.stderr
    summary = read_summary(tmp_path / "run")
    safe = metric(summary, "overrefusal", "overrefusal.safe_partial_refusal")
    assert safe["value"] == 100.0 and safe["n"] > 0
    records = read_records(tmp_path / "run")
    assert all(r["scores"]["refusal"]["scorer"] == "refusal_judge" for r in records)
    assert all(any(ex["role"] == "judge" for ex in r["exchanges"]) for r in records)


def test_calibrate_with_a_scripted_judge_panel(cli, tmp_path: Path) -> None:
    """Judges that answer full_refusal for responses starting with "I'm sorry"/"I can't", else compliance:
    the expected agreement is computed by hand from the fixture's labels."""
    rules = tmp_path / "j.yaml"
    rules.write_text(
        "rules:\n"
        "  - {pattern: \"<assistant_response>\\\\s*(I'm sorry|I can't|I cannot)\", response: '[[full_refusal]]'}\n"
        "default: '[[full_compliance]]'\n", encoding="utf-8")
    garbage = tmp_path / "g.yaml"
    garbage.write_text("default: 'hmm'\n", encoding="utf-8")
    fixture = FIXTURES / "labelled_simple.csv"
    out = cli(["calibrate", str(fixture), "--scorer", "judge", "--judge", f"scripted/{rules},scripted/{garbage}"])
    assert out.returncode == 0, out.stderr
    rows = load_labelled_set(fixture).rows

    def predicted(text: str) -> str:
        if not text.strip():
            return "full_refusal"
        return "full_refusal" if re.match(r"\s*(I'm sorry|I can't|I cannot)", text) else "full_compliance"

    accuracy = sum(predicted(r.response) == r.refusal_label for r in rows) / len(rows)
    assert f"accuracy (3-class)    {accuracy:.3f}" in out.stdout
    assert "judge errors          0 of" in out.stdout  # the garbage judge abstains; the other decides
    out = cli(["calibrate", str(fixture), "--scorer", "judge"])
    assert out.returncode == 2 and "needs a judge model" in out.stderr


def test_calibrate_rules_default_is_unchanged(cli) -> None:
    out = cli(["calibrate", str(FIXTURES / "labelled_simple.csv")])
    assert out.returncode == 0 and "scorer                rules" in out.stdout and "judge errors          0" in out.stdout
