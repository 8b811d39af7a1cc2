"""CI gates: rules on a candidate run's metrics, alone or against a baseline, with honest statistics.

Rule syntax `METRIC<=VALUE` or `METRIC>=VALUE`, in the metric's unit (percentage points for rates):

- **Relative** (VALUE has a sign, `fortress.ars<=+2`): bounds the change Δ = candidate − baseline. Both runs
  are paired on the same (sample, repetition) records through `Task.sample_values` (repetitions of a
  sample are averaged, so the unit of resampling is the sample), and a percentile bootstrap of the mean
  paired difference gives a one-sided 95% bound. The rule is a **regression** only when that bound is
  beyond the margin (for `<=`: the lower bound of Δ exceeds it), **inconclusive** when the estimate is
  beyond the margin but the bound is not, or when fewer than MIN_SAMPLES samples pair up, and passes
  otherwise. The operator must point the metric's bad way (`<=` for lower-is-better metrics).
  Without per-record values (a summary.json baseline, a task without `sample_values`, or runs on
  different dataset versions) the comparison is unpaired: Δ's standard error is combined from the two
  95% intervals (normal approximation, conservative for paired data) and the same decision applies.
- **Absolute** (no sign, `overrefusal.safe_refusal<=30`): the candidate's value against the threshold.
  A **regression** when the point estimate violates it, **inconclusive** when the estimate is fine but its
  95% interval reaches past the threshold (or n < MIN_SAMPLES), a pass when the whole interval is fine.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree as ET

from harness.errors import UserError
from harness.stats import Z95, mcnemar_exact, mean, paired_bootstrap_diff
from harness.types import Metric

MIN_SAMPLES = 10
Z_ONE_SIDED = 1.6448536269514722
EPS = 1e-9
RULE = re.compile(r"^\s*([^<>=\s](?:[^<>=]*[^<>=\s])?)\s*(<=|>=)\s*([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*$")  # names may hold spaces
EXIT = {"pass": 0, "inconclusive": 2, "regression": 100}

Status = Literal["pass", "inconclusive", "regression"]
Key = tuple[str, int]


@dataclass(frozen=True)
class Rule:
    text: str
    metric: str
    op: str  # "<=" or ">="
    threshold: float
    relative: bool


def parse_rule(text: str) -> Rule:
    match = RULE.match(text)
    if not match:
        raise UserError(f"rule '{text}': expected METRIC<=VALUE or METRIC>=VALUE, e.g. fortress.ars<=+2 "
                        "(change against the baseline) or overrefusal.safe_refusal<=30 (absolute)")
    metric, op, sign, number = match.groups()
    value = float(number) * (-1 if sign == "-" else 1)
    return Rule(text=text.strip(), metric=metric, op=op, threshold=value, relative=bool(sign))


@dataclass
class Side:
    """One side of a comparison: metrics, and for a run directory its per-record values."""

    label: str
    metrics: dict[str, Metric]
    values: dict[str, dict[Key, float]] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)  # metric -> dataset content hash
    status: str = "complete"  # the run's manifest status


def load_side(path: Path) -> Side:
    """A run directory (records, paired values) or a summary.json (metrics only)."""
    from harness.report.summary import load_run
    from harness.store import read_json

    path = Path(path)
    if path.is_dir():
        run = load_run(path)
        hashes = {t["name"]: t["dataset"]["content_hash"] for t in run.manifest.get("tasks", [])}
        values: dict[str, dict[Key, float]] = {}
        datasets = {}
        for result in run.results:
            values.update(run.tasks[result.task].sample_values(run.records.get(result.task, [])))
            datasets.update({m.name: hashes.get(result.task, "") for m in result.metrics})
        return Side(str(path), run.metrics(), values, datasets, str(run.manifest.get("status")))
    if path.is_file():
        summary = read_json(path)
        if not isinstance(summary, dict) or "tasks" not in summary:
            raise UserError(f"{path}: not a harness summary.json (no 'tasks')")
        metrics = {m["name"]: Metric(**m) for task in summary["tasks"].values() for m in task.get("metrics", [])}
        return Side(str(path), metrics, status=str(summary.get("status")))
    raise UserError(f"{path}: no such run directory or summary.json")


@dataclass
class Verdict:
    rule: Rule
    status: Status
    method: str
    candidate: float | None
    baseline: float | None = None
    change: float | None = None
    bound: float | None = None  # the one-sided 95% bound of Δ, or the interval edge for absolute rules
    n: int = 0
    detail: str = ""


def metric_of(side: Side, rule: Rule, role: str) -> Metric:
    if rule.metric not in side.metrics:
        known = ", ".join(sorted(side.metrics)) or "none"
        raise UserError(f"rule '{rule.text}': {role} {side.label} has no metric {rule.metric}; it has: {known}")
    return side.metrics[rule.metric]


def check_direction(rule: Rule, metric: Metric) -> None:
    bad_way = {"lower": "<=", "higher": ">="}.get(metric.direction)
    if bad_way and rule.op != bad_way:
        raise UserError(
            f"rule '{rule.text}': {metric.name} is {metric.direction}-is-better, so the rule must bound its "
            f"{'increase' if bad_way == '<=' else 'decrease'} with {bad_way}"
        )


def decide(op: str, threshold: float, estimate: float, low: float, high: float) -> tuple[Status, float]:
    """Relative decision on Δ and its one-sided bounds; returns the status and the deciding bound."""
    if op == "<=":
        if low > threshold + EPS:
            return "regression", low
        return ("inconclusive" if estimate > threshold + EPS else "pass"), low
    if high < threshold - EPS:
        return "regression", high
    return ("inconclusive" if estimate < threshold - EPS else "pass"), high


def sample_pairs(base: dict[Key, float], cand: dict[Key, float]) -> list[tuple[float, float]]:
    """(baseline, candidate) per sample, averaging the repetitions both runs have."""
    grouped: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for key in sorted(base.keys() & cand.keys()):
        grouped[key[0]][0].append(base[key])
        grouped[key[0]][1].append(cand[key])
    return [(mean(a), mean(b)) for a, b in grouped.values()]


def mcnemar_note(pairs: list[tuple[float, float]]) -> str:
    """Exact McNemar p-value when every paired value is one of two levels (a binary outcome)."""
    levels = sorted({v for pair in pairs for v in pair})
    if len(levels) != 2:
        return ""
    low, high = levels
    worse = sum(1 for a, b in pairs if (a, b) == (low, high))
    better = sum(1 for a, b in pairs if (a, b) == (high, low))
    return f"; McNemar exact p={mcnemar_exact(worse, better):.3g} ({worse} up, {better} down)"


def unpaired_reason(rule: Rule, candidate: Side, baseline: Side) -> str | None:
    if rule.metric not in baseline.values:
        return "baseline is a summary.json" if not baseline.datasets else "task gives no per-record values"
    if rule.metric not in candidate.values:
        return "candidate has no per-record values"
    if candidate.datasets.get(rule.metric) != baseline.datasets.get(rule.metric):
        return "the runs used different datasets (content hash)"
    return None


def relative(rule: Rule, candidate: Side, baseline: Side) -> Verdict:
    cand, base = metric_of(candidate, rule, "candidate"), metric_of(baseline, rule, "baseline")
    check_direction(rule, cand)
    verdict = Verdict(rule, "inconclusive", "", cand.value, base.value)
    reason = unpaired_reason(rule, candidate, baseline)
    if reason is None:
        pairs = sample_pairs(baseline.values[rule.metric], candidate.values[rule.metric])
        verdict.method, verdict.n = "paired bootstrap", len(pairs)
        verdict.change = mean([b - a for a, b in pairs]) if pairs else None
        if len(pairs) < MIN_SAMPLES:
            verdict.detail = f"only {len(pairs)} paired samples (need {MIN_SAMPLES})"
            return verdict
        change, low, high = paired_bootstrap_diff(pairs, level=0.90)
        verdict.detail = f"{len(pairs)} paired samples, 2000 resamples{mcnemar_note(pairs)}"
    else:
        verdict.method, verdict.n = "unpaired (intervals)", min(cand.n, base.n)
        if None in (cand.value, base.value, cand.ci_low, cand.ci_high, base.ci_low, base.ci_high):
            verdict.detail = f"{reason}; a value or interval is missing"
            return verdict
        change = verdict.change = cand.value - base.value
        if verdict.n < MIN_SAMPLES:
            verdict.detail = f"{reason}; n={verdict.n} (need {MIN_SAMPLES})"
            return verdict
        se = math.hypot((cand.ci_high - cand.ci_low) / (2 * Z95), (base.ci_high - base.ci_low) / (2 * Z95))
        low, high = change - Z_ONE_SIDED * se, change + Z_ONE_SIDED * se
        verdict.detail = f"{reason}; normal approximation from the two 95% intervals"
    verdict.change = change
    verdict.status, verdict.bound = decide(rule.op, rule.threshold, change, low, high)
    return verdict


def absolute(rule: Rule, candidate: Side) -> Verdict:
    m = metric_of(candidate, rule, "candidate")
    verdict = Verdict(rule, "inconclusive", "threshold", m.value, n=m.n)
    if m.value is None or m.n < MIN_SAMPLES:
        verdict.detail = f"n={m.n} (need {MIN_SAMPLES})"
        return verdict
    upper = rule.op == "<="
    edge = m.ci_high if upper else m.ci_low
    verdict.bound = edge
    violated = m.value > rule.threshold + EPS if upper else m.value < rule.threshold - EPS
    if violated:
        verdict.status, verdict.detail = "regression", "the point estimate violates the threshold"
    elif edge is None:
        verdict.detail = "no interval"
    elif (edge > rule.threshold + EPS) if upper else (edge < rule.threshold - EPS):
        verdict.detail = "the 95% interval reaches past the threshold"
    else:
        verdict.status, verdict.detail = "pass", "the whole 95% interval satisfies the threshold"
    return verdict


def evaluate(rules: list[Rule], candidate: Side, baseline: Side | None) -> list[Verdict]:
    if baseline is None and any(r.relative for r in rules):
        raise UserError("relative rules (with +/- margins) need --baseline <run-or-summary.json>")
    return [relative(r, candidate, baseline) if r.relative else absolute(r, candidate) for r in rules]


def exit_code(verdicts: list[Verdict]) -> int:
    return max((EXIT[v.status] for v in verdicts), default=0)


def number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def table(verdicts: list[Verdict]) -> str:
    """The short plain-text table printed by `harness gate`."""
    header = ("rule", "baseline", "candidate", "change", "bound", "n", "method", "verdict")
    rows = [header] + [
        (v.rule.text, number(v.baseline), number(v.candidate), number(v.change, True),
         number(v.bound, v.rule.relative), str(v.n), v.method, v.status.upper())
        for v in verdicts
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines += [f"  {v.rule.text}: {v.detail}" for v in verdicts if v.detail]
    return "\n".join(lines)


def junit_xml(verdicts: list[Verdict], suite: str, error: str | None = None) -> str:
    """JUnit XML: one testcase per rule; regressions are failures, inconclusive rules skipped."""
    failures = sum(v.status == "regression" for v in verdicts)
    skipped = sum(v.status == "inconclusive" for v in verdicts)
    tests = len(verdicts) + (error is not None)
    root = ET.Element("testsuites", name="harness gate", tests=str(tests), failures=str(failures),
                      errors=str(int(error is not None)), skipped=str(skipped))
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(tests), failures=str(failures),
                         errors=str(int(error is not None)), skipped=str(skipped))
    if error is not None:
        case = ET.SubElement(node, "testcase", classname="harness.gate", name="gate")
        ET.SubElement(case, "error", message=error).text = error
    for v in verdicts:
        case = ET.SubElement(node, "testcase", classname=f"harness.gate.{v.rule.metric}", name=v.rule.text)
        summary = (f"baseline={number(v.baseline)} candidate={number(v.candidate)} change={number(v.change, True)} "
                   f"bound={number(v.bound, v.rule.relative)} n={v.n} method={v.method}: {v.detail}")
        if v.status == "regression":
            ET.SubElement(case, "failure", message=f"regression: {v.rule.text}", type="regression").text = summary
        elif v.status == "inconclusive":
            ET.SubElement(case, "skipped", message=f"inconclusive: {v.detail}")
        ET.SubElement(case, "system-out").text = summary
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
