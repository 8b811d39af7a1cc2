"""Profile one `harness run` of the benchmark workload under cProfile and print where the time goes.

    python bench/profile_run.py judged [--n 2000] [--cached] [--top 30]

Workloads: `single` (overrefusal, one call per sample) or `judged` (fortress side=adversarial, one target
and one judge call per sample), against bench/stub_server.py. With --cached the run is profiled on a
second pass with the response cache warm and a fresh run directory. Prints the functions with the most
cumulative time (engine, tasks, jinja2, stats, the HTTP client stack) and keeps the .prof file for
snakeviz / pstats. cProfile roughly doubles the time of call-heavy code: read the shares, not the seconds.
"""
from __future__ import annotations

import argparse
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

from run_bench import Stub, harness_cmd
from workload import write_fortress_jsonl, write_xstest_csv

FOCUS = (r"harness/|tasks/|jinja2/environment|stats\.py|openai/_base_client|openai/_utils/_transform"
         r"|httpcore2/_async/connection_pool|tenacity/asyncio|sqlite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["single", "judged"])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--cached", action="store_true", help="profile a re-run with the cache warm")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="harness-profile-"))
    if args.workload == "single":
        task_args = ["--tasks", "overrefusal", "-T", f"data={write_xstest_csv(workdir / 'prompts.csv', args.n)}"]
    else:
        data = write_fortress_jsonl(workdir / "fortress.jsonl", args.n)
        task_args = ["--tasks", "fortress", "-T", f"data={data}", "-T", "side=adversarial", "--judge", "openai/stub"]
    stub = Stub(0.05, max_requests=4 * args.n + 100, workdir=workdir)
    common = ["run", "--model", "openai/stub", "--base-url", stub.base_url, "--max-connections",
              str(args.concurrency), "--max-samples", str(args.concurrency), "--no-progress", *task_args]
    cache = ["--cache", str(workdir / "cache.sqlite")] if args.cached else ["--no-cache"]
    profile = workdir / f"{args.workload}{'-cached' if args.cached else ''}.prof"
    try:
        if args.cached:
            subprocess.run(harness_cmd() + common + cache + ["--run-dir", str(workdir / "warm")],
                           check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "harness", *common, *cache,
                        "--run-dir", str(workdir / "profiled")], check=True, stdout=subprocess.DEVNULL)
    finally:
        stub.stop()
    stats = pstats.Stats(str(profile))
    print(f"total {stats.total_tt:.2f} s under cProfile; profile kept at {profile}")
    stats.sort_stats("cumulative").print_stats(FOCUS, args.top)


if __name__ == "__main__":
    main()
