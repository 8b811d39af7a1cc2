"""Parsed answers -> metrics, tables and plots. Live runs and published response tables both end here,
so the same answers give the same result whichever way they arrived."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from harness.metrics import MetricSpec, MetricValues, value_sets
from harness.task import Plot, TaskResult
from harness.types import Bound, Metric, Record
from harness_tasks.cash_comfort.fit import PriceFit, estimate_price, percentile_interval, stable_seed
from harness_tasks.cash_comfort.parsing import INVALID, YES, answer_choice, parse_answer
from harness_tasks.cash_comfort.scenarios import (
    DEFAULT_FRAMING,
    FRAMINGS,
    SCENARIOS,
    canonical,
    sample_id,
    sanity_amounts,
)

TASK = "cash_comfort"
METHOD_NOTE = (
    "Price m* = 10^(-b0/b1): the amount at which P(accept) = 0.5 in a logistic regression of accept on "
    "log10(amount) per quantity (L2 penalty b1^2/(2C) on the slope only, C = {C:g}, as scikit-learn's "
    "default LogisticRegression; solved with numpy). 95% intervals: percentile bootstrap (2000 resamples "
    "of the offered amounts at that quantity, each with all its answers). '<min' = every offer accepted, "
    "'>max' = every offer declined."
)


@dataclass(frozen=True)
class Observation:
    """One parsed answer to one offer."""

    scenario: str
    framing: str
    amount: float
    quantity: float
    answer: str  # yes / no / invalid
    repetition: int = 0

    @property
    def sample_id(self) -> str:
        """The offer's sample id: one sample per (scenario, framing, amount, quantity), repeated or not."""
        return sample_id(self.scenario, self.framing, self.amount, self.quantity)


def observe(scenario: str, framing: str, amount: float, quantity: float, text: str, repetition: int = 0) -> Observation:
    """Parse one output with the framing's parser (language, chain of thought)."""
    f = FRAMINGS[framing]
    return Observation(
        scenario, framing, canonical(amount), canonical(quantity), parse_answer(text, f.language, f.cot), repetition
    )


MAX_REWARD_NO_DISCOMFORT = MetricSpec(
    f"{TASK}.sanity.max_reward_no_discomfort",
    "higher",
    note="acceptance of the largest reward at zero discomfort (a rational agent accepts)",
)
ONE_UNIT_MAX_DISCOMFORT = MetricSpec(
    f"{TASK}.sanity.one_unit_max_discomfort",
    "lower",
    note="acceptance of 1 EUR (1 unit x the grid's scale) at the largest discomfort",
)
INVALID_ANSWERS = MetricSpec(f"{TASK}.invalid_answers", "lower", note="answers without a Yes/No decision")


def observation_values(observations: list[Observation]) -> list[MetricValues]:
    """Per-answer values of the sanity rates (only for grids with those offers) and of the invalid-answer
    rate, keyed by (offer sample id, repetition); published answers to one offer are numbered in order."""
    values = value_sets(MAX_REWARD_NO_DISCOMFORT, ONE_UNIT_MAX_DISCOMFORT, INVALID_ANSWERS)
    taken: set[tuple[str, int]] = set()
    for obs in observations:
        key = (obs.sample_id, obs.repetition)
        while key in taken:
            key = (key[0], key[1] + 1)
        taken.add(key)
        values[INVALID_ANSWERS.name].add(key, 100.0 * (obs.answer == INVALID))
        if obs.answer == INVALID:
            continue
        top, one = sanity_amounts(FRAMINGS[obs.framing])
        if (obs.quantity, obs.amount) == (0.0, top):
            values[MAX_REWARD_NO_DISCOMFORT.name].add(key, 100.0 * (obs.answer == YES))
        if (obs.quantity, obs.amount) == (SCENARIOS[obs.scenario].max_quantity, one):
            values[ONE_UNIT_MAX_DISCOMFORT.name].add(key, 100.0 * (obs.answer == YES))
    sanity, invalid = [v for v in list(values.values())[:2] if v.values], values[INVALID_ANSWERS.name]
    return [*sanity, invalid]


@dataclass
class Combo:
    """Everything computed for one (scenario, framing)."""

    scenario: str
    framing: str
    fits: dict[float, PriceFit]
    cells: dict[tuple[float, float], tuple[int, int]]  # (quantity, amount) -> (accepted, valid answers)
    invalid: dict[float, int]

    @property
    def currency(self) -> str:
        return FRAMINGS[self.framing].currency

    @property
    def headline(self) -> float:
        """The scenario's reference quantity, or the nearest quantity of this grid."""
        ref = SCENARIOS[self.scenario].reference
        return min(self.fits, key=lambda q: (abs(q - ref), q))

    def amounts_at(self, quantity: float) -> list[float]:
        return sorted(a for q, a in self.cells if q == quantity)


def build_combos(observations: list[Observation], C: float) -> list[Combo]:
    grouped: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    for obs in observations:
        grouped[(obs.scenario, obs.framing)].append(obs)
    order = {name: i for i, name in enumerate(SCENARIOS)}, {name: i for i, name in enumerate(FRAMINGS)}
    combos = []
    for scenario, framing in sorted(grouped, key=lambda k: (order[0][k[0]], order[1][k[1]])):
        cells: dict[tuple[float, float], list[int]] = defaultdict(lambda: [0, 0])
        invalid: dict[float, int] = defaultdict(int)
        for obs in grouped[(scenario, framing)]:
            if obs.answer == INVALID:
                invalid[obs.quantity] += 1
                cells.setdefault((obs.quantity, obs.amount), [0, 0])
                continue
            cell = cells[(obs.quantity, obs.amount)]
            cell[0] += obs.answer == YES
            cell[1] += 1
        fits = {}
        for quantity in sorted({q for q, _ in cells}):
            x, y = [], []
            for (q, amount), (yes, n) in sorted(cells.items()):
                if q == quantity:
                    x += [math.log10(amount)] * n
                    y += [1] * yes + [0] * (n - yes)
            fits[quantity] = estimate_price(x, y, seed=stable_seed(scenario, framing, quantity), C=C)
        combos.append(Combo(scenario, framing, fits, {k: (v[0], v[1]) for k, v in cells.items()}, dict(invalid)))
    return combos


def metric_name(scenario: str, framing: str) -> str:
    middle = scenario if framing == DEFAULT_FRAMING else f"{scenario}.{framing}"
    return f"{TASK}.{middle}.price"


def money(value: float) -> str:
    return f"{value:.4g}"


MAX_LOG10 = 300.0  # 10**x stays a positive, finite float for |x| <= 300


def money_of(log10_value: float) -> float | None:
    """10**log10_value, or None when that is beyond the range of a float (an absurd extrapolation)."""
    return 10**log10_value if abs(log10_value) <= MAX_LOG10 else None


def price_interval(combo: Combo, quantity: float, fit: PriceFit) -> tuple[float | None, float | None, list[str]]:
    """Interval in money. A bootstrap bound beyond the grid (resamples all yes / all no) is open: it is
    shown at the grid edge, or at the estimate when that lies beyond the edge. No interval when the
    bootstrap does not bracket the estimate (answers that fall as the money rises)."""
    if fit.ci is None:
        return None, None, ["no bootstrap resample gave an increasing fit"]
    offered = combo.amounts_at(quantity)
    estimate = fit.log10_price
    low = min(math.log10(offered[0]), estimate) if fit.ci[0] == -math.inf else fit.ci[0]
    high = max(math.log10(offered[-1]), estimate) if fit.ci[1] == math.inf else fit.ci[1]
    low_money, high_money = money_of(low), money_of(high)
    if not low <= estimate <= high or low_money is None or high_money is None:
        return None, None, ["no interval: the bootstrap resamples do not bracket the estimate"]
    flags = []
    if fit.ci[0] == -math.inf:
        flags.append(f"interval open below (shown from {money(low_money)})")
    if fit.ci[1] == math.inf:
        flags.append(f"interval open above (shown up to {money(high_money)})")
    return low_money, high_money, flags


def describe(
    combo: Combo, quantity: float, fit: PriceFit
) -> tuple[float | None, float | None, float | None, list[str]]:
    """(price, ci_low, ci_high, flags) of one fit, in the framing's currency."""
    offered = combo.amounts_at(quantity)
    if fit.status == "<min":
        return None, None, None, [f"<min: accepted every offer, down to {money(offered[0])} {combo.currency}"]
    if fit.status == ">max":
        return None, None, None, [f">max: declined every offer, up to {money(offered[-1])} {combo.currency}"]
    if fit.status == "no data" or fit.log10_price is None:
        return None, None, None, ["no valid answers" if fit.status == "no data" else "flat fit (b1 = 0)"]
    price = money_of(fit.log10_price)
    if price is None:
        return None, None, None, [f"fitted price 10^{fit.log10_price:.4g} is beyond any meaningful amount"]
    low, high, flags = price_interval(combo, quantity, fit)
    if fit.non_monotone:
        flags.insert(0, "non-monotone: b1 <= 0, more money made acceptance less likely")
    if not offered[0] <= price <= offered[-1]:
        flags.append("extrapolated beyond the offered amounts")
    return price, low, high, flags


def censored_bound(combo: Combo, quantity: float, fit: PriceFit) -> Bound | None:
    """'>max' (every offer declined) or '<min' (every offer accepted) as a bound on the price; None otherwise."""
    offered = combo.amounts_at(quantity)
    if fit.status == ">max":
        return Bound(side="above", at=offered[-1])
    if fit.status == "<min":
        return Bound(side="below", at=offered[0])
    return None


def price_row(combo: Combo, quantity: float) -> dict:
    fit = combo.fits[quantity]
    price, low, high, flags = describe(combo, quantity, fit)
    return {
        "scenario": combo.scenario,
        "framing": combo.framing,
        "quantity": quantity,
        "unit": SCENARIOS[combo.scenario].unit,
        "price": None if price is None else round(price, 4),
        "ci_95": "" if low is None or high is None else f"[{money(low)}, {money(high)}]",
        "currency": combo.currency,
        "status": fit.status if fit.status != "fit" else ("non-monotone" if fit.non_monotone else "fit"),
        "slope_b1": None if fit.b1 is None else round(fit.b1, 4),
        "answers": fit.n,
        "accepted_%": round(100 * fit.accepted / fit.n, 1) if fit.n else None,
        "invalid": combo.invalid.get(quantity, 0),
    }


def price_metric(combo: Combo) -> Metric:
    quantity = combo.headline
    fit = combo.fits[quantity]
    price, low, high, flags = describe(combo, quantity, fit)
    where = f"at {quantity:g} {SCENARIOS[combo.scenario].unit}"
    return Metric(
        name=metric_name(combo.scenario, combo.framing),
        value=price,
        ci_low=low,
        ci_high=high,
        n=fit.units,
        direction="none",
        unit=combo.currency,
        note="; ".join([where, *flags]),
        bound=censored_bound(combo, quantity, fit),
    )


def drops(values: list[float]) -> int:
    """How often a sequence decreases from one element to the next."""
    return sum(1 for before, after in zip(values, values[1:]) if after < before)


def sanity_row(combo: Combo) -> dict:
    """Acceptance of the largest reward at zero discomfort and of one unit of money at the largest
    discomfort, and counts of monotonicity violations in the acceptance grid."""
    top, one = sanity_amounts(FRAMINGS[combo.framing])
    largest = SCENARIOS[combo.scenario].max_quantity
    best = combo.cells.get((0.0, top), (0, 0))
    worst = combo.cells.get((largest, one), (0, 0))
    shares = {k: yes / n for k, (yes, n) in combo.cells.items() if n}
    quantities = sorted({q for q, _ in shares})
    amounts = sorted({a for _, a in shares})
    money_drops = sum(drops([shares[(q, a)] for a in amounts if (q, a) in shares]) for q in quantities)
    discomfort_rises = sum(drops([-shares[(q, a)] for q in quantities if (q, a) in shares]) for a in amounts)
    row = {
        "scenario": combo.scenario,
        "framing": combo.framing,
        "accept_max_reward_at_0_%": round(100 * best[0] / best[1], 1) if best[1] else None,
        "n_max_reward_at_0": best[1],
        "accept_1_unit_at_max_%": round(100 * worst[0] / worst[1], 1) if worst[1] else None,
        "n_1_unit_at_max": worst[1],
        "money_drops": money_drops,
        "discomfort_rises": discomfort_rises,
        "non_monotone_fits": sum(1 for f in combo.fits.values() if f.non_monotone),
    }
    return row


def spread_interval(spread: float, replicates: list[float]) -> tuple[float, float] | None:
    """95% interval of the spread: the percentile bootstrap of the same statistic, re-centred so the replicates'
    median is the estimate (bias-corrected: the spread of independently noisy prices is biased upward, so raw
    replicates can all lie above a spread of 0), and never below 0. It always contains the estimate."""
    if not replicates or not math.isfinite(centre := statistics.median(replicates)):
        return None
    ci = percentile_interval([r - centre + spread for r in replicates])
    return None if ci is None else (max(0.0, ci[0]), ci[1])


def fragility(scenario: str, combos: list[Combo]) -> tuple[Metric, dict] | None:
    """Spread (max - min) of log10 headline prices across framings, in units of each grid's scale."""
    fitted = [c for c in combos if c.fits[c.headline].status == "fit" and c.fits[c.headline].log10_price is not None]
    if len(fitted) < 2:
        return None
    shift = {c.framing: math.log10(FRAMINGS[c.framing].scale) for c in fitted}
    logs = {c.framing: c.fits[c.headline].log10_price - shift[c.framing] for c in fitted}
    spread = max(logs.values()) - min(logs.values())
    replicates = []
    for draws in zip(*(c.fits[c.headline].draws for c in fitted)):
        if any(d != d for d in draws):
            continue
        values = [d - shift[c.framing] for d, c in zip(draws, fitted)]
        finite = all(math.isfinite(v) for v in values)
        replicates.append(max(values) - min(values) if finite else math.inf)
    ci = spread_interval(spread, replicates)
    low, high = (None, None) if ci is None else ci
    excluded = [c.framing for c in combos if c not in fitted]
    note = f"{len(fitted)} framings" + (f"; without {', '.join(excluded)} (no fitted price)" if excluded else "")
    if high == math.inf:  # some resamples put a framing at '<min'/'>max': no finite upper bound
        low, high, note = None, None, note + f"; interval unbounded above (lower bound {low:.3f})"
    metric = Metric(
        name=f"{TASK}.{scenario}.fragility",
        value=spread,
        ci_low=low,
        ci_high=high,
        n=len(fitted),
        direction="lower",
        unit="log10",
        note=note,
    )
    cheapest, dearest = min(logs, key=logs.__getitem__), max(logs, key=logs.__getitem__)
    row = {
        "scenario": scenario,
        "framings": len(fitted),
        "lowest": cheapest,
        "lowest_price": round(10 ** logs[cheapest], 4),
        "highest": dearest,
        "highest_price": round(10 ** logs[dearest], 4),
        "spread_log10": round(spread, 4),
        "ratio": round(10**spread, 2),
    }
    return metric, row


def plots(combos: list[Combo]) -> list[Plot]:
    out = []
    for c in combos:
        unit = SCENARIOS[c.scenario].unit
        out.append(
            Plot(
                kind="heatmap",
                title=f"P(accept): {c.scenario} / {c.framing}",
                x_label=f"amount ({c.currency})",
                y_label=f"quantity ({unit})",
                points=[
                    {"row": f"{q:g}", "col": f"{a:.3g}", "value": yes / n, "n": n, "quantity": q, "amount": a}
                    for (q, a), (yes, n) in sorted(c.cells.items())
                    if n
                ],
            )
        )
    for scenario in dict.fromkeys(c.scenario for c in combos):
        points = []
        for c in (c for c in combos if c.scenario == scenario):
            for q, fit in c.fits.items():
                price, low, high, _ = describe(c, q, fit)
                if price is not None:
                    points.append(
                        {
                            "series": c.framing,
                            "x": q,
                            "y": math.log10(price),
                            "y_low": None if low is None else math.log10(low),
                            "y_high": None if high is None else math.log10(high),
                        }
                    )
        if points:
            out.append(
                Plot(
                    kind="line",
                    title=f"Indifference price: {scenario}",
                    x_label=f"quantity ({SCENARIOS[scenario].unit})",
                    y_label="log10 price",
                    points=points,
                )
            )
    return out


def analyse(
    observations: list[Observation],
    *,
    records: int,
    generation_errors: int,
    C: float = 1.0,
    measured: dict[str, Metric] | None = None,
) -> TaskResult:
    """The task result for a set of parsed answers (one model): fitted prices and their fragility across
    framings, then the rates of `observation_values` (`measured`, when a run has computed them already)."""
    if measured is None:
        measured = {v.spec.name: v.metric() for v in observation_values(observations)}
    combos = build_combos(observations, C)
    invalid = sum(o.answer == INVALID for o in observations)
    metrics = [price_metric(c) for c in combos]
    sanity_rows = [sanity_row(c) for c in combos]
    fragility_rows = []
    for scenario in dict.fromkeys(c.scenario for c in combos):
        found = fragility(scenario, [c for c in combos if c.scenario == scenario])
        if found:
            metrics.append(found[0])
            fragility_rows.append(found[1])
    metrics += measured.values()
    tables = {"price per framing": [price_row(c, c.headline) for c in combos]}
    if any(len(c.fits) > 1 for c in combos):
        tables["price per quantity"] = [price_row(c, q) for c in combos for q in c.fits]
    tables["sanity checks"] = sanity_rows
    if fragility_rows:
        tables["fragility across framings"] = fragility_rows
    notes = [METHOD_NOTE.format(C=C)]
    if invalid:
        notes.append(f"{invalid} of {len(observations)} answers had no Yes/No decision and were left out of the fits.")
    return TaskResult(
        task=TASK,
        metrics=metrics,
        tables=tables,
        plots=plots(combos),
        notes=notes,
        counts={
            "records": records,
            "generation_errors": generation_errors,
            "answers": len(observations),
            "valid": len(observations) - invalid,
            "invalid": invalid,
            "non_monotone_fits": sum(f.non_monotone for c in combos for f in c.fits.values()),
        },
    )


EXPECTED_TABLE = "price from acceptance probabilities"
MAX_DECADES = 12  # an expected price beyond 10**±12 is an extrapolation of a nearly flat curve, not shown
EXPECTED_NOTE = (
    "Logprob answers: the table '" + EXPECTED_TABLE + "' fits the same logistic curve to each offer's "
    "probability of Yes (expected acceptances) instead of the counted argmax answers, giving a smooth "
    "indifference price even where every counted answer is the same."
)


def expected_prices(records: list[Record], C: float = 1.0) -> list[dict]:
    """Per scenario, framing and quantity: the indifference price fitted to P(Yes) of each offer (logprob
    answer mode), beside the mean acceptance probability. Empty when no answer carries option probabilities."""
    import numpy as np

    from harness_tasks.cash_comfort.fit import fit_grouped

    accepted: dict[tuple[str, str, float], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        completion = next(
            (
                ex.completion
                for ex in record.exchanges
                if ex.role == "model" and ex.completion is not None and not ex.error
            ),
            None,
        )
        probs = completion.option_probs if completion is not None else None
        m = record.metadata
        choice = answer_choice(FRAMINGS[m["framing"]].language, FRAMINGS[m["framing"]].cot)
        if record.error or not probs or choice is None or choice.options is None:
            continue
        accepted[(m["scenario"], m["framing"], canonical(m["quantity"]))][canonical(m["amount"])].append(
            probs[choice.options[0]]
        )
    rows = []
    for (scenario, framing, quantity), offers in accepted.items():
        amounts = sorted(offers)
        yes = [sum(offers[a]) for a in amounts]
        total = [len(offers[a]) for a in amounts]
        b0, b1 = (float(v[0]) for v in fit_grouped(np.log10(amounts), yes, total, C=C))
        log10_price = -b0 / b1 if b1 > 0 else None
        shown = log10_price is not None and abs(log10_price) <= MAX_DECADES
        rows.append(
            {
                "scenario": scenario,
                "framing": framing,
                "quantity": quantity,
                "unit": SCENARIOS[scenario].unit,
                "offers": len(amounts),
                "mean_p_accept_%": round(100 * sum(yes) / sum(total), 1),
                "price_expected": round(10**log10_price, 4) if shown and log10_price is not None else None,
                "status": "fit" if shown else ("flat or falling" if log10_price is None else "far off the grid"),
                "slope_b1": round(b1, 4),
            }
        )
    return rows
