"""Command-line interface. Heavy modules are imported inside commands so start-up stays fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from harness.judging.labelled_sets import Target
    from harness.report.corrected import PanelRule

EXIT_RUN_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_BUDGET = 3  # --budget-usd stopped the run before it finished; it is resumable
ANSWER_MODE_CHOICES = ["free", "constrained", "logprob"]
SERVER_CHOICES = ["vllm", "llama.cpp", "openai"]
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


class ConnectionLimit(click.ParamType):
    """--max-connections: a whole number of at least 1, or `auto` (see harness.backends.adaptive)."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if value == "auto" or (isinstance(value, int) and value >= 1):
            return value
        if isinstance(value, str) and value.isdigit() and int(value) >= 1:
            return int(value)
        self.fail(f"expected a whole number of at least 1, or auto; got {value!r}", param, ctx)


CONNECTION_LIMIT = ConnectionLimit()


def model_options(command):
    """Connection, retry, local-engine and cache options shared by every command that calls models."""
    options = [
        click.option("--base-url", default=None, help="OpenAI-compatible endpoint for openai/ models."),
        click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Env var holding the API key."),
        click.option(
            "--max-connections",
            type=CONNECTION_LIMIT,
            default=32,
            show_default=True,
            help="Requests in flight per model; auto: adapt to the server's 429s (openai).",
        ),
        click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per request."),
        click.option("--max-retries", type=click.IntRange(min=0), default=6, show_default=True),
        click.option(
            "--max-retry-after",
            type=click.FloatRange(min=0),
            default=600.0,
            show_default=True,
            help="Longest server-requested wait (Retry-After) honoured, in seconds.",
        ),
        click.option(
            "--reasoning/--no-reasoning",
            default=None,
            help="Treat the model as a reasoning model (default: by name: o1, o3, o4-mini, gpt-5, ...).",
        ),
        click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for local models."),
        click.option("--vllm-arg", "vllm_args", multiple=True, metavar="KEY=VALUE", help="vLLM engine argument."),
        click.option(
            "--cache", "cache_path", type=click.Path(path_type=Path), default=None, help="Response cache file."
        ),
        click.option("--no-cache", is_flag=True, help="Do not read or write the response cache."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def role_options(role: str):
    """Connection, engine and generation options of one further role (judge, simulator); unset ones are
    the model's connection and engine options, and backend defaults for generation."""

    def option(name: str, *names: str, **kwargs):
        return click.option(f"--{role}-{name}", *names, **kwargs)

    options = [
        option("base-url", default=None, help=f"Endpoint of the {role} (default: the model's)."),
        option("api-key-env", default=None, help=f"Env var holding the {role}'s API key (default: the model's)."),
        option(
            "max-connections", type=CONNECTION_LIMIT, default=None, help=f"Requests in flight per {role} (or auto)."
        ),
        option("batch", is_flag=True, default=None, help=f"Send the {role}'s requests through the OpenAI Batch API."),
        option("timeout", type=float, default=None, help=f"Seconds per {role} request."),
        option("max-retries", type=click.IntRange(min=0), default=None),
        option("max-retry-after", type=click.FloatRange(min=0), default=None),
        option(
            "vllm-arg",
            f"{role}_vllm_args",
            multiple=True,
            metavar="KEY=VALUE",
            help=f"vLLM engine argument of the {role} (default: the model's).",
        ),
        click.option(f"--{role}-reasoning/--{role}-no-reasoning", default=None),
        option("temperature", type=float, default=None),
        option("top-p", type=float, default=None),
        option("max-tokens", type=click.IntRange(min=1), default=None),
        option(
            "server",
            type=click.Choice(SERVER_CHOICES),
            default=None,
            help=f"Software behind the {role}'s OpenAI-compatible endpoint (default: the model's).",
        ),
        option(
            "answer-mode",
            type=click.Choice(ANSWER_MODE_CHOICES),
            default=None,
            help=f"How the {role} answers choice questions (default: the model's demo default, else free).",
        ),
    ]

    def decorate(command):
        for each in reversed(options):
            command = each(command)
        return command

    return decorate


def given_options(ctx: click.Context) -> set[str]:
    """Names of the options the user typed (as opposed to click's defaults)."""
    from click.core import ParameterSource

    return {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)
    }


def judging_options(command):
    """--judge-calibration and --panel-rule (run, report, rejudge); see harness.report.corrected."""
    command = click.option(
        "--panel-rule",
        type=click.Choice(["majority", "weighted", "unanimous"]),
        default=None,
        help="How a judge panel decides (default majority; weighted needs calibrations).",
    )(command)
    return click.option(
        "--judge-calibration",
        "judge_calibrations",
        multiple=True,
        type=click.Path(path_type=Path),
        help="Calibration file from `harness calibrate`: adds judge-corrected rates. Repeatable.",
    )(command)


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="harness")
def main() -> None:
    """Evaluate how safe and how value-laden a language model is."""


@main.command("list")
def list_tasks() -> None:
    """Show the tasks (where each comes from, description, sources, metrics), model kinds and scorers."""
    from harness.errors import UserError
    from harness.plugins import BACKENDS, SCORERS, plugins
    from harness.registry import task_class, task_locations

    for name, plugin in task_locations().items():
        origin = f"[{plugin.origin}]"
        if plugin.shadowed:
            origin += f" (also registered by {', '.join(plugin.shadowed)})"
        try:
            cls = task_class(name)
        except UserError as exc:
            click.echo(click.style(name, bold=True) + f"  {origin}  " + click.style(f"error: {exc}", fg="red"))
            continue
        click.echo(click.style(name, bold=True) + f"  {origin}  {cls.description}")
        click.echo(f"    sources: {', '.join(cls.sources)}")
        click.echo(f"    metrics: {', '.join(cls.metrics)}")
        paper = f"; paper: {cls.paper_protocol}" if cls.paper_protocol else ""
        click.echo(f"    protocol: -T protocol=default|paper{paper}")
    for title, group in (("model kinds", BACKENDS), ("scorers", SCORERS)):
        entries = [name if p.built_in else f"{name} [{p.origin}]" for name, p in plugins(group).items()]
        click.echo(f"{title}: {', '.join(entries)}")


@main.command("new-task")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Where to create the package folder NAME.",
)
def new_task(name: str, parent: Path) -> None:
    """Write a task plugin package NAME/ that runs at once (pip install -e ./NAME)."""
    from harness.scaffold import write_task_package

    folder = write_task_package(name, parent)
    shown = folder if folder.is_absolute() else f"./{folder}"
    click.echo(f"wrote {shown}; next: pip install -e {shown} && harness run --tasks {name} --model scripted/echo")


@main.command()
@click.option(
    "--config",
    "run_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Run file (YAML) with any of these options; flags given here override it.",
)
@click.option(
    "--model",
    "-m",
    default=None,
    help="Model under test, kind/name (default: local/smollm2); several, comma-separated, make a sweep.",
)
@click.option("--tasks", "-t", default="all", show_default=True, help="Comma-separated task names, or 'all'.")
@click.option("--judge", default=None, help="Judge model, or a comma-separated panel.")
@click.option(
    "--judge-seed",
    default=None,
    metavar="N[,N...]",
    help="Seed of each judge of the panel (identical judges need distinct seeds).",
)
@click.option("--simulator", default=None, help="Model playing the other side of conversations.")
@click.option(
    "--refusal-scorer",
    default="rules",
    show_default=True,
    metavar="NAME",
    help="How refusals are classified: rules (rule classifier), judge (judge panel), hybrid (rules for "
    "clear cases + judges), or a scorer plugin (see harness list).",
)
@click.option("-T", "task_args", multiple=True, metavar="KEY=VALUE", help="Task option (task.key=value for one task).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N samples of each task.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True, help="Repetitions per sample.")
@click.option("--temperature", type=float, default=None)
@click.option("--top-p", type=float, default=None)
@click.option("--max-tokens", type=click.IntRange(min=1), default=None)
@click.option(
    "--answer-mode",
    type=click.Choice(ANSWER_MODE_CHOICES),
    default="free",
    show_default=True,
    help="How choice questions are answered: free text (parsed), constrained decoding to the allowed "
    "answers, or logprob (each answer scored). The demo (no --model) uses constrained.",
)
@click.option(
    "--server",
    type=click.Choice(SERVER_CHOICES),
    default=None,
    help="Software behind --base-url (vllm: its structured-output fields are tried first).",
)
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="Run directory (resumes if it exists).")
@click.option(
    "--sweep-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Sweep directory: one run per model and task, plus the leaderboard (default results/sweep-<time>).",
)
@click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="Run only slice K of N of every task's samples (after --limit); join the slices with harness merge.",
)
@model_options
@click.option("--max-samples", type=click.IntRange(min=1), default=64, show_default=True, help="Samples in flight.")
@click.option("--retry-errors", is_flag=True, help="Re-run only the errored records of an existing run.")
@click.option(
    "--max-error-rate",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="Largest share of samples that may end in errors (after retries) before the run counts as failed.",
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option("--batch", is_flag=True, help="Send the model's requests through the OpenAI Batch API (half price).")
@click.option(
    "--prices",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML of model -> {input, output} USD per million tokens: adds costs to the reports.",
)
@click.option(
    "--budget-usd",
    type=click.FloatRange(min=0),
    default=None,
    help="Start no request that would take the run's projected spend past this (needs --prices).",
)
@role_options("judge")
@role_options("simulator")
@judging_options
@click.pass_context
def run(ctx: click.Context, **opts) -> None:
    """Generate, score and report: harness run --model openai/gpt-4o-mini --tasks overrefusal."""
    from harness.cli_run import execute_run

    execute_run(opts, given_options(ctx))


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--compare", is_flag=True, help="Compare two runs side by side: harness report --compare RUN_A RUN_B.")
@judging_options
@click.option(
    "--prices",
    type=click.Path(path_type=Path),
    default=None,
    help="Price the run with this YAML (model -> input/output USD per million tokens); kept with the run.",
)
def report(
    run_dirs: tuple[Path, ...],
    compare: bool,
    judge_calibrations: tuple[Path, ...],
    panel_rule: PanelRule | None,
    prices: Path | None,
) -> None:
    """Regenerate summary.json, report.md and report.html of a run from its records (or compare two runs)."""
    from harness.report.corrected import judging_settings, save_judging
    from harness.report.summary import judge_specs, write_reports
    from harness.store import MANIFEST, read_json

    if compare or len(run_dirs) != 1:
        if not compare or len(run_dirs) != 2:
            raise click.UsageError("give one run directory, or --compare with exactly two")
        from harness.cli_report import compare_command

        click.echo(compare_command(*run_dirs), nl=False)
        return
    run_dir = run_dirs[0]
    if judge_calibrations or panel_rule:
        judges = judge_specs(read_json(run_dir / MANIFEST))
        save_judging(run_dir, judging_settings(run_dir, list(judge_calibrations), panel_rule, judges))
    if prices:
        from harness.costs import load_prices, save_prices

        save_prices(run_dir, load_prices(prices))
    summary = write_reports(run_dir)
    click.echo(f"wrote {run_dir / 'summary.json'}, {run_dir / 'report.md'} and {run_dir / 'report.html'}")
    if summary["status"] == "failed":
        click.echo(f"warning: {run_dir} is a failed run ({summary['failure']}); its reports say so", err=True)


@main.command()
@click.argument("shard_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run directory to write (must not exist).")
@click.option(
    "--max-error-rate",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="As for run: a larger share of errored samples in the merged run makes it failed (exit 1).",
)
def merge(shard_dirs: tuple[Path, ...], out: Path, max_error_rate: float) -> None:
    """Join the shard runs of one run (--shard 1/N ... N/N) into one run directory with its reports."""
    from harness.cli_run import exit_if_failed
    from harness.merge import merge_shards
    from harness.report.summary import write_reports

    records = merge_shards(list(shard_dirs), out, max_error_rate)
    write_reports(out)
    click.echo(
        f"merged {len(shard_dirs)} shards ({records} records) into {out}: report.md, summary.json, records.jsonl"
    )
    exit_if_failed(out)


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "md", "html", "json", "eee"]),
    default="md",
    show_default=True,
    help="Output format; eee = Every Eval Ever JSON (aggregate + instance level).",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output file (a directory for eee).")
@click.option("--sort", "sort_by", default=None, metavar="METRIC", help="Order models by this metric, best first.")
@click.option("--include-failed", is_flag=True, help="Also use runs whose status is failed (marked as such).")
@click.option(
    "--prices",
    type=click.Path(path_type=Path),
    default=None,
    help="Price the runs with this YAML (model -> input/output USD per million tokens), not their own.",
)
def leaderboard(
    results_dir: Path, fmt: str, out: Path | None, sort_by: str | None, include_failed: bool, prices: Path | None
) -> None:
    """Latest complete run per (model, task): one row per model, headline metrics with 95% intervals."""
    from harness.cli_report import leaderboard_command

    leaderboard_command(results_dir, fmt, out, sort_by, include_failed, prices=prices)


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
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    default=None,
    help="Baseline run directory (paired comparison) or its summary.json (unpaired).",
)
@click.option(
    "--rule",
    "rules",
    multiple=True,
    required=True,
    metavar="RULE",
    help="METRIC<=+MARGIN / >=-MARGIN (change vs baseline) or METRIC<=VALUE (absolute). Repeatable.",
)
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
@click.option(
    "--scorer",
    default="rules",
    show_default=True,
    metavar="NAME",
    help="Refusal scorer (as --refusal-scorer of `run`), or harm: a harm judge (FORTRESS rubric / --rubric).",
)
@click.option("--judge", default=None, help="Judge model, or a comma-separated panel (for judge/hybrid/harm).")
@click.option(
    "--columns",
    default=None,
    metavar="prompt=COL,response=COL,label=COL",
    help="Column names of any other CSV (with --positive).",
)
@click.option("--positive", default=None, metavar="VALUE", help="With --columns: the label value meaning positive.")
@click.option(
    "--label-means",
    type=click.Choice(["refusal", "harm"]),
    default=None,
    help="With --columns: what a positive label means (default: the scorer's class).",
)
@click.option(
    "--category", "categories", multiple=True, metavar="COLUMN", help="Break the agreement down by this column."
)
@click.option(
    "--questions",
    type=click.Path(path_type=Path),
    default=None,
    help="GPTFuzz question_list.csv (index,text) giving the prompts of a responses_labeled file.",
)
@click.option(
    "--rubric",
    "rubric_path",
    type=click.Path(path_type=Path),
    default=None,
    help="--scorer harm: yes/no question(s), one per line, asked about every response.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Calibration file to write (default: calibration-<scorer>.json).",
)
@model_options
def calibrate(
    labelled_csv: Path,
    scorer: str,
    judge: str | None,
    columns: str | None,
    positive: str | None,
    label_means: Target | None,
    categories: tuple[str, ...],
    questions: Path | None,
    rubric_path: Path | None,
    out: Path | None,
    **opts,
) -> None:
    """Agreement of a scorer with human labels (XSTest, GPTFuzz, JailbreakEval or --columns CSV)."""
    from harness.calibrate import calibrate as run_calibration
    from harness.cli_run import backend_options, cache_file, split_specs
    from harness.judging.labelled_sets import parse_columns
    from harness.store import write_json

    calibration, text = run_calibration(
        labelled_csv,
        scorer,
        split_specs(judge),
        options=backend_options(opts),
        cache_path=cache_file(opts),
        columns=parse_columns(columns),
        positive=positive,
        label_means=label_means,
        categories=list(categories) or None,
        questions=questions,
        rubric_path=rubric_path,
    )
    click.echo(text)
    out = out or Path(f"calibration-{scorer}.json")
    write_json(out, calibration.model_dump(mode="json"))
    click.echo(f"\nwrote {out}")


@main.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--judge", default=None, help="Judge model, or a comma-separated panel.")
@click.option("--refusal-scorer", default=None, metavar="NAME", help="Refusal scorer (default: the source run's).")
@click.option(
    "--run-dir", type=click.Path(path_type=Path), default=None, help="New run directory (resumes if it exists)."
)
@model_options
@click.option("--max-samples", type=click.IntRange(min=1), default=64, show_default=True, help="Samples in flight.")
@judging_options
def rejudge(source: Path, **opts) -> None:
    """Re-score a run's stored responses with other judges (no generation); prints the metric drift."""
    from harness.cli_run import cache_file, exit_if_failed, role_config, split_specs
    from harness.rejudge import default_rejudge_dir, format_drift, rejudge_config
    from harness.rejudge import rejudge as rejudge_run
    from harness.store import MANIFEST, read_json

    judges = [role_config(spec, opts) for spec in split_specs(opts["judge"])]
    manifest = read_json(source / MANIFEST)
    config = rejudge_config(
        source,
        manifest,
        judges,
        opts["refusal_scorer"],
        opts["run_dir"] or default_rejudge_dir(source),
        cache_file(opts),
        opts["max_samples"],
    )
    click.echo(f"run directory: {config.run_dir}")
    if opts["judge_calibrations"] or opts["panel_rule"]:
        from harness.report.corrected import judging_settings, save_judging

        save_judging(
            config.run_dir,
            judging_settings(
                config.run_dir, list(opts["judge_calibrations"]), opts["panel_rule"], [j.spec for j in judges]
            ),
        )
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
