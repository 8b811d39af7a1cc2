"""Command-line interface. Heavy modules are imported inside commands so start-up stays fast."""
from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class HarnessGroup(click.Group):
    """Turns user errors into one clear line and exit code 2, and Ctrl-C into exit code 130."""

    def invoke(self, ctx):
        from harness.backends.base import UserError

        try:
            return super().invoke(ctx)
        except UserError as exc:
            from harness.secrets import redact

            click.echo(f"error: {redact(str(exc))}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted: finished records are kept; re-run the same command to resume", err=True)
            sys.exit(EXIT_INTERRUPTED)


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
@click.option("-T", "task_args", multiple=True, metavar="KEY=VALUE", help="Task option (task.key=value for one task).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N samples of each task.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True, help="Repetitions per sample.")
@click.option("--temperature", type=float, default=None)
@click.option("--top-p", type=float, default=None)
@click.option("--max-tokens", type=click.IntRange(min=1), default=None)
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="Run directory (resumes if it exists).")
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint for openai/ models.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Env var holding the API key.")
@click.option("--max-connections", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per request.")
@click.option("--max-retries", type=click.IntRange(min=0), default=6, show_default=True)
@click.option("--max-samples", type=click.IntRange(min=1), default=64, show_default=True, help="Samples in flight.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for local models.")
@click.option("--vllm-arg", "vllm_args", multiple=True, metavar="KEY=VALUE", help="vLLM engine argument.")
@click.option("--cache", "cache_path", type=click.Path(path_type=Path), default=None, help="Response cache file.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the response cache.")
@click.option("--retry-errors", is_flag=True, help="Re-run only the errored records of an existing run.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def run(**opts) -> None:
    """Generate, score and report: harness run --model openai/gpt-4o-mini --tasks overrefusal."""
    from harness.cli_run import execute_run

    execute_run(opts)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
def report(run_dir: Path) -> None:
    """Regenerate summary.json and report.md of a run from its records."""
    from harness.report.summary import write_reports

    write_reports(run_dir)
    click.echo(f"wrote {run_dir / 'summary.json'} and {run_dir / 'report.md'}")


@main.command()
@click.argument("labelled_csv", type=click.Path(path_type=Path))
def calibrate(labelled_csv: Path) -> None:
    """Agreement of the rule refusal classifier with human labels (XSTest completions CSV)."""
    from harness.calibrate import agreement, format_report, load_labelled_csv
    from harness.judging.refusal_rules import classify_refusal

    rows = load_labelled_csv(labelled_csv)
    predicted = [classify_refusal(r.completion) for r in rows]
    click.echo(format_report(agreement([r.label for r in rows], predicted)))


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

