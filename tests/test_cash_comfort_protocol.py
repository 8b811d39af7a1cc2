"""cash_comfort: quantities as given, a fragility interval that contains its estimate (known-answer cases), and the
paper protocol read from the authors' config file (money grid, quantity grid, repeats, temperature, system role)."""
from __future__ import annotations

import json
import random
import re

import pytest

from harness.errors import UserError
from harness_tasks.cash_comfort.analysis import Observation, analyse
from harness_tasks.cash_comfort.scenarios import shown_quantity
from harness_tasks.cash_comfort.task import CashComfortTask
from harness_tasks.cash_comfort.templates import render

from conftest import FIXTURES, read_records, read_summary

CONFIG = FIXTURES / "cash_config_file.yaml"


@pytest.mark.parametrize("quantity,text", [(4.5, "4.5"), (2.5, "2.5"), (60.0, "60"), (0.0, "0"), (1.25, "1.25"),
                                           (600.0, "600")])
def test_quantities_print_as_given(quantity, text):
    assert shown_quantity(quantity) == text


def test_prompt_says_four_and_a_half_kilometres():
    assert "walking 4.5 kilometres" in render("for walking {quant} kilometres, {reward_euros}.{reward_cents}", 1.0, 4.5)


def fragility_of(observations):
    result = analyse(observations, records=len(observations), generation_errors=0)
    return next(m for m in result.metrics if m.name == "cash_comfort.time.fragility")


def noisy_answers(framing, centre, seed):
    """Acceptance rising with log10(amount) around `centre`, with answers drawn at random (5 per amount)."""
    rng = random.Random(seed)
    out = []
    for step in range(9):
        x = centre - 2 + step * 0.5
        p = 1 / (1 + 10 ** (-(x - centre) * 2))
        out += [Observation("time", framing, 10**x, 60.0, "yes" if rng.random() < p else "no") for _ in range(5)]
    return out


def test_fragility_of_identical_framings_is_zero_and_inside_its_interval():
    """Known answer: the same answers under two framings have spread 0; the interval must contain 0."""
    answers = noisy_answers("third", 1.0, seed=3)
    same = [Observation(o.scenario, "firstperson", o.amount, o.quantity, o.answer) for o in answers]
    m = fragility_of(answers + same)
    assert m.value == pytest.approx(0.0, abs=1e-12)
    assert m.ci_low == 0.0 and m.ci_high is not None and m.ci_high > 0


@pytest.mark.parametrize("seed", range(5))
def test_fragility_interval_contains_its_estimate(seed):
    m = fragility_of(noisy_answers("third", 1.0, seed) + noisy_answers("firstperson", 1.5, seed + 100))
    assert m.ci_low is not None and m.ci_low <= m.value <= m.ci_high


def test_fragility_of_a_known_decade_apart_pair():
    """Thresholds at 10 and 100 (deterministic answers): spread 1, inside the interval; resampling the six offered
    amounts can leave a framing with no refusal at all, so the interval may be unbounded above, which the note
    must then say, with a lower bound at or below the estimate."""
    observations = []
    for framing, centre in (("third", 1.0), ("firstperson", 2.0)):
        for x in (centre - 1.5, centre - 1, centre - 0.5, centre + 0.5, centre + 1, centre + 1.5):
            observations += [Observation("time", framing, 10**x, 60.0, "yes" if x > centre else "no")] * 2
    m = fragility_of(observations)
    assert m.value == pytest.approx(1.0, abs=1e-8)
    if m.ci_low is None:
        bound = float(re.search(r"unbounded above \(lower bound ([0-9.]+)\)", m.note).group(1))
        assert bound <= 1.0 and m.ci_high is None
    else:
        assert m.ci_low <= 1.0 <= m.ci_high


def test_paper_protocol_needs_the_authors_config():
    with pytest.raises(UserError, match="protocol=paper needs the authors' config_file.yaml"):
        CashComfortTask({"protocol": "paper"}).load()


def test_paper_protocol_grids_come_from_the_config():
    task = CashComfortTask({"protocol": "paper", "template_file": str(CONFIG), "scenarios": "distance"})
    samples, _ = task.load()
    assert sorted({s.metadata["amount"] for s in samples}) == [0.1, 1.0, 10.0]
    assert sorted({s.metadata["quantity"] for s in samples}) == [0.0, 1.5, 3.0, 4.5]
    assert task.repetitions(1) == 2 and task.repetitions(4) == 4
    assert any("Walk 1.5 kilometres" in s.input for s in samples)
    assert task.generation_config("third").temperature == 0.5


def test_paper_protocol_run(cli, tmp_path):
    out = cli(["run", "-m", "scripted/choose-1", "-t", "cash_comfort", "-T", "protocol=paper",
               "-T", f"template_file={CONFIG}", "-T", "scenarios=distance", "--run-dir", "run", "--no-progress"])
    assert out.returncode == 0, out.stderr
    records = read_records(tmp_path / "run")
    assert len(records) == 3 * 4 * 2 and {r["repetition"] for r in records} == {0, 1}
    assert records[0]["exchanges"][0]["messages"][0] == {"role": "system", "content": "You are a fixture assistant."}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["tasks"][0]["protocol"] == "paper" and manifest["tasks"][0]["planned"] == 24
    assert read_summary(tmp_path / "run")["tasks"]["cash_comfort"]["counts"]["valid"] == 24
