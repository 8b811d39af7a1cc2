"""--batch / --judge-batch through the real CLI against the stub's Batch API (files upload, batches create,
poll, output and error files): one job per stage and role, per-request errors, half price, and a killed
run that resumes polling its job instead of submitting it again."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import harness_env, read_records, read_summary
from fake_openai_server import FakeOpenAIServer, last_user_text

ANSWER = "Sure, here is how: one two three."
BATCH_ENV = {"HARNESS_BATCH_POLL_S": "0.05", "HARNESS_BATCH_WINDOW_S": "0.3"}


def answer(messages: list[dict]) -> str:
    return "[[full_compliance]]" if "<assistant_response>" in last_user_text(messages) else ANSWER


def run_args(srv: FakeOpenAIServer, *extra: str) -> list[str]:
    return ["run", "--model", "openai/fake-model", "--base-url", srv.base_url, "--tasks", "overrefusal",
            "--limit", "4", "--run-dir", "run", "--no-progress", "--no-cache", "--batch", *extra]


def uploaded_lines(srv: FakeOpenAIServer) -> list[list[dict]]:
    return [[json.loads(line) for line in f["content"].splitlines()]
            for f in srv.batches.files.values() if f["purpose"] == "batch"]


def test_model_and_judge_stages_each_go_as_one_batch_at_half_price(cli, tmp_path):
    (tmp_path / "prices.yaml").write_text("fake-model: {input: 1000, output: 3000}\ngrader: {input: 100, output: 300}\n")
    with FakeOpenAIServer(responder=answer) as srv:
        out = cli(run_args(srv, "--judge", "openai/grader", "--refusal-scorer", "judge", "--judge-batch",
                           "--prices", "prices.yaml"), env=harness_env(tmp_path, BATCH_ENV))
        direct = [r for r in srv.requests if r["path"] == "/v1/chat/completions"]
        served = [r["body"] for r in srv.requests if r["path"].endswith("(batch)")]
    assert out.returncode == 0, out.stderr
    assert srv.batches.uploads == srv.batches.creates == 2 and not direct  # model stage, then judge stage
    model_lines, judge_lines = uploaded_lines(srv)
    assert {line["body"]["model"] for line in model_lines} == {"fake-model"} and len(model_lines) == 4
    assert {line["body"]["model"] for line in judge_lines} == {"grader"} and len(judge_lines) == 4
    assert all(line["method"] == "POST" and line["url"] == "/v1/chat/completions" for line in model_lines + judge_lines)
    assert len({line["custom_id"] for line in model_lines}) == 4
    assert "completed [####################] 4/4 requests, 0 failed" in out.stderr

    records = read_records(tmp_path / "run")
    assert all(ex["completion"]["batch"] for r in records for ex in r["exchanges"])
    assert {r["exchanges"][0]["completion"]["text"] for r in records} == {ANSWER}
    usage = read_summary(tmp_path / "run")["usage"]["roles"]
    assert usage["model"]["batch_requests"] == usage["model"]["requests"] == 4
    for role, model, (price_in, price_out) in (("model", "fake-model", (1000, 3000)), ("judge", "grader", (100, 300))):
        sent = [body for body in served if body["model"] == model]
        prompt = sum(len(m["content"].split()) for body in sent for m in body["messages"])
        completion = sum(len(answer(body["messages"]).split()) for body in sent)
        assert usage[role]["prompt_tokens"] == prompt and usage[role]["completion_tokens"] == completion
        assert usage[role]["cost_usd"] == pytest.approx(0.5 * (prompt * price_in + completion * price_out) / 1e6)
    journal = list((tmp_path / "run/batches").glob("*.json"))
    assert len(journal) == 2 and all(json.loads(p.read_text())["batch_id"].startswith("batch_") for p in journal)


def test_a_failed_batch_request_is_that_samples_error_and_retry_errors_resubmits_it(cli, tmp_path):
    bad: set[str] = set()

    def faults(prompt: str, attempt: int):
        if not bad:
            bad.add(prompt)
        return "400" if prompt in bad else None

    env = harness_env(tmp_path, BATCH_ENV)
    with FakeOpenAIServer(responder=answer, faults=faults) as srv:
        cli(run_args(srv), env=env)
        errored = [r for r in read_records(tmp_path / "run") if r["error"]]
        assert len(errored) == 1 and "batch request failed: HTTP 400" in errored[0]["error"]
        assert len(read_records(tmp_path / "run")) == 4
        bad.clear()
        bad.add("no prompt is this")
        retried = cli(run_args(srv, "--retry-errors"), env=env)
        assert retried.returncode == 0, retried.stderr
        assert [len(lines) for lines in uploaded_lines(srv)] == [4, 1]  # only the failed request went again
    assert not any(r["error"] for r in read_records(tmp_path / "run"))


def interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_killed_run_resumes_polling_its_batch_instead_of_submitting_again(cli, tmp_path):
    env = harness_env(tmp_path, BATCH_ENV)
    with FakeOpenAIServer(responder=answer) as srv:
        srv.batches.hold = True  # the job stays in progress until the first run is gone
        proc = subprocess.Popen([sys.executable, "-m", "harness", *run_args(srv)], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
        deadline = time.time() + 60
        while time.time() < deadline and not (srv.batches.retrieves >= 2 and list((tmp_path / "run").glob("batches/*.json"))):
            time.sleep(0.05)
        proc.kill()  # SIGKILL: no chance to clean up
        proc.communicate(timeout=30)
        assert srv.batches.creates == 1 and not (tmp_path / "run/records.jsonl").exists()
        srv.batches.hold = False
        resumed = cli(run_args(srv), env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert srv.batches.creates == srv.batches.uploads == 1  # polled again, never submitted twice
        assert "resuming batch" in resumed.stderr
        again = cli(run_args(srv, "--retry-errors"), env=env)  # nothing left: results come from the journal
        assert again.returncode == 0 and srv.batches.creates == 1
    records = read_records(tmp_path / "run")
    assert len(records) == 4 and not any(r["error"] for r in records)


def test_batch_is_refused_for_a_model_that_is_not_openai(cli):
    out = cli(["run", "--model", "scripted/echo", "--batch", "--tasks", "overrefusal", "--no-progress"])
    assert out.returncode == 2 and "scripted/echo: --batch works with openai/ models only" in out.stderr


def test_a_multi_turn_task_sends_each_stage_of_every_role_as_one_batch(cli, tmp_path):
    from test_run_roles import judge, persuadee, persuader

    with FakeOpenAIServer(responder=persuader) as model, FakeOpenAIServer(responder=judge) as judges, \
            FakeOpenAIServer(responder=persuadee) as simulator:
        out = cli(["run", "--model", "openai/persuader", "--base-url", model.base_url, "--batch",
                   "--judge", "openai/grader", "--judge-base-url", judges.base_url, "--judge-batch",
                   "--simulator", "openai/persuadee", "--simulator-base-url", simulator.base_url, "--simulator-batch",
                   "-t", "persuasion", "-T", "max_turns=2", "--limit", "3", "--run-dir", "run", "--no-progress",
                   "--no-cache"], env=harness_env(tmp_path, BATCH_ENV))
        servers = {"model": model, "judge": judges, "simulator": simulator}
        direct = {name: [r for r in srv.requests if r["path"] == "/v1/chat/completions"] for name, srv in servers.items()}
        jobs = {name: [len(lines) for lines in uploaded_lines(srv)] for name, srv in servers.items()}
    assert out.returncode == 0, out.stderr
    assert not any(direct.values())
    records = read_records(tmp_path / "run")
    assert len(records) == 3 and all(ex["completion"]["batch"] for r in records for ex in r["exchanges"])
    calls = {name: sum(1 for r in records for ex in r["exchanges"] if ex["role"] == name) for name in servers}
    for name in servers:  # every stage is one job holding that stage's requests of all three samples
        assert sum(jobs[name]) == calls[name] and all(size % 3 == 0 for size in jobs[name]), (name, jobs)
