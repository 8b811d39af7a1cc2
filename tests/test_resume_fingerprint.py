"""A run directory resumes only the same run: data, templates, endpoints, engine args and harness version
must match, and a mismatch is one clear error naming what changed."""
from __future__ import annotations

import csv
import json

from conftest import read_records
from fake_openai_server import FakeOpenAIServer
from test_reliability_faults import write_xstest_csv

SECRET = "sk-resumetestsecret123"


def scripted_args(*extra: str, run_dir: str = "run") -> list[str]:
    return ["run", "--model", "scripted/echo", "--tasks", "overrefusal", "-T", "data=prompts.csv",
            "--run-dir", run_dir, "--no-progress", "--no-cache", *extra]


def error_line(out) -> str:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    (line,) = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    return line


def test_one_changed_data_row_is_refused_and_nothing_is_lost(cli, tmp_path):
    rows = write_xstest_csv(tmp_path / "prompts.csv", 6)
    assert cli(scripted_args()).returncode == 0
    before = (tmp_path / "run" / "records.jsonl").read_bytes()

    rows["4"]["prompt"] = "A different fourth prompt"
    with (tmp_path / "prompts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "prompt", "type", "label"])
        writer.writeheader()
        writer.writerows(rows.values())
    line = error_line(cli(scripted_args()))
    old = json.loads((tmp_path / "run" / "manifest.json").read_text())["fingerprint"]["data"]["overrefusal"]["sha256"]
    assert "data.overrefusal.sha256: was" in line and old in line
    assert "--run-dir" in line  # how to start a fresh run
    assert (tmp_path / "run" / "records.jsonl").read_bytes() == before

    fresh = cli(scripted_args(run_dir="run2"))
    assert fresh.returncode == 0, fresh.stderr
    assert "A different fourth prompt" in json.dumps(read_records(tmp_path / "run2"))


def test_same_settings_resume(cli, tmp_path):
    write_xstest_csv(tmp_path / "prompts.csv", 4)
    assert cli(scripted_args("--limit", "2")).returncode == 0
    out = cli(scripted_args())
    assert out.returncode == 0, out.stderr
    assert "2 finished records kept, 2 new" in out.stdout


def test_endpoint_change_is_refused_without_showing_credentials(cli, tmp_path):
    write_xstest_csv(tmp_path / "prompts.csv", 3)
    args = ["run", "--model", "openai/fake-model", "--tasks", "overrefusal", "-T", "data=prompts.csv",
            "--run-dir", "run", "--no-progress", "--no-cache"]
    with FakeOpenAIServer() as first, FakeOpenAIServer() as second:
        assert cli([*args, "--base-url", first.base_url]).returncode == 0
        same_with_credentials = first.base_url.replace("http://", f"http://user:{SECRET}@") + f"?api_key={SECRET}"
        assert cli([*args, "--base-url", same_with_credentials]).returncode == 0  # the same endpoint: resumes
        moved = second.base_url.replace("http://", f"http://user:{SECRET}@") + f"?api_key={SECRET}"
        line = error_line(cli([*args, "--base-url", moved]))
    assert f'endpoints.model.base_url: was "{first.base_url}", now "{second.base_url}"' in line
    assert SECRET not in line and "user:" not in line
    fingerprint = json.loads((tmp_path / "run" / "manifest.json").read_text())["fingerprint"]
    assert SECRET not in json.dumps(fingerprint) and fingerprint["endpoints"]["model"]["base_url"] == first.base_url


def test_engine_args_change_is_refused(cli, tmp_path):
    write_xstest_csv(tmp_path / "prompts.csv", 3)
    assert cli(scripted_args("--vllm-arg", "max_model_len=2048")).returncode == 0
    line = error_line(cli(scripted_args("--vllm-arg", "max_model_len=4096")))
    assert 'endpoints.model.engine_args.max_model_len: was 2048, now 4096' in line


def test_judge_template_and_harness_version_changes_are_refused(cli, tmp_path):
    """A run made by another harness version or with another judge rubric (simulated by editing the
    manifest the earlier run wrote) is not resumed; every differing field is named."""
    write_xstest_csv(tmp_path / "prompts.csv", 3)
    assert cli(scripted_args()).returncode == 0
    path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["fingerprint"]["harness_version"] = "0.0.9"
    manifest["fingerprint"]["templates"]["overrefusal"]["refusal.j2"] = "0" * 64
    path.write_text(json.dumps(manifest))
    line = error_line(cli(scripted_args()))
    assert 'harness_version: was "0.0.9", now "' in line
    assert 'templates.overrefusal.refusal.j2: was "000000' in line


def test_resume_checks_each_judge_endpoint(cli, tmp_path):
    write_xstest_csv(tmp_path / "prompts.csv", 3)
    judge = ["--judge", "scripted/comply-all,scripted/refuse-all", "--refusal-scorer", "judge"]
    assert cli(scripted_args(*judge)).returncode == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert set(manifest["fingerprint"]["endpoints"]) == {"model", "judge", "judge2"}
    line = error_line(cli(scripted_args(*judge, "--base-url", "http://127.0.0.1:9/v1")))
    assert all(f"endpoints.{role}.base_url: was null" in line for role in ("model", "judge", "judge2"))
