"""Leaderboard: the latest complete run per (model, task) under a results directory, one row per model.
Failed runs (too many errored samples) are left out unless asked for, and then marked.

Columns are each task's headline metrics (the names a task lists in `Task.metrics`; `<...>` parts match
any name segment) with their 95% intervals, or the bound of a censored result ('>1000'). Output as CSV,
Markdown, JSON or a sortable HTML table.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.costs import Price, Tally, price_for
from harness.errors import UserError
from harness.report.markdown import ARROWS, cell, format_metric_value
from harness.types import Metric

# Usage columns after the metrics: (field, heading); summed over the runs a row draws on (every role).
USAGE_COLUMNS = [
    ("requests", "requests"),
    ("prompt_tokens", "tokens in"),
    ("completion_tokens", "tokens out"),
    ("reasoning_tokens", "reasoning tokens"),
    ("cost_usd", "cost USD"),
]


@dataclass
class RunEntry:
    """A complete run found under the results directory."""

    path: Path
    model: str
    started_at: float
    manifest: dict[str, Any]
    summary: dict[str, Any]


@dataclass
class Row:
    model: str
    runs: dict[str, RunEntry] = field(default_factory=dict)  # task -> the run its metrics come from
    metrics: dict[str, Metric] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)  # USAGE_COLUMNS fields; None where unknown

    @property
    def failed(self) -> bool:
        """Some of the row's metrics come from a run whose status is 'failed'."""
        return any(e.manifest.get("status") == "failed" for e in self.runs.values())

    @property
    def mark(self) -> str:
        """Text after the model's name: a warning when a metric comes from a failed run."""
        return " (failed run)" if self.failed else ""


@dataclass
class Board:
    results_dir: Path
    columns: list[Metric]  # one per headline metric (value fields unused): name, direction, unit
    rows: list[Row]
    skipped: list[str]  # runs left out, with the reason


def discover(results_dir: Path, include_failed: bool = False) -> tuple[list[RunEntry], list[str]]:
    """Every complete run below `results_dir` (and failed ones with `include_failed`), plus notes on the
    runs left out."""
    from harness.report.summary import load_run, model_spec, summary_document
    from harness.store import read_json

    entries, skipped = [], []
    for manifest_path in sorted(Path(results_dir).rglob("manifest.json")):
        run_dir = manifest_path.parent
        try:
            manifest = read_json(manifest_path)
            if manifest.get("status") not in (("complete", "failed") if include_failed else ("complete",)):
                hint = " (--include-failed shows it)" if manifest.get("status") == "failed" else ""
                skipped.append(f"{run_dir}: status {manifest.get('status')}{hint}")
                continue
            if manifest.get("fingerprint", {}).get("shard"):
                skipped.append(
                    f"{run_dir}: shard {manifest['fingerprint']['shard']} of a run (harness merge joins them)"
                )
                continue
            summary_path = run_dir / "summary.json"
            summary = read_json(summary_path) if summary_path.exists() else summary_document(load_run(run_dir))
        except UserError as exc:
            skipped.append(f"{run_dir}: {exc}")
            continue
        entries.append(
            RunEntry(run_dir, model_spec(manifest), float(manifest.get("started_at") or 0), manifest, summary)
        )
    return entries, skipped


def headline(task: str, names: list[str]) -> list[str]:
    """The task's headline metric names among `names` (all of them if the task lists none that match)."""
    from harness.registry import task_class

    try:
        patterns = [re.sub(r"<[^>]*>", "*", p) for p in task_class(task).metrics]
    except UserError:
        patterns = []
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    return chosen or names


def task_cost(usage: dict[str, Any], task: str, prices: dict[str, Price] | None) -> float | None:
    """USD of one task of a run's summary usage: at `prices` if given, else as the run priced it; None
    when a role that made requests has no price."""
    total = 0.0
    for role, entry in usage["tasks"][task]["roles"].items():
        if prices is None:
            cost = entry.get("cost_usd")
        else:
            price = price_for(prices, usage["roles"].get(role, {}).get("spec", "?"))
            tally = Tally(**{f: entry[f] for f in Tally.__dataclass_fields__ if f in entry})
            cost = None if price is None else tally.cost(price)
        if cost is None and entry.get("requests"):
            return None
        total += cost or 0.0
    return total


def row_usage(row: Row, prices: dict[str, Price] | None) -> dict[str, Any]:
    """Requests, tokens and USD of a row: summed over the (run, task) pairs its metrics come from."""
    sums: dict[str, Any] = {name: 0 for name, _ in USAGE_COLUMNS}
    for task, entry in row.runs.items():
        usage = entry.summary.get("usage")
        if not usage or task not in usage.get("tasks", {}):  # a run from before usage was summarised
            return {name: None for name, _ in USAGE_COLUMNS}
        for name, _ in USAGE_COLUMNS[:-1]:
            sums[name] += usage["tasks"][task].get(name) or 0
        cost = task_cost(usage, task, prices)
        sums["cost_usd"] = None if cost is None or sums["cost_usd"] is None else sums["cost_usd"] + cost
    return sums


def build(results_dir: Path, include_failed: bool = False, prices: dict[str, Price] | None = None) -> Board:
    """Pick the latest complete (or with `include_failed` also failed) run per (model, task) and lay out
    one row per model; `prices` (else each run's own) give the cost column."""
    entries, skipped = discover(results_dir, include_failed)
    latest: dict[tuple[str, str], RunEntry] = {}
    for entry in entries:
        for task in entry.summary.get("tasks", {}):
            current = latest.get((entry.model, task))
            if current is None or (entry.started_at, str(entry.path)) > (current.started_at, str(current.path)):
                latest[(entry.model, task)] = entry
    rows: dict[str, Row] = {}
    columns: dict[str, Metric] = {}
    for (model, task), entry in sorted(latest.items()):
        metrics = [Metric(**m) for m in entry.summary["tasks"][task].get("metrics", [])]
        keep = set(headline(task, [m.name for m in metrics]))
        row = rows.setdefault(model, Row(model))
        row.runs[task] = entry
        for m in metrics:
            if m.name in keep:
                row.metrics[m.name] = m
                columns.setdefault(m.name, Metric(name=m.name, value=None, direction=m.direction, unit=m.unit))
    for row in rows.values():
        row.usage = row_usage(row, prices)
    return Board(Path(results_dir), list(columns.values()), sorted(rows.values(), key=lambda r: r.model), skipped)


def sort_rows(board: Board, metric: str) -> None:
    """Best first by `metric` (lower-is-better ascending, otherwise descending); missing values last."""
    column = next((c for c in board.columns if c.name == metric), None)
    if column is None:
        known = ", ".join(c.name for c in board.columns) or "none"
        raise UserError(f"--sort {metric}: no such metric in the leaderboard; columns: {known}")
    sign = 1 if column.direction == "lower" else -1

    def key(row: Row):
        m = row.metrics.get(metric)
        value = m.value if m is not None else None
        return (value is None, 0.0 if value is None else sign * value, row.model)

    board.rows.sort(key=key)


def run_label(board: Board, entry: RunEntry) -> str:
    try:
        return str(entry.path.relative_to(board.results_dir))
    except ValueError:
        return str(entry.path)


def to_json(board: Board) -> str:
    doc = {
        "results_dir": str(board.results_dir),
        "columns": [{"name": c.name, "direction": c.direction, "unit": c.unit} for c in board.columns],
        "rows": [
            {
                "model": row.model,
                "failed_run": row.failed,
                "runs": {task: run_label(board, e) for task, e in row.runs.items()},
                "metrics": {n: m.model_dump(mode="json", exclude={"name"}) for n, m in row.metrics.items()},
                "usage": row.usage,
            }
            for row in board.rows
        ],
        "skipped": board.skipped,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def to_csv(board: Board) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["model"]
    for c in board.columns:
        header += [c.name, f"{c.name}:ci_low", f"{c.name}:ci_high", f"{c.name}:n", f"{c.name}:bound"]
    writer.writerow(header + [heading for _, heading in USAGE_COLUMNS] + ["runs"])
    for row in board.rows:
        line: list[Any] = [row.model + row.mark]
        for c in board.columns:
            m = row.metrics.get(c.name)
            bound = "" if m is None or m.bound is None else m.bound.text()  # '>1000' when only a bound is known
            line += ["", "", "", "", ""] if m is None else [m.value, m.ci_low, m.ci_high, m.n, bound]
        line += ["" if row.usage.get(name) is None else row.usage[name] for name, _ in USAGE_COLUMNS]
        writer.writerow(line + [";".join(f"{t}={run_label(board, e)}" for t, e in row.runs.items())])
    return out.getvalue()


def cell_text(m: Metric | None) -> str:
    return "" if m is None else f"{format_metric_value(m)} (n={m.n})"


def usage_text(name: str, value: Any) -> str:
    if value is None:
        return "no price" if name == "cost_usd" else ""
    return f"{value:.4f}" if name == "cost_usd" else str(value)


def to_markdown(board: Board) -> str:
    head = ["model"] + [f"{c.name} ({ARROWS[c.direction] or 'no direction'})" for c in board.columns]
    head += [heading for _, heading in USAGE_COLUMNS]
    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    for row in board.rows:
        cells = [f"`{cell(row.model)}`{row.mark}"] + [cell(cell_text(row.metrics.get(c.name))) for c in board.columns]
        cells += [usage_text(name, row.usage.get(name)) for name, _ in USAGE_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- skipped {cell(s)}" for s in board.skipped]
    return "\n".join(["# Leaderboard", "", *lines, "", *notes]).rstrip() + "\n"


SORT_SCRIPT = """
document.querySelectorAll("th[data-col]").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = Number(th.dataset.col);
    var asc = th.dataset.order !== "asc";
    table.querySelectorAll("th[data-col]").forEach(function (h) { delete h.dataset.order; });
    th.dataset.order = asc ? "asc" : "desc";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.value || "", y = b.cells[col].dataset.value || "";
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var nx = Number(x), ny = Number(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def to_html(board: Board) -> str:
    from harness.report.html import esc, page

    head = (
        '<th data-col="0">model</th>'
        + "".join(
            f'<th data-col="{i}" title="{esc(ARROWS[c.direction])}">{esc(c.name)}<br><small>'
            f"{esc(ARROWS[c.direction] or 'no direction')}</small></th>"
            for i, c in enumerate(board.columns, start=1)
        )
        + "".join(
            f'<th data-col="{i}">{esc(heading)}</th>'
            for i, (_, heading) in enumerate(USAGE_COLUMNS, start=len(board.columns) + 1)
        )
    )
    body = []
    for row in board.rows:
        cells = [f'<td data-value="{esc(row.model)}"><code>{esc(row.model)}</code>{esc(row.mark)}</td>']
        for c in board.columns:
            m = row.metrics.get(c.name)
            value = "" if m is None or m.value is None else repr(m.value)
            cells.append(f'<td class="num" data-value="{esc(value)}">{esc(cell_text(m))}</td>')
        for name, _ in USAGE_COLUMNS:
            raw = row.usage.get(name)
            cells.append(
                f'<td class="num" data-value="{"" if raw is None else esc(raw)}">{esc(usage_text(name, raw))}</td>'
            )
        body.append(f'<tr data-model="{esc(row.model)}">{"".join(cells)}</tr>')
    skipped = "".join(f"<li>{esc(s)}</li>" for s in board.skipped)
    html = (
        "<main><h1>Leaderboard</h1>"
        f'<p class="note">Latest complete run per model and task under <code>{esc(board.results_dir)}</code>; '
        "values with 95% intervals. Click a column to sort.</p>"
        f'<div class="table-wrap"><table id="leaderboard"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        + (f"<h2>Skipped runs</h2><ul>{skipped}</ul>" if skipped else "")
        + "</main>"
    )
    return page("Leaderboard", html, script=SORT_SCRIPT)


FORMATS = {"csv": to_csv, "md": to_markdown, "json": to_json, "html": to_html}
