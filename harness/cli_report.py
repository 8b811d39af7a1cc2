"""Logic of the `harness leaderboard` and `harness gate` commands (cli.py holds the thin wrappers)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import UserError
from harness.types import stored_bound_text

GATE_ERROR = 1


def leaderboard_command(
    results_dir: Path,
    fmt: str,
    out: Path | None,
    sort_by: str | None,
    include_failed: bool = False,
    prices: Path | None = None,
) -> None:
    """Build the leaderboard and print it, or write it to `out` (a directory for the eee export)."""
    from harness.costs import load_prices
    from harness.report.leaderboard import FORMATS, build, sort_rows
    from harness.store import atomic_write

    board = build(results_dir, include_failed, load_prices(prices) if prices else None)
    if not board.rows:
        raise UserError(f"{results_dir}: no complete runs found (looked for */manifest.json with status complete)")
    if sort_by:
        sort_rows(board, sort_by)
    for note in board.skipped:
        click.echo(f"skipped {note}", err=True)
    if fmt == "eee":
        from harness.report.eee import export

        if out is None:
            raise UserError("--format eee writes one file pair per model and run: give --out DIRECTORY")
        for path in export(board, out):
            click.echo(f"wrote {path} and {path.with_suffix('.jsonl').name}")
        return
    text = FORMATS[fmt](board)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write(out, text)
        click.echo(f"wrote {out} ({len(board.rows)} models, {len(board.columns)} metrics)")


def gate_command(run_dir: Path, baseline: Path | None, rules: list[str], junit: Path | None) -> int:
    """Evaluate the rules, print the table, write JUnit XML; returns the exit code (0/1/2/100).

    A JUnit file that cannot be written is reported on its own line; it makes a passing gate an error
    (exit 1) but never changes a regression or inconclusive verdict's exit code.
    """
    from harness.report.gate import evaluate, exit_code, junit_xml, load_side, parse_rule, table
    from harness.secrets import redact

    suite = f"harness gate {run_dir}"
    try:
        parsed = [parse_rule(r) for r in rules]
        sides = [load_side(run_dir)] + ([load_side(baseline)] if baseline is not None else [])
        for side in sides:
            if side.status == "failed":
                raise UserError(
                    f"{side.label} is a failed run (too many samples ended in errors); "
                    "a gate cannot decide on it: re-run it with --retry-errors first"
                )
        verdicts = evaluate(parsed, sides[0], sides[1] if baseline is not None else None)
    except UserError as exc:
        message = redact(str(exc))
        click.echo(f"error: {message}", err=True)
        if junit is not None:
            write_junit(junit, junit_xml([], suite, error=message))
        return GATE_ERROR
    for side in sides:
        if side.status != "complete":
            click.echo(f"warning: {side.label} is {side.status}; only its finished records count", err=True)
    code = exit_code(verdicts)
    click.echo(table(verdicts))
    outcome = {0: "PASS", 2: "INCONCLUSIVE", 100: "REGRESSION"}[code]
    click.echo(f"gate: {outcome} (exit {code})")
    if junit is not None and not write_junit(junit, junit_xml(verdicts, suite)) and code == 0:
        return GATE_ERROR
    return code


def write_junit(path: Path, xml: str) -> bool:
    """Write the JUnit file; on failure print one error line naming it and return False."""
    from harness.store import atomic_write

    try:
        atomic_write(path, xml)
    except UserError as exc:
        click.echo(f"error: JUnit file not written: {exc}", err=True)
        return False
    return True


def compare_command(run_a: Path, run_b: Path) -> str:
    """Markdown: for every task both runs scored, each metric of A and B side by side with B - A."""
    from harness.store import MANIFEST, read_json

    sides = []
    for run in (run_a, run_b):
        if not (run / "summary.json").is_file():
            raise UserError(f"{run}: no summary.json; run `harness report {run}` first")
        manifest = read_json(run / MANIFEST) if (run / MANIFEST).is_file() else {}
        sides.append((read_json(run / "summary.json"), {t["name"]: t for t in manifest.get("tasks", [])}))
    (summary_a, tasks_a), (summary_b, tasks_b) = sides
    common = [t for t in summary_a.get("tasks", {}) if t in summary_b.get("tasks", {})]
    if not common:
        raise UserError(
            f"{run_a} and {run_b} have no task in common "
            f"({', '.join(summary_a.get('tasks', {})) or 'none'} vs {', '.join(summary_b.get('tasks', {})) or 'none'})"
        )
    lines = [f"# Comparison: A = {run_a}, B = {run_b}", ""]
    for label, run in (("A", run_a), ("B", run_b)):
        lines.append(
            f"- {label} answers: {_answer_modes(read_json(run / MANIFEST) if (run / MANIFEST).is_file() else {})}"
        )
    lines.append("")
    for task in common:
        lines += [f"## {task}", ""]
        for label, info in (("A", tasks_a.get(task, {})), ("B", tasks_b.get(task, {}))):
            options = ", ".join(f"{k}={v}" for k, v in sorted((info.get("options") or {}).items())) or "defaults"
            source = (info.get("dataset") or {}).get("source", "?")
            lines.append(f"- {label}: protocol {info.get('protocol', 'default')}; options {options}; data {source}")
        lines += ["", "| metric | A | B | B - A |", "|---|---|---|---|"]
        metrics_a = {m["name"]: m for m in summary_a["tasks"][task]["metrics"]}
        metrics_b = {m["name"]: m for m in summary_b["tasks"][task]["metrics"]}
        for name in list(metrics_a) + [n for n in metrics_b if n not in metrics_a]:
            a, b = metrics_a.get(name), metrics_b.get(name)
            change = ""
            if a is not None and b is not None and a["value"] is not None and b["value"] is not None:
                change = f"{b['value'] - a['value']:+.4g}"
            lines.append(f"| {name.replace('|', '/')} | {_cell(a)} | {_cell(b)} | {change} |")
        lines.append("")
    return "\n".join(lines)


def _answer_modes(manifest: dict) -> str:
    """'model (openai/x) constrained [json_schema], judge (...) free': how each role answered choice questions."""
    parts = []
    for role in manifest.get("roles", []):
        forms = role.get("answer_forms") or {}
        mode = role.get("answer_mode", "free")
        form = f" [{forms[mode]}]" if mode in forms else ""
        parts.append(f"{role['role']} ({role.get('spec', '?')}) {mode}{form}")
    return ", ".join(parts) or "unknown (no manifest)"


def _cell(m: dict | None) -> str:
    """'value [low, high] (n=N)', 'n/a' without a value, '-' when the run has no such metric."""
    if m is None:
        return "-"
    if m["value"] is None:
        return f"{stored_bound_text(m) or 'n/a'} (n={m['n']})"
    ci = (
        f" [{m['ci_low']:.4g}, {m['ci_high']:.4g}]"
        if m.get("ci_low") is not None and m.get("ci_high") is not None
        else ""
    )
    return f"{m['value']:.4g}{ci} (n={m['n']})"
