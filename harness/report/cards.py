"""The report's first screen: one card per task with its headline metrics, what was excluded, and one line
for the metrics without data (with the reason) instead of a row each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.judging.panel import JUDGE_ERROR, stored_verdicts
from harness.task import Plot, Task, TaskResult
from harness.types import Metric, Record


@dataclass
class TaskCard:
    """What a decision maker sees first about one task."""

    task: str
    protocol: str
    headline: list[Metric]
    invalid: Metric | None  # the task's invalid-answer metric, if it has one
    records: int
    failed_records: int  # records that ended in an error (generation, scoring, task)
    judged: int  # scores decided by judges, judge errors included
    judge_errors: int  # scores no judge could decide (excluded from rates)
    no_data: dict[str, list[str]]  # reason -> metrics without a value, headline ones included
    plot: Plot | None
    # family member -> "highest wahlomat.<party>"; a bounded headline metric -> its note (why only a bound)
    captions: dict[str, str] = field(default_factory=dict)

    @property
    def judge_error_rate(self) -> float | None:
        return 100.0 * self.judge_errors / self.judged if self.judged else None

    def headline_no_data(self) -> dict[str, list[str]]:
        """The no-data groups restricted to the headline metrics."""
        names = {m.name for m in self.headline}
        groups = {reason: [n for n in group if n in names] for reason, group in self.no_data.items()}
        return {reason: group for reason, group in groups.items() if group}

    def other_no_data(self) -> int:
        """How many metrics outside the headline have no value."""
        return sum(len(group) for group in self.no_data.values()) - sum(
            len(group) for group in self.headline_no_data().values()
        )

    def as_json(self) -> dict[str, Any]:
        """The card as stored in summary.json (metric values live in the task's `metrics`)."""
        return {
            "headline": [m.name for m in self.headline],
            "invalid_metric": self.invalid.name if self.invalid else None,
            "records": self.records,
            "failed_records": self.failed_records,
            "judged": self.judged,
            "judge_errors": self.judge_errors,
            "judge_error_rate": self.judge_error_rate,
            "no_data": [{"reason": reason, "metrics": names} for reason, names in self.no_data.items()],
            "captions": self.captions,
        }


def judged_scores(records: list[Record]) -> int:
    """Scores that judges decided or failed to decide (the denominator of the judge-error rate)."""
    return sum(1 for r in records for s in r.scores.values() if s.error == JUDGE_ERROR or stored_verdicts(s))


def task_card(task: Task, result: TaskResult, records: list[Record], judges: list[str]) -> TaskCard:
    """The card of one task, from its result and records; `judges` are the run's judge specs."""
    by_name = {m.name: m for m in result.metrics}
    headline = task.headline_metrics(result)
    card = TaskCard(
        task=result.task,
        protocol=task.protocol,
        headline=headline,
        invalid=by_name.get(task.invalid_metric) if task.invalid_metric else None,
        records=len(records),
        failed_records=sum(1 for r in records if r.error),
        judged=judged_scores(records),
        judge_errors=result.counts.get("judge_errors", 0),
        no_data={},
        plot=next((p for p in result.plots if p.title == task.headline_plot and p.points), None),
    )
    card.captions = family_captions(task, headline)
    card.captions.update({m.name: m.note for m in headline if m.bound is not None and m.note})  # why only a bound
    missing = [m for m in headline if m.name not in by_name] + [m for m in result.metrics if not m.has_result]
    for m in missing:
        card.no_data.setdefault(no_data_reason(card, m, judges), []).append(m.name)
    return card


def family_captions(task: Task, headline: list[Metric]) -> dict[str, str]:
    """'highest <family>' / 'lowest <family>' for headline metrics picked from a family (`wahlomat.<party>`)."""
    families = [name for name in task.headline if "<" in name]
    members = [m for m in headline if m.name not in task.headline and m.value is not None]
    if len(families) != 1 or not members:
        return {}
    top = max(m.value or 0.0 for m in members)
    return {m.name: f"{'highest' if m.value == top else 'lowest'} {families[0]}" for m in members}


def no_data_reason(card: TaskCard, metric: Metric, judges: list[str]) -> str:
    """Why a metric has no value, from the first fact that explains it: no records, every record failed,
    the metric's own note (data but no estimate), every answer invalid, every judgement failed, no judge."""
    if not card.records:
        return "no records"
    if card.failed_records == card.records:
        return f"every record failed ({card.records})"
    if metric.n and metric.note:
        return f"{metric.note}; n={metric.n}"
    if card.invalid is not None and card.invalid.value == 100.0:
        return f"every answer invalid ({card.invalid.name} 100%)"
    if card.judged and card.judge_errors == card.judged:
        return f"every judgement failed ({card.judged} of {card.judged})"
    if not judges:
        return f"no record of their kind among {card.records}; no judge was given"
    return f"no record of their kind among {card.records}"
