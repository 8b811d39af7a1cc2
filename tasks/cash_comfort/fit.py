"""Indifference price from an L2-regularised logistic regression of acceptance on log10(money).

The fit minimises, for each row of bootstrap weights w,

    sum_i w_i * [log(1 + exp(b0 + b1 x_i)) - y_i (b0 + b1 x_i)]  +  b1**2 / (2 C)

i.e. the objective of scikit-learn's default `LogisticRegression()` (penalty='l2', C=1.0,
fit_intercept=True, solver='lbfgs'), whose penalty covers the coefficient only, not the intercept.
It is solved here with numpy by damped Newton steps (backtracking line search) to a step below 1e-12,
so scikit-learn is not needed; its lbfgs stops at tol=1e-4, so its estimates can differ from ours in
the last reported digits. The price is the money at which P(accept) = 0.5: m* = 10**(-b0 / b1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

N_BOOTSTRAP = 2000
LEVEL = 0.95


def fit_logistic(x, y, weights=None, C: float = 1.0) -> tuple["np.ndarray", "np.ndarray"]:
    """(b0, b1) arrays, one pair per row of `weights` (shape (B, n); None = one unweighted fit).
    Each row must contain both outcomes with positive weight."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    w = np.ones((1, x.size)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    levels, index = np.unique(x, return_inverse=True)
    onehot = np.zeros((x.size, levels.size))
    onehot[np.arange(x.size), index] = 1.0
    return fit_grouped(levels, w @ (onehot * y[:, None]), w @ onehot, C=C)


def fit_grouped(levels, yes, total, C: float = 1.0) -> tuple["np.ndarray", "np.ndarray"]:
    """Same fit on grouped data: at x = levels[j], row b has yes[b, j] accepts out of total[b, j]."""
    import numpy as np

    x = np.asarray(levels, dtype=float)
    yes, total = np.atleast_2d(yes).astype(float), np.atleast_2d(total).astype(float)
    share = np.clip(yes.sum(axis=1) / total.sum(axis=1), 1e-6, 1 - 1e-6)
    b0, b1 = np.log(share / (1 - share)), np.zeros(yes.shape[0])

    def objective(c0, c1):
        eta = c0[:, None] + c1[:, None] * x
        return (total * np.logaddexp(0.0, eta) - yes * eta).sum(axis=1) + c1**2 / (2 * C)

    current = objective(b0, b1)
    for _ in range(100):
        eta = b0[:, None] + b1[:, None] * x
        p = np.exp(-np.logaddexp(0.0, -eta))
        r, s = total * p - yes, total * p * (1 - p)
        g0, g1 = r.sum(axis=1), (r * x).sum(axis=1) + b1 / C
        h00, h01, h11 = s.sum(axis=1), (s * x).sum(axis=1), (s * x * x).sum(axis=1) + 1 / C
        det = np.maximum(h00 * h11 - h01**2, 1e-300)
        d0, d1 = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        decrease = g0 * d0 + g1 * d1  # squared Newton decrement, >= 0
        slack = 1e-13 * np.abs(current)  # rounding noise of the objective
        step = np.ones_like(b0)
        for _ in range(60):  # backtracking until the Armijo condition holds for every row
            trial = objective(b0 - step * d0, b1 - step * d1)
            ok = trial <= current - 1e-4 * step * decrease + slack
            if ok.all():
                break
            step = np.where(ok, step, step / 2)
        b0, b1, current = b0 - step * d0, b1 - step * d1, trial
        if np.all(np.abs(step * d0) + np.abs(step * d1) < 1e-12):
            break
    return b0, b1


@dataclass
class PriceFit:
    """The indifference price at one quantity, on the log10 scale of the stated currency."""

    status: str  # "fit", "<min" (every offer accepted), ">max" (every offer declined), "no data"
    n: int = 0  # valid answers
    units: int = 0  # offered amounts with a valid answer: the samples the bootstrap resamples
    accepted: int = 0
    log10_price: float | None = None
    b0: float | None = None
    b1: float | None = None
    ci: tuple[float, float] | None = None  # log10 bounds; -inf/+inf when the bootstrap leaves the grid
    draws: list[float] = field(default_factory=list)  # bootstrap log10 prices (nan: non-monotone fit)

    @property
    def non_monotone(self) -> bool:
        return self.b1 is not None and self.b1 <= 0


def stable_seed(*parts: object) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def estimate_price(x: list[float], y: list[int], *, seed: int, C: float = 1.0, n_boot: int = N_BOOTSTRAP) -> PriceFit:
    """Fit at one quantity; x = log10(amount), y = 1 accept / 0 decline. The bootstrap resamples the
    offered amounts (each one sample, with all its answers) with replacement and refits; intervals are
    percentiles of the refits."""
    import numpy as np

    n, accepted, units = len(y), int(sum(y)), len(set(x))
    if n == 0:
        return PriceFit("no data")
    if accepted in (0, n):
        return PriceFit("<min" if accepted == n else ">max", n=n, units=units, accepted=accepted)
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    b0, b1 = (float(v[0]) for v in fit_logistic(xa, ya, C=C))
    draws = bootstrap_log10_prices(xa, ya, seed=seed, C=C, n_boot=n_boot)
    return PriceFit(
        "fit",
        n=n,
        units=units,
        accepted=accepted,
        log10_price=-b0 / b1 if b1 != 0 else None,
        b0=b0,
        b1=b1,
        ci=percentile_interval(draws),
        draws=[float(d) for d in draws],
    )


def bootstrap_log10_prices(x, y, *, seed: int, C: float, n_boot: int) -> "np.ndarray":
    """log10 prices of `n_boot` cluster resamples: the offered amounts are drawn with replacement, each
    bringing all its answers (the repetitions of one sample stay together), as multinomial counts over
    the amounts. -inf: all accepted, +inf: all declined, nan: b1 <= 0."""
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(seed))
    levels, index = np.unique(x, return_inverse=True)
    yes = np.bincount(index, weights=y, minlength=levels.size)
    total = np.bincount(index, minlength=levels.size).astype(float)
    draws = rng.multinomial(levels.size, np.full(levels.size, 1 / levels.size), size=n_boot).astype(float)
    yes_b, total_b = draws * yes, draws * total
    accepted, answers = yes_b.sum(axis=1), total_b.sum(axis=1)
    out = np.where(accepted == answers, -np.inf, np.where(accepted == 0, np.inf, np.nan))
    mixed = (accepted > 0) & (accepted < answers)
    if mixed.any():
        b0, b1 = fit_grouped(levels, yes_b[mixed], total_b[mixed], C=C)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[mixed] = np.where(b1 > 0, -b0 / b1, np.nan)
    return out


def percentile_interval(draws) -> tuple[float, float] | None:
    """Percentile interval of the non-nan draws (infinite values sort to the ends)."""
    values = sorted(float(d) for d in draws if d == d)
    if not values:
        return None
    k = len(values)
    return values[int((1 - LEVEL) / 2 * k)], values[min(k - 1, int((1 + LEVEL) / 2 * k))]
