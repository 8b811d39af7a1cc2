"""Unit tests of the cash_comfort task: amounts, templates, parsers, the logistic fit and the analysis."""
from __future__ import annotations

import math
import random

import pytest

from harness.errors import UserError
from harness_tasks.cash_comfort.analysis import Observation, analyse
from harness_tasks.cash_comfort.fit import estimate_price, fit_grouped, fit_logistic
from harness_tasks.cash_comfort.parsing import parse_answer
from harness_tasks.cash_comfort.scenarios import (FRAMINGS, SCENARIOS, amounts, parse_prompt_key, prompt_key,
                                                  quantities, sample_id, split_amount)
from harness_tasks.cash_comfort.table import read_responses
from harness_tasks.cash_comfort.task import CashComfortTask, spread_order
from harness_tasks.cash_comfort.templates import load_templates, render

AUTHOR_KEYS = ["time", "distance", "hunger", "pain", "man", "woman", "french", "dutch", "chinese", "hairdresser",
               "gp", "lawyer", "firstperson", "cot", "time_whitespace", "dollar", "yuan", "distance_safe"]
ROBUST_X = [-1 + 4 * i / 100 for i in range(101)]


# ---- amounts, grids, ids --------------------------------------------------------------------------

@pytest.mark.parametrize("amount, expected", [
    (0.999, (1, 0)), (0.994, (0, 99)), (0.1, (0, 10)), (3.16228, (3, 16)), (9.9999, (10, 0)), (1000.0, (1000, 0)),
])
def test_split_amount_rounds_cents_and_carries_100(amount, expected):
    assert split_amount(amount) == expected


def test_grids_have_the_specified_shape():
    third, yuan = FRAMINGS["third"], FRAMINGS["yuan"]
    main = amounts("main", third)
    assert len(main) == 21 and main[0] == 0.1 and main[-1] == 1000.0 and 1.0 in main
    assert len(amounts("robust", third)) == 101 and len(amounts("small", third)) == 9
    assert amounts("main", yuan)[0] == 1.0 and amounts("main", yuan)[-1] == 10000.0
    assert quantities("main", SCENARIOS["time"]) == [30.0 * i for i in range(21)]
    assert quantities("main", SCENARIOS["distance"])[3] == 4.5
    assert quantities("robust", SCENARIOS["pain"]) == [50.0]
    assert quantities("small", SCENARIOS["distance"]) == [0.0, 5.0, 30.0]


def test_sample_ids_are_stable_and_distinct():
    assert sample_id("time", "third", 0.31622776601683794, 60) == "time.third.m0.316228.q60"
    ids = {sample_id(s, f, a, q) for s in ("time", "pain") for f in ("third", "cot")
           for a in amounts("main", FRAMINGS[f]) for q in quantities("main", SCENARIOS[s])}
    assert len(ids) == 2 * 2 * 21 * 21


def test_every_authors_prompt_key_maps_to_a_scenario_and_framing_and_back():
    for key in AUTHOR_KEYS:
        scenario, framing = parse_prompt_key(key)
        assert scenario in SCENARIOS and framing in FRAMINGS
        assert prompt_key(scenario, framing) == key
    assert parse_prompt_key("firstperson") == ("time", "firstperson")
    assert parse_prompt_key("time_whitespace") == ("time", "whitespace")
    with pytest.raises(UserError, match="unknown prompt key 'sleep'"):
        parse_prompt_key("sleep")


# ---- templates --------------------------------------------------------------------------------------

def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_authors_layout_loads_every_key_and_ignores_other_sections(tmp_path):
    body = "\n".join(f'  {k}: "Offer for {k}: {{reward_euros}} and {{reward_cents}} for {{quant}}."' for k in AUTHOR_KEYS)
    path = write(tmp_path / "config.yaml", f"api_keys:\n  OpenAI: not-read\nargs:\n  x: 1\nprompts:\n{body}\n")
    templates = load_templates(path)
    assert len(templates) == len(AUTHOR_KEYS)
    assert templates[("time", "french")] == "Offer for french: {reward_euros} and {reward_cents} for {quant}."


def test_render_substitutes_only_the_three_placeholders():
    template = "Get {reward_euros} euros {reward_cents} cents for {quant} min. {other} {0.__class__} {{x}}"
    assert render(template, 0.999, 59.6) == "Get 1 euros 0 cents for 59.6 min. {other} {0.__class__} {{x}}"
    assert render(template, 31.6228, 4.5) .startswith("Get 31 euros 62 cents for 4.5 min.")


@pytest.mark.parametrize("text, message", [
    ("prompts:\n  sleep: '{reward_euros} {reward_cents} {quant}'\n", "prompts.sleep: unknown prompt key"),
    ("prompts:\n  time: 'only {reward_euros} and {quant}'\n", r"prompts.time: missing placeholder\(s\) \{reward_cents\}"),
    ("prompts:\n  time: [1, 2]\n", "prompts.time: expected text"),
    ("args: {}\n", "expected a non-empty 'prompts:' mapping"),
    ("prompts: !!python/object/apply:os.system ['echo hacked']\n", "invalid YAML"),
    ("prompts: [unclosed\n", "invalid YAML"),
])
def test_bad_template_files_name_file_and_key(tmp_path, text, message):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(UserError, match=message) as info:
        load_templates(path)
    assert str(path) in str(info.value)


def test_bundled_prompts_cover_every_framing_and_whitespace_differs_only_in_spacing():
    task = CashComfortTask({"grid": "robust", "framing": "all"})
    samples, info = task.load()
    combos = {(s.metadata["scenario"], s.metadata["framing"]) for s in samples}
    assert combos == {(s, "third") for s in SCENARIOS} | {("time", f) for f in FRAMINGS}
    assert len(samples) == len(combos) * 101 and info.n_samples == len(samples)
    text = {s.metadata["framing"]: str(s.input) for s in samples if s.id.startswith("time.") and s.id.endswith(".m0.1.q60")}
    assert text["whitespace"] != text["third"] and text["whitespace"].split() == text["third"].split()
    assert "0 euros and 10 cents for waiting 60 minutes" in text["third"]
    yuan = next(str(s.input) for s in samples if s.id == "time.yuan.m1.q60")  # the yuan grid starts at 1 yuan
    assert "1 yuan and 0 fen for waiting 60 minutes" in yuan
    assert "Answer: Yes" in text["cot"] and "«" in text["french"] and "是" in text["chinese"]


@pytest.mark.parametrize("options, message", [
    ({"framing": "french", "scenarios": "pain"}, "no template for framing 'french'"),
    ({"framing": "sideways"}, "unknown framing"),
    ({"scenarios": "sleep"}, "unknown scenario"),
    ({"data": "x.csv"}, "template_file"),
])
def test_bad_task_options_are_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        CashComfortTask(options).load()


# ---- parsers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, language, cot, expected", [
    ("Yes", "en", False, "yes"), ("No.", "en", False, "no"), ("yes, no doubt", "en", False, "yes"),
    ("Nobody knows", "en", False, "invalid"), ("", "en", False, "invalid"), ("I decline, NO.", "en", False, "no"),
    ("Oui.", "fr", False, "yes"), ("Non", "fr", False, "no"), ("Yes", "fr", False, "yes"),
    ("Ja", "nl", False, "yes"), ("Nee.", "nl", False, "no"), ("Jawel", "nl", False, "invalid"),
    ("是", "zh", False, "yes"), ("否", "zh", False, "no"), ("不是", "zh", False, "no"), ("是的。", "zh", False, "yes"),
    ("我不知道是否应该", "zh", False, "no"), ("No", "zh", False, "no"),
    ("Waiting is costly, yes.\nAnswer: No", "en", True, "no"),
    ("Reasoning...\n**Answer:** Yes", "en", True, "yes"),
    ("Answer: No at first.\nOn reflection:\nFinal answer: Yes", "en", True, "yes"),
    ("Yes, I accept.", "en", True, "invalid"),
])
def test_parse_answer(text, language, cot, expected):
    assert parse_answer(text, language, cot) == expected


# ---- the logistic fit -------------------------------------------------------------------------------

@pytest.mark.parametrize("threshold", [-0.5, 0.4, 1.3, 2.2])
def test_fit_on_expected_counts_recovers_the_threshold(threshold):
    """1000 answers per amount at the logistic curve's own rates: the penalty is negligible."""
    import numpy as np

    x = np.array(ROBUST_X)
    p = 1 / (1 + np.exp(-6 * (x - threshold)))
    b0, b1 = fit_grouped(x, 1000 * p, np.full(x.size, 1000.0))
    assert abs(-b0[0] / b1[0] - threshold) < 1e-3
    assert abs(b1[0] - 6) < 0.05


@pytest.mark.parametrize("threshold", [-0.5, 0.4, 1.3, 2.2])
def test_fit_on_sampled_answers_recovers_the_threshold(threshold):
    """5 sampled answers at each of 101 amounts (the robustness grid) from a logistic curve."""
    rng = random.Random(int(threshold * 10) + 7)
    x, y = [], []
    for xi in ROBUST_X:
        for _ in range(5):
            x.append(xi)
            y.append(int(rng.random() < 1 / (1 + math.exp(-6 * (xi - threshold)))))
    fit = estimate_price(x, y, seed=1)
    assert fit.status == "fit" and not fit.non_monotone
    assert abs(fit.log10_price - threshold) < 0.15
    assert fit.ci[0] < fit.log10_price < fit.ci[1]


def test_symmetric_separated_answers_put_the_price_exactly_at_the_centre():
    """Reflecting x about c and swapping yes/no maps the data onto itself, and the penalty only involves
    the slope, so the unique optimum has b0 = -b1 * c: the 50% point is exactly c."""
    x = [-1.0, -0.5, 0.0, 0.5, 1.5, 2.0, 2.5, 3.0] * 3
    y = [int(v > 1) for v in x]
    fit = estimate_price(x, y, seed=0)
    assert abs(fit.log10_price - 1.0) < 1e-9
    assert fit.b1 > 0


def test_weighted_rows_equal_repeated_rows():
    x, y = [0.0, 1.0, 2.0, 3.0], [0, 1, 0, 1]
    b0w, b1w = fit_logistic(x, y, weights=[[2, 1, 1, 3]])
    b0r, b1r = fit_logistic([0, 0, 1, 2, 3, 3, 3], [0, 0, 1, 0, 1, 1, 1])
    assert b0w[0] == pytest.approx(b0r[0], abs=1e-9) and b1w[0] == pytest.approx(b1r[0], abs=1e-9)


def test_all_yes_is_below_min_all_no_above_max_and_decreasing_is_flagged():
    x = [-1.0, 0.0, 1.0, 2.0, 3.0]
    assert estimate_price(x, [1] * 5, seed=0).status == "<min"
    assert estimate_price(x, [0] * 5, seed=0).status == ">max"
    assert estimate_price([], [], seed=0).status == "no data"
    assert estimate_price(x * 2, [1, 1, 0, 0, 0] * 2, seed=0).non_monotone


# ---- analysis ---------------------------------------------------------------------------------------

def obs(scenario, framing, amount, quantity, answer):
    return Observation(scenario, framing, amount, quantity, answer)


def test_analysis_reports_open_prices_sanity_and_invalid_answers():
    small = amounts("small", FRAMINGS["third"])
    observations = [obs("pain", "third", a, 0.0, "yes") for a in small]
    observations += [obs("pain", "third", a, 100.0, "no") for a in small]
    observations += [obs("pain", "third", a, 50.0, "yes" if a > 10 else "no") for a in small if a != 10]
    observations.append(obs("pain", "third", 10.0, 50.0, "invalid"))
    result = analyse(observations, records=28, generation_errors=1)  # 27 answers + 1 error
    metrics = {m.name: m for m in result.metrics}
    price = metrics["cash_comfort.pain.price"]  # symmetric about 10 up to the 6-digit amounts (3.16228, ...)
    assert price.value == pytest.approx(10.0, rel=1e-5) and price.n == 8 and price.unit == "EUR"
    assert price.direction == "none" and "at 50 %" in price.note
    rows = {row["quantity"]: row for row in result.tables["price per quantity"]}
    assert rows[0.0]["status"] == "<min" and rows[0.0]["price"] is None
    assert rows[100.0]["status"] == ">max" and rows[50.0]["invalid"] == 1
    assert metrics["cash_comfort.sanity.max_reward_no_discomfort"].value == 100.0
    assert metrics["cash_comfort.sanity.one_unit_max_discomfort"].value == 0.0
    assert metrics["cash_comfort.invalid_answers"].value == pytest.approx(100 / 27)
    assert result.counts == {"records": 28, "generation_errors": 1, "answers": 27, "valid": 26, "invalid": 1,
                             "non_monotone_fits": 0}
    heatmap = next(p for p in result.plots if p.kind == "heatmap")
    assert {(p["row"], p["col"]): p["value"] for p in heatmap.points}[("50", "31.6")] == 1.0


def test_headline_note_says_when_every_offer_was_declined():
    result = analyse([obs("time", "third", a, 60.0, "no") for a in (0.1, 1.0, 10.0)], records=3, generation_errors=0)
    price = result.metrics[0]
    assert price.value is None and price.note.startswith("at 60 min; >max: declined every offer, up to 10 EUR")


def test_fragility_is_the_spread_of_log_prices_across_framings():
    """Thresholds at 10 (third) and 100 (first person), both symmetric designs: spread exactly 1."""
    observations = []
    for framing, centre in (("third", 1.0), ("firstperson", 2.0)):
        for x in (centre - 1.5, centre - 1, centre - 0.5, centre + 0.5, centre + 1, centre + 1.5):
            observations += [obs("time", framing, 10**x, 60.0, "yes" if x > centre else "no")] * 2
    result = analyse(observations, records=len(observations), generation_errors=0)
    fragility = next(m for m in result.metrics if m.name == "cash_comfort.time.fragility")
    assert fragility.value == pytest.approx(1.0, abs=1e-8) and fragility.n == 2 and fragility.direction == "lower"
    assert result.tables["fragility across framings"][0]["highest"] == "firstperson"


# ---- published tables -------------------------------------------------------------------------------

HEADER = "model,reward_value,quantity,experiment,output\n"


@pytest.mark.parametrize("row, message", [
    ("m,abc,60,1,Yes", "row 3, field 'reward_value': expected a number, got 'abc'"),
    ("m,0,60,1,Yes", "row 3, field 'reward_value': must be positive"),
    ("m,1,-5,1,Yes", "row 3, field 'quantity': must not be negative"),
    ("m,1,60,1.5,Yes", "row 3, field 'experiment': expected a whole repetition number"),
    (",1,60,1,Yes", "row 3, field 'model': missing or empty"),
])
def test_bad_table_rows_name_file_row_and_field(tmp_path, row, message):
    path = write(tmp_path / "log.csv", HEADER + "m,1,60,1,Yes\n" + row + "\n")
    with pytest.raises(UserError, match=message):
        read_responses(str(path), "time", "third")


def test_table_missing_column_and_empty_output(tmp_path):
    with pytest.raises(UserError, match="missing column"):
        read_responses(str(write(tmp_path / "a.csv", "model,reward_value\nm,1\n")), "time", "third")
    by_model, origin, _ = read_responses(str(write(tmp_path / "b.csv", HEADER + "m,1,60,1,\nm,2,60,1,Oui\n")),
                                         "time", "french")
    assert [o.answer for o in by_model["m"]] == ["invalid", "yes"] and origin.endswith("b.csv")


@pytest.mark.parametrize("n", [1, 2, 3, 9, 21, 101])
def test_spread_order_is_a_permutation_whose_prefixes_span_the_grid(n):
    order = spread_order(n)
    assert sorted(order) == list(range(n))
    if n >= 3:
        assert order[:3] == [0, n - 1, (n - 1) // 2]
    if n == 21:  # the main money grid: 0.1, 1000, 10, 1, 100 EUR first
        assert order[:5] == [0, 20, 10, 5, 15]
