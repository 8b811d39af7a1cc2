"""`harness leaderboard`: latest complete run per (model, task), formats, ordering, Every Eval Ever export."""
from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

from conftest import read_summary
from test_report_html import Dom, load_in_chromium

SAFE = "overrefusal.safe_refusal"
UNSAFE = "overrefusal.unsafe_compliance"
MODELS = ["scripted/comply-all", "scripted/refuse-50", "scripted/refuse-all"]  # safe refusal 0 < x < 100


@pytest.fixture
def results(cli, tmp_path):
    """Three complete runs, an older run of one model, and a newer interrupted run (to be ignored)."""
    def run(name, model, *extra):
        out = cli(["run", "--model", model, "-t", "overrefusal", "--run-dir", f"results/{name}", "--no-progress", *extra])
        assert out.returncode == 0, out.stderr

    run("old-refuse-50", "scripted/refuse-50", "--limit", "4")
    for model in MODELS:
        run(model.split("/")[1], model)
    run("partial", "scripted/comply-all", "--limit", "2")
    manifest_path = tmp_path / "results" / "partial" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(status="interrupted", started_at=manifest["started_at"] + 3600)
    manifest_path.write_text(json.dumps(manifest))
    return tmp_path / "results"


def board(cli, *args) -> str:
    out = cli(["leaderboard", "results", *args])
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_json_lists_latest_complete_run_per_model(cli, results):
    doc = json.loads(board(cli, "--format", "json"))
    assert [r["model"] for r in doc["rows"]] == MODELS
    assert [c["name"] for c in doc["columns"]] == [SAFE, UNSAFE]  # the task's headline metrics only
    for row, model in zip(doc["rows"], MODELS):
        name = model.split("/")[1]
        assert row["runs"] == {"overrefusal": name}
        summary = read_summary(results / name)
        for metric in (SAFE, UNSAFE):
            expected = summary["metrics"][metric]
            got = row["metrics"][metric]
            assert (got["value"], got["ci_low"], got["ci_high"], got["n"]) == (
                expected["value"], expected["ci_low"], expected["ci_high"], expected["n"])
    assert any("partial" in s and "interrupted" in s for s in doc["skipped"])


def test_sort_orders_best_first_per_metric(cli, results):
    values = {m: read_summary(results / m.split("/")[1])["metrics"] for m in MODELS}
    assert values[MODELS[0]][SAFE]["value"] < values[MODELS[1]][SAFE]["value"] < values[MODELS[2]][SAFE]["value"]
    md = board(cli, "--sort", SAFE)
    order = [line.split("`")[1] for line in md.splitlines() if line.startswith("| `")]
    assert order == MODELS  # lower safe refusal is better
    rows = list(csv.DictReader(io.StringIO(board(cli, "--format", "csv", "--sort", UNSAFE))))
    assert [r["model"] for r in rows] == MODELS[::-1]  # refusing everything complies least
    assert [float(r[UNSAFE]) for r in rows] == sorted(values[m][UNSAFE]["value"] for m in MODELS)
    assert all(float(r[f"{SAFE}:ci_low"]) <= float(r[SAFE]) <= float(r[f"{SAFE}:ci_high"]) for r in rows)


def test_unknown_sort_metric_and_empty_dir_are_errors(cli, results, tmp_path):
    out = cli(["leaderboard", "results", "--sort", "nope"])
    assert out.returncode == 2 and "--sort nope" in out.stderr and SAFE in out.stderr
    (tmp_path / "empty").mkdir()
    out = cli(["leaderboard", "empty"])
    assert out.returncode == 2 and "no complete runs" in out.stderr


def test_html_table_is_sorted_and_loads_cleanly(cli, results, tmp_path):
    out = cli(["leaderboard", "results", "--format", "html", "--sort", UNSAFE, "--out", "board.html"])
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "board.html").read_text(encoding="utf-8")
    assert "://" not in html and "script-src 'sha256-" in html
    dom_text, console = load_in_chromium(tmp_path / "board.html", tmp_path / "profile")
    assert console == []  # the sorting script runs under the page's CSP without errors
    dom = Dom(dom_text)
    assert dom.title == "Leaderboard"
    order = [line.split('data-model="')[1].split('"')[0] for line in dom_text.split("<tr")[2:]]
    assert order == MODELS[::-1]


def test_every_eval_ever_export(cli, results, tmp_path):
    out = cli(["leaderboard", "results", "--format", "eee", "--out", "eee"])
    assert out.returncode == 0, out.stderr
    for model in MODELS:
        name = model.split("/")[1]
        folder = tmp_path / "eee" / model.replace("/", "_")
        aggregate = json.loads((folder / f"{name}.json").read_text())
        assert {"schema_version", "evaluation_id", "retrieved_timestamp", "source_metadata", "model_info",
                "eval_library", "evaluation_results"} <= set(aggregate)
        assert aggregate["model_info"]["name"] == model and aggregate["model_info"]["id"] == name
        assert aggregate["source_metadata"]["source_type"] == "evaluation_run"
        summary = read_summary(results / name)
        by_name = {r["evaluation_name"]: r for r in aggregate["evaluation_results"]}
        assert set(by_name) == set(summary["metrics"])
        for metric_name, expected in summary["metrics"].items():
            result = by_name[metric_name]
            assert {"evaluation_name", "source_data", "metric_config", "score_details"} <= set(result)
            assert result["metric_config"]["lower_is_better"] is True
            assert result["metric_config"]["score_type"] == "continuous"
            assert (result["metric_config"]["min_score"], result["metric_config"]["max_score"]) == (0.0, 100.0)
            assert result["score_details"]["score"] == expected["value"]
            ci = result["score_details"]["uncertainty"]["confidence_interval"]
            assert (ci["lower"], ci["upper"], ci["confidence_level"]) == (expected["ci_low"], expected["ci_high"], 0.95)
            assert result["source_data"]["source_type"] == "other"
            assert all(isinstance(v, str) for v in result["source_data"]["additional_details"].values())

        detail = aggregate["detailed_evaluation_results"]
        payload = (folder / detail["file_path"]).read_bytes()
        assert hashlib.sha256(payload).hexdigest() == detail["checksum"]
        lines = [json.loads(line) for line in payload.decode().splitlines()]
        n_safe, n_unsafe = summary["metrics"][SAFE]["n"], summary["metrics"][UNSAFE]["n"]
        assert len(lines) == detail["total_rows"] == 3 * n_safe + n_unsafe  # three safe_* rates, one unsafe
        required = {"schema_version", "evaluation_id", "model_id", "evaluation_name", "sample_id", "interaction_type",
                    "input", "answer_attribution", "evaluation"}
        safe_lines = [line for line in lines if line["evaluation_name"] == SAFE]
        for line in lines:
            assert required <= set(line) and line["evaluation_id"] == aggregate["evaluation_id"]
            assert line["interaction_type"] == "single_turn" and line["messages"] is None
            assert line["output"]["raw"] and isinstance(line["evaluation"]["is_correct"], bool)
            assert all(isinstance(v, str) for v in line["metadata"].values())
        assert sum(line["evaluation"]["score"] for line in safe_lines) / n_safe == pytest.approx(
            summary["metrics"][SAFE]["value"])
        assert all(line["evaluation"]["is_correct"] == (line["evaluation"]["score"] == 0.0) for line in safe_lines)


def test_eee_needs_an_output_directory(cli, results):
    out = cli(["leaderboard", "results", "--format", "eee"])
    assert out.returncode == 2 and "--out DIRECTORY" in out.stderr


def test_eee_generation_args_are_what_the_model_was_sent(cli, tmp_path):
    """The user's --max-tokens overrides the task's default (256) at run time, and so in the export."""
    out = cli(["run", "--model", "scripted/comply-all", "-t", "overrefusal", "--limit", "2", "--max-tokens", "9",
               "--run-dir", "results/r", "--no-progress"])
    assert out.returncode == 0, out.stderr
    assert cli(["leaderboard", "results", "--format", "eee", "--out", "eee"]).returncode == 0
    aggregate = json.loads((tmp_path / "eee" / "scripted_comply-all" / "r.json").read_text())
    args = aggregate["evaluation_results"][0]["generation_config"]["generation_args"]
    assert args["max_tokens"] == 9 and args["temperature"] == 0.0  # user's flag; task default kept


def test_a_censored_price_is_shown_as_its_bound_in_every_format(cli, tmp_path):
    for model in ("scripted/answer-No", "scripted/answer-Yes"):
        out = cli(["run", "--model", model, "-t", "cash_comfort", "--limit", "5", "--run-dir",
                   f"results/{model.split('/')[1]}", "--no-progress"])
        assert out.returncode == 0, out.stderr
    price = "cash_comfort.time.price"
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(board(cli, "--format", "csv")))}
    assert rows["scripted/answer-No"][price] == "" and rows["scripted/answer-No"][f"{price}:bound"] == ">1000"
    assert rows["scripted/answer-Yes"][f"{price}:bound"] == "<0.1"
    markdown = board(cli, "--format", "md")
    assert "&gt;1000 EUR (n=5)" in markdown and "&lt;0.1 EUR (n=5)" in markdown  # escaped: rendered as > and <
    metrics = {r["model"]: r["metrics"][price] for r in json.loads(board(cli, "--format", "json"))["rows"]}
    assert metrics["scripted/answer-No"]["value"] is None
    assert metrics["scripted/answer-No"]["bound"] == {"side": "above", "at": 1000.0}
