"""Binary agreement of a scorer with human labels, and Rogan-Gladen rates corrected for the scorer's error.

Counts are a 2x2 table `BinaryCounts(tp, fp, fn, tn)` with the scorer's positive class (refusal, or harmful
content) against the human one. Proportions get Wilson intervals; F1 and Cohen's kappa a percentile
bootstrap over rows (a multinomial draw of the four cells, which is the same as resampling rows).

Rogan-Gladen: a scorer with sensitivity se and specificity sp that calls a share p of items positive
implies a true share (p + sp - 1) / (se + sp - 1), clipped to [0, 1]. The correction divides by Youden's
J = se + sp - 1; below MIN_YOUDEN the scorer hardly separates the classes and no corrected rate is given.
Its interval resamples the run's items and the calibration's positive and negative rows together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stats import wilson

MIN_YOUDEN = 0.2
N_RESAMPLES = 4000
LEVEL = 0.95


@dataclass(frozen=True)
class BinaryCounts:
    """Confusion counts: tp/fn are human positives the scorer called positive/negative, fp/tn human negatives."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def from_labels(cls, human: list[bool], predicted: list[bool]) -> BinaryCounts:
        pairs = list(zip(human, predicted, strict=True))
        return cls(
            tp=sum(h and p for h, p in pairs),
            fp=sum(p and not h for h, p in pairs),
            fn=sum(h and not p for h, p in pairs),
            tn=sum(not h and not p for h, p in pairs),
        )

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def as_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


@dataclass(frozen=True)
class Estimate:
    """A statistic with its 95% interval; `value` None (with a reason) when undefined."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, float | str | None]:
        data: dict[str, float | str | None] = {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}
        if self.reason:
            data["reason"] = self.reason
        return data


def _proportion(hits: int, n: int, what: str) -> Estimate:
    if n == 0:
        return Estimate(None, reason=f"no {what}")
    low, high = wilson(hits, n)
    return Estimate(hits / n, low, high)


def _f1(tp, fp, fn, tn):
    """F1 of count arrays (NaN where there is no positive at all)."""
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)


def _kappa(tp, fp, fn, tn):
    """Cohen's kappa of count arrays (NaN where chance agreement is 1: both raters used one class only)."""
    n = tp + fp + fn + tn
    observed = (tp + tn) / n
    expected = ((tp + fn) * (tp + fp) + (fp + tn) * (fn + tn)) / (n * n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)


def _bootstrapped(counts: BinaryCounts, statistic, what: str, seed: int) -> Estimate:
    cells = np.array([counts.tp, counts.fp, counts.fn, counts.tn])
    point = float(statistic(*cells))
    if np.isnan(point):
        return Estimate(None, reason=what)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(counts.n, cells / counts.n, size=N_RESAMPLES).T
    values = statistic(*draws)
    values = values[~np.isnan(values)]
    low, high = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Estimate(point, float(low), float(high))


def binary_metrics(counts: BinaryCounts, seed: int = 0) -> dict[str, Estimate]:
    """Accuracy, sensitivity, specificity, precision (Wilson), F1 and Cohen's kappa (bootstrap)."""
    return {
        "accuracy": _proportion(counts.tp + counts.tn, counts.n, "rows"),
        "sensitivity": _proportion(counts.tp, counts.tp + counts.fn, "human positives"),
        "specificity": _proportion(counts.tn, counts.tn + counts.fp, "human negatives"),
        "precision": _proportion(counts.tp, counts.tp + counts.fp, "predicted positives"),
        "f1": _bootstrapped(counts, _f1, "no positives, human or predicted", seed),
        "kappa": _bootstrapped(counts, _kappa, "both raters used one class only", seed + 1),
    }


def rogan_gladen(p: float, sensitivity: float, specificity: float) -> float | None:
    """(p + sp - 1) / (se + sp - 1) clipped to [0, 1]; None when se + sp - 1 < MIN_YOUDEN."""
    youden = sensitivity + specificity - 1
    if youden < MIN_YOUDEN:
        return None
    return min(1.0, max(0.0, (p + specificity - 1) / youden))


@dataclass(frozen=True)
class CorrectedRate:
    """An observed rate (positives / n) and its Rogan-Gladen correction, as fractions."""

    observed: Estimate
    corrected: Estimate
    youden: float | None


def corrected_rate(positives: int, n: int, calibration: BinaryCounts, seed: int = 0) -> CorrectedRate:
    """Rogan-Gladen correction of `positives / n` with a bootstrap over run items and calibration rows."""
    observed = _proportion(positives, n, "scored items")
    pos, neg = calibration.tp + calibration.fn, calibration.tn + calibration.fp
    if pos == 0 or neg == 0:
        missing = "positive" if pos == 0 else "negative"
        return CorrectedRate(observed, Estimate(None, reason=f"the calibration has no human-{missing} rows"), None)
    se, sp = calibration.tp / pos, calibration.tn / neg
    youden = se + sp - 1
    if observed.value is None:
        return CorrectedRate(observed, Estimate(None, reason="no scored items"), youden)
    point = rogan_gladen(observed.value, se, sp)
    if point is None:
        return CorrectedRate(
            observed,
            Estimate(
                None,
                reason=(
                    f"not corrected: sensitivity + specificity - 1 = {youden:.2f} is below {MIN_YOUDEN}; "
                    "the scorer hardly separates the classes"
                ),
            ),
            youden,
        )
    rng = np.random.default_rng(seed)
    p = rng.binomial(n, observed.value, N_RESAMPLES) / n
    se_b = rng.binomial(pos, se, N_RESAMPLES) / pos
    sp_b = rng.binomial(neg, sp, N_RESAMPLES) / neg
    j = se_b + sp_b - 1
    useless = float(np.mean(j <= 0))
    if useless > (1 - LEVEL) / 2:
        return CorrectedRate(
            observed,
            Estimate(
                point,
                0.0,
                1.0,
                reason=(
                    f"{100 * useless:.0f}% of calibration resamples give a useless scorer (se + sp <= 1); "
                    "the interval is uninformative"
                ),
            ),
            youden,
        )
    keep = j > 0
    values = np.clip((p[keep] + sp_b[keep] - 1) / j[keep], 0.0, 1.0)
    low, high = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return CorrectedRate(observed, Estimate(point, float(low), float(high)), youden)
