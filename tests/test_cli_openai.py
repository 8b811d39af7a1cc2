"""End-to-end: the real CLI against a local OpenAI-compatible server with injected faults."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from fake_openai_server import FakeOpenAIServer, first_attempts, random_faults

from conftest import harness_env, read_records, read_summary

from harness_tasks.overrefusal.task import bundled_sample_path

N_SAMPLES = sum(1 for _ in bundled_sample_path().open(encoding="utf-8")) - 1


def run_args(srv: FakeOpenAIServer, *extra: str) -> list[str]:
    return ["run", "--model", "openai/fake-model", "--base-url", srv.base_url, "--tasks", "overrefusal",
            "--run-dir", "run", "--no-progress", *extra]


def test_faults_are_retried_and_every_sample_has_one_record(cli, tmp_path):
    faults = random_faults({"429": 0.25, "500": 0.15}, seed=3)
    with FakeOpenAIServer(faults=faults) as srv:
        out = cli(run_args(srv, "--max-connections", "8"))
        hits = srv.hits
    assert out.returncode == 0, out.stderr
    records = read_records(tmp_path / "run")
    keys = [(r["sample_id"], r["repetition"]) for r in records]
    assert len(keys) == len(set(keys)) == N_SAMPLES
    assert all(r["error"] is None for r in records)
    retries = sum(len(r["exchanges"][0]["completion"]["retries"]) for r in records)
    assert retries > 0 and hits == N_SAMPLES + retries  # every failed attempt retried and visible
    assert any("429" in line for r in records for line in r["exchanges"][0]["completion"]["retries"])


def test_permanent_errors_become_error_records_and_retry_errors_fixes_them(cli, tmp_path):
    bad_prompts: set[str] = set()

    def faults(prompt, attempt):
        if not bad_prompts and attempt == 1:
            bad_prompts.add(prompt)
        return "400" if prompt in bad_prompts else None

    with FakeOpenAIServer(faults=faults) as srv:
        out = cli(run_args(srv))
        assert out.returncode == 0
        assert "1 samples ended in errors" in out.stderr
        records = read_records(tmp_path / "run")
        errored = [r for r in records if r["error"]]
        assert len(errored) == 1 and "400" in errored[0]["error"]
        assert srv.hits == N_SAMPLES  # a 400 is not retried
        good_before = {r["sample_id"]: r for r in records if not r["error"]}
        bad_prompts.clear()
        bad_prompts.add("nothing")
        out = cli(run_args(srv, "--retry-errors"))
        assert out.returncode == 0, out.stderr
        assert srv.hits == N_SAMPLES + 1  # only the errored sample was requested again
    records = read_records(tmp_path / "run")
    assert len(records) == N_SAMPLES and not any(r["error"] for r in records)
    assert {r["sample_id"]: r for r in records if r["sample_id"] in good_before} == good_before


def interruptible() -> None:
    """Give the child the default SIGINT action, as in a terminal: a shell running the test suite in the
    background (as CI may) starts its children with SIGINT ignored, and Python keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_kill_midway_then_resume_requests_each_finished_sample_once(tmp_path):
    env = harness_env(tmp_path)
    with FakeOpenAIServer(delay_s=0.15) as srv:
        args = [sys.executable, "-m", "harness", *run_args(srv, "--max-samples", "2", "--max-connections", "2")]
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=interruptible)
        records_path = tmp_path / "run" / "records.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline:
            if records_path.exists() and records_path.read_text().count("\n") >= 6:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        assert "re-run the same command to resume" in stderr
        finished = {r["exchanges"][0]["messages"][-1]["content"] for r in read_records(tmp_path / "run")}
        assert 6 <= len(finished) < N_SAMPLES
        hits_before = dict(srv.hits_by_prompt)

        out = subprocess.run(args, cwd=tmp_path, env={**env, "HARNESS_CACHE": str(tmp_path / "other.sqlite")},
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        for prompt in finished:
            assert srv.hits_by_prompt[prompt] == hits_before[prompt] == 1
    records = read_records(tmp_path / "run")
    assert len({(r["sample_id"], r["repetition"]) for r in records}) == len(records) == N_SAMPLES
    assert read_summary(tmp_path / "run")["status"] == "complete"


def test_sigterm_also_stops_cleanly(tmp_path):
    env = harness_env(tmp_path)
    with FakeOpenAIServer(delay_s=0.2) as srv:
        args = [sys.executable, "-m", "harness", *run_args(srv, "--max-samples", "1")]
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        records_path = tmp_path / "run" / "records.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and not (records_path.exists() and records_path.read_text().count("\n") >= 2):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 130
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    assert '"status": "interrupted"' in manifest


def test_api_key_never_written(cli, tmp_path):
    secret = "sk-test-DoNotLeak-1234567890"
    env = harness_env(tmp_path, {"OPENAI_API_KEY": secret})
    with FakeOpenAIServer(faults=first_attempts(1, "401")) as srv:
        out = cli(run_args(srv, "--limit", "3"), env=env)
    assert secret not in out.stdout + out.stderr
    for path in (tmp_path / "run").iterdir():
        assert secret not in path.read_text()
