"""Overhead of a sweep and of shard + merge against plain runs of the same work, side by side, in one run.

    python bench/scale_bench.py [--n 500] [--repeats 3] [--shards 4] [--latency 0.05] [--quiet-wait 20]

Starts bench/stub_server.py and times, each variant as one subprocess tree (a `sh -c` running its
harness commands; CPU s and peak RSS from os.wait4 include every command it ran):
  sweep   3 models (openai/stub-a, -b, -c) x 2 tasks (overrefusal, 1 call/sample; fortress
          side=adversarial, target + judge call/sample), N samples each, all with --no-cache:
          6 runs of one model and one task | 3 runs of one model and both tasks | one sweep command
          (which also writes the leaderboard)
  shards  one model on both tasks: the unsharded run | --shards runs one after another + harness merge |
          the same shards in parallel (one machine, `&` + wait) + merge | harness merge alone
Every variant makes the same model calls (the stub's counts are shown), and the merged summary is checked
against the unsharded one. Each figure is the median of --repeats runs (run_bench.measure: runs other
processes disturbed are left out). Results go to bench/scale_results.json (or --json); bench/RESULTS.md
interprets them.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import run_bench
from run_bench import BENCH, Measurement, Stub, harness_cmd, machine, measure, print_section
from workload import write_fortress_jsonl, write_xstest_csv

MODELS = ["openai/stub-a", "openai/stub-b", "openai/stub-c"]


def sh(*commands: list[str], parallel: int = 0) -> list[str]:
    """One `sh -c` running the commands in order (&&), or the first `parallel` of them at once and then the
    rest in order."""
    lines = [shlex.join(c) for c in commands]
    if parallel:
        lines = ["(" + " & ".join(lines[:parallel]) + " & wait)"] + lines[parallel:]
    return ["sh", "-c", " && ".join(lines)]


def same_metrics(a: Path, b: Path) -> str:
    """'ok' when two run directories' summary.json hold equal metrics (values, intervals, n)."""
    metrics = [json.loads((d / "summary.json").read_text())["metrics"] for d in (a, b)]
    return "ok: merged metrics equal the unsharded run's" if metrics[0] == metrics[1] else "MERGED METRICS DIFFER!"


def ratios(rows: dict[str, Measurement], pairs: list[tuple[str, str, str]]) -> list[str]:
    return [f"  {label}: {rows[a].wall_s / rows[b].wall_s:.2f} (wall), "
            f"{(rows[a].cpu_s or 0) / max(rows[b].cpu_s or 1e-9, 1e-9):.2f} (CPU)" for label, a, b in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="samples per task")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--quiet-wait", type=float, default=20.0, help="longest wait for an idle machine per run, s")
    parser.add_argument("--json", type=Path, default=BENCH / "scale_results.json")
    args = parser.parse_args()
    run_bench.QUIET_MAX_WAIT_S = args.quiet_wait
    n, reps, k = args.n, args.repeats, args.shards

    work = Path(tempfile.mkdtemp(prefix="harness-scale-bench-"))
    logs = work / "logs"
    logs.mkdir()
    csv_path, jsonl_path = write_xstest_csv(work / "prompts.csv", n), write_fortress_jsonl(work / "fortress.jsonl", n)
    info = machine()
    print(f"machine: {info['nproc']} cpu, Python {info['python']}; {info['date']}\n"
          f"workload: N={n} per task, concurrency {args.concurrency}, stub latency {args.latency * 1000:.0f} ms, "
          f"{k} shards; work dir {work}")
    stub = Stub(args.latency, max_requests=60 * n * reps + 1000, workdir=work)
    run = harness_cmd() + ["run", "--base-url", stub.base_url, "--max-connections", str(args.concurrency),
                           "--max-samples", str(args.concurrency), "--no-progress", "--no-cache",
                           "--judge", "openai/stub"]
    task_args = {"overrefusal": ["-T", f"overrefusal.data={csv_path}"],
                 "fortress": ["-T", f"fortress.data={jsonl_path}", "-T", "fortress.side=adversarial"]}
    both = ["--tasks", "overrefusal,fortress", *task_args["overrefusal"], *task_args["fortress"]]
    results: dict[str, object] = {"machine": info, "n": n, "repeats": reps, "shards": k,
                                  "latency_s": args.latency, "sections": {}, "ratios": {}}
    try:
        rows = {
            "pairs": measure(f"{len(MODELS) * 2} runs (one model, one task)", [sh(*[
                run + ["--model", m, "--tasks", t, *task_args[t], "--run-dir", str(work / f"pair-{r}-{i}-{t}")]
                for i, m in enumerate(MODELS) for t in task_args]) for r in range(reps)], stub, logs),
            "models": measure(f"{len(MODELS)} runs (one model, both tasks)", [sh(*[
                run + ["--model", m, *both, "--run-dir", str(work / f"model-{r}-{i}")]
                for i, m in enumerate(MODELS)]) for r in range(reps)], stub, logs),
            "sweep": measure("1 sweep (3 models x 2 tasks)", [
                run + ["--model", ",".join(MODELS), *both, "--sweep-dir", str(work / f"sweep-{r}")]
                for r in range(reps)], stub, logs),
        }
        rows["sweep"].note = "; ".join(filter(None, [
            "ok: leaderboard written" if (work / "sweep-0" / "leaderboard.md").exists() else "NO LEADERBOARD",
            rows["sweep"].note]))
        print_section(f"sweep: {len(MODELS)} models x 2 tasks, N={n} per task", list(rows.values()), 0)
        lines = ratios(rows, [("sweep / runs per model", "sweep", "models"),
                              ("sweep / runs per model and task", "sweep", "pairs")])
        print("\n".join(lines))
        results["sections"]["sweep"] = {key: asdict(m) for key, m in rows.items()}
        results["ratios"]["sweep"] = lines

        one = run + ["--model", "openai/stub", *both]

        def shard_cmds(prefix: str) -> list[list[str]]:
            return [one + ["--shard", f"{i}/{k}", "--run-dir", str(work / f"{prefix}-s{i}")] for i in range(1, k + 1)]

        def merge_cmd(prefix: str, out: str) -> list[str]:
            return harness_cmd() + ["merge", *[str(work / f"{prefix}-s{i}") for i in range(1, k + 1)],
                                    "--out", str(work / out)]

        rows = {
            "unsharded": measure("unsharded run", [one + ["--run-dir", str(work / f"full-{r}")]
                                                   for r in range(reps)], stub, logs),
            "sequential": measure(f"{k} shards one after another + merge", [
                sh(*shard_cmds(f"seq{r}"), merge_cmd(f"seq{r}", f"seq{r}-merged")) for r in range(reps)], stub, logs),
            "parallel": measure(f"{k} shards in parallel + merge", [
                sh(*shard_cmds(f"par{r}"), merge_cmd(f"par{r}", f"par{r}-merged"), parallel=k)
                for r in range(reps)], stub, logs),
            "merge": measure("harness merge alone", [merge_cmd("seq0", f"remerged-{r}") for r in range(reps)],
                             stub, logs),
        }
        for key in ("sequential", "parallel"):
            prefix = "seq0" if key == "sequential" else "par0"
            rows[key].note = "; ".join(filter(None, [same_metrics(work / "full-0", work / f"{prefix}-merged"),
                                                     rows[key].note]))
        print_section(f"shards: one model x 2 tasks, N={n} per task, {k} shards", list(rows.values()), 0)
        lines = ratios(rows, [(f"{k} sequential shards + merge / unsharded", "sequential", "unsharded"),
                              (f"{k} parallel shards + merge / unsharded", "parallel", "unsharded"),
                              ("merge / unsharded", "merge", "unsharded")])
        print("\n".join(lines))
        results["sections"]["shards"] = {key: asdict(m) for key, m in rows.items()}
        results["ratios"]["shards"] = lines
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        stub.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nresults: {args.json}")


if __name__ == "__main__":
    sys.exit(main())
