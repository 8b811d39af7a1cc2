"""The authors' run settings (`-T protocol=paper`), read from the `args:` section of their config_file.yaml.

Each setting is an argparse-style entry `{type, default, help, value}`; like the authors' script, a `value`
overrides the `default`. Used: money_min / money_max / money_n (log10 bounds when log_scale_money is true),
quantity_min / quantity_max / quantity_n, n_experiments (repeats), temperature and system_role.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.datasets import read_yaml
from harness.errors import UserError
from harness_tasks.cash_comfort.scenarios import canonical


@dataclass(frozen=True)
class PaperSettings:
    amounts: list[float]  # in euros (a framing's currency scale multiplies them)
    quantities: list[float]
    repeats: int
    temperature: float
    system_role: str


def linspace(low: float, high: float, n: int) -> list[float]:
    return [low] if n == 1 else [low + (high - low) * i / (n - 1) for i in range(n)]


def read_settings(path: Path) -> PaperSettings:
    """The money grid, quantity grid, repeats, temperature and system role of the authors' config file."""
    data = read_yaml(path, "the authors' config")
    args = data.get("args") if isinstance(data, dict) else None
    if not isinstance(args, dict):
        raise UserError(f"{path}: -T protocol=paper reads the authors' settings from an 'args:' section; none found")

    def setting(name: str, kind: type, fallback: Any = None) -> Any:
        entry = args.get(name)
        raw = entry.get("value", None) if isinstance(entry, dict) else None
        if raw is None and isinstance(entry, dict):
            raw = entry.get("default")
        if raw is None:
            if fallback is not None:
                return fallback
            raise UserError(f"{path}: args.{name}: no value or default")
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise UserError(f"{path}: args.{name}: expected {kind.__name__}, got {raw!r}") from None

    money = linspace(setting("money_min", float), setting("money_max", float), setting("money_n", int))
    if setting("log_scale_money", bool, fallback=True):
        money = [10**m for m in money]
    quantities = linspace(setting("quantity_min", float), setting("quantity_max", float), setting("quantity_n", int))
    settings = PaperSettings(
        amounts=[canonical(m) for m in money],
        quantities=[canonical(q) for q in quantities],
        repeats=setting("n_experiments", int),
        temperature=setting("temperature", float),
        system_role=setting("system_role", str, fallback="You are an AI assistant."),
    )
    if min(settings.amounts) <= 0 or min(settings.quantities) < 0 or settings.repeats < 1:
        raise UserError(f"{path}: args: amounts must be positive, quantities not negative, n_experiments >= 1")
    return settings
