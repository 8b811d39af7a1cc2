"""Tokens and cost through the real CLI: usage per role and task, USD from --prices (checked against the
stub server's own token counts), the report section, leaderboard columns, and --budget-usd stop + resume."""
from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import read_records, read_summary
from fake_openai_server import FakeOpenAIServer

from harness_tasks.overrefusal.task import bundled_sample_path

N_SAMPLES = sum(1 for _ in bundled_sample_path().open(encoding="utf-8")) - 1
PRICE_IN, PRICE_OUT = 1000.0, 3000.0  # USD per million tokens: large, so a few requests cost cents
ANSWER = "Sure, here is how: one two three."  # 7 words = 7 completion tokens at the stub


def hand_cost(prompt_tokens: int, completion_tokens: int, share: float = 1.0) -> float:
    return share * (prompt_tokens * PRICE_IN + completion_tokens * PRICE_OUT) / 1_000_000


@pytest.fixture
def prices(tmp_path):
    (tmp_path / "prices.yaml").write_text(f"fake-model: {{input: {PRICE_IN}, output: {PRICE_OUT}}}\n")
    return "prices.yaml"


def run_args(srv: FakeOpenAIServer, run_dir: str, *extra: str) -> list[str]:
    return ["run", "--model", "openai/fake-model", "--base-url", srv.base_url, "--tasks", "overrefusal",
            "--run-dir", run_dir, "--no-progress", "--no-cache", *extra]


def test_usage_and_cost_per_role_and_task_match_the_servers_token_counts(cli, tmp_path, prices):
    with FakeOpenAIServer(responder=lambda messages: ANSWER, reasoning_tokens=2) as srv:
        out = cli(run_args(srv, "results/run", "--prices", prices))
        served = dict(srv.usage_served)
    assert out.returncode == 0, out.stderr
    usage = read_summary(tmp_path / "results/run")["usage"]
    model = usage["roles"]["model"]
    assert model["spec"] == "openai/fake-model" and model["requests"] == N_SAMPLES and model["cache_hits"] == 0
    assert model["prompt_tokens"] == served["prompt_tokens"] and model["completion_tokens"] == 7 * N_SAMPLES
    assert model["reasoning_tokens"] == 2 * N_SAMPLES
    expected = hand_cost(served["prompt_tokens"], served["completion_tokens"])
    assert model["cost_usd"] == pytest.approx(expected, abs=1e-8)
    task = usage["tasks"]["overrefusal"]
    assert task["cost_usd"] == pytest.approx(expected, abs=1e-8) == usage["total"]["cost_usd"]
    assert task["requests"] == N_SAMPLES and task["wall_seconds"] >= 0 and model["request_seconds"] > 0
    assert usage["prices"] == {"openai/fake-model": {"input": PRICE_IN, "output": PRICE_OUT}}

    report = (tmp_path / "results/run/report.md").read_text()
    assert report.index("## overrefusal") < report.index("## Tokens and cost") < report.index("## Provenance")
    assert f"{expected:.4f}" in report
    html = (tmp_path / "results/run/report.html").read_text()
    assert html.index('id="task-overrefusal"') < html.index('id="usage"') < html.index('id="provenance"')

    board = cli(["leaderboard", "results", "--format", "csv"])
    assert board.returncode == 0, board.stderr
    row = next(csv.DictReader(io.StringIO(board.stdout)))
    assert float(row["cost USD"]) == pytest.approx(expected, abs=1e-8)
    assert int(row["tokens in"]) == served["prompt_tokens"] and int(row["reasoning tokens"]) == 2 * N_SAMPLES
    (tmp_path / "double.yaml").write_text(f"openai/fake-model: {{input: {2 * PRICE_IN}, output: {2 * PRICE_OUT}}}\n")
    repriced = cli(["leaderboard", "results", "--format", "json", "--prices", "double.yaml"])
    assert json.loads(repriced.stdout)["rows"][0]["usage"]["cost_usd"] == pytest.approx(2 * expected, abs=1e-8)


def test_without_prices_there_are_tokens_but_no_dollars(cli, tmp_path):
    with FakeOpenAIServer(responder=lambda messages: ANSWER) as srv:
        out = cli(run_args(srv, "run", "--limit", "2"))
    assert out.returncode == 0, out.stderr
    usage = read_summary(tmp_path / "run")["usage"]
    assert usage["total"]["cost_usd"] is None and usage["prices"] is None
    assert usage["total"]["completion_tokens"] == 14
    assert "No prices given" in (tmp_path / "run/report.md").read_text()


def test_budget_stop_leaves_a_resumable_run_that_finishes_like_an_unbudgeted_one(cli, tmp_path, prices):
    with FakeOpenAIServer(responder=lambda messages: ANSWER) as srv:
        full = cli(run_args(srv, "full", "--prices", prices))
        assert full.returncode == 0, full.stderr
        full_cost = read_summary(tmp_path / "full")["usage"]["total"]["cost_usd"]
        budget = round(0.4 * full_cost, 6)
        hits_before = srv.hits
        stopped = cli(run_args(srv, "budgeted", "--prices", prices, "--budget-usd", str(budget),
                               "--max-samples", "2", "--max-connections", "2"))
        stopped_hits = srv.hits - hits_before
        assert stopped.returncode == 3, stopped.stderr
        manifest = json.loads((tmp_path / "budgeted/manifest.json").read_text())
        assert manifest["status"] == "budget"
        done = read_records(tmp_path / "budgeted")
        assert 0 < len(done) < N_SAMPLES and stopped_hits == len(done)  # no request was sent and then dropped
        spent = manifest["budget"]["spent_usd"]
        assert spent <= budget and spent == pytest.approx(read_summary(tmp_path / "budgeted")["usage"]["total"]["cost_usd"])
        assert manifest["budget"]["remaining"] == N_SAMPLES - len(done)
        rest = manifest["budget"]["rest_usd"]
        assert rest == pytest.approx(spent / len(done) * (N_SAMPLES - len(done)))
        assert "budget stop: spent $" in stopped.stderr and f"{N_SAMPLES - len(done)} samples left" in stopped.stderr

        resumed = cli(run_args(srv, "budgeted", "--prices", prices, "--budget-usd", str(10 * full_cost)))
        assert resumed.returncode == 0, resumed.stderr
        assert srv.hits - hits_before == N_SAMPLES  # each sample was asked once over both sessions
    assert json.loads((tmp_path / "budgeted/manifest.json").read_text())["status"] == "complete"

    def outcome(run: str) -> dict:
        return {(r["sample_id"], r["repetition"]): (r["exchanges"][0]["completion"]["text"], r["scores"])
                for r in read_records(tmp_path / run)}

    assert outcome("budgeted") == outcome("full")
    assert read_summary(tmp_path / "budgeted")["metrics"] == read_summary(tmp_path / "full")["metrics"]
    assert read_summary(tmp_path / "budgeted")["usage"]["total"]["cost_usd"] == pytest.approx(full_cost)


def test_budget_needs_prices_and_a_price_for_every_api_model(cli, tmp_path):
    (tmp_path / "other.yaml").write_text("gpt-4o: {input: 1, output: 2}\n")
    no_prices = cli(["run", "--model", "openai/fake-model", "--base-url", "http://127.0.0.1:9/v1", "--tasks",
                     "overrefusal", "--budget-usd", "1", "--no-progress", "--run-dir", "a"])
    assert no_prices.returncode == 2 and "--budget-usd needs --prices" in no_prices.stderr
    unpriced = cli(["run", "--model", "openai/fake-model", "--base-url", "http://127.0.0.1:9/v1", "--tasks",
                    "overrefusal", "--budget-usd", "1", "--prices", "other.yaml", "--no-progress", "--run-dir", "b"])
    assert unpriced.returncode == 2 and "none for model (openai/fake-model)" in unpriced.stderr


@pytest.mark.parametrize("content, message", [
    ("fake-model: {input: 1}\n", "model 'fake-model' field 'output': field required"),
    ("fake-model: {input: -1, output: 2}\n", "model 'fake-model' field 'input': input should be greater than"),
    ("fake-model: {input: 1, output: 2, cached: 0.5}\n", "field 'cached': extra inputs are not permitted"),
    ("- a list\n", "expected a mapping of model"),
])
def test_a_bad_price_file_is_one_error_naming_the_model_and_field(cli, tmp_path, content, message):
    (tmp_path / "prices.yaml").write_text(content)
    out = cli(["run", "--model", "scripted/echo", "--tasks", "overrefusal", "--prices", "prices.yaml",
               "--no-progress", "--run-dir", "r"])
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
