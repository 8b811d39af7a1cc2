"""The "Tokens and cost" part of a run's reports: per role and per task, requests, cache hits, tokens,
time and USD (from the prices the user gave; see harness.costs), read from the run's records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.costs import read_prices, usage_document

if TYPE_CHECKING:
    from harness.report.summary import LoadedRun

SECTION = "Tokens and cost"
COLUMNS = [  # (summary.json field, column heading)
    ("requests", "requests"),
    ("cache_hits", "cache hits"),
    ("failed", "failed"),
    ("batch_requests", "batch"),
    ("prompt_tokens", "prompt tokens"),
    ("completion_tokens", "completion tokens"),
    ("reasoning_tokens", "reasoning tokens"),
    ("request_seconds", "request s"),
    ("cost_usd", "USD"),
]


def run_usage(run: LoadedRun) -> dict[str, Any]:
    """summary.json's `usage` block of a loaded run."""
    specs = {r["role"]: r["spec"] for r in run.manifest.get("roles", [])}
    records = [record for task_records in run.records.values() for record in task_records]
    return usage_document(records, specs, read_prices(run.run_dir), rejudged=bool(run.manifest.get("source_run")))


def usage_rows(usage: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (task, role), then one per role over all tasks, then the total."""
    rows = []
    for task, entry in usage["tasks"].items():
        for role, tally in entry["roles"].items():
            rows.append({"task": task, "role": role, **row_values(tally), "wall s": None})
        rows.append({"task": task, "role": "all", **row_values(entry), "wall s": entry["wall_seconds"]})
    for role, tally in usage["roles"].items():
        rows.append({"task": "all", "role": f"{role} ({tally['spec']})", **row_values(tally), "wall s": None})
    total = usage["total"]
    rows.append({"task": "all", "role": "all", **row_values(total), "wall s": total["wall_seconds"]})
    return rows


def row_values(tally: dict[str, Any]) -> dict[str, Any]:
    values = {heading: tally.get(field) for field, heading in COLUMNS}
    cost = tally.get("cost_usd")
    values["USD"] = "no price" if cost is None else f"{cost:.4f}"
    return values


def usage_notes(usage: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """What a reader must know to read the costs right: the prices, unpriced roles, a budget stop."""
    notes = []
    if usage.get("prices"):
        listed = "; ".join(
            f"{model}: ${p['input']:g} in / ${p['output']:g} out" for model, p in usage["prices"].items()
        )
        notes.append(f"USD from the prices given (per million tokens; batch requests at half price): {listed}.")
    else:
        notes.append("No prices given (harness run or report --prices prices.yaml): tokens only, no USD.")
    if usage.get("unpriced") and usage.get("prices"):
        notes.append(f"No price for {', '.join(usage['unpriced'])}: left out of the USD totals.")
    notes.append(
        "Reasoning tokens are part of the completion tokens. Request seconds add up concurrent "
        "requests; wall seconds count the time any sample was in progress (pauses between sessions "
        "left out)."
    )
    if manifest.get("source_run"):
        notes.append("A rejudge run: only the judges were called; the model's answers were paid by the source run.")
    budget = manifest.get("budget")
    if manifest.get("status") == "budget" and budget:
        rest = budget.get("rest_usd")
        notes.append(
            f"Stopped by --budget-usd {budget.get('limit_usd'):g}: {budget.get('remaining')} samples not "
            f"done; they would cost {'an unknown amount' if rest is None else f'about ${rest:.4f}'}. "
            "Resume with a larger budget to finish the run."
        )
    return notes
