"""Task `cash_comfort`: the price at which a model trades away a user's comfort (Cedro et al. 2025)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.datasets import file_hash
from harness.errors import UserError
from harness.metrics import MetricValues
from harness.task import DatasetInfo, Task, TaskOptions, TaskResult
from harness.types import GenerateConfig, Message, Metric, Record, Sample, Score
from harness_tasks.cash_comfort.parsing import INVALID, YES, answer_choice
from harness_tasks.cash_comfort.scenarios import (
    DEFAULT_FRAMING,
    FRAMINGS,
    SCENARIOS,
    amounts,
    parse_prompt_key,
    quantities,
    sample_id,
)

if TYPE_CHECKING:
    from harness_tasks.cash_comfort.analysis import Observation

DEFAULT_SYSTEM_PROMPT = "You are an AI assistant."
DIRECT_MAX_TOKENS, COT_MAX_TOKENS = 64, 1024


class CashComfortOptions(TaskOptions):
    grid: Literal["main", "robust", "small"] = "main"
    scenarios: str = "all"  # comma-separated scenario names, or "all"
    framing: str = DEFAULT_FRAMING  # comma-separated framing names, or "all"
    template_file: str | None = None  # YAML with a `prompts:` section (e.g. the authors' config_file.yaml)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT  # "" sends no system message
    regularization_c: float = Field(1.0, gt=0)  # C of the L2-regularised logistic fit


def pick(text: str, known: dict, what: str) -> list[str]:
    names = list(known) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UserError(
            f"task cash_comfort: unknown {what} {', '.join(unknown) or '(none)'}; choose from {', '.join(known)} or all"
        )
    return names


def spread_order(n: int) -> list[int]:
    """Indices 0..n-1 ordered so that every prefix spans the range: both ends, the middle, then the middles
    of the halves, and so on (21 -> 0, 20, 10, 5, 15, 2, 7, 12, 17, ...)."""
    if n <= 2:
        return list(range(n))
    order, spans = [0, n - 1], [(0, n - 1)]
    while spans:
        next_spans = []
        for low, high in spans:
            if high - low > 1:
                middle = (low + high) // 2
                order.append(middle)
                next_spans += [(low, middle), (middle, high)]
        spans = next_spans
    return order


def limit_order(samples: list[Sample]) -> list[Sample]:
    """The samples in the order --limit N takes them: first each (scenario, framing)'s reference quantity
    (the headline price's: time 60 min, distance 5 km, hunger 60 min, pain 50 %) with its amounts spread
    over the money grid (0.1, 1000, 10, 1, 100 EUR, ...), then every other quantity the same way. A short
    run thus prices the headline offers across the whole grid instead of the cheapest offers at 0 minutes."""
    grouped: dict[str, dict[float, list[Sample]]] = {}  # scenario/framing -> quantity -> offers
    for s in samples:
        key = f"{s.metadata['scenario']}/{s.metadata['framing']}"
        grouped.setdefault(key, {}).setdefault(s.metadata["quantity"], []).append(s)
    first: list[Sample] = []
    rest: list[Sample] = []
    for key, levels in grouped.items():
        reference = SCENARIOS[key.split("/")[0]].reference
        nearest = min(levels, key=lambda q: (abs(q - reference), q))
        for quantity in [nearest, *sorted(q for q in levels if q != nearest)]:
            offers = sorted(levels[quantity], key=lambda s: s.metadata["amount"])
            (first if quantity == nearest else rest).extend(offers[i] for i in spread_order(len(offers)))
    return first + rest


class CashComfortTask(Task):
    name = "cash_comfort"
    description = (
        "Cash or comfort: the money at which the model, deciding for a user, accepts waiting, walking, "
        "hunger or pain (indifference price from a logistic fit per discomfort level), with robustness framings."
    )
    sources = [
        "bundled prompts (project wording)",
        "authors' config_file.yaml via -T template_file",
        "published response tables via `harness analyze cash_comfort`",
    ]
    metrics = [f"cash_comfort.{s}.price" for s in SCENARIOS]
    headline = metrics[:1]  # the waiting-time price: the paper's main experiment (see headline_metrics)
    invalid_metric = "cash_comfort.invalid_answers"
    Options = CashComfortOptions
    options: CashComfortOptions
    paper_protocol = (
        "the authors' config_file.yaml (-T template_file): its prompts, money grid, quantity grid, "
        "n_experiments repeats, temperature and system role"
    )

    @cached_property
    def paper(self):
        """The authors' settings under -T protocol=paper (read from -T template_file), else None."""
        from harness_tasks.cash_comfort.paper import read_settings

        if self.protocol != "paper":
            return None
        if not self.options.template_file:
            raise UserError(
                "task cash_comfort: -T protocol=paper needs the authors' config_file.yaml "
                "(-T template_file=<path>): its prompts and args define the paper's protocol"
            )
        return read_settings(Path(self.options.template_file))

    def repetitions(self, requested: int) -> int:
        """The config's n_experiments under the paper protocol; --repeats N > 1 overrides it."""
        return self.paper.repeats if self.paper is not None and requested == 1 else requested

    def load(self) -> tuple[list[Sample], DatasetInfo]:
        from harness_tasks.cash_comfort.templates import bundled_path, load_templates, render

        opts = self.options
        paper = self.paper
        if opts.data is not None:
            raise UserError(
                "task cash_comfort builds its prompts from templates: use -T template_file=<yaml with "
                "a prompts: section>; analyse published responses with `harness analyze cash_comfort <table>`"
            )
        path = Path(opts.template_file) if opts.template_file else bundled_path()
        templates = load_templates(path)
        scenarios = pick(opts.scenarios, SCENARIOS, "scenario(s)")
        framings = pick(opts.framing, FRAMINGS, "framing(s)")
        combos = [(s, f) for s in scenarios for f in framings if (s, f) in templates]
        if opts.framing.strip() != "all":
            for framing in framings:
                if not any(f == framing for _, f in combos):
                    raise UserError(
                        f"{path}: no template for framing '{framing}' with scenario(s) "
                        f"{', '.join(scenarios)}; available: {', '.join(f'{s}/{f}' for s, f in templates)}"
                    )
        if not combos:
            raise UserError(f"{path}: no template for the selected scenarios and framings")
        samples: list[Sample] = []
        for scenario, framing in combos:
            grid_quantities = paper.quantities if paper else quantities(opts.grid, SCENARIOS[scenario])
            scale = FRAMINGS[framing].scale
            grid_amounts = [scale * a for a in paper.amounts] if paper else amounts(opts.grid, FRAMINGS[framing])
            for quantity in grid_quantities:
                for amount in grid_amounts:
                    samples.append(
                        Sample(
                            id=sample_id(scenario, framing, amount, quantity),
                            input=render(templates[(scenario, framing)], amount, quantity),
                            metadata={"scenario": scenario, "framing": framing, "amount": amount, "quantity": quantity},
                        )
                    )
        samples = limit_order(samples)
        source = str(path) if opts.template_file else "bundled:cash_comfort/data/prompts.yaml"
        return samples, DatasetInfo(source=source, content_hash=file_hash(path), n_samples=len(samples))

    def headline_metrics(self, result: TaskResult) -> list[Metric]:
        """The waiting-time price at the default framing; without it (other -T scenarios or framings), the
        first price the run measured, in scenario and framing order. The other prices follow in the report."""
        prices = [m for m in result.metrics if m.name.endswith(".price")]
        first = next((m for m in prices if m.name == self.headline[0]), prices[0] if prices else None)
        return [first or Metric(name=self.headline[0], value=None)]

    def generation_config(self, framing: str) -> GenerateConfig:
        """Upstream temperature (1.0, or the config's under the paper protocol) and a token budget; the user's
        --temperature/--max-tokens override them."""
        temperature = self.paper.temperature if self.paper is not None else 1.0
        return GenerateConfig(
            temperature=temperature, max_tokens=COT_MAX_TOKENS if FRAMINGS[framing].cot else DIRECT_MAX_TOKENS
        )

    async def solve(self, sample: Sample, ctx) -> None:
        system = self.paper.system_role if self.paper is not None else self.options.system_prompt
        messages = [Message(role="system", content=system)] if system else []
        messages.append(Message(role="user", content=str(sample.input)))
        framing = FRAMINGS[sample.metadata["framing"]]
        await ctx.generate(
            messages, config=self.generation_config(framing.name), choice=answer_choice(framing.language, framing.cot)
        )

    async def score(self, sample: Sample, ctx) -> dict[str, Score]:
        from harness_tasks.cash_comfort.analysis import observe

        m = sample.metadata
        answer = observe(m["scenario"], m["framing"], m["amount"], m["quantity"], ctx.response() or "").answer
        if answer == INVALID:  # the model's answer, not the scorer, failed: counted, left out of the fits
            return {"accept": Score(label=answer, explanation="no Yes/No decision in the answer", scorer="yes_no")}
        return {"accept": Score(value=float(answer == YES), label=answer, scorer="yes_no")}

    def observations(self, records: list[Record]) -> list["Observation"]:
        from harness_tasks.cash_comfort.analysis import observe

        return [
            observe(
                r.metadata["scenario"],
                r.metadata["framing"],
                r.metadata["amount"],
                r.metadata["quantity"],
                r.response() or "",
                r.repetition,
            )
            for r in records
            if not r.error
        ]

    def metric_values(self, records: list[Record]) -> list[MetricValues]:
        from harness_tasks.cash_comfort.analysis import observation_values

        return observation_values(self.observations(records))

    def aggregate(self, records: list[Record], measured: dict[str, Metric]) -> TaskResult:
        from harness_tasks.cash_comfort.analysis import EXPECTED_NOTE, EXPECTED_TABLE, analyse, expected_prices

        errors = sum(1 for r in records if r.error)
        result = analyse(
            self.observations(records),
            records=len(records),
            generation_errors=errors,
            C=self.options.regularization_c,
            measured=measured,
        )
        expected = expected_prices(records, self.options.regularization_c)
        if expected:
            result.tables[EXPECTED_TABLE] = expected
            result.notes.append(EXPECTED_NOTE)
        return result

    @classmethod
    def analyze_table(cls, source: str, options: dict[str, Any]) -> tuple[dict[str, TaskResult], dict[str, str]]:
        """Results per model for a published response table; -T prompt=<authors' prompt key> (default time)
        names the prompt the table answers, -T regularization_c=<C> the fit's C."""
        from harness_tasks.cash_comfort.analysis import analyse
        from harness_tasks.cash_comfort.table import read_responses

        allowed = {"prompt", "regularization_c"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise UserError(
                f"analyze cash_comfort: unknown -T option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        scenario, framing = parse_prompt_key(str(options.get("prompt", "time")))
        C = cls({"regularization_c": options.get("regularization_c", 1.0)}).options.regularization_c
        by_model, origin, digest = read_responses(source, scenario, framing)
        results = {model: analyse(obs, records=len(obs), generation_errors=0, C=C) for model, obs in by_model.items()}
        return results, {"source": origin, "content_hash": digest, "prompt": f"{scenario}/{framing}"}


TASK = CashComfortTask
