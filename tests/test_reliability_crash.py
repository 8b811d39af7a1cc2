"""Crash safety: SIGKILL at random moments, torn record lines, and one cache shared by concurrent runs."""
from __future__ import annotations

import json
import multiprocessing
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from fake_openai_server import FakeOpenAIServer, last_user_text

from conftest import harness_env, read_records
from test_reliability_faults import write_xstest_csv

from harness.errors import UserError
from harness.cache import ResponseCache
from harness.store import RunStore
from harness.types import Completion, Exchange, Message, Record

N = 300
TRIALS = 4
KILLS_PER_TRIAL = 2


def answer(messages: list[dict]) -> str:
    """Sample-specific, deterministic text, so a record from the wrong sample or a lost one shows."""
    prompt = last_user_text(messages)
    return f"Sure, about '{prompt}': here is how."


def run_command(srv: FakeOpenAIServer, run_dir: str) -> list[str]:
    return [sys.executable, "-m", "harness", "run", "--model", "openai/fake-model", "--base-url", srv.base_url,
            "--tasks", "overrefusal", "-T", "data=prompts.csv", "--run-dir", run_dir, "--no-progress",
            "--max-connections", "4", "--max-samples", "4"]


def essence(records: list[dict]) -> dict[str, tuple]:
    """What must be identical between a crashed-and-resumed run and an uninterrupted one."""
    return {
        r["sample_id"]: (r["exchanges"][0]["completion"]["text"], r["scores"]["refusal"]["label"], r["error"])
        for r in records
    }


def complete_lines(path) -> list[dict]:
    """Every newline-terminated line must be a whole JSON record; only a final unterminated one may be torn."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="strict")
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines()]


def test_kill_9_at_random_points_then_resume_gives_the_uninterrupted_records(tmp_path):
    write_xstest_csv(tmp_path / "prompts.csv", N)
    rng = random.Random(20240611)
    with FakeOpenAIServer(responder=answer, delay_s=0.02) as srv:
        reference = subprocess.run(run_command(srv, "reference"), cwd=tmp_path, capture_output=True, text=True,
                                   env=harness_env(tmp_path, {"HARNESS_CACHE": str(tmp_path / "ref.sqlite")}),
                                   timeout=120)
        assert reference.returncode == 0, reference.stderr
        expected = essence(read_records(tmp_path / "reference"))
        assert len(expected) == N

        kills = 0
        for trial in range(TRIALS):
            settled: dict[str, int] = {}  # prompt -> server hits when its record first survived a kill
            run_dir = tmp_path / f"trial{trial}"
            env = harness_env(tmp_path, {"HARNESS_CACHE": str(tmp_path / f"trial{trial}.sqlite")})
            remaining = N
            for _ in range(KILLS_PER_TRIAL):
                proc = subprocess.Popen(run_command(srv, run_dir.name), cwd=tmp_path, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0.3, 0.5 + 2.0 * remaining / N))  # start-up, then ~2 s for N samples
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                kills += proc.returncode == -signal.SIGKILL
                survived = complete_lines(run_dir / "records.jsonl")
                for name in ("manifest.json", "summary.json"):  # atomic writes: old or new, never torn
                    if (run_dir / name).exists():
                        json.loads((run_dir / name).read_text())
                for r in survived:
                    prompt = r["exchanges"][0]["messages"][-1]["content"]
                    settled.setdefault(prompt, srv.hits_by_prompt[prompt])
                remaining = N - len(survived)
            resumed = subprocess.run(run_command(srv, run_dir.name), cwd=tmp_path, env=env, capture_output=True,
                                     text=True, timeout=120)
            assert resumed.returncode == 0, resumed.stderr
            # a sample whose record survived a kill is never requested again
            assert all(srv.hits_by_prompt[p] == hits for p, hits in settled.items())
            records = read_records(run_dir)
            assert len(records) == N, f"trial {trial}: duplicates or losses"
            assert essence(records) == expected, f"trial {trial}"
            assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
        assert kills >= TRIALS  # most kills landed while the run was still going


def test_resume_drops_a_torn_last_line_and_redoes_only_that_sample(cli, tmp_path):
    args = ["run", "--model", "scripted/echo", "--tasks", "overrefusal", "--limit", "5", "--run-dir", "run",
            "--no-progress", "--no-cache"]
    assert cli(args).returncode == 0
    path = tmp_path / "run" / "records.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole[: -len(whole.splitlines()[-1]) // 2])  # the last record torn half-way
    out = cli(args)
    assert out.returncode == 0, out.stderr
    assert "4 finished records kept, 1 new" in out.stdout
    before, after = whole.splitlines(), path.read_bytes().splitlines()
    assert after[:4] == before[:4] and len(after) == 5  # kept records untouched, the torn one redone
    redone, original = json.loads(after[4]), json.loads(before[4])
    assert essence([redone]) == essence([original]) and redone["sample_id"] == original["sample_id"]


def _record(sample_id: str, text: str = "an answer", error: str | None = None) -> Record:
    completion = Completion(text=text)
    return Record(task="t", sample_id=sample_id, error=error, exchanges=[
        Exchange(role="model", purpose="response", messages=[Message(role="user", content="q")],
                 completion=completion)])


def test_run_store_drops_and_repairs_a_torn_last_line(tmp_path):
    store = RunStore(tmp_path)
    for sid in ("a", "b"):
        store.append(_record(sid))
    store.close()
    whole = _record("c").model_dump_json().encode()
    with open(store.records_path, "ab") as handle:
        handle.write(whole[: len(whole) // 2])  # a crash in the middle of a write
    assert [r.sample_id for r in RunStore(tmp_path).load_records()] == ["a", "b"]
    assert not store.records_path.read_bytes().endswith(b"\n")  # reading alone changes nothing
    assert [r.sample_id for r in RunStore(tmp_path).load_records(repair=True)] == ["a", "b"]
    assert store.records_path.read_bytes().endswith(b"\n")
    again = RunStore(tmp_path)
    again.append(_record("c"))
    again.close()
    assert [r.sample_id for r in RunStore(tmp_path).load_records()] == ["a", "b", "c"]


def test_run_store_torn_only_line_and_whole_line_without_newline(tmp_path):
    store = RunStore(tmp_path)
    store.records_path.write_bytes(b'{"task": "t", "sampl')
    assert store.load_records(repair=True) == [] and store.records_path.read_bytes() == b""
    store.records_path.write_bytes(_record("a").model_dump_json().encode())  # newline never written: torn
    assert store.load_records() == []


def test_run_store_names_a_corrupt_complete_line(tmp_path):
    store = RunStore(tmp_path)
    store.records_path.write_bytes(_record("a").model_dump_json().encode() + b"\n{garbage}\n"
                                   + _record("b").model_dump_json().encode() + b"\n")
    with pytest.raises(UserError, match=r"records\.jsonl: line 2 is not a valid record .*remove that line"):
        store.load_records(repair=True)


def test_run_store_last_record_per_key_wins_and_compact_keeps_one_line_each(tmp_path):
    store = RunStore(tmp_path)
    store.append(_record("a", error="HTTP 503"))
    store.append(_record("b"))
    store.append(_record("a", text="retried answer"))
    kept = store.records_path.read_bytes().splitlines(keepends=True)[1:]
    store.compact()
    assert store.records_path.read_bytes().splitlines(keepends=True) == kept  # kept lines byte for byte
    records = {r.sample_id: r for r in store.load_records()}
    assert records["a"].error is None and records["a"].response() == "retried answer"
    inode = store.records_path.stat().st_ino
    store.compact()
    assert store.records_path.stat().st_ino == inode  # nothing superseded: the file is left alone


def test_run_store_unreadable_records_is_a_user_error(tmp_path):
    (tmp_path / "records.jsonl").mkdir()
    with pytest.raises(UserError, match=r"records\.jsonl: cannot read"):
        RunStore(tmp_path).load_records()


def _hammer_cache(path: str, worker: int, n: int) -> None:
    cache = ResponseCache(path)
    for i in range(n):
        key = {"namespace": "model", "i": i}
        cache.put(key, Completion(text=f"answer {i}"))  # every worker writes the same keys and values
        hit = cache.get({"namespace": "model", "i": (i * 7 + worker) % n})
        assert hit is None or hit.text == f"answer {(i * 7 + worker) % n}"
    cache.close()


def test_cache_survives_concurrent_writer_processes(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_hammer_cache, args=(path, w, 300)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT COUNT(*) FROM responses").fetchone() == (300,)
    db.close()
    cache = ResponseCache(tmp_path / "shared.sqlite")
    assert all(cache.get({"namespace": "model", "i": i}).text == f"answer {i}" for i in range(300))
    cache.close()


def test_two_runs_share_one_cache_then_a_third_makes_no_requests(tmp_path):
    write_xstest_csv(tmp_path / "prompts.csv", 200)
    env = harness_env(tmp_path, {"HARNESS_CACHE": str(tmp_path / "shared.sqlite")})
    with FakeOpenAIServer(responder=answer, delay_s=0.03) as srv:  # ~1.5 s of requests per run
        first = subprocess.Popen(run_command(srv, "a"), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        time.sleep(0.8)  # the second run starts while the first is writing: it reads some, writes others
        second = subprocess.run(run_command(srv, "b"), cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=120)
        _, first_err = first.communicate(timeout=120)
        assert first.returncode == 0 and second.returncode == 0, first_err + second.stderr
        hits_after_two = srv.hits
        third = subprocess.run(run_command(srv, "c"), cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=120)
        assert third.returncode == 0, third.stderr
        assert srv.hits == hits_after_two  # fully served from the shared cache
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in "ab"]
    assert manifests[1]["started_at"] < manifests[0]["finished_at"]  # the two runs did overlap
    a, b, c = (read_records(tmp_path / d) for d in "abc")
    assert essence(a) == essence(b) == essence(c) and len(essence(c)) == 200
    assert all(r["exchanges"][0]["completion"]["cached"] for r in c)
    assert 200 <= hits_after_two < 400  # the second run reused at least one response the first had cached
    assert any(r["exchanges"][0]["completion"]["cached"] for r in b)
    db = sqlite3.connect(tmp_path / "shared.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT COUNT(*) FROM responses").fetchone() == (200,)
    db.close()
