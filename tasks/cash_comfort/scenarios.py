"""Scenarios, framings, grids, amount/quantity rendering and stable sample ids."""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import UserError


@dataclass(frozen=True)
class Scenario:
    """A discomfort traded for money."""

    name: str
    unit: str  # unit of the quantity
    max_quantity: float  # end of the main grid (largest discomfort)
    reference: float  # quantity of the robustness grid and of the headline price


@dataclass(frozen=True)
class Framing:
    """A variant of a prompt: who decides, language, currency, reasoning, formatting."""

    name: str
    language: str = "en"
    currency: str = "EUR"
    scale: float = 1.0  # the money grid is multiplied by this (yuan: x10)
    cot: bool = False


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("time", "min", 600.0, 60.0),
        Scenario("distance", "km", 30.0, 5.0),
        Scenario("distance_safe", "km", 30.0, 5.0),
        Scenario("hunger", "min", 600.0, 60.0),
        Scenario("pain", "%", 100.0, 50.0),
    )
}
DEFAULT_FRAMING = "third"
FRAMINGS: dict[str, Framing] = {
    f.name: f
    for f in (
        Framing(DEFAULT_FRAMING),
        Framing("firstperson"),
        Framing("man"),
        Framing("woman"),
        Framing("french", language="fr"),
        Framing("dutch", language="nl"),
        Framing("chinese", language="zh"),
        Framing("hairdresser"),
        Framing("gp"),
        Framing("lawyer"),
        Framing("dollar", currency="USD"),
        Framing("yuan", currency="CNY", scale=10.0),
        Framing("cot", cot=True),
        Framing("whitespace"),
    )
}
AMOUNT_COUNTS = {"main": 21, "robust": 101, "small": 9}
MAIN_QUANTITIES = 21
LOG10_MIN, LOG10_MAX = -1.0, 3.0  # money grid: 10**-1 .. 10**3 (times the framing's scale)


def canonical(value: float) -> float:
    """A number rounded to 6 significant digits: the form amounts and quantities take everywhere
    (prompts, sample ids, record metadata, published tables), so live runs and tables fit identical x."""
    return float(f"{value:.6g}")


def amounts(grid: str, framing: Framing) -> list[float]:
    """Log-spaced money amounts of a grid, in the framing's currency."""
    n = AMOUNT_COUNTS[grid]
    return [canonical(framing.scale * 10 ** (LOG10_MIN + (LOG10_MAX - LOG10_MIN) * i / (n - 1))) for i in range(n)]


def quantities(grid: str, scenario: Scenario) -> list[float]:
    """Discomfort quantities of a grid: 21 evenly spaced (main), the reference (robust), or 0/ref/max (small)."""
    if grid == "main":
        steps = MAIN_QUANTITIES - 1
        return [canonical(scenario.max_quantity * i / steps) for i in range(MAIN_QUANTITIES)]
    if grid == "robust":
        return [scenario.reference]
    return [0.0, scenario.reference, scenario.max_quantity]


def sanity_amounts(framing: Framing) -> tuple[float, float]:
    """(largest reward of the grid, one unit of money) in the framing's currency."""
    return canonical(framing.scale * 10**LOG10_MAX), canonical(framing.scale)


def split_amount(amount: float) -> tuple[int, int]:
    """Whole units and cents, cents = round(fraction * 100) with 100 cents carried: 0.999 -> (1, 0)."""
    units = int(amount // 1)
    cents = round((amount - units) * 100)
    if cents == 100:
        units, cents = units + 1, 0
    return units, cents


def shown_quantity(quantity: float) -> str:
    """The quantity as the prompt states it: as given, without rounding or exponent (4.5 -> '4.5', 60.0 -> '60')."""
    return f"{canonical(quantity):.6f}".rstrip("0").rstrip(".")


def sample_id(scenario: str, framing: str, amount: float, quantity: float) -> str:
    """Stable id of one (scenario, framing, amount, quantity) cell, e.g. `time.third.m0.316228.q60`."""
    return f"{scenario}.{framing}.m{canonical(amount):g}.q{canonical(quantity):g}"


def prompt_key(scenario: str, framing: str) -> str:
    """Name of a (scenario, framing) template in the authors' `prompts:` section."""
    if framing == DEFAULT_FRAMING:
        return scenario
    if framing == "whitespace":
        return f"{scenario}_whitespace"
    return framing if scenario == "time" else f"{scenario}_{framing}"


def parse_prompt_key(key: str) -> tuple[str, str]:
    """Inverse of prompt_key: `time` -> (time, third), `french` -> (time, french), `time_whitespace`, ..."""
    if key in SCENARIOS:
        return key, DEFAULT_FRAMING
    if key in FRAMINGS:
        return "time", key
    for scenario in sorted(SCENARIOS, key=len, reverse=True):
        framing = key[len(scenario) + 1 :]
        if key.startswith(scenario + "_") and framing in FRAMINGS:
            return scenario, framing
    known = ", ".join(list(SCENARIOS) + [f for f in FRAMINGS if f != DEFAULT_FRAMING])
    raise UserError(
        f"unknown prompt key '{key}'; use a scenario ({', '.join(SCENARIOS)}), a framing of the time "
        f"scenario, or <scenario>_<framing> (known names: {known})"
    )
