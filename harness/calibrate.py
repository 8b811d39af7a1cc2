"""`harness calibrate`: agreement of a refusal scorer or harm judge with human labels, and a calibration file.

The labelled file is read by its real column names (harness.judging.labelled_sets). The scorer's positive
class is refusal (rules, judge, hybrid) or harmful content (harm: the FORTRESS rubric judge, with a
`rubric` column, or a single-question judge with the user's `--rubric` file). When the file's labels mean
the other class (e.g. GPTFuzz's "jailbroken" for a refusal scorer), the human positive is the label's
negation. Unlabelled rows and items no judge could score are excluded and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from harness.backends.base import BackendOptions
from harness.errors import UserError
from harness.judging.calibration_stats import BinaryCounts, Estimate, binary_metrics
from harness.judging.labelled_sets import (
    LabelledRow,
    LabelledSet,
    Target,
    load_labelled_set,
    parse_refusal_label,
)
from harness.judging.refusal_rules import REFUSAL_LABELS, RefusalLabel, is_refusal
from harness.report.corrected import Calibration
from harness.stats import cohen_kappa

SCORERS = ("rules", "judge", "hybrid", "harm")


class ClassStats(BaseModel):
    """Per-class agreement; precision/recall are None when their denominator is zero."""

    precision: float | None
    recall: float | None
    support: int
    kappa: float | None  # one-vs-rest Cohen's kappa


class CalibrationReport(BaseModel):
    """Agreement of predicted 3-class refusal labels with human labels."""

    n: int
    accuracy: float
    binary_agreement: float  # refusal = full or partial
    kappa: float | None
    binary_kappa: float | None
    per_class: dict[str, ClassStats]
    confusion: dict[str, dict[str, int]]  # confusion[human][predicted] = count


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def agreement(human: list[str], predicted: list[str]) -> CalibrationReport:
    """Accuracy, binary agreement, Cohen's kappa, per-class stats and confusion matrix."""
    if len(human) != len(predicted):
        raise ValueError(f"{len(human)} human labels but {len(predicted)} predictions")
    if not human:
        raise ValueError("no labelled items to compare")
    gold, pred = _parse_all(human), _parse_all(predicted)
    n = len(gold)
    confusion: dict[str, dict[str, int]] = {h: {p: 0 for p in REFUSAL_LABELS} for h in REFUSAL_LABELS}
    for h, p in zip(gold, pred):
        confusion[h][p] += 1
    per_class: dict[str, ClassStats] = {}
    for label in REFUSAL_LABELS:
        hits = confusion[label][label]
        per_class[label] = ClassStats(
            precision=_ratio(hits, sum(confusion[h][label] for h in REFUSAL_LABELS)),
            recall=_ratio(hits, sum(confusion[label].values())),
            support=sum(confusion[label].values()),
            kappa=cohen_kappa([h == label for h in gold], [p == label for p in pred]),
        )
    gold_binary = [is_refusal(h) for h in gold]
    pred_binary = [is_refusal(p) for p in pred]
    return CalibrationReport(
        n=n,
        accuracy=sum(h == p for h, p in zip(gold, pred)) / n,
        binary_agreement=sum(h == p for h, p in zip(gold_binary, pred_binary)) / n,
        kappa=cohen_kappa(gold, pred),
        binary_kappa=cohen_kappa(gold_binary, pred_binary),
        per_class=per_class,
        confusion=confusion,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_report(report: CalibrationReport) -> str:
    """Plain-text summary table for the terminal."""
    width = max(len(label) for label in REFUSAL_LABELS)
    lines = [
        f"items                 {report.n}",
        f"accuracy (3-class)    {_fmt(report.accuracy)}",
        f"binary agreement      {_fmt(report.binary_agreement)}",
        f"Cohen's kappa         {_fmt(report.kappa)} (3-class)   {_fmt(report.binary_kappa)} (binary)",
        "",
        f"{'class':{width}}  precision  recall   kappa  support",
    ]
    for label, stats in report.per_class.items():
        lines.append(
            f"{label:{width}}  {_fmt(stats.precision):>9}  {_fmt(stats.recall):>6}  "
            f"{_fmt(stats.kappa):>6}  {stats.support:>7}"
        )
    lines += [
        "",
        "confusion (rows: human, columns: predicted)",
        f"{'':{width}}  " + "  ".join(f"{label:>{width}}" for label in REFUSAL_LABELS),
    ]
    for human_label, row in report.confusion.items():
        lines.append(f"{human_label:{width}}  " + "  ".join(f"{row[p]:>{width}}" for p in REFUSAL_LABELS))
    return "\n".join(lines)


def _parse_all(values: list[str]) -> list[RefusalLabel]:
    parsed = [parse_refusal_label(v) for v in values]
    bad = next((v for v, p in zip(values, parsed) if p is None), None)
    if bad is not None:
        raise ValueError(f"unknown refusal label {bad!r}")
    return parsed  # type: ignore[return-value]


def read_rubric(path: Path) -> list[str]:
    """A user rubric: yes/no questions, one per line ("yes" = harmful content); blank and # lines skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the rubric ({exc})") from None
    questions = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not questions:
        raise UserError(f"{path}: the rubric has no questions (one yes/no question per line)")
    return questions


def _check(labelled: LabelledSet, scorer: str, judges: list[str], rubric: list[str] | None) -> Target:
    """The scorer's target class; UserError for combinations that cannot be calibrated."""
    from harness.judging.refusal import check_refusal_scorer

    if scorer not in SCORERS:
        raise UserError(f"unknown scorer '{scorer}'; use one of {', '.join(SCORERS)}")
    if scorer != "harm":
        check_refusal_scorer(scorer, len(judges))
        return "refusal"
    if not judges:
        raise UserError("--scorer harm needs a judge model: pass --judge <spec>")
    if labelled.label_means != "harm":
        raise UserError(
            f"{labelled.path}: its labels mean refusal; the harm judge needs labels meaning harmful "
            "content (GPTFuzz, JailbreakEval, or --columns ... --label-means harm)"
        )
    missing = next((r for r in labelled.labelled if r.rubric is None), None)
    if rubric is None and missing is not None:
        raise UserError(
            f"{labelled.path}: row {missing.row} has no 'rubric' column value; "
            "pass --rubric QUESTIONS_FILE (one yes/no question per line)"
        )
    return "harm"


async def _predict(
    row: LabelledRow, number: int, scorer: str, rubric: list[str] | None, roles
) -> tuple[bool | None, Any]:
    """(predicted positive, 3-class label or harm answers); (None, reason) when no judge could decide."""
    from harness.context import SampleContext
    from harness.judging.refusal import score_refusal
    from harness.types import Sample

    ctx = SampleContext(
        "calibrate", row.id or str(number), 0, roles, seed=0, refusal_scorer=scorer if scorer != "harm" else "rules"
    )
    if scorer != "harm":
        score = await score_refusal(row.prompt, row.response, ctx)
        return (None, score.explanation) if score.error else (is_refusal(score.label or ""), score)
    from harness_tasks.fortress.task import grade_harm  # the FORTRESS judge

    sample = Sample(id=ctx.sample_id, input=row.prompt, metadata={"rubric": row.rubric or rubric})
    score = await grade_harm(sample, row.response, ctx)
    return (None, score.explanation) if score.error else (float(score.value) > 0, score)


def _score_rows(
    rows: list[LabelledRow],
    scorer: str,
    judges: list[str],
    rubric: list[str] | None,
    options: BackendOptions | None,
    cache_path: Path | None,
) -> list[tuple[bool | None, Any]]:
    import asyncio

    from harness.cache import ResponseCache
    from harness.config import RoleConfig
    from harness.runner import build_judge_roles

    cache = ResponseCache(cache_path) if cache_path is not None and judges else None
    roles = build_judge_roles([RoleConfig(spec=j, options=options or BackendOptions()) for j in judges], cache)

    async def score_all():
        try:
            return await asyncio.gather(*(_predict(row, n, scorer, rubric, roles) for n, row in enumerate(rows, 1)))
        finally:
            for client in roles.values():
                await client.backend.aclose()

    try:
        return asyncio.run(score_all())
    finally:
        if cache is not None:
            cache.close()


def _metrics_doc(counts: BinaryCounts) -> dict[str, dict[str, Any]]:
    return {name: est.as_dict() for name, est in binary_metrics(counts).items()}


def calibrate(
    path: str | Path,
    scorer: str = "rules",
    judges: list[str] | None = None,
    *,
    options: BackendOptions | None = None,
    cache_path: Path | None = None,
    columns: dict[str, str] | None = None,
    positive: str | None = None,
    label_means: Target | None = None,
    categories: list[str] | None = None,
    questions: Path | None = None,
    rubric_path: Path | None = None,
) -> tuple[Calibration, str]:
    """Score every labelled row with `scorer`; returns the calibration and the terminal report."""
    judges = judges or []
    if columns is not None and label_means is None:
        label_means = "harm" if scorer == "harm" else "refusal"  # by default a label means the scorer's class
    labelled = load_labelled_set(
        path, columns=columns, positive=positive, label_means=label_means, categories=categories, questions=questions
    )
    rubric = read_rubric(rubric_path) if rubric_path is not None else None
    target = _check(labelled, scorer, judges, rubric)
    rows = labelled.labelled
    if not rows:
        raise UserError(f"{labelled.path}: no row has a label")
    predictions = _score_rows(rows, scorer, judges, rubric, options, cache_path)
    kept = [(row, pred, detail) for row, (pred, detail) in zip(rows, predictions) if pred is not None]
    if not kept:
        raise UserError(f"{labelled.path}: no item got a verdict; every judge call failed ({predictions[0][1]})")
    same = labelled.label_means == target
    human = [row.positive == same for row, _, _ in kept]
    counts = BinaryCounts.from_labels(human, [pred for _, pred, _ in kept])
    per_category = {
        column: {
            value: {"n": c.n, "counts": c.as_dict(), "metrics": _metrics_doc(c)}
            for value, c in _by_category(kept, human, column).items()
        }
        for column in labelled.category_columns
    }
    three = None
    if labelled.format == "xstest" and target == "refusal":
        three = agreement([r.refusal_label or "" for r, _, _ in kept], [d.label for _, _, d in kept])
    by_rules = sum(1 for _, _, d in kept if d.scorer.startswith("refusal_rules"))
    calibration = Calibration(
        file=str(labelled.path),
        sha256=labelled.sha256,
        format=labelled.format,
        scorer=scorer,
        target=target,
        judges=judges,
        positive_label=labelled.positive_label,
        label_means=labelled.label_means,
        n_rows=len(labelled.rows),
        excluded={"unlabelled": len(labelled.rows) - len(rows), "judge_errors": len(rows) - len(kept)},
        counts=counts.as_dict(),
        metrics=_metrics_doc(counts),
        per_category=per_category,
        three_class=three.model_dump() if three else None,
    )
    header = [
        f"scorer                {scorer}" + (f" (judges: {', '.join(judges)})" if judges else ""),
        f"labelled set          {labelled.path} ({labelled.format}; positive label: {labelled.positive_label})",
        f"positive class        {target}" + ("" if same else f" = label is not {labelled.positive_label}"),
        f"unlabelled rows       {calibration.excluded['unlabelled']} (excluded)",
        f"judge errors          {len(rows) - len(kept)} of {len(rows)} items (excluded)",
    ]
    if scorer != "harm":
        header.append(f"decided by            rules {by_rules}, judges {len(kept) - by_rules}")
    if labelled.format == "gptfuzz" and questions is None and judges:
        header.append(
            "prompts               question indexes only; pass --questions question_list.csv "
            "so the judges see the questions"
        )
    parts = ["\n".join(header), format_binary(calibration)]
    if three is not None:
        parts.append(format_report(three))
    return calibration, "\n\n".join(parts)


def _by_category(kept, human: list[bool], column: str) -> dict[str, BinaryCounts]:
    groups: dict[str, tuple[list[bool], list[bool]]] = {}
    for (row, pred, _), truth in zip(kept, human):
        h, p = groups.setdefault(row.categories.get(column, ""), ([], []))
        h.append(truth)
        p.append(pred)
    return {value: BinaryCounts.from_labels(h, p) for value, (h, p) in sorted(groups.items())}


def _estimate_text(data: dict[str, Any]) -> str:
    est = Estimate(data["value"], data["ci_low"], data["ci_high"], data.get("reason"))
    if est.value is None:
        return f"n/a ({est.reason})"
    interval = f" [{est.ci_low:.3f}, {est.ci_high:.3f}]" if est.ci_low is not None else ""
    return f"{est.value:.3f}{interval}"


def format_binary(cal: Calibration) -> str:
    """Binary confusion matrix, metrics with 95% intervals and the per-category breakdown."""
    c = cal.counts
    lines = [
        f"binary ({cal.target} = positive; rows: human, columns: scorer)",
        f"{'':18}{'positive':>10}{'negative':>10}",
        f"{'human positive':18}{c['tp']:>10}{c['fn']:>10}",
        f"{'human negative':18}{c['fp']:>10}{c['tn']:>10}",
        "",
    ]
    lines += [f"{name:22}{_estimate_text(value)}" for name, value in cal.metrics.items()]
    for column, groups in cal.per_category.items():
        lines += ["", f"by {column}:", f"{'':28}{'n':>5}  {'accuracy':>22}  {'sensitivity':>22}  {'specificity':>22}"]
        for value, group in groups.items():
            m = group["metrics"]
            lines.append(
                f"{value[:28]:28}{group['n']:>5}  "
                + "  ".join(f"{_estimate_text(m[k]):>22}" for k in ("accuracy", "sensitivity", "specificity"))
            )
    return "\n".join(lines)
