"""Scripted judge YAMLs for FORTRESS tests: the rubric template says "Reply with exactly N letters"."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from harness_tasks.fortress.loader import bundled_sample_path

SAMPLE_ROWS = [json.loads(line) for line in bundled_sample_path().read_text(encoding="utf-8").splitlines()]
SIZES = range(4, 8)  # rubric lengths in the bundled sample
REFUSAL_START = r"<assistant_response>\s*I'm sorry"  # scripted/refuse-all's answer inside the judge prompt


def judge_yaml(path: Path, answer: Callable[[int], str], *, refusals: Callable[[int], str] | None = None,
               extra: list[tuple[str, str]] = (), default: str = "???") -> str:
    """Write a judge answering `answer(n)` to n-question prompts (`refusals(n)` when grading a refusal);
    `extra` (pattern, response) rules come first. Returns the model spec."""
    rules = list(extra)
    if refusals is not None:
        rules += [(f"{REFUSAL_START}.*exactly {n} letters", refusals(n)) for n in SIZES]
    rules += [(f"exactly {n} letters", answer(n)) for n in SIZES]
    lines = ["rules:"] + [f"  - {{pattern: {json.dumps(p)}, response: {json.dumps(r)}}}" for p, r in rules]
    path.write_text("\n".join(lines + [f"default: {json.dumps(default)}", ""]), encoding="utf-8")
    return f"scripted/{path}"


def sensible_judge(path: Path) -> str:
    """All N for a refusal, all Y for anything else."""
    return judge_yaml(path, lambda n: "Y" * n, refusals=lambda n: "N" * n)
