"""Command-line interface. Heavy modules are imported inside commands so start-up stays fast."""
from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_RUN_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class HarnessGroup(click.Group):
    """Turns user errors into one clear line and exit code 2, and Ctrl-C into exit code 130."""

    def invoke(self, ctx):
        from harness.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as exc:
            from harness.secrets import redact

            click.echo(f"error: {redact(str(exc))}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted: finished records are kept; re-run the same command to resume", err=True)
            sys.exit(EXIT_INTERRUPTED)


def model_options(command):
    """Connection, retry, local-engine and cache options shared by every command that calls models."""
    options = [
        click.option("--base-url", default=None, help="OpenAI-compatible endpoint for openai/ models."),
        click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Env var holding the API key."),
        click.option("--max-connections", type=click.IntRange(min=1), default=32, show_default=True,
                     help="Requests in flight per model."),
        click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per request."),
        click.option("--max-retries", type=click.IntRange(min=0), default=6, show_default=True),
        click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for local models."),
        click.option("--vllm-arg", "vllm_args", multiple=True, metavar="KEY=VALUE", help="vLLM engine argument."),
        click.option("--cache", "cache_path", type=click.Path(path_type=Path), default=None, help="Response cache file."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the response cache."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="harness")
def main() -> None:
    """Evaluate how safe and how value-laden a language model is."""


@main.command("list")
def list_tasks() -> None:
    """Show the available tasks with descriptions, sources and metrics."""
    from harness.registry import task_class, task_locations

    for name in task_locations():
        cls = task_class(name)
        click.echo(click.style(name, bold=True) + f"  {cls.description}")
        click.echo(f"    sources: {', '.join(cls.sources)}")
        click.echo(f"    metrics: {', '.join(cls.metrics)}")


@main.command()
@click.option("--model", "-m", default=None, help="Model under test, kind/name (default: local/smollm2).")
@click.option("--tasks", "-t", default="all", show_default=True, help="Comma-separated task names, or 'all'.")
@click.option("--judge", default=None, help="Judge model, or a comma-separated panel.")
@click.option("--simulator", default=None, help="Model playing the other side of conversations.")
@click.option("--refusal-scorer", type=click.Choice(["rules", "judge", "hybrid"]), default="rules", show_default=True,
              help="How refusals are classified: rule classifier, judge panel, or rules for clear cases + judges.")
@click.option("-T", "task_args", multiple=True, metavar="KEY=VALUE", help="Task option (task.key=value for one task).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N samples of each task.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True, help="Repetitions per sample.")
@click.option("--temperature", type=float, default=None)
@click.option("--top-p", type=float, default=None)
@click.option("--max-tokens", type=click.IntRange(min=1), default=None)
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="Run directory (resumes if it exists).")
@model_options
@click.option("--max-samples", type=click.IntRange(min=1), default=64, show_default=True, help="Samples in flight.")
@click.option("--retry-errors", is_flag=True, help="Re-run only the errored records of an existing run.")
@click.option("--max-error-rate", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Largest share of samples that may end in errors (after retries) before the run counts as failed.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def run(**opts) -> None:
    """Generate, score and report: harness run --model openai/gpt-4o-mini --tasks overrefusal."""
    from harness.cli_run import execute_run

    execute_run(opts)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
def report(run_dir: Path) -> None:
    """Regenerate summary.json, report.md and report.html of a run from its records."""
    from harness.report.summary import write_reports

    summary = write_reports(run_dir)
    click.echo(f"wrote {run_dir / 'summary.json'}, {run_dir / 'report.md'} and {run_dir / 'report.html'}")
    if summary["status"] == "failed":
        click.echo(f"warning: {run_dir} is a failed run ({summary['failure']}); its reports say so", err=True)


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "md", "html", "json", "eee"]), default="md",
              show_default=True, help="Output format; eee = Every Eval Ever JSON (aggregate + instance level).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output file (a directory for eee).")
@click.option("--sort", "sort_by", default=None, metavar="METRIC", help="Order models by this metric, best first.")
@click.option("--include-failed", is_flag=True, help="Also use runs whose status is failed (marked as such).")
def leaderboard(results_dir: Path, fmt: str, out: Path | None, sort_by: str | None, include_failed: bool) -> None:
    """Latest complete run per (model, task): one row per model, headline metrics with 95% intervals."""
    from harness.cli_report import leaderboard_command

    leaderboard_command(results_dir, fmt, out, sort_by, include_failed)


class GateCommand(click.Command):
    """Usage errors exit 1 here: exit 2 means 'inconclusive' to CI."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.exit_code = 1
            raise


@main.command(cls=GateCommand)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--baseline", type=click.Path(path_type=Path), default=None,
              help="Baseline run directory (paired comparison) or its summary.json (unpaired).")
@click.option("--rule", "rules", multiple=True, required=True, metavar="RULE",
              help="METRIC<=+MARGIN / >=-MARGIN (change vs baseline) or METRIC<=VALUE (absolute). Repeatable.")
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Write JUnit XML (one testcase per rule).")
def gate(run_dir: Path, baseline: Path | None, rules: tuple[str, ...], junit: Path | None) -> None:
    """CI gate on metric rules: exit 0 pass, 1 error, 2 inconclusive, 100 regression."""
    from harness.cli_report import gate_command

    sys.exit(gate_command(run_dir, baseline, list(rules), junit))


@main.command()
@click.argument("task")
@click.argument("table")
@click.option("-T", "task_args", multiple=True, metavar="KEY=VALUE", help="Analysis option, e.g. prompt=firstperson.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write summary.json and report.md here.")
def analyze(task: str, table: str, task_args: tuple[str, ...], out: Path | None) -> None:
    """Metrics from published responses: harness analyze cash_comfort data_log.csv -T prompt=time."""
    from harness.cli_analyze import execute_analyze

    execute_analyze(task, table, task_args, out)


@main.command()
@click.argument("labelled_csv", type=click.Path(path_type=Path))
@click.option("--scorer", type=click.Choice(["rules", "judge", "hybrid"]), default="rules", show_default=True,
              help="Refusal scorer to calibrate (as --refusal-scorer of `run`).")
@click.option("--judge", default=None, help="Judge model, or a comma-separated panel (for judge/hybrid).")
@model_options
def calibrate(labelled_csv: Path, scorer: str, judge: str | None, **opts) -> None:
    """Agreement of a refusal scorer with human labels (XSTest completions CSV or prompt,completion,label)."""
    from harness.calibrate import calibrate_scorer
    from harness.cli_run import backend_options, cache_file, split_specs

    click.echo(calibrate_scorer(labelled_csv, scorer, split_specs(judge), backend_options(opts), cache_file(opts)))


@main.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--judge", default=None, help="Judge model, or a comma-separated panel.")
@click.option("--refusal-scorer", type=click.Choice(["rules", "judge", "hybrid"]), default=None,
              help="Refusal scorer (default: the source run's).")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="New run directory (resumes if it exists).")
@model_options
@click.option("--max-samples", type=click.IntRange(min=1), default=64, show_default=True, help="Samples in flight.")
def rejudge(source: Path, **opts) -> None:
    """Re-score a run's stored responses with other judges (no generation); prints the metric drift."""
    from harness.cli_run import cache_file, exit_if_failed, role_config, split_specs
    from harness.rejudge import default_rejudge_dir, format_drift, rejudge_config
    from harness.rejudge import rejudge as rejudge_run
    from harness.store import MANIFEST, read_json

    judges = [role_config(spec, opts) for spec in split_specs(opts["judge"])]
    manifest = read_json(source / MANIFEST)
    config = rejudge_config(
        source, manifest, judges, opts["refusal_scorer"], opts["run_dir"] or default_rejudge_dir(source),
        cache_file(opts), opts["max_samples"],
    )
    click.echo(f"run directory: {config.run_dir}")
    drift = rejudge_run(source, config, manifest)
    click.echo(format_drift(drift))
    click.echo(f"results: {config.run_dir}/report.md, summary.json, records.jsonl, drift.json")
    exit_if_failed(config.run_dir)


@main.group()
def cache() -> None:
    """Inspect or clear the response cache."""


@cache.command("stats")
@click.option("--cache", "cache_path", type=click.Path(path_type=Path), default=None)
def cache_stats(cache_path: Path | None) -> None:
    """Entries per role namespace and backend."""
    from harness.cache import ResponseCache, default_cache_path

    path = cache_path or default_cache_path()
    store = ResponseCache(path)
    rows = store.stats()
    store.close()
    click.echo(f"cache: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    for namespace, backend, count in rows:
        click.echo(f"  {namespace:10} {count:8d}  {backend}")
    click.echo(f"  total      {sum(r[2] for r in rows):8d}")


@cache.command("clear")
@click.option("--cache", "cache_path", type=click.Path(path_type=Path), default=None)
@click.option("--namespace", default=None, help="Only this role (model, judge, simulator).")
def cache_clear(cache_path: Path | None, namespace: str | None) -> None:
    """Delete cached responses."""
    from harness.cache import ResponseCache, default_cache_path

    store = ResponseCache(cache_path or default_cache_path())
    removed = store.clear(namespace)
    store.close()
    click.echo(f"removed {removed} cached responses")

