"""End-to-end on the embedded default model: real SmolLM2 text through the real CLI."""
from __future__ import annotations

import json

from conftest import read_records, read_summary, requires_local

pytestmark = requires_local


def test_run_on_smollm2_records_usage_and_latency(cli, tmp_path):
    out = cli(["run", "--model", "local/smollm2", "--tasks", "overrefusal", "--limit", "2", "--max-tokens", "16",
               "--threads", "2", "--run-dir", "run", "--no-progress"])
    assert out.returncode == 0, out.stderr
    records = read_records(tmp_path / "run")
    assert len(records) == 2
    for record in records:
        completion = record["exchanges"][0]["completion"]
        assert completion["text"].strip()
        assert completion["usage"]["prompt_tokens"] > 0
        assert 0 < completion["usage"]["completion_tokens"] <= 16
        assert completion["latency_s"] > 0
    assert (tmp_path / "run" / "report.md").exists()
    assert read_summary(tmp_path / "run")["model"] == "local/smollm2"


def test_without_model_the_embedded_default_is_used_and_announced(cli, tmp_path):
    out = cli(["run", "--tasks", "overrefusal", "--limit", "1", "--max-tokens", "8", "--run-dir", "run",
               "--no-progress"])
    assert out.returncode == 0, out.stderr
    assert "embedded default local/smollm2" in out.stdout
    summary = read_summary(tmp_path / "run")
    assert summary["model"] == "local/smollm2" and summary["judges"] == ["local/smollm2"]
    assert "Demonstration only" in (tmp_path / "run" / "report.md").read_text()
    assert "Demonstration only" in (tmp_path / "run" / "report.html").read_text()


def test_the_demo_plays_the_persuadee_with_the_embedded_model_in_short_conversations(cli, tmp_path):
    out = cli(["run", "--tasks", "persuasion", "--limit", "1", "--max-tokens", "24", "--run-dir", "run",
               "--no-progress"])
    assert out.returncode == 0, out.stderr
    assert "plays the persuadee" in out.stdout
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    roles = {r["role"]: r for r in manifest["roles"]}
    assert roles["simulator"]["spec"] == "local/smollm2" and roles["simulator"]["generate"]["max_tokens"] == 80
    assert manifest["tasks"][0]["options"] == {"max_turns": 2}
    record = read_records(tmp_path / "run")[0]
    replies = [ex for ex in record["exchanges"] if ex["role"] == "simulator"]
    assert 1 <= len(replies) <= 2
    assert all(ex["completion"]["usage"]["completion_tokens"] <= 80 for ex in replies)
    score = next(m for m in read_summary(tmp_path / "run")["tasks"]["persuasion"]["metrics"]
                 if m["name"] == "persuasion.unethical_score")
    assert score["value"] is not None and 0 <= score["value"] <= 2 and score["n"] == 1
    assert "persuasion.unethical_score" in out.stdout
