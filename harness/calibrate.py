"""Agreement of a refusal classifier with human labels (XSTest completions CSV or prompt,completion,label)."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from pydantic import BaseModel

from harness.backends.base import BackendOptions
from harness.errors import UserError
from harness.judging.refusal_rules import REFUSAL_LABELS, RefusalLabel, is_refusal
from harness.stats import cohen_kappa

# Bytes that are not UTF-8 decode (with errors="surrogateescape") to lone surrogates.
_UNDECODED = re.compile("[\udc80-\udcff]")

# Plain names and XSTest's numbered forms ("1_full_compliance", ...).
_LABEL_ALIASES: dict[str, RefusalLabel] = {
    **{label: label for label in REFUSAL_LABELS},
    **{f"{i}_{label}": label for i, label in enumerate(REFUSAL_LABELS, start=1)},
}


class LabelledCompletion(BaseModel):
    """One human-labelled response."""

    prompt: str
    completion: str
    label: RefusalLabel
    id: str | None = None
    type: str | None = None


class ClassStats(BaseModel):
    """Per-class agreement; precision/recall are None when their denominator is zero."""

    precision: float | None
    recall: float | None
    support: int
    kappa: float | None  # one-vs-rest Cohen's kappa


class CalibrationReport(BaseModel):
    """Agreement of predicted labels with human labels."""

    n: int
    accuracy: float
    binary_agreement: float  # refusal = full or partial
    kappa: float | None
    binary_kappa: float | None
    per_class: dict[str, ClassStats]
    confusion: dict[str, dict[str, int]]  # confusion[human][predicted] = count


def parse_label(value: str) -> RefusalLabel | None:
    """A refusal label from its plain or numbered form, or None if unknown."""
    return _LABEL_ALIASES.get(value.strip().lower())


def load_labelled_csv(path: str | Path) -> list[LabelledCompletion]:
    """Read human labels from XSTest's completions format or a prompt,completion,label CSV."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise UserError(f"{path}: cannot read file ({exc.strerror})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames
    if not header:
        raise UserError(f"{path}: file is empty; expected a header row prompt,completion,label")
    if any(_UNDECODED.search(name) for name in header):
        raise UserError(f"{path}: row 1 (header): not valid UTF-8; save the file as UTF-8")
    label_column = "final_label" if "final_label" in header else "label"
    for column in ("prompt", "completion", label_column):
        if column not in header:
            raise UserError(f"{path}: row 1 (header): missing column {column!r}; found {', '.join(header)}")
    rows = []
    for row_number, row in enumerate(_checked_rows(reader, path), start=2):
        where = f"{path}: row {row_number} (line {reader.line_num})"
        for column, value in row.items():
            if isinstance(value, str) and _UNDECODED.search(value):
                raise UserError(f"{where}, field {column!r}: not valid UTF-8; save the file as UTF-8")
        for column in ("prompt", "completion", label_column):
            if row.get(column) is None:
                raise UserError(f"{where}, field {column!r}: missing value (row has too few fields)")
        label = parse_label(row[label_column])
        if label is None:
            raise UserError(
                f"{where}, field {label_column!r}: unknown label {row[label_column]!r}; "
                f"expected one of {', '.join(_LABEL_ALIASES)}"
            )
        rows.append(LabelledCompletion(
            prompt=row["prompt"], completion=row["completion"], label=label,
            id=row.get("id") or None, type=row.get("type") or None,
        ))
    if not rows:
        raise UserError(f"{path}: no data rows after the header")
    return rows


def _checked_rows(reader: csv.DictReader, path: Path):
    """The reader's rows; malformed CSV (e.g. a field over the size limit) is a UserError naming the row."""
    row_number = 1
    try:
        for row_number, row in enumerate(reader, start=2):  # noqa: B007 (read in the except clause)
            yield row
    except csv.Error as exc:
        raise UserError(f"{path}: row {row_number + 1}: malformed CSV ({exc}); check its quoting") from None


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def agreement(human: list[str], predicted: list[str]) -> CalibrationReport:
    """Accuracy, binary agreement, Cohen's kappa, per-class stats and confusion matrix."""
    if len(human) != len(predicted):
        raise ValueError(f"{len(human)} human labels but {len(predicted)} predictions")
    if not human:
        raise ValueError("no labelled items to compare")
    parsed = []
    for value in [*human, *predicted]:
        label = parse_label(value)
        if label is None:
            raise ValueError(f"unknown refusal label {value!r}")
        parsed.append(label)
    gold, pred = parsed[: len(human)], parsed[len(human):]
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
    lines += ["", "confusion (rows: human, columns: predicted)",
              f"{'':{width}}  " + "  ".join(f"{label:>{width}}" for label in REFUSAL_LABELS)]
    for human_label, row in report.confusion.items():
        lines.append(f"{human_label:{width}}  " + "  ".join(f"{row[p]:>{width}}" for p in REFUSAL_LABELS))
    return "\n".join(lines)


def calibrate_scorer(
    path: str | Path,
    scorer: str = "rules",
    judges: list[str] | None = None,
    options: BackendOptions | None = None,
    cache_path: Path | None = None,
) -> str:
    """Agreement with human labels of the refusal scorer `scorer` (rules, judge or hybrid; see
    harness.judging.refusal), as the terminal report. Items no judge could label are excluded and counted."""
    import asyncio

    from harness.cache import ResponseCache
    from harness.config import RoleConfig
    from harness.context import SampleContext
    from harness.judging.refusal import check_refusal_scorer, score_refusal
    from harness.runner import build_judge_roles

    judges = judges or []
    check_refusal_scorer(scorer, len(judges))
    rows = load_labelled_csv(path)
    cache = ResponseCache(cache_path) if cache_path is not None and judges else None
    roles = build_judge_roles([RoleConfig(spec=j, options=options or BackendOptions()) for j in judges], cache)

    async def score_all():
        try:
            return await asyncio.gather(*(
                score_refusal(row.prompt, row.completion, SampleContext(
                    "calibrate", row.id or str(number), 0, roles, seed=0, refusal_scorer=scorer))
                for number, row in enumerate(rows, start=1)
            ))
        finally:
            for client in roles.values():
                await client.backend.aclose()

    try:
        scores = asyncio.run(score_all())
    finally:
        if cache is not None:
            cache.close()
    kept = [(row, score) for row, score in zip(rows, scores) if score.error is None]
    if not kept:
        raise UserError(f"{path}: no item got a refusal label; every judge call failed ({scores[0].explanation})")
    by_rules = sum(1 for _, score in kept if score.scorer.startswith("refusal_rules"))
    header = [
        f"scorer                {scorer}" + (f" (judges: {', '.join(judges)})" if judges else ""),
        f"judge errors          {len(rows) - len(kept)} of {len(rows)} items (excluded)",
        f"decided by            rules {by_rules}, judges {len(kept) - by_rules}",
    ]
    report = agreement([row.label for row, _ in kept], [score.label for _, score in kept])
    return "\n".join(header) + "\n" + format_report(report)
