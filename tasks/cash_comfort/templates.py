"""Prompt templates: the bundled YAML or the authors' config file, both with a `prompts:` section.

Templates are data: the three placeholders are replaced literally and nothing else in the text is
interpreted (no str.format, no Jinja), so braces or other markup in a template stay as written.
"""

from __future__ import annotations

from pathlib import Path

from harness.datasets import bundled_path as data_file
from harness.datasets import read_yaml
from harness.errors import UserError
from harness_tasks.cash_comfort.scenarios import parse_prompt_key, shown_quantity, split_amount

PLACEHOLDERS = ("{reward_euros}", "{reward_cents}", "{quant}")
Templates = dict[tuple[str, str], str]  # (scenario, framing) -> template text


def bundled_path() -> Path:
    return data_file("harness_tasks.cash_comfort", "prompts.yaml")


def load_templates(path: Path) -> Templates:
    """Read the `prompts:` mapping of a YAML file (yaml.safe_load); other sections are ignored."""
    data = read_yaml(path, "the template file")
    prompts = data.get("prompts") if isinstance(data, dict) else None
    if not isinstance(prompts, dict) or not prompts:
        raise UserError(f"{path}: expected a non-empty 'prompts:' mapping of prompt key -> template text")
    templates: Templates = {}
    for key, text in prompts.items():
        try:
            combo = parse_prompt_key(str(key))
        except UserError as exc:
            raise UserError(f"{path}: prompts.{key}: {exc}") from None
        if not isinstance(text, str):
            raise UserError(f"{path}: prompts.{key}: expected text, got {type(text).__name__}")
        missing = [p for p in PLACEHOLDERS if p not in text]
        if missing:
            raise UserError(f"{path}: prompts.{key}: missing placeholder(s) {', '.join(missing)}")
        templates[combo] = text
    return templates


def render(template: str, amount: float, quantity: float) -> str:
    """The prompt for one offer: amount split into units and cents, quantity as given (never rounded)."""
    units, cents = split_amount(amount)
    values = {"{reward_euros}": str(units), "{reward_cents}": str(cents), "{quant}": shown_quantity(quantity)}
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template
