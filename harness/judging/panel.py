"""Combining a judge panel: majority votes, panel Scores, judge-error counts and inter-judge agreement.

A panel Score stores every judge's `JudgeVerdict` in `Score.raw["judges"]`, so agreement and error
counts can be recomputed from the records alone.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import combinations
from typing import Any, TypeVar

from harness.judging.llm_judge import JudgeVerdict
from harness.stats import cohen_kappa, fleiss_kappa, kappa_undefined
from harness.types import Score

T = TypeVar("T", bound=Hashable)

JUDGE_ERROR = "judge_error"


def majority(votes: Sequence[T | None], prefer: Sequence[T] = ()) -> T | None:
    """The most common vote, None votes abstaining; None if all abstain.

    A tie goes to the first value of `prefer` among the tied ones, else to the tied value voted first
    (so with judges in --judge order, the first judge breaks ties).
    """
    cast = [v for v in votes if v is not None]
    if not cast:
        return None
    counts = Counter(cast)
    top = max(counts.values())
    tied = [v for v in counts if counts[v] == top]  # Counter keeps first-seen order
    return next((p for p in prefer if p in tied), tied[0])


def panel_score(
    scorer: str,
    verdicts: list[JudgeVerdict],
    *,
    value: float | str | None,
    label: str | None,
    extra: dict[str, Any] | None = None,
) -> Score:
    """A Score carrying every verdict; `value=None` (no judge gave a verdict) makes it a judge error."""
    raw = {"judges": [v.model_dump(mode="json") for v in verdicts], **(extra or {})}
    if value is None:
        reasons = "; ".join(f"{v.role} ({v.model}): {v.error}: {v.detail}" for v in verdicts if not v.ok)
        return Score(scorer=scorer, error=JUDGE_ERROR, explanation=reasons or "no verdict", raw=raw)
    return Score(scorer=scorer, value=value, label=label, raw=raw)


def stored_verdicts(score: Score | None) -> list[JudgeVerdict]:
    """The judge verdicts a panel Score carries (empty for scores decided without judges)."""
    if score is None or not isinstance(score.raw, dict):
        return []
    return [JudgeVerdict.model_validate(v) for v in score.raw.get("judges") or []]


def judge_error_counts(scores: Iterable[Score | None]) -> dict[str, int]:
    """`judge_errors`: items without any verdict (excluded from rates); `judge_call_errors`: failed
    judge calls (in a panel these are abstentions), by reason too."""
    counts = {"judge_errors": 0, "judge_call_errors": 0}
    for score in scores:
        if score is None:
            continue
        counts["judge_errors"] += score.error == JUDGE_ERROR
        for verdict in stored_verdicts(score):
            if not verdict.ok:
                counts["judge_call_errors"] += 1
                key = f"judge_call_errors_{verdict.error}"
                counts[key] = counts.get(key, 0) + 1
    return counts


def panel_units(
    scores: Iterable[Score | None],
    split: Callable[[Any], Sequence[Hashable]] = lambda verdict: [verdict],
) -> tuple[list[str], list[list[Hashable | None]]]:
    """Judges (as 'role (model)', in panel order) and their ratings of every unit.

    `split` turns one verdict into its units (e.g. a Y/N answer string into one unit per question).
    A failed verdict rates each unit None; items that no judge rated are left out.
    """
    judges: list[str] = []
    items: list[dict[str, Sequence[Hashable] | None]] = []
    for score in scores:
        verdicts = stored_verdicts(score)
        if not any(v.ok for v in verdicts):
            continue
        item: dict[str, Sequence[Hashable] | None] = {}
        for v in verdicts:
            key = f"{v.role} ({v.model})"
            if key not in judges:
                judges.append(key)
            item[key] = list(split(v.verdict)) if v.ok else None
        items.append(item)
    units: list[list[Hashable | None]] = []
    for item in items:
        size = max(len(r) for r in item.values() if r is not None)
        for i in range(size):
            units.append([r[i] if (r := item.get(j)) is not None and i < len(r) else None for j in judges])
    return judges, units


def agreement_table(judges: list[str], units: list[list[Hashable | None]]) -> list[dict[str, Any]]:
    """Pairwise percent agreement and Cohen's kappa, plus Fleiss' kappa over all judges.

    Each statistic uses the units that all its judges rated. Empty when fewer than two judges.
    """
    if len(judges) < 2:
        return []
    rows = []
    for a, b in combinations(range(len(judges)), 2):
        pairs = [(u[a], u[b]) for u in units if u[a] is not None and u[b] is not None]
        rows.append(_row(f"{judges[a]} vs {judges[b]}", "Cohen", [x for x, _ in pairs], [y for _, y in pairs]))
    complete = [u for u in units if all(v is not None for v in u)]
    agree = sum(len(set(u)) == 1 for u in complete)
    rows.append({
        "judges": "all" if len(judges) > 2 else f"{judges[0]} vs {judges[1]}",
        "statistic": "Fleiss",
        "units": len(complete),
        "agreement_%": round(100 * agree / len(complete), 1) if complete else None,
        "kappa": _round(fleiss_kappa(complete)),
        "kappa_note": kappa_undefined(*zip(*complete)),
    })
    return rows


def _row(label: str, statistic: str, a: list, b: list) -> dict[str, Any]:
    return {
        "judges": label,
        "statistic": statistic,
        "units": len(a),
        "agreement_%": round(100 * sum(x == y for x, y in zip(a, b)) / len(a), 1) if a else None,
        "kappa": _round(cohen_kappa(a, b)),
        "kappa_note": kappa_undefined(a, b),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
