"""Calibration files, a run's judging settings, and the judge-validity parts of its report.

`harness calibrate` writes a calibration file (`Calibration`): a scorer's 2x2 agreement with human labels in
the scorer's own positive class (`target`: refusal, or harm = harmful content). `--judge-calibration` on
run / report / rejudge stores the files with the panel rule in the run directory (`judging.json`), so a
later `harness report` keeps them.

A task lists its judge-based rates in `Task.judged_rates` ({metric: (score name, polarity)}); polarity
False means the metric counts the score's negatives (e.g. compliance with a refusal score). For each such
metric the report shows the observed share of items the scorer called positive (a per-item value above
zero, so ARS becomes "responses with any Y") and its Rogan-Gladen correction (calibration_stats).

The report also shows, for every panel of three or more judges, each judge's agreement with the panel
majority, and decides panel scores again under the stored panel rule (harness.judging.panel.revote).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from harness.errors import UserError
from harness.judging.calibration_stats import BinaryCounts, corrected_rate

if TYPE_CHECKING:
    from harness.report.summary import LoadedRun
    from harness.types import Record

CALIBRATION_VERSION = 1
JUDGING = "judging.json"
PanelRule = Literal["majority", "weighted", "unanimous"]
CORRECTED_TABLE = "judge-corrected rates (Rogan-Gladen)"


class Calibration(BaseModel):
    """What `harness calibrate` writes: a scorer's agreement with one labelled file."""

    calibration_version: int = CALIBRATION_VERSION
    file: str
    sha256: str
    format: str
    scorer: str  # rules, judge, hybrid or harm
    target: Literal["refusal", "harm"]  # what the scorer's positive class means
    judges: list[str] = Field(default_factory=list)
    positive_label: str
    label_means: Literal["refusal", "harm"]
    n_rows: int
    excluded: dict[str, int]
    counts: dict[str, int]  # tp, fp, fn, tn
    metrics: dict[str, dict[str, Any]]
    per_category: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    three_class: dict[str, Any] | None = None

    @property
    def binary(self) -> BinaryCounts:
        return BinaryCounts(**{k: self.counts[k] for k in ("tp", "fp", "fn", "tn")})

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]["value"]


class Judging(BaseModel):
    """A run's judging settings: the panel rule and the calibrations the report uses."""

    panel_rule: PanelRule = "majority"
    calibrations: list[Calibration] = Field(default_factory=list)


def load_calibration(path: Path) -> Calibration:
    """A calibration file written by `harness calibrate`; a bad file is a UserError naming it."""
    from harness.store import read_json

    try:
        data = read_json(path)
    except FileNotFoundError:
        raise UserError(f"{path}: calibration file not found (write one with `harness calibrate`)") from None
    try:
        return Calibration.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(
            f"{path}: not a calibration file from `harness calibrate` (field {where!r}: {first['msg']})"
        ) from None


def judging_settings(
    run_dir: Path, calibration_paths: list[Path], panel_rule: PanelRule | None, judges: list[str]
) -> Judging:
    """The run's stored settings, with given calibrations (replacing stored ones) and panel rule, checked
    against the run's judge models."""
    current = read_judging(run_dir)
    if calibration_paths:
        current.calibrations = [load_calibration(p) for p in calibration_paths]
    if panel_rule is not None:
        current.panel_rule = panel_rule
    check_panel_rule(current, judges)
    return current


def check_panel_rule(judging: Judging, judges: list[str] | None = None) -> None:
    """`weighted` needs a single-judge calibration for every judge of the panel."""
    if judging.panel_rule != "weighted":
        return
    if not judging.calibrations:
        raise UserError(
            "--panel-rule weighted needs --judge-calibration files (one per judge, from `harness calibrate`)"
        )
    calibrated = {model for by_model in judge_accuracies(judging).values() for model in by_model}
    missing = [j for j in judges or [] if j not in calibrated]
    if missing:
        raise UserError(
            f"--panel-rule weighted: no single-judge calibration for {', '.join(missing)}; "
            "run `harness calibrate --scorer judge --judge <spec>` for each judge"
        )


def judge_accuracies(judging: Judging) -> dict[str, dict[str, float]]:
    """{target: {judge model: measured accuracy}} from the single-judge calibrations."""
    accuracies: dict[str, dict[str, float]] = {"refusal": {}, "harm": {}}
    for c in judging.calibrations:
        if len(c.judges) == 1 and c.scorer != "rules":
            accuracies[c.target][c.judges[0]] = c.accuracy
    return accuracies


def save_judging(run_dir: Path, judging: Judging) -> None:
    from harness.store import write_json

    write_json(Path(run_dir) / JUDGING, judging.model_dump(mode="json"))


def read_judging(run_dir: Path) -> Judging:
    """The run's judging settings (majority, no calibrations when the run has none stored)."""
    from harness.store import read_json

    path = Path(run_dir) / JUDGING
    if not path.exists():
        return Judging()
    try:
        return Judging.model_validate(read_json(path))
    except ValidationError:
        raise UserError(
            f"{path}: not the judging settings harness writes; delete it and pass "
            "--judge-calibration / --panel-rule again"
        ) from None


def corrected_rows(run: LoadedRun, task: str, calibrations: list[Calibration]) -> list[dict[str, Any]]:
    """One row per judge-based metric of `task` and matching calibration: observed and corrected rate (%)."""
    task_obj = run.tasks[task]
    judged = task_obj.judged_rates
    if not judged or not calibrations:
        return []
    values = run.values.get(task, {})
    fingerprint = run.manifest.get("fingerprint", {})
    run_scorer, run_judges = fingerprint.get("refusal_scorer", "rules"), fingerprint.get("judges", [])
    rows = []
    for metric, (score, polarity) in judged.items():
        items = list(values[metric].values.values()) if metric in values else []
        for cal in calibrations:
            if cal.target != score:  # a run's "refusal" / "harm" scores take calibrations of that target
                continue
            positives = sum(1 for v in items if (v > 0) == polarity)
            rate = corrected_rate(positives, len(items), cal.binary)
            if not polarity:  # the metric counts negatives: correct the positive share, report its complement
                rate = _complement(rate)
            rows.append(_row(metric, len(items), rate, cal, run_scorer if score == "refusal" else "harm", run_judges))
    return rows


def _complement(rate):
    from dataclasses import replace

    def flip(est):
        if est.value is None:
            return est
        return replace(
            est,
            value=1 - est.value,
            ci_low=None if est.ci_high is None else 1 - est.ci_high,
            ci_high=None if est.ci_low is None else 1 - est.ci_low,
        )

    return replace(rate, observed=flip(rate.observed), corrected=flip(rate.corrected))


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _row(metric: str, n: int, rate, cal: Calibration, run_scorer: str, run_judges: list[str]) -> dict[str, Any]:
    from harness.metrics import ci_text

    observed, corrected = rate.observed, rate.corrected
    scorer = cal.scorer + (f" ({', '.join(cal.judges)})" if cal.judges else "")
    mismatch = []
    if cal.scorer != run_scorer:
        mismatch.append(f"calibrated scorer '{cal.scorer}' is not this run's '{run_scorer}'")
    if cal.scorer != "rules" and cal.judges != run_judges:
        mismatch.append(f"calibrated judges ({', '.join(cal.judges)}) are not this run's ({', '.join(run_judges)})")
    return {
        "metric": metric,
        "n": n,
        "observed_%": _pct(observed.value),
        "observed_ci": ci_text(_pct(observed.ci_low), _pct(observed.ci_high)),
        "corrected_%": _pct(corrected.value),
        "corrected_ci": ci_text(_pct(corrected.ci_low), _pct(corrected.ci_high)),
        "se+sp-1": None if rate.youden is None else round(rate.youden, 3),
        "calibration": f"{Path(cal.file).name}: {scorer}, {sum(cal.counts.values())} rows",
        "note": "; ".join(([corrected.reason] if corrected.reason else []) + mismatch),
    }


CORRECTED_NOTE = (
    "Judge-corrected rates: observed = share of items the scorer called positive (for ARS: responses with any "
    "Y); corrected = (observed + sp - 1) / (se + sp - 1) clipped to [0, 100] (Rogan-Gladen) with the "
    "calibration's sensitivity se and specificity sp; its interval resamples the run's items and the "
    "calibration's rows. It assumes the calibration's responses resemble this run's."
)


def revote_records(records: list[Record], judging: Judging) -> list[Record]:
    """Records with every judge-panel score decided again under the run's panel rule."""
    from harness.judging.panel import revote

    if judging.panel_rule == "majority":
        return records
    accuracies = judge_accuracies(judging)
    return [
        r.model_copy(update={"scores": {k: revote(s, judging.panel_rule, accuracies) for k, s in r.scores.items()}})
        for r in records
    ]


def add_judge_validity(run: LoadedRun, judging: Judging) -> None:
    """Add each task's judge-vs-majority tables, judge-corrected rates table and a note on the panel rule."""
    for result in run.results:
        result.tables.update(majority_tables(run.records.get(result.task, [])))
        rows = corrected_rows(run, result.task, judging.calibrations)
        if rows:
            result.tables[CORRECTED_TABLE] = rows
            result.notes.append(CORRECTED_NOTE)
        if judging.panel_rule != "majority":
            weights = (
                " weighted by each judge's measured accuracy (log-odds): "
                + "; ".join(
                    f"{target}: " + ", ".join(f"{judge} {accuracy:.3f}" for judge, accuracy in by_judge.items())
                    for target, by_judge in judge_accuracies(judging).items()
                    if by_judge
                )
                if judging.panel_rule == "weighted"
                else ": a positive (refusal, Y) needs every judge"
            )
            result.notes.append(
                f"Panel rule {judging.panel_rule}{weights}. Records keep each judge's verdict; "
                "the stored majority decisions were re-decided for this report."
            )


def majority_tables(records: list[Record]) -> dict[str, list[dict[str, Any]]]:
    """Per score name with a panel of three or more judges: each judge's agreement with the panel majority
    (Y/N answer strings count one unit per question; other non-label verdicts are skipped)."""
    from harness.judging.panel import majority_agreement, panel_units

    names = sorted({name for r in records if not r.error for name in r.scores})
    tables = {}
    for name in names:
        scores = [r.scores.get(name) for r in records if not r.error]
        if not all(_label_verdicts(s) for s in scores if s is not None):
            continue
        judges, units = panel_units(scores, split=lambda v: list(v) if re.fullmatch("[YN]+", v) else [v])
        if rows := majority_agreement(judges, units):
            tables[f"judge agreement with the panel majority: {name}"] = rows
    return tables


def _label_verdicts(score) -> bool:
    from harness.judging.panel import stored_verdicts

    return all(v.verdict is None or isinstance(v.verdict, str) for v in stored_verdicts(score))
