"""Tokens and cost: the prices a user gives (prices.yaml), usage tallies read from a run's records, and USD
from the two. There is no built-in price table: prices change, so they only come from the user."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.datasets import read_yaml
from harness.errors import UserError
from harness.types import Completion, Exchange, Record, Usage, is_judge_role

BATCH_DISCOUNT = 0.5  # batch API requests cost half the regular price
PRICES_FILE = "prices.json"  # the prices a run's reports use, kept in its run directory
PER_TOKENS = 1_000_000  # prices are USD per million tokens


class Price(BaseModel):
    """USD per million input (prompt) and output (completion, reasoning included) tokens."""

    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)


def load_prices(path: Path) -> dict[str, Price]:
    """Read prices.yaml (`model: {input: USD, output: USD}` per million tokens); a model is its spec
    (openai/gpt-4o-mini) or its bare name (gpt-4o-mini). Any problem is one UserError naming the key."""
    data = read_yaml(path, "the price file")
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: expected a mapping of model -> {{input: USD, output: USD}} per million tokens")
    prices = {}
    for model, entry in data.items():
        try:
            prices[str(model)] = Price.model_validate(entry)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise UserError(
                f"{path}: model '{model}'{' field ' + repr(where) if where else ''}: "
                f"{problem['msg'].lower()} (expected input and output USD per million tokens)"
            ) from None
    return prices


def price_for(prices: dict[str, Price] | None, spec: str) -> Price | None:
    """The price of a model spec: listed under the spec itself, else under its name without the kind."""
    if not prices:
        return None
    return prices.get(spec) or prices.get(spec.partition("/")[2])


def usd(usage: Usage, price: Price, batch: bool = False) -> float:
    """What `usage` costs at `price` (half for a batch request); reasoning tokens are part of completion."""
    full = (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / PER_TOKENS
    return full * BATCH_DISCOUNT if batch else full


def completion_usd(completion: Completion, price: Price | None) -> float:
    """The cost of one answer: nothing when it came from the cache or the model has no price."""
    if price is None or completion.cached:
        return 0.0
    return usd(completion.usage, price, completion.batch)


@dataclass
class Tally:
    """Requests and tokens of one role (in one task): what was sent, what the cache answered, what it took."""

    requests: int = 0  # sent to the backend (failed ones included)
    failed: int = 0  # of those, the ones that ended in an error
    cache_hits: int = 0  # answered from the response cache: no request, no cost
    batch_requests: int = 0  # of the requests, the ones sent through a batch API
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0
    request_seconds: float = 0.0  # summed over requests (concurrent requests overlap, so above wall time)

    def add(self, exchange: Exchange) -> None:
        """Count one recorded model call."""
        completion = exchange.completion
        if completion is None:
            return
        if completion.cached:
            self.cache_hits += 1
            return
        usage = completion.usage
        self.requests += 1
        self.failed += exchange.error is not None
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.reasoning_tokens += usage.reasoning_tokens
        self.request_seconds += completion.latency_s
        if completion.batch:
            self.batch_requests += 1
            self.batch_prompt_tokens += usage.prompt_tokens
            self.batch_completion_tokens += usage.completion_tokens

    def merge(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def cost(self, price: Price) -> float:
        """USD at `price`, batch requests at the batch discount."""
        batch = Usage(prompt_tokens=self.batch_prompt_tokens, completion_tokens=self.batch_completion_tokens)
        regular = Usage(
            prompt_tokens=self.prompt_tokens - self.batch_prompt_tokens,
            completion_tokens=self.completion_tokens - self.batch_completion_tokens,
        )
        return usd(regular, price) + usd(batch, price, batch=True)

    def document(self, price: Price | None) -> dict[str, Any]:
        """The tally for summary.json, with `cost_usd` (None without a price)."""
        data: dict[str, Any] = asdict(self)
        data["request_seconds"] = round(self.request_seconds, 3)
        data["cost_usd"] = None if price is None else round(self.cost(price), 8)
        return data


def called_roles(record: Record, rejudged: bool) -> Iterable[Exchange]:
    """The exchanges a run paid for: all, except in a rejudge run, whose model and simulator answers are
    copies of the source run's (paid there)."""
    return (ex for ex in record.exchanges if not rejudged or is_judge_role(ex.role))


def tallies(records: Iterable[Record], rejudged: bool = False) -> dict[str, dict[str, Tally]]:
    """task -> role -> Tally over the records' model calls."""
    found: dict[str, dict[str, Tally]] = {}
    for record in records:
        by_role = found.setdefault(record.task, {})
        for exchange in called_roles(record, rejudged):
            by_role.setdefault(exchange.role, Tally()).add(exchange)
    return found


def wall_seconds(records: Iterable[Record]) -> float:
    """Seconds during which at least one of the records was being worked on (pauses between resumed
    sessions do not count; concurrent samples count once)."""
    spans = sorted((r.started_at, r.finished_at) for r in records if r.finished_at >= r.started_at > 0)
    total, end = 0.0, float("-inf")
    for start, finish in spans:
        if finish > end:
            total += finish - max(start, end)
            end = finish
    return total


def usage_document(
    records: list[Record], specs: dict[str, str], prices: dict[str, Price] | None, rejudged: bool = False
) -> dict[str, Any]:
    """summary.json's `usage`: per role, per task (and its roles) and in total: requests, cache hits, tokens,
    request time, wall time and USD. `specs` maps role -> model spec; roles whose model has no price have
    cost_usd None and are listed in `unpriced` (the totals then leave them out)."""
    by_task = tallies(records, rejudged)
    price = {role: price_for(prices, spec) for role, spec in specs.items()}
    roles: dict[str, Tally] = {}
    tasks: dict[str, Any] = {}
    for task, by_role in sorted(by_task.items()):
        task_records = [r for r in records if r.task == task]
        task_total = Tally()
        for role, tally in by_role.items():
            roles.setdefault(role, Tally()).merge(tally)
            task_total.merge(tally)
        tasks[task] = {
            "wall_seconds": round(wall_seconds(task_records), 3),
            "roles": {role: tally.document(price.get(role)) for role, tally in sorted(by_role.items())},
            "cost_usd": priced_sum(by_role, price),
            **{k: v for k, v in task_total.document(None).items() if k != "cost_usd"},
        }
    total = Tally()
    for tally in roles.values():
        total.merge(tally)
    unpriced = sorted(role for role, tally in roles.items() if tally.requests and price.get(role) is None)
    return {
        "prices": {specs[r]: p.model_dump() for r in sorted(roles) if (p := price.get(r)) and r in specs} or None,
        "roles": {
            role: {"spec": specs.get(role, "?"), **tally.document(price.get(role))}
            for role, tally in sorted(roles.items())
        },
        "tasks": tasks,
        "total": {
            **{k: v for k, v in total.document(None).items() if k != "cost_usd"},
            "wall_seconds": round(wall_seconds(records), 3),
            "cost_usd": priced_sum(roles, price),
        },
        "unpriced": [f"{role} ({specs.get(role, '?')})" for role in unpriced],
    }


def priced_sum(by_role: dict[str, Tally], price: dict[str, Price | None]) -> float | None:
    """USD of the roles that have a price (None when none has)."""
    priced = [tally.cost(p) for role, tally in by_role.items() if (p := price.get(role)) is not None]
    return round(sum(priced), 8) if priced else None


def save_prices(run_dir: Path, prices: dict[str, Price]) -> None:
    """Keep the prices with the run, so `harness report` prices it the same way later."""
    from harness.store import write_json

    write_json(Path(run_dir) / PRICES_FILE, {model: p.model_dump() for model, p in prices.items()})


def read_prices(run_dir: Path) -> dict[str, Price] | None:
    """The prices saved with a run (None if it has none)."""
    path = Path(run_dir) / PRICES_FILE
    if not path.exists():
        return None
    try:
        return {model: Price.model_validate(p) for model, p in json.loads(path.read_text()).items()}
    except (ValueError, ValidationError, AttributeError):
        raise UserError(f"{path}: corrupt price file; pass --prices again to replace it") from None


def rest_usd(records: list[Record], planned: dict[str, int], prices: dict[str, Price | None]) -> float | None:
    """What the unfinished samples would cost: per task, the mean cost of its finished records times the
    records still to do (a task with none finished: the mean over all tasks); None when nothing is known."""
    cost: dict[str, list[float]] = {}
    for record in records:
        spent = sum(
            completion_usd(ex.completion, prices.get(ex.role)) for ex in record.exchanges if ex.completion is not None
        )
        cost.setdefault(record.task, []).append(spent)
    every = [c for costs in cost.values() for c in costs]
    if not every:
        return None
    overall = sum(every) / len(every)
    rest = 0.0
    for task, count in planned.items():
        done = cost.get(task, [])
        mean = sum(done) / len(done) if done else overall
        rest += mean * max(0, count - len(done))
    return rest
