"""Headline metrics from counts or per-item values, and interval text, shared by the tasks."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from harness.stats import bootstrap_ci, mean, percent, wilson
from harness.types import Metric

Direction = Literal["lower", "higher", "none"]


def rate_metric(name: str, hits: int, n: int, *, direction: Direction, note: str | None = None) -> Metric:
    """100 x hits / n in percent with a Wilson 95% interval; value None when n == 0."""
    low, high = wilson(hits, n)
    return Metric(name=name, value=percent(hits / n) if n else None, ci_low=percent(low), ci_high=percent(high),
                  n=n, direction=direction, note=note)


def mean_metric(name: str, values: Sequence[float], *, direction: Direction, unit: str, scale: float = 1.0,
                note: str | None = None) -> Metric:
    """scale x mean of `values` with a percentile bootstrap 95% interval over them; value None when empty."""
    items = list(values)
    low, high = bootstrap_ci(items, mean)
    return Metric(name=name, value=scale * mean(items) if items else None,
                  ci_low=None if low is None else scale * low, ci_high=None if high is None else scale * high,
                  n=len(items), direction=direction, unit=unit, note=note)


def ci_text(low: float | None, high: float | None, digits: int = 1) -> str:
    """'[low, high]' rounded to `digits` decimals; empty when there is no interval."""
    return "" if low is None or high is None else f"[{low:.{digits}f}, {high:.{digits}f}]"
