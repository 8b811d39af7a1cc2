"""CI gates: rules on a candidate run's metrics, alone or against a baseline, decided on intervals.

Rule syntax `METRIC<=VALUE` or `METRIC>=VALUE`, in the metric's unit (percentage points for rates). Every
rule is decided on an interval, never on a point estimate: **pass** only when the whole interval is on the
good side of the threshold, **regression** only when the whole interval is beyond it, **inconclusive**
otherwise (and when fewer than MIN_SAMPLES samples back the interval).

- **Relative** (VALUE has a sign, `fortress.ars<=+2`): bounds the change Δ = candidate − baseline. Each run's
  per-record values (`Task.metric_values`) are averaged per sample over that run's repetitions, the runs
  are paired on the sample ids both have, and a percentile bootstrap of the mean paired difference
  (resampling samples) gives the interval [lower, upper one-sided 95% bound]. The operator must point the
  metric's bad way (`<=` for lower-is-better metrics). Without per-record values (a summary.json
  baseline, a metric that is not a mean of per-record values, or runs on different dataset versions)
  the comparison is unpaired: Δ's standard error is combined from the two 95% intervals (normal
  approximation, conservative for paired data) and gives the same one-sided bounds.
- **Absolute** (no sign, `overrefusal.safe_refusal<=30`): the candidate metric's 95% interval against the
  threshold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree as ET

from harness.errors import UserError
from harness.metrics import sample_means
from harness.stats import Z95, mcnemar_exact, mean, paired_bootstrap_diff
from harness.types import Metric

MIN_SAMPLES = 10
Z_ONE_SIDED = 1.6448536269514722
EPS = 1e-9
RULE = re.compile(
    r"^\s*([^<>=\s](?:[^<>=]*[^<>=\s])?)\s*(<=|>=)\s*([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*$"
)  # names may hold spaces
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
        raise UserError(
            f"rule '{text}': expected METRIC<=VALUE or METRIC>=VALUE, e.g. fortress.ars<=+2 "
            "(change against the baseline) or overrefusal.safe_refusal<=30 (absolute)"
        )
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
            values.update({name: v.values for name, v in run.values.get(result.task, {}).items()})
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
    low: float | None = None  # the interval the rule is decided on: one-sided 95% bounds of Δ (relative)
    high: float | None = None  # or the metric's 95% interval (absolute)
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


def decide(op: str, threshold: float, low: float, high: float) -> Status:
    """Pass when the whole interval [low, high] satisfies `op threshold`, regression when the whole interval
    violates it, inconclusive when it straddles the threshold."""
    if op == "<=":
        return "pass" if high <= threshold + EPS else "regression" if low > threshold + EPS else "inconclusive"
    return "pass" if low >= threshold - EPS else "regression" if high < threshold - EPS else "inconclusive"


def sample_pairs(base: dict[Key, float], cand: dict[Key, float]) -> list[tuple[float, float]]:
    """(baseline, candidate) per sample id both runs have, each the mean over that run's repetitions."""
    base_means, cand_means = sample_means(base), sample_means(cand)
    return [(base_means[s], cand_means[s]) for s in sorted(base_means.keys() & cand_means.keys())]


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
        return "baseline is a summary.json" if not baseline.datasets else "the metric has no per-record values"
    if rule.metric not in candidate.values:
        return "candidate has no per-record values"
    if candidate.datasets.get(rule.metric) != baseline.datasets.get(rule.metric):
        return "the runs used different datasets (content hash)"
    return None


def bound_note(*metrics: Metric) -> str:
    """'; only a bound: >1000' for metrics that the data bound without a point estimate (censored)."""
    bounds = [m.bound.text() for m in metrics if m.value is None and m.bound is not None]
    return f"; only a bound: {', '.join(bounds)}" if bounds else ""


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
        assert low is not None and high is not None  # only None for no pairs, and there are >= MIN_SAMPLES
        verdict.detail = f"{len(pairs)} paired samples, 2000 resamples, one-sided 95% bounds{mcnemar_note(pairs)}"
    else:
        verdict.method, verdict.n = "unpaired (intervals)", min(cand.n, base.n)
        c_value, c_low, c_high = cand.value, cand.ci_low, cand.ci_high
        b_value, b_low, b_high = base.value, base.ci_low, base.ci_high
        if c_value is None or b_value is None or c_low is None or c_high is None or b_low is None or b_high is None:
            verdict.detail = f"{reason}; a value or interval is missing{bound_note(cand, base)}"
            return verdict
        change = verdict.change = c_value - b_value
        if verdict.n < MIN_SAMPLES:
            verdict.detail = f"{reason}; n={verdict.n} (need {MIN_SAMPLES})"
            return verdict
        se = math.hypot((c_high - c_low) / (2 * Z95), (b_high - b_low) / (2 * Z95))
        low, high = change - Z_ONE_SIDED * se, change + Z_ONE_SIDED * se
        verdict.detail = f"{reason}; normal approximation from the two 95% intervals, one-sided 95% bounds"
    verdict.change, verdict.low, verdict.high = change, low, high
    verdict.status = decide(rule.op, rule.threshold, low, high)
    return verdict


def absolute(rule: Rule, candidate: Side) -> Verdict:
    m = metric_of(candidate, rule, "candidate")
    verdict = Verdict(rule, "inconclusive", "threshold", m.value, n=m.n, low=m.ci_low, high=m.ci_high)
    if m.value is None and m.bound is not None:
        verdict.detail = f"no estimate to test{bound_note(m)}"
    elif m.value is None or m.n < MIN_SAMPLES:
        verdict.detail = f"n={m.n} (need {MIN_SAMPLES})"
    elif m.ci_low is None or m.ci_high is None:
        verdict.detail = "no interval"
    else:
        verdict.status = decide(rule.op, rule.threshold, m.ci_low, m.ci_high)
        verdict.detail = {
            "pass": "the whole 95% interval satisfies the threshold",
            "regression": "the whole 95% interval violates the threshold",
            "inconclusive": "the 95% interval straddles the threshold",
        }[verdict.status]
    return verdict


def evaluate(rules: list[Rule], candidate: Side, baseline: Side | None) -> list[Verdict]:
    if baseline is None and any(r.relative for r in rules):
        raise UserError("relative rules (with +/- margins) need --baseline <run-or-summary.json>")
    # baseline is not None whenever a rule is relative (checked above)
    return [
        relative(r, candidate, baseline) if r.relative and baseline is not None else absolute(r, candidate)
        for r in rules
    ]


def exit_code(verdicts: list[Verdict]) -> int:
    return max((EXIT[v.status] for v in verdicts), default=0)


def number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def interval(v: Verdict) -> str:
    """'[low,high]' without spaces (signed for a change), '-' when there is none."""
    if v.low is None or v.high is None:
        return "-"
    return f"[{number(v.low, v.rule.relative)},{number(v.high, v.rule.relative)}]"


def table(verdicts: list[Verdict]) -> str:
    """The short plain-text table printed by `harness gate`."""
    header = ("rule", "baseline", "candidate", "change", "interval", "n", "method", "verdict")
    rows = [header] + [
        (
            v.rule.text,
            number(v.baseline),
            number(v.candidate),
            number(v.change, True),
            interval(v),
            str(v.n),
            v.method,
            v.status.upper(),
        )
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
    root = ET.Element(
        "testsuites",
        name="harness gate",
        tests=str(tests),
        failures=str(failures),
        errors=str(int(error is not None)),
        skipped=str(skipped),
    )
    node = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(tests),
        failures=str(failures),
        errors=str(int(error is not None)),
        skipped=str(skipped),
    )
    if error is not None:
        case = ET.SubElement(node, "testcase", classname="harness.gate", name="gate")
        ET.SubElement(case, "error", message=error).text = error
    for v in verdicts:
        case = ET.SubElement(node, "testcase", classname=f"harness.gate.{v.rule.metric}", name=v.rule.text)
        summary = (
            f"baseline={number(v.baseline)} candidate={number(v.candidate)} change={number(v.change, True)} "
            f"interval={interval(v)} n={v.n} method={v.method}: {v.detail}"
        )
        if v.status == "regression":
            ET.SubElement(case, "failure", message=f"regression: {v.rule.text}", type="regression").text = summary
        elif v.status == "inconclusive":
            ET.SubElement(case, "skipped", message=f"inconclusive: {v.detail}")
        ET.SubElement(case, "system-out").text = summary
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
