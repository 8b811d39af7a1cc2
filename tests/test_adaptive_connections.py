"""--max-connections auto against a stub that answers 429 above a concurrency level: the limit is halved on
429s, raised while requests succeed (AIMD), every change is logged, and the run ends with every sample done."""
from __future__ import annotations

import json
import re

from conftest import read_records
from fake_openai_server import FakeOpenAIServer

SERVER_LIMIT = 3


def run_args(srv: FakeOpenAIServer, run_dir: str, connections: str) -> list[str]:
    return ["run", "--model", "openai/fake-model", "--base-url", srv.base_url, "--tasks", "overrefusal",
            "--repeats", "3", "--max-samples", "32", "--max-connections", connections, "--max-retries", "30",
            "--run-dir", run_dir, "--no-progress", "--no-cache"]


def test_auto_connections_back_off_on_429_and_climb_while_requests_succeed(cli, tmp_path):
    with FakeOpenAIServer(max_concurrent=SERVER_LIMIT, delay_s=0.03) as srv:
        out = cli(run_args(srv, "auto", "auto"))
        auto_429s, auto_peak = srv.rejected_429, srv.peak_in_flight
    assert out.returncode == 0, out.stderr
    records = read_records(tmp_path / "auto")
    assert len(records) == 120 and not any(r["error"] for r in records)

    changes = [(int(old), int(new), why) for old, new, why in
               re.findall(r"openai/fake-model: connections (\d+) -> (\d+) \((\w+):", out.stderr)]
    assert changes[0] == (8, 4, "decrease")  # the first burst of 429s halves the starting limit once, not per 429
    decreases = [(old, new) for old, new, why in changes if why == "decrease"]
    increases = [(old, new) for old, new, why in changes if why == "increase"]
    assert all(new == max(1, old // 2) for old, new in decreases) and all(new == old + 1 for old, new in increases)
    assert len(decreases) + len(increases) == len(changes)
    role = next(r for r in json.loads((tmp_path / "auto/manifest.json").read_text())["roles"] if r["role"] == "model")
    report = role["connections"]
    assert (report["decreases"], report["increases"]) == (len(decreases), len(increases))
    assert increases  # it also climbed back up while requests succeeded
    assert report["lowest"] <= SERVER_LIMIT and report["highest"] == 8
    assert f"model connections (auto): now {report['limit']}" in out.stdout
    assert auto_peak <= 8

    with FakeOpenAIServer(max_concurrent=SERVER_LIMIT, delay_s=0.03) as srv:
        fixed = cli(run_args(srv, "fixed", "16"))
        fixed_429s = srv.rejected_429
    assert fixed.returncode == 0, fixed.stderr
    assert auto_429s < fixed_429s  # adapting sends fewer requests the server must turn away
