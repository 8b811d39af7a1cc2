"""harness.costs against hand-computed values: wall time as a union of spans, batch half price, price lookup,
the projected cost of the unfinished samples."""
from __future__ import annotations

import pytest

from harness.costs import Price, Tally, price_for, rest_usd, wall_seconds
from harness.types import Completion, Exchange, Message, Record, Usage


def record(task: str, start: float, end: float, prompt: int = 0, completion: int = 0, batch: bool = False,
           cached: bool = False) -> Record:
    answer = Completion(text="x", usage=Usage(prompt_tokens=prompt, completion_tokens=completion), batch=batch,
                        cached=cached)
    exchange = Exchange(role="model", purpose="response", messages=[Message(role="user", content="q")],
                        completion=answer)
    return Record(task=task, sample_id=f"{task}{start}", exchanges=[exchange], started_at=start, finished_at=end)


def test_wall_time_counts_overlapping_samples_once_and_skips_pauses():
    spans = [record("t", 100, 110), record("t", 105, 112), record("t", 200, 203), record("t", 201, 202)]
    assert wall_seconds(spans) == (112 - 100) + (203 - 200)


def test_batch_tokens_cost_half_and_cache_hits_cost_nothing():
    tally = Tally()
    for r in (record("t", 1, 2, 1000, 500), record("t", 1, 2, 2000, 100, batch=True),
              record("t", 1, 2, 9999, 9999, cached=True)):
        tally.add(r.exchanges[0])
    price = Price(input=2.0, output=10.0)
    assert (tally.requests, tally.cache_hits, tally.batch_requests) == (2, 1, 1)
    assert tally.cost(price) == pytest.approx((1000 * 2 + 500 * 10) / 1e6 + 0.5 * (2000 * 2 + 100 * 10) / 1e6)


def test_a_price_is_found_by_spec_or_by_bare_name():
    prices = {"openai/gpt-4o": Price(input=1, output=2), "gpt-4o-mini": Price(input=3, output=4)}
    assert price_for(prices, "openai/gpt-4o").input == 1
    assert price_for(prices, "openai/gpt-4o-mini").input == 3
    assert price_for(prices, "vllm/gpt-4o-mini").input == 3 and price_for(prices, "openai/o3") is None


def test_the_rest_costs_each_tasks_mean_per_finished_sample():
    price = {"model": Price(input=1_000_000, output=0)}  # $1 per prompt token
    done = [record("a", 1, 2, 2), record("a", 1, 2, 4), record("b", 1, 2, 10)]
    # a: mean $3, 3 left; b: mean $10, 1 left; c: nothing done, overall mean $16/3, 2 left
    assert rest_usd(done, {"a": 5, "b": 2, "c": 2}, price) == pytest.approx(3 * 3 + 10 + 2 * 16 / 3)
