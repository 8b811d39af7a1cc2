"""Headline metrics from per-record values, with intervals that treat a sample's repetitions as one cluster.

A task states, per record, the value each of its mean-type metrics takes (`MetricValues`); this module turns
them into `Metric`s. The estimate is the mean over samples of each sample's mean over its repetitions, and
the 95% interval is over samples: Wilson on the per-sample shares for rates, a percentile bootstrap of the
per-sample means otherwise. Repeating a sample therefore never narrows an interval by itself: a model that
answers every repetition alike gets the interval it would get with one repetition.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.stats import bootstrap_ci, mean, percent, wilson
from harness.types import Metric

Direction = Literal["lower", "higher", "none"]
Kind = Literal["rate", "mean"]
Key = tuple[str, int]  # (sample_id, repetition)


@dataclass(frozen=True)
class MetricSpec:
    """What a metric measures. kind "rate": per-record values are shares in percent (0-100; 0 or 100 for a
    yes/no outcome), interval Wilson over samples; kind "mean": any number, bootstrap over samples."""

    name: str
    direction: Direction
    kind: Kind = "rate"
    unit: str = "%"
    note: str | None = None


@dataclass
class MetricValues:
    """The per-record values of one metric, keyed by (sample_id, repetition), in the metric's unit."""

    spec: MetricSpec
    values: dict[Key, float] = field(default_factory=dict)

    def add(self, key: Key, value: float) -> None:
        """Set the value of the record (sample_id, repetition); a rate's value must be a percentage."""
        if self.spec.kind == "rate" and not 0.0 <= value <= 100.0:
            raise ValueError(f"{self.spec.name}: a rate's per-record value is a percentage, got {value}")
        self.values[key] = float(value)

    def metric(self) -> Metric:
        return summarise(self.spec, self.values)


def value_sets(*specs: MetricSpec) -> dict[str, MetricValues]:
    """Empty `MetricValues` for each spec, by metric name, in the given order."""
    return {spec.name: MetricValues(spec) for spec in specs}


def sample_means(values: Mapping[Key, float]) -> dict[str, float]:
    """Mean over each sample's repetitions, in first-seen sample order."""
    grouped: dict[str, list[float]] = {}
    for (sample_id, _), value in values.items():
        grouped.setdefault(sample_id, []).append(value)
    return {sample_id: mean(group) for sample_id, group in grouped.items()}


def repeat_consistency(values: Mapping[Key, Hashable]) -> tuple[int, int]:
    """(samples with two or more repetitions, those whose repetitions all have the same value)."""
    grouped: dict[str, list[Hashable]] = {}
    for (sample_id, _), value in values.items():
        grouped.setdefault(sample_id, []).append(value)
    repeated = [group for group in grouped.values() if len(group) > 1]
    return len(repeated), sum(1 for group in repeated if len(set(group)) == 1)


CONSISTENCY_TABLE = "agreement across repetitions"


def consistency_row(name: str, values: Mapping[Key, Hashable]) -> dict | None:
    """Row of the report table CONSISTENCY_TABLE over per-record values (or labels); None without repeats."""
    repeated, agreeing = repeat_consistency(values)
    if not repeated:
        return None
    return {
        "metric": name,
        "samples": len({sample_id for sample_id, _ in values}),
        "records": len(values),
        "repeated_samples": repeated,
        "repetitions_agree_%": round(100.0 * agreeing / repeated, 1),
    }


def consistency_rows(metrics: Sequence[Metric]) -> list[dict]:
    """Rows of CONSISTENCY_TABLE for the metrics that had repeated samples."""
    return [
        {
            "metric": m.name,
            "samples": m.n,
            "records": m.records,
            "repeated_samples": m.repeated,
            "repetitions_agree_%": round(m.consistency, 1),
        }
        for m in metrics
        if m.consistency is not None
    ]


def summarise(spec: MetricSpec, values: Mapping[Key, float]) -> Metric:
    """The metric of per-record values: mean over samples of per-sample means, 95% interval over samples,
    n = samples, and the share of repeated samples whose repetitions all agree."""
    means = list(sample_means(values).values())
    n = len(means)
    if spec.kind == "rate":
        low, high = wilson(sum(means) / 100.0, n)
        low, high = percent(low), percent(high)
    else:
        low, high = bootstrap_ci(means, mean)
    repeated, agreeing = repeat_consistency(values)
    return Metric(
        name=spec.name,
        value=mean(means) if means else None,
        ci_low=low,
        ci_high=high,
        n=n,
        records=len(values),
        repeated=repeated or None,
        consistency=percent(agreeing / repeated) if repeated else None,
        direction=spec.direction,
        unit=spec.unit,
        note=spec.note,
    )


def rate_metric(name: str, hits: int, n: int, *, direction: Direction, note: str | None = None) -> Metric:
    """100 x hits / n in percent with a Wilson 95% interval, for n independent units (never repetitions of
    one sample: those go through `summarise`); value None when n == 0."""
    low, high = wilson(hits, n)
    return Metric(
        name=name,
        value=percent(hits / n) if n else None,
        ci_low=percent(low),
        ci_high=percent(high),
        n=n,
        direction=direction,
        note=note,
    )


def ci_text(low: float | None, high: float | None, digits: int = 1) -> str:
    """'[low, high]' rounded to `digits` decimals; empty when there is no interval."""
    return "" if low is None or high is None else f"[{low:.{digits}f}, {high:.{digits}f}]"
