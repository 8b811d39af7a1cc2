"""Which records the report shows behind each metric: worst offenders first, errors apart."""

from __future__ import annotations

from dataclasses import dataclass

from harness.stats import mean
from harness.types import Metric, Record

LIMIT = 10
Key = tuple[str, int]


@dataclass
class Example:
    record: Record
    why: str
    value: float | None = None


def score_errors(record: Record) -> list[str]:
    return [f"{name}: {s.error}" for name, s in record.scores.items() if s.error]


def attention(records: list[Record]) -> list[Example]:
    """Records that ended in an error, then records whose scorers gave no verdict (judge errors)."""
    failed = [Example(r, f"{r.error_kind or 'error'} error: {r.error}") for r in records if r.error]
    unjudged = [
        Example(r, "judge error: " + "; ".join(score_errors(r))) for r in records if not r.error and score_errors(r)
    ]
    return failed + unjudged


def ideal_value(metric: Metric) -> float | None:
    """The per-record value that cannot count against the model (known for percentages only)."""
    if metric.unit != "%":
        return None
    return {"lower": 0.0, "higher": 100.0}.get(metric.direction)


def metric_examples(metric: Metric, values: dict[Key, float], records: dict[Key, Record]) -> list[Example]:
    """Records whose value counts against the model on `metric`, worst first.

    Lower-is-better: highest values first; higher-is-better: lowest first; no direction: furthest from
    the mean first. Records at the ideal value of a percentage (0 for lower-is-better) are left out.
    """
    ideal = ideal_value(metric)
    items = [(key, v) for key, v in values.items() if key in records and v != ideal]
    if not items:
        return []
    centre = mean([v for _, v in items])
    order = {"lower": lambda kv: -kv[1], "higher": lambda kv: kv[1]}.get(
        metric.direction, lambda kv: -abs(kv[1] - centre)
    )
    items.sort(key=lambda kv: (order(kv), kv[0]))
    return [Example(records[key], f"{metric.name} = {value:g}", value) for key, value in items]


def primary_value(record: Record) -> float | None:
    """Numeric value of the record's first score, if any."""
    score = next(iter(record.scores.values()), None)
    return score.value if score is not None and isinstance(score.value, (int, float)) else None


def primary_score_examples(records: list[Record]) -> list[Example]:
    """Fallback for tasks without per-record metric values: highest primary score first."""
    scored = [(primary_value(r), r) for r in records if not r.error]
    ranked = sorted(((v, r) for v, r in scored if v is not None), key=lambda vr: (-vr[0], vr[1].sample_id))
    return [Example(r, f"{next(iter(r.scores))} = {v:g}", v) for v, r in ranked]
