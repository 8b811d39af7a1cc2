"""Interval estimates and agreement statistics used by every task (pure Python, no heavy imports)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Hashable, Sequence

Z95 = 1.959963984540054


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval for a proportion, as fractions in [0, 1]; (None, None) when n == 0.

    `successes` may be fractional (a sum of per-sample shares). The bound at an edge is exactly 0 or 1:
    no successes give a lower bound of 0, all successes an upper bound of 1 (no rounding residue).
    """
    if n == 0:
        return None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def bootstrap_ci(
    items: Sequence,
    statistic: Callable[[Sequence], float],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of `statistic` over `items` (resampled with replacement).

    The mean of numbers, by far the commonest statistic here, is resampled vectorised with numpy.
    """
    if not items:
        return None, None
    n = len(items)
    if statistic is mean:
        values = _bootstrap_means(items, n_resamples, seed)
    else:
        rng = random.Random(seed)
        values = sorted(statistic(rng.choices(items, k=n)) for _ in range(n_resamples))
    lo_index = int((1 - level) / 2 * n_resamples)
    hi_index = min(n_resamples - 1, int((1 + level) / 2 * n_resamples))
    return values[lo_index], values[hi_index]


def _bootstrap_means(items: Sequence[float], n_resamples: int, seed: int) -> list[float]:
    """Sorted means of `n_resamples` resamples, drawn in chunks of at most ~4M indices."""
    import numpy as np

    data = np.asarray(items, dtype=float)
    n = len(data)
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // n)
    means = [
        data[rng.integers(0, n, size=(min(chunk, n_resamples - start), n))].mean(axis=1)
        for start in range(0, n_resamples, chunk)
    ]
    return sorted(np.concatenate(means).tolist())


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def kappa_undefined(*raters: Sequence[Hashable]) -> str | None:
    """Why kappa is undefined for these ratings (no items, or one label throughout so that chance
    agreement is 1 and kappa is 0/0), or None when it is defined."""
    labels = {label for rater in raters for label in rater}
    if not labels:
        return "no items rated"
    if len(labels) == 1:
        return f"every rating is {next(iter(labels))!r}: chance agreement is 1, so kappa is undefined"
    return None


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when undefined (see `kappa_undefined`)."""
    if len(a) != len(b):
        raise ValueError("raters must label the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    counts_a, counts_b = Counter(a), Counter(b)
    expected = sum(counts_a[k] * counts_b[k] for k in counts_a) / (n * n)
    if expected == 1.0:
        return None
    return (observed - expected) / (1 - expected)


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa; `ratings[i]` holds every rater's label for item i (same rater count per item);
    None when undefined (see `kappa_undefined`)."""
    items = [r for r in ratings if len(r) >= 2]
    if not items:
        return None
    m = len(items[0])
    if any(len(r) != m for r in items):
        raise ValueError("every item needs the same number of ratings")
    categories = sorted({label for r in items for label in r}, key=str)
    n = len(items)
    totals = Counter(label for r in items for label in r)
    p_e = sum((totals[c] / (n * m)) ** 2 for c in categories)
    p_i = [(sum(v * v for v in Counter(r).values()) - m) / (m * (m - 1)) for r in items]
    p_bar = sum(p_i) / n
    if p_e == 1.0:
        return None
    return (p_bar - p_e) / (1 - p_e)


def percent(value: float | None) -> float | None:
    """Fraction -> percentage, keeping None."""
    return None if value is None else 100.0 * value


def paired_bootstrap_diff(
    pairs: Sequence[tuple[float, float]],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float | None, float | None, float | None]:
    """Mean of (b - a) over paired observations with a percentile bootstrap interval (resampling pairs)."""
    if not pairs:
        return None, None, None
    diffs = [b - a for a, b in pairs]
    low, high = bootstrap_ci(diffs, mean, n_resamples=n_resamples, seed=seed, level=level)
    return mean(diffs), low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b (0->1) and c (1->0)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
