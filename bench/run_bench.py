"""Harness against the limit and against Inspect AI on one workload, side by side, in one run.

    python bench/run_bench.py [--n 2000] [--concurrency 64] [--latency 0.05] [--repeats 3]

Starts bench/stub_server.py (fixed latency, no concurrency limit) and times, each in its own subprocess:
  single-turn  ideal N*latency/C; raw HTTP client (stub capacity); bare AsyncOpenAI loop; `harness run`
               on overrefusal with a generated N-prompt XSTest CSV; Inspect AI on the same prompts
  judged       the same with one target + one judge call per sample (harness: fortress, side=adversarial)
  cached       harness re-runs with the response cache warm and a fresh --run-dir (single and judged)
  start-up     median of 10 runs of `harness --help` and `harness list`
Wall time is the subprocess's, start-up included; CPU seconds (user+sys) and peak RSS come from
os.wait4 for that subprocess alone. Each run waits for a quiet machine first; each figure is the median of
the --repeats runs that other processes did not disturb (/proc/stat). Inspect AI is installed
into bench/.venv-inspect on first use (skipped with a message if that fails). Results go to
bench/results.json (or --json) and the terminal; bench/RESULTS.md interprets them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workload import write_fortress_jsonl, write_xstest_csv

BENCH = Path(__file__).resolve().parent
INSPECT_VENV = BENCH / ".venv-inspect"
STARTUP_RUNS = 10
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
QUIET_CORES = 0.15  # a second with less busy CPU than this counts as quiet
QUIET_MAX_WAIT_S = 60
NOISY_CORES = 0.15  # a run during which other processes averaged more than this is "disturbed"


@dataclass
class Measurement:
    name: str
    wall_s: float
    cpu_s: float | None = None  # user + sys of the subprocess (and children it waited for)
    peak_rss_mb: float | None = None
    requests: int | None = None  # chat requests the stub answered during the run
    judge_requests: int | None = None
    runs: list[float] = field(default_factory=list)  # wall time of every repeat
    others_cpu_s: list[float] = field(default_factory=list)  # CPU s other processes used during each repeat
    note: str = ""


class Stub:
    """The stub server subprocess and its request counters."""

    def __init__(self, latency: float, max_requests: int, workdir: Path):
        port_file = workdir / "stub.port"
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "stub_server.py"), "--latency", str(latency),
                                      "--port-file", str(port_file), "--max-requests", str(max_requests),
                                      "--max-seconds", "7200"])
        deadline = time.monotonic() + 10
        while not port_file.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("stub server did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"
        self.base_url = f"{self.url}/v1"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy since boot (all processes, all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wait_for_quiet(max_wait_s: float | None = None) -> None:
    """Wait (up to max_wait_s, default QUIET_MAX_WAIT_S) until the machine is nearly idle, so other processes
    do not skew a run."""
    deadline = time.monotonic() + (QUIET_MAX_WAIT_S if max_wait_s is None else max_wait_s)
    while True:
        before = busy_cpu_s()
        time.sleep(1.0)
        if busy_cpu_s() - before < QUIET_CORES or time.monotonic() > deadline:
            return


def run_once(cmd: list[str], log: Path, stub_pid: int, env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall s, user+sys CPU s, peak RSS MB of one subprocess, and CPU s other processes used meanwhile."""
    wait_for_quiet()
    with open(log, "w") as out:
        busy, stub_cpu = busy_cpu_s(), process_cpu_s(stub_pid)
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=BENCH)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C or SIGTERM: leave no orphan behind
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - started
        busy, stub_cpu = busy_cpu_s() - busy, process_cpu_s(stub_pid) - stub_cpu
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{log.read_text()[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "rss": usage.ru_maxrss / 1024, "others": max(0.0, busy - cpu - stub_cpu)}


def measure(name: str, commands: list[list[str]], stub: Stub, logs: Path,
            env: dict[str, str] | None = None) -> Measurement:
    """Run each command (one per repeat); report the median of the runs other processes did not disturb
    (all runs if none was quiet), with that run's CPU, RSS and stub request counts."""
    runs = []
    for index, cmd in enumerate(commands):
        first = stub.stats()
        run = run_once(cmd, logs / f"{name.replace(' ', '_').replace('/', '_')}-{index}.log", stub.proc.pid, env)
        last = stub.stats()
        run.update(requests=last["requests"] - first["requests"], judge=last["judge"] - first["judge"],
                   noisy=run["others"] > NOISY_CORES * run["wall"])
        runs.append(run)
        flag = f"  (other processes used {run['others']:.1f} CPU s: disturbed)" if run["noisy"] else ""
        print(f"  {name:38} run {index + 1}: {run['wall']:6.2f} s{flag}", flush=True)
    clean = [r for r in runs if not r["noisy"]] or runs
    chosen = sorted(clean, key=lambda r: r["wall"])[(len(clean) - 1) // 2]
    return Measurement(name, round(chosen["wall"], 3), round(chosen["cpu"], 3), round(chosen["rss"], 1),
                       chosen["requests"], chosen["judge"], runs=[round(r["wall"], 3) for r in runs],
                       others_cpu_s=[round(r["others"], 2) for r in runs],
                       note="" if len(clean) == len(runs) else f"{len(runs) - len(clean)} disturbed run(s) left out")


def inspect_python() -> Path | None:
    """Python of bench/.venv-inspect, creating it (inspect-ai + openai from PyPI) if missing; None if impossible."""
    python = INSPECT_VENV / "bin" / "python"
    if (INSPECT_VENV / "bin" / "inspect").exists():
        return python
    print("creating bench/.venv-inspect with inspect-ai from PyPI ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(INSPECT_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "inspect-ai", "openai"], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"SKIPPING Inspect AI: could not install it into {INSPECT_VENV} ({exc})")
        return None
    return python


def inspect_version(python: Path | None) -> str | None:
    if python is None:
        return None
    code = "import inspect_ai, openai; print(inspect_ai.__version__, openai.__version__)"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return f"inspect-ai {out.stdout.split()[0]}, openai {out.stdout.split()[1]}" if out.returncode == 0 else None


def harness_cmd() -> list[str]:
    script = Path(sys.executable).with_name("harness")
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness"]


def records_check(run_dir: Path, n: int, judged: bool) -> str:
    """Verify a harness run: n records, no errors, and (judged) exactly one judge exchange per record."""
    lines = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines() if line.strip()]
    errors = sum(1 for r in lines if r.get("error"))
    problems = [] if len(lines) == n else [f"{len(lines)} records, expected {n}"]
    if errors:
        problems.append(f"{errors} error records")
    if judged:
        per_record = {sum(1 for ex in r["exchanges"] if ex["role"].startswith("judge")) for r in lines}
        if per_record != {1}:
            problems.append(f"judge exchanges per record: {sorted(per_record)}")
    return "; ".join(problems) or ("ok: 1 judge call per response" if judged else "ok")


def median_startup(name: str, cmd: list[str]) -> Measurement:
    walls = []
    wait_for_quiet()
    for _ in range(STARTUP_RUNS):
        started = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - started)
    return Measurement(name, round(statistics.median(walls), 3), runs=[round(w, 3) for w in walls])


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram_gib": f"{mem_kb / 2**20:.1f}",
            "python": platform.python_version(), "platform": platform.platform(),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def print_section(title: str, rows: list[Measurement], ideal: float) -> None:
    print(f"\n{title}")
    print(f"  {'':38} {'wall s':>8} {'x ideal':>8} {'CPU s':>7} {'RSS MB':>7} {'calls':>6} {'judge':>6}")
    for m in rows:
        cells = [f"{m.wall_s:8.2f}", f"{m.wall_s / ideal:8.2f}" if ideal else f"{'':8}",
                 f"{m.cpu_s:7.2f}" if m.cpu_s is not None else f"{'':7}",
                 f"{m.peak_rss_mb:7.0f}" if m.peak_rss_mb is not None else f"{'':7}",
                 f"{m.requests:6d}" if m.requests is not None else f"{'':6}",
                 f"{m.judge_requests:6d}" if m.judge_requests is not None else f"{'':6}"]
        print(f"  {m.name:38} {' '.join(cells)}  {m.note}")


def ratio_line(rows: dict[str, Measurement], harness: str, others: list[tuple[str, str, float | None]]) -> list[str]:
    lines = []
    for label, name, target in others:
        if name not in rows:
            lines.append(f"  harness/{label}: n/a ({name} not measured)")
            continue
        value = rows[harness].wall_s / rows[name].wall_s
        verdict = "" if target is None else (f"  (target <= {target}: {'met' if value <= target else 'NOT met'})")
        lines.append(f"  harness/{label}: {value:.2f}{verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-inspect", action="store_true")
    parser.add_argument("--only", default="single,judged,cached,startup",
                        help="comma-separated sections: single, judged, cached, startup")
    parser.add_argument("--json", type=Path, default=BENCH / "results.json")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (runs, logs)")
    parser.add_argument("--candidate", type=Path, help="also time the `harness` package found in this directory "
                        "(put first on PYTHONPATH), e.g. a copy of harness/ with a proposed change")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    n, c, latency, reps = args.n, args.concurrency, args.latency, args.repeats

    workdir = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    logs = workdir / "logs"
    logs.mkdir()
    csv_path = write_xstest_csv(workdir / "prompts.csv", n)
    jsonl_path = write_fortress_jsonl(workdir / "fortress.jsonl", n)
    info = machine()
    print(f"machine: {info['nproc']} cpu ({info['cpu']}), {info['ram_gib']} GiB, Python {info['python']}; "
          f"{info['date']}\nworkload: N={n}, concurrency {c}, stub latency {latency * 1000:.0f} ms; work dir {workdir}")

    inspect = None if args.skip_inspect or not sections & {"single", "judged"} else inspect_python()
    if args.skip_inspect:
        print("SKIPPING Inspect AI: --skip-inspect")
    harness = harness_cmd()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("run_bench: terminated"))
    stub = Stub(latency, max_requests=(20 * reps + 10) * n + 1000, workdir=workdir)  # all sections, with room
    base = harness + ["run", "--model", "openai/stub", "--base-url", stub.base_url, "--max-connections", str(c),
                      "--max-samples", str(c), "--no-progress"]
    single_args = ["--tasks", "overrefusal", "-T", f"data={csv_path}"]
    judged_args = ["--tasks", "fortress", "-T", f"data={jsonl_path}", "-T", "side=adversarial",
                   "--judge", "openai/stub"]
    inspect_env = {**os.environ, "OPENAI_API_KEY": "not-needed"}
    candidate_env = None if args.candidate is None else {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(args.candidate.resolve()), os.environ.get("PYTHONPATH")]))}
    inspect_args = ["--model", "openai/stub", "-M", "responses_api=false", "--model-base-url", stub.base_url,
                    "--max-connections", str(c), "--max-samples", str(c), "--display", "none"]
    results: dict[str, object] = {"machine": info, "n": n, "concurrency": c, "latency_s": latency,
                                  "repeats": reps, "inspect_ai": inspect_version(inspect),
                                  "candidate": str(args.candidate) if args.candidate else None,
                                  "sections": {}, "ratios": {}}

    def save() -> None:  # after every section, so an interrupted run keeps what it measured
        args.json.write_text(json.dumps(results, indent=2) + "\n")

    def run_section(key: str, title: str, ideal: float, task_args: list[str], bare_extra: list[str],
                    inspect_task: str, inspect_data: Path, judged: bool) -> None:
        rows = {"ideal": Measurement("ideal N*calls*latency/C", round(ideal, 3))}
        if not judged:
            rows["raw"] = measure("raw HTTP client (stub capacity)", [
                [sys.executable, str(BENCH / "raw_client.py"), "--base-url", stub.base_url, "--n", str(n),
                 "--concurrency", str(c)]] * reps, stub, logs)
        rows["bare"] = measure("bare AsyncOpenAI loop", [
            [sys.executable, str(BENCH / "bare_client.py"), "--base-url", stub.base_url, "--concurrency", str(c),
             *bare_extra]] * reps, stub, logs)
        run_dirs = [workdir / f"{key}-harness-{i}" for i in range(reps)]
        rows["harness"] = measure("harness run --no-cache", [
            base + task_args + ["--no-cache", "--run-dir", str(d)] for d in run_dirs], stub, logs)
        rows["harness"].note = "; ".join(filter(None, [records_check(run_dirs[0], n, judged), rows["harness"].note]))
        if candidate_env is not None:
            cand_dirs = [workdir / f"{key}-candidate-{i}" for i in range(reps)]
            rows["candidate"] = measure("harness run --no-cache (candidate)", [
                base + task_args + ["--no-cache", "--run-dir", str(d)] for d in cand_dirs], stub, logs, candidate_env)
            rows["candidate"].note = "; ".join(filter(None, [records_check(cand_dirs[0], n, judged),
                                                             rows["candidate"].note]))
        if inspect is not None:
            rows["inspect"] = measure("Inspect AI eval", [
                [str(inspect.with_name("inspect")), "eval", f"{BENCH / 'inspect_task.py'}@{inspect_task}", "-T",
                 f"data={inspect_data}", "--log-dir", str(workdir / f"{key}-inspect-logs-{i}"), *inspect_args]
                for i in range(reps)], stub, logs, env=inspect_env)
        print_section(title, list(rows.values()), ideal)
        targets = [("ideal", "ideal", None), ("bare-client", "bare", 1.2), ("Inspect", "inspect", 1.0)]
        lines = ratio_line(rows, "harness", targets)
        if "candidate" in rows:
            lines += [line.replace("harness/", "candidate/") for line in ratio_line(rows, "candidate", targets)]
        print("\n".join(lines))
        results["sections"][key] = {k: asdict(m) for k, m in rows.items()}
        results["ratios"][key] = lines
        save()

    try:
        if "single" in sections:
            run_section("single", f"single-turn (overrefusal), N={n}, 1 call/sample", n * latency / c, single_args,
                        ["--data", str(csv_path)], "single", csv_path, judged=False)
        if "judged" in sections:
            run_section("judged", f"judged (fortress side=adversarial), N={n}, 1 target + 1 judge call/sample",
                        2 * n * latency / c, judged_args, ["--judged", str(jsonl_path)], "judged", jsonl_path,
                        judged=True)
        if "cached" in sections:
            rows = {}
            for key, task_args in (("single", single_args), ("judged", judged_args)):
                cache = workdir / f"cache-{key}.sqlite"
                warm = workdir / f"cached-{key}-warm"
                rows[f"{key} warm-up"] = measure(f"{key}: first run (fills cache)", [
                    base + task_args + ["--cache", str(cache), "--run-dir", str(warm)]], stub, logs)
                rows[f"{key} cached"] = measure(f"{key}: re-run, cache warm, new run dir", [
                    base + task_args + ["--cache", str(cache), "--run-dir", str(workdir / f"cached-{key}-{i}")]
                    for i in range(reps)], stub, logs)
                if candidate_env is not None:
                    rows[f"{key} cached candidate"] = measure(f"{key}: re-run, cache warm (candidate)", [
                        base + task_args + ["--cache", str(cache), "--run-dir", str(workdir / f"cached-{key}-c{i}")]
                        for i in range(reps)], stub, logs, candidate_env)
                for row in (r for name, r in rows.items() if name.startswith(f"{key} cached")):
                    row.note = "; ".join(filter(None, [
                        "ok: 0 model calls" if row.requests == 0 else f"{row.requests} model calls!", row.note]))
            print_section(f"fully cached re-run, N={n} (target <= 2 s)", list(rows.values()), 0)
            results["sections"]["cached"] = {k: asdict(m) for k, m in rows.items()}
            save()
        if "startup" in sections:
            rows = {key: median_startup(name, cmd) for key, name, cmd in (
                ("python", "python -c pass (interpreter alone)", [sys.executable, "-c", "pass"]),
                ("help", "harness --help", harness + ["--help"]),
                ("list", "harness list", harness + ["list"]),
            )}
            print_section(f"start-up, median of {STARTUP_RUNS} (target: harness --help <= 0.3 s)",
                          list(rows.values()), 0)
            results["sections"]["startup"] = {k: asdict(m) for k, m in rows.items()}
            save()
    finally:
        stub.stop()
    print(f"\nresults: {args.json}")
    if args.keep:
        print(f"work dir kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
