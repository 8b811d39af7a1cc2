"""Peak memory of a large run: 50,000 samples on the scripted backend, then `harness report` on the result.

    python bench/memory_50k.py [--samples 50000] [--keep DIR]

Each command runs as a child process; its peak RSS is read from getrusage(RUSAGE_CHILDREN) (ru_maxrss is
the largest child so far, so the report is measured in a fresh bench process of its own). Target: < 500 MB.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from workload import write_xstest_csv

TARGET_MB = 500


def measure(args: list[str], cwd: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of `python -m harness ARGS` in a fresh child of a fresh process."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run([sys.executable, '-m', 'harness', *sys.argv[1:]], stdout=subprocess.DEVNULL)\n"
        "wall = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(done.returncode, peak, wall)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, *args], cwd=cwd, capture_output=True, text=True, check=True)
    code, peak, wall = out.stdout.split()
    if code != "0":
        raise SystemExit(f"harness {' '.join(args)} exited with {code}:\n{out.stderr}")
    return float(peak), float(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="harness-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    data = write_xstest_csv(work / "prompts.csv", args.samples)
    run = ["run", "--model", "scripted/comply-all", "-t", "overrefusal", "-T", f"data={data}",
           "--run-dir", "run", "--no-cache", "--no-progress"]
    run_peak, run_wall = measure(run, work)
    report_peak, report_wall = measure(["report", "run"], work)
    records = work / "run" / "records.jsonl"
    counts = json.loads((work / "run" / "manifest.json").read_text())["counts"]
    assert counts["records"] == args.samples, counts
    print(f"samples:            {args.samples}")
    print(f"records.jsonl:      {records.stat().st_size / 1e6:.1f} MB")
    print(f"harness run:        peak RSS {run_peak:.0f} MB, wall {run_wall:.1f} s "
          f"({args.samples / run_wall:.0f} samples/s)")
    print(f"harness report:     peak RSS {report_peak:.0f} MB, wall {report_wall:.1f} s")
    worst = max(run_peak, report_peak)
    print(f"target < {TARGET_MB} MB: {'PASS' if worst < TARGET_MB else 'FAIL'} (worst {worst:.0f} MB)")
    if args.keep is None:
        import shutil

        shutil.rmtree(work)
    sys.exit(0 if worst < TARGET_MB else 1)


if __name__ == "__main__":
    main()
