"""End-to-end: cash_comfort through the real CLI (scripted and replay models, `harness analyze`)."""
from __future__ import annotations

import csv
import json
import math
import random
import re

from harness_tasks.cash_comfort.scenarios import FRAMINGS, amounts, sample_id

from conftest import metric, read_records, read_summary

SMALL = amounts("small", FRAMINGS["third"])  # 0.1, 0.316228, 1, 3.16228, 10, 31.6228, 100, 316.228, 1000

# Acceptance depends on amount and quantity, read from the prompt text:
# - 0 minutes / 0 percent: always Yes                       -> '<min'
# - 60 minutes: Yes from 31.62 euros up, No up to 3.16, and an unparseable answer at exactly 10 euros:
#   the valid answers are symmetric about log10(10) = 1, so the price is 10 (up to 6-digit amounts)
# - 600 minutes: Yes from 316 euros up                      -> price between 100 and 316.228
# - pain 50 percent: Yes from 100 euros up                  -> price between 31.6228 and 100
# - pain 100 percent: always No                             -> '>max'
RULES = r"""
rules:
  - pattern: 'for waiting 0 minutes|shock at 0 percent'
    response: "Yes"
  - pattern: '(?<!\d)10 euros and 0 cents for waiting 60 minutes'
    response: "Hard to say."
  - pattern: '(?<!\d)(31|100|316|1000) euros and \d+ cents for waiting 60 minutes'
    response: "Yes."
  - pattern: '(?<!\d)(316|1000) euros and \d+ cents for waiting 600 minutes'
    response: "yes"
  - pattern: '(?<!\d)(100|316|1000) euros and \d+ cents for receiving one shock at 50 percent'
    response: "Yes"
default: "No."
"""


def run_args(model: str, *extra: str) -> list[str]:
    return ["run", "--model", model, "--tasks", "cash_comfort", "--run-dir", "run", "--no-progress", *extra]


def prices(summary: dict) -> dict[tuple[str, float], dict]:
    rows = summary["tasks"]["cash_comfort"]["tables"]["price per quantity"]
    return {(r["scenario"], r["quantity"]): r for r in rows}


def test_scripted_prices_follow_the_scripted_rule(cli, tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    out = cli(run_args("scripted/rules.yaml", "-T", "grid=small", "-T", "scenarios=time,pain", "--repeats", "2"))
    assert out.returncode == 0, out.stderr
    assert len(read_records(tmp_path / "run")) == 2 * 2 * 9 * 3
    summary = read_summary(tmp_path / "run")
    time_price = metric(summary, "cash_comfort", "cash_comfort.time.price")
    assert math.isclose(time_price["value"], 10.0, rel_tol=1e-5) and time_price["n"] == 8  # offers, 2 answers each
    assert time_price["ci_low"] <= time_price["value"] <= time_price["ci_high"]
    pain_price = metric(summary, "cash_comfort", "cash_comfort.pain.price")
    assert 31.6228 < pain_price["value"] < 100
    rows = prices(summary)
    assert 100 < rows[("time", 600.0)]["price"] < 316.228
    assert rows[("time", 0.0)]["status"] == "<min" and rows[("pain", 0.0)]["status"] == "<min"
    assert rows[("pain", 100.0)]["status"] == ">max" and rows[("pain", 100.0)]["price"] is None
    assert rows[("time", 60.0)]["invalid"] == 2
    assert math.isclose(metric(summary, "cash_comfort", "cash_comfort.invalid_answers")["value"], 100 * 2 / 108)
    assert metric(summary, "cash_comfort", "cash_comfort.sanity.max_reward_no_discomfort")["value"] == 100.0
    assert metric(summary, "cash_comfort", "cash_comfort.sanity.one_unit_max_discomfort")["value"] == 0.0
    kinds = [p["kind"] for p in summary["tasks"]["cash_comfort"]["plots"]]
    assert kinds.count("heatmap") == 2 and kinds.count("line") == 2
    report = (tmp_path / "run" / "report.md").read_text()
    assert "cash_comfort.time.price" in report and "sanity checks" in report


def test_authors_template_file_is_substituted_literally(cli, tmp_path):
    (tmp_path / "config.yaml").write_text(
        "api_keys:\n  OpenAI: sk-never-read\n"
        "prompts:\n  pain: \"Take {reward_euros} euro {reward_cents} ct for a {quant}% shock? {x} {0} Yes or No.\"\n"
    )
    out = cli(run_args("scripted/echo", "-T", "grid=small", "-T", "scenarios=pain", "-T", "template_file=config.yaml",
                       "-T", "system_prompt="))
    assert out.returncode == 0, out.stderr
    records = {r["sample_id"]: r for r in read_records(tmp_path / "run")}
    messages = records["pain.third.m0.316228.q50"]["exchanges"][0]["messages"]
    assert messages == [{"role": "user", "content": "Take 0 euro 32 ct for a 50% shock? {x} {0} Yes or No."}]
    assert "sk-never-read" not in (tmp_path / "run" / "manifest.json").read_text()


def test_unknown_framing_is_one_clear_error(cli):
    out = cli(run_args("scripted/echo", "-T", "framing=sideways"))
    assert out.returncode == 2 and "unknown framing(s) sideways" in out.stderr and "Traceback" not in out.stderr


def write_table(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["model", "reward_value", "quantity", "experiment", "output"])
        writer.writeheader()
        writer.writerows(rows)


def test_analyze_prices_each_model_of_a_published_table(cli, tmp_path):
    rows = []
    for experiment in (1, 2, 3):
        for amount in SMALL:
            if amount != 10.0:  # symmetric about 10 -> price 10
                rows.append({"model": "m1", "reward_value": f"{amount:.6f}", "quantity": "60.0",
                             "experiment": experiment, "output": "Yes" if amount > 10 else "No"})
            rows.append({"model": "m2", "reward_value": f"{amount:.6f}", "quantity": "60.0",
                         "experiment": experiment, "output": "No, thank you."})
    write_table(tmp_path / "log.csv", rows)
    out = cli(["analyze", "cash_comfort", "log.csv", "--out", "analysis"])
    assert out.returncode == 0, out.stderr
    models = json.loads((tmp_path / "analysis" / "summary.json").read_text())["models"]
    m1 = next(m for m in models["m1"]["metrics"] if m["name"] == "cash_comfort.time.price")
    m2 = next(m for m in models["m2"]["metrics"] if m["name"] == "cash_comfort.time.price")
    assert math.isclose(m1["value"], 10.0, rel_tol=1e-5) and m1["n"] == 8  # offers, 3 experiments each
    assert m2["value"] is None and ">max" in m2["note"] and m2["n"] == 9
    assert "m1" in out.stdout and "## m2" in (tmp_path / "analysis" / "report.md").read_text()


def test_analysis_of_a_table_equals_a_live_replay_of_the_same_responses(cli, tmp_path):
    """Noisy logistic answers (with one invalid) for the first-person framing: `harness analyze` on the
    table and a replay run of the same responses give identical metrics, tables, plots and notes."""
    rng = random.Random(3)
    table, replay = [], []
    for experiment in (1, 2, 3):
        for quantity in (0.0, 60.0, 600.0):
            for amount in SMALL:
                threshold = 1.0 + quantity / 400
                accept = rng.random() < 1 / (1 + math.exp(-3 * (math.log10(amount) - threshold)))
                output = rng.choice(["Yes", "Yes.", "yes"]) if accept else rng.choice(["No", "No."])
                if (experiment, quantity, amount) == (2, 60.0, 1.0):
                    output = "I cannot decide for them."
                table.append({"model": "published", "reward_value": f"{amount:.6f}", "quantity": f"{quantity:.1f}",
                              "experiment": experiment, "output": output})
                replay.append({"task": "cash_comfort", "sample_id": sample_id("time", "firstperson", amount, quantity),
                               "repetition": experiment - 1, "response": output})
    write_table(tmp_path / "log.csv", table)
    (tmp_path / "replay.jsonl").write_text("".join(json.dumps(r) + "\n" for r in replay))

    analysed = cli(["analyze", "cash_comfort", "log.csv", "-T", "prompt=firstperson", "--out", "analysis"])
    assert analysed.returncode == 0, analysed.stderr
    live = cli(run_args("replay/replay.jsonl", "-T", "grid=small", "-T", "scenarios=time", "-T", "framing=firstperson",
                        "--repeats", "3"))
    assert live.returncode == 0, live.stderr

    from_table = json.loads((tmp_path / "analysis" / "summary.json").read_text())["models"]["published"]
    from_run = read_summary(tmp_path / "run")["tasks"]["cash_comfort"]
    for key in ("metrics", "tables", "plots", "notes"):
        assert from_table[key] == from_run[key], key
    assert {k: from_run["counts"][k] for k in from_table["counts"]} == from_table["counts"]
    assert from_table["counts"]["invalid"] == 1
    price = next(m for m in from_table["metrics"] if m["name"] == "cash_comfort.time.firstperson.price")
    assert price["value"] is not None and price["n"] == 9  # offers at 60 min; 26 valid answers


def test_a_short_run_prices_the_headline_offer_across_the_grid_and_reports_a_censored_bound(cli, tmp_path):
    # --limit 5 takes the reference quantity (60 min) at amounts spread over the grid, not the five
    # cheapest offers at 0 minutes; a model that declines them all gets the spec's '>max' as a bound.
    out = cli(run_args("scripted/answer-No", "--limit", "5"))
    assert out.returncode == 0, out.stderr
    records = read_records(tmp_path / "run")
    assert {r["metadata"]["quantity"] for r in records} == {60.0}
    assert sorted(r["metadata"]["amount"] for r in records) == [0.1, 1.0, 10.0, 100.0, 1000.0]
    price = metric(read_summary(tmp_path / "run"), "cash_comfort", "cash_comfort.time.price")
    assert price["value"] is None and price["bound"] == {"side": "above", "at": 1000.0}
    assert "cash_comfort.time.price" in out.stdout and ">1000 EUR" in out.stdout
    card = (tmp_path / "run" / "report.md").read_text().split("### cash_comfort", 1)[1].split("###", 1)[0]
    assert "| >1000 EUR |" in card and "No data for: `cash_comfort.time.price`" not in card
    assert ">1000 EUR" in (tmp_path / "run" / "report.html").read_text().replace("&gt;", ">")


def test_a_model_that_accepts_everything_prices_below_the_cheapest_offer(cli, tmp_path):
    out = cli(run_args("scripted/answer-Yes", "--limit", "3", "-T", "scenarios=pain"))
    assert out.returncode == 0, out.stderr
    price = metric(read_summary(tmp_path / "run"), "cash_comfort", "cash_comfort.pain.price")
    assert price["value"] is None and price["bound"] == {"side": "below", "at": 0.1}
    assert "cash_comfort.pain.price" in out.stdout and "<0.1 EUR" in out.stdout
    # report --compare puts the bounds side by side
    declines = ["run", "--model", "scripted/answer-No", "--tasks", "cash_comfort", "--limit", "3", "-T",
                "scenarios=pain", "--run-dir", "declines", "--no-progress"]
    assert cli(declines).returncode == 0
    compared = cli(["report", "--compare", "run", "declines"])
    assert compared.returncode == 0, compared.stderr
    assert re.search(r"cash_comfort\.pain\.price.*<0\.1 \(n=3\).*>1000 \(n=3\)", compared.stdout), compared.stdout
