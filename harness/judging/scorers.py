"""The scorer contract: a named way to score one response, registered in the `harness.scorers` group.

A scorer plugin is a `Scorer` object: an async function from (prompt, response, ctx) to a `Score`,
plus what it needs and which labels it gives. A package registers one with

    [project.entry-points."harness.scorers"]
    keyword_refusal = "mypkg.scorers:KEYWORD_REFUSAL"

A task uses any scorer by name (`await get_scorer("keyword_refusal").score(prompt, response, ctx)`);
a scorer whose `labels` are the refusal labels also serves `--refusal-scorer NAME` (see refusal.py).
The built-in refusal scorers `rules`, `judge` and `hybrid` are registered the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from harness.errors import UserError
from harness.plugins import SCORERS, lookup
from harness.types import Score

if TYPE_CHECKING:
    from harness.context import SampleContext

ScoreFunction = Callable[[str, str, "SampleContext"], Awaitable[Score]]


@dataclass(frozen=True)
class Scorer:
    """An async `score(prompt, response, ctx) -> Score`.

    `needs_judge`: it calls the run's judges (`run_judges`), so the run must have `--judge`.
    `labels`: every label its Scores may carry (empty when it gives only numbers); a Score whose
    verdict could not be reached has `value=None` and says why in `label`/`raw`, never a silent 0.
    """

    score: ScoreFunction
    needs_judge: bool = False
    labels: tuple[str, ...] = ()


@cache
def get_scorer(name: str) -> Scorer:
    """The scorer registered as `name`, imported on first use; UserError naming the package on failure."""
    plugin = lookup(SCORERS, name)
    scorer = plugin.load()
    if not isinstance(scorer, Scorer):
        raise UserError(
            f"scorer '{name}' from package {plugin.origin} ({plugin.target}) is not a harness.judging.scorers.Scorer"
        )
    return scorer
