"""Logic of the `harness leaderboard` and `harness gate` commands (cli.py holds the thin wrappers)."""
from __future__ import annotations

from pathlib import Path

import click

from harness.errors import UserError

GATE_ERROR = 1


def leaderboard_command(results_dir: Path, fmt: str, out: Path | None, sort_by: str | None,
                        include_failed: bool = False) -> None:
    """Build the leaderboard and print it, or write it to `out` (a directory for the eee export)."""
    from harness.report.leaderboard import FORMATS, build, sort_rows
    from harness.store import atomic_write

    board = build(results_dir, include_failed)
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
    """Evaluate the rules, print the table, write JUnit XML; returns the exit code (0/1/2/100)."""
    from harness.report.gate import evaluate, exit_code, junit_xml, load_side, parse_rule, table
    from harness.secrets import redact
    from harness.store import atomic_write

    suite = f"harness gate {run_dir}"
    try:
        parsed = [parse_rule(r) for r in rules]
        sides = [load_side(run_dir)] + ([load_side(baseline)] if baseline is not None else [])
        for side in sides:
            if side.status == "failed":
                raise UserError(f"{side.label} is a failed run (too many samples ended in errors); "
                                "a gate cannot decide on it: re-run it with --retry-errors first")
        verdicts = evaluate(parsed, sides[0], sides[1] if baseline is not None else None)
    except UserError as exc:
        message = redact(str(exc))
        click.echo(f"error: {message}", err=True)
        if junit is not None:
            atomic_write(junit, junit_xml([], suite, error=message))
        return GATE_ERROR
    for side in sides:
        if side.status != "complete":
            click.echo(f"warning: {side.label} is {side.status}; only its finished records count", err=True)
    code = exit_code(verdicts)
    click.echo(table(verdicts))
    outcome = {0: "PASS", 2: "INCONCLUSIVE", 100: "REGRESSION"}[code]
    click.echo(f"gate: {outcome} (exit {code})")
    if junit is not None:
        atomic_write(junit, junit_xml(verdicts, suite))
    return code
