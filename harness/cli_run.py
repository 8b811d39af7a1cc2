"""The `harness run` command: options -> RunConfig -> runner -> reports -> terminal summary."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from harness.backends.base import BackendOptions
from harness.cache import default_cache_path
from harness.config import DEFAULT_MODEL, RoleConfig, RunConfig, parse_key_values, split_key_values, split_task_options
from harness.costs import load_prices
from harness.errors import UserError
from harness.judging.refusal import check_refusal_scorer
from harness.registry import parse_task_list, task_class
from harness.report.corrected import CORRECTED_TABLE
from harness.run_file import RoleSettings, RunFile, load_run_file
from harness.secrets import register_secret_env, register_secret_url
from harness.shard import parse_shard
from harness.types import GenerateConfig, stored_bound_text

# RoleSettings field -> option name of the model role (the judge's and simulator's carry their prefix).
ROLE_FLAGS = {
    "base_url": "base_url",
    "api_key_env": "api_key_env",
    "max_connections": "max_connections",
    "timeout": "timeout",
    "max_retries": "max_retries",
    "max_retry_after": "max_retry_after",
    "engine_args": "vllm_args",
    "reasoning": "reasoning",
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "threads": "threads",
    "batch": "batch",
    "answer_mode": "answer_mode",
    "server": "server",
}
# What a judge or the simulator takes from the model unless it sets its own.
INHERITED = (
    "base_url",
    "api_key_env",
    "max_connections",
    "timeout",
    "max_retries",
    "max_retry_after",
    "threads",
    "engine_args",
    "server",
)
GENERATION = ("temperature", "top_p", "max_tokens", "seed")
DEMO_ANSWER_MODE = "constrained"  # the embedded demo model and judge: see README "demo"
# The demo's persuadee (the embedded model too) and its short conversations: see README "demo".
DEMO_SIMULATOR_MAX_TOKENS = 80
DEMO_PERSUASION_OPTIONS = {"max_turns": 2}


def is_demo(given: set[str], file: RunFile) -> bool:
    """No model named by a flag or the run file: the embedded default runs as a demonstration."""
    return "model" not in given and (file.model is None or file.model.spec is None)


def demo_persuadee(given: set[str], file: RunFile, tasks: list[str]) -> bool:
    """The demo runs persuasion without a simulator named: the embedded model plays the persuadee, briefly."""
    return is_demo(given, file) and "persuasion" in tasks and "simulator" not in given and file.simulator is None


def flag_settings(opts: dict[str, Any], role: str = "model", given: set[str] | None = None) -> dict[str, Any]:
    """A role's settings from its flags (--base-url for the model, --judge-base-url, ...): every one, defaults
    included, or with `given` only those the user typed."""
    prefix = "" if role == "model" else f"{role}_"
    names = {
        field: prefix + flag
        for field, flag in ROLE_FLAGS.items()
        if prefix + flag in opts and (given is None or prefix + flag in given)
    }
    settings = {field: opts[name] for field, name in names.items()}
    if "engine_args" in settings:  # BackendOptions parses the values
        settings["engine_args"] = split_key_values(settings["engine_args"], f"--{prefix.replace('_', '-')}vllm-arg")
    return settings


def backend_options(opts: dict[str, Any]) -> BackendOptions:
    """BackendOptions from the shared model options of the CLI (see cli.model_options)."""
    return options_of(flag_settings(opts))


def options_of(settings: dict[str, Any]) -> BackendOptions:
    """BackendOptions from resolved role settings; the key variable and URL credentials become secrets."""
    register_secret_env(settings["api_key_env"])
    register_secret_url(settings["base_url"])
    return BackendOptions(
        base_url=settings["base_url"],
        api_key_env=settings["api_key_env"],
        max_connections=settings["max_connections"],
        timeout_s=settings["timeout"],
        max_retries=settings["max_retries"],
        max_retry_after_s=settings["max_retry_after"],
        threads=settings.get("threads"),
        reasoning=settings.get("reasoning"),
        engine_args=settings["engine_args"],
        batch=bool(settings.get("batch")),
        server=settings.get("server"),
    )


def cache_file(opts: dict[str, Any]) -> Path | None:
    """The response cache to use, or None with --no-cache."""
    return None if opts["no_cache"] else (opts["cache_path"] or default_cache_path())


def split_specs(text: str | None) -> list[str]:
    """'a, b' -> ['a', 'b'] (a comma-separated judge panel)."""
    return [spec.strip() for spec in (text or "").split(",") if spec.strip()]


def role_config(spec: str, opts: dict[str, Any]) -> RoleConfig:
    return RoleConfig(spec=spec, options=backend_options(opts))


def model_slug(spec: str) -> str:
    """A model spec as a folder name: 'openai/gpt-4o-mini' -> 'openai-gpt-4o-mini'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", spec).strip("-")[:60]


def utc_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def default_run_dir(model: str) -> Path:
    return Path("results") / f"{utc_stamp()}_{model_slug(model)}"


def role_from_settings(settings: dict[str, Any]) -> RoleConfig:
    generate = GenerateConfig(**{k: settings[k] for k in GENERATION if settings.get(k) is not None})
    return RoleConfig(
        spec=settings["spec"],
        options=options_of(settings),
        generate=generate,
        answer_mode=settings.get("answer_mode") or "free",
    )


def judge_seeds(text: str, panel: int) -> list[int]:
    """--judge-seed '1,2' -> [1, 2]: one seed per judge (or one for all)."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--judge-seed expects whole numbers separated by commas, got '{text}'") from None
    if len(seeds) not in (1, panel):
        raise UserError(f"--judge-seed gives {len(seeds)} seeds for a panel of {panel} judges")
    return seeds * panel if len(seeds) == 1 else seeds


def resolve_roles(
    opts: dict[str, Any], given: set[str], file: RunFile, tasks: list[str]
) -> tuple[RoleConfig, list[RoleConfig], RoleConfig | None]:
    """Model, judges and simulator: for each setting a flag the user typed, else the run file, else (for
    a judge's or the simulator's connection and engine settings) the model's, else the default. The demo
    (no model named) answers in constrained mode, judges with the embedded model, and plays the persuasion
    task's persuadee with it too."""

    def from_file(role: RoleSettings | None) -> dict[str, Any]:
        return role.model_dump(exclude_none=True) if role is not None else {}

    model = {**flag_settings(opts), **from_file(file.model), **flag_settings(opts, "model", given)}
    model["spec"] = opts["model"] if "model" in given else model.get("spec")
    if model["spec"] is None:
        model["spec"] = DEFAULT_MODEL
        click.echo(f"no --model given: using the embedded default {DEFAULT_MODEL} (SmolLM2-135M-Instruct on CPU)")
        if "answer_mode" not in given and not (file.model and file.model.answer_mode):
            model["answer_mode"] = DEMO_ANSWER_MODE
            click.echo(
                f"  answering choice questions in {DEMO_ANSWER_MODE} mode (decoding limited to the allowed "
                "answers: a 135M model rarely follows the answer format); --answer-mode free for free text"
            )
    inherited = {field: model[field] for field in INHERITED}

    judges: list[dict[str, Any]]
    if "judge" in given:
        judges = [{"spec": spec} for spec in split_specs(opts["judge"])]
    else:
        judges = [from_file(j) for j in file.judges or []]
    if not judges and is_demo(given, file):
        judges = [{"spec": DEFAULT_MODEL, "answer_mode": DEMO_ANSWER_MODE}]
        click.echo(f"no --judge given: judging with {DEFAULT_MODEL} too (a demonstration, not evidence of quality)")
    seeds = judge_seeds(opts["judge_seed"], len(judges)) if opts["judge_seed"] and judges else []
    judge_flags = flag_settings(opts, "judge", given)
    judges = [{**inherited, **judge, **judge_flags} for judge in judges]
    for judge, seed in zip(judges, seeds):
        judge["seed"] = seed

    simulator = None
    if "simulator" in given or file.simulator is not None:
        simulator = {**inherited, **from_file(file.simulator), **flag_settings(opts, "simulator", given)}
        if "simulator" in given:
            simulator["spec"] = opts["simulator"]
    elif demo_persuadee(given, file, tasks):
        simulator = {
            **inherited,
            "max_tokens": DEMO_SIMULATOR_MAX_TOKENS,
            **flag_settings(opts, "simulator", given),
            "spec": DEFAULT_MODEL,
        }
        click.echo(
            f"no --simulator given: {DEFAULT_MODEL} plays the persuadee too, in short conversations "
            f"({simulator['max_tokens']}-token replies; -T persuasion.max_turns="
            f"{DEMO_PERSUASION_OPTIONS['max_turns']} unless set)"
        )
    return (
        role_from_settings(model),
        [role_from_settings(j) for j in judges],
        role_from_settings(simulator) if simulator and simulator.get("spec") else None,
    )


def read_run_file(opts: dict[str, Any]) -> RunFile:
    """The run file named by --config, or an empty one."""
    return load_run_file(opts["run_file"]) if opts["run_file"] else RunFile()


def build_config(opts: dict[str, Any], given: set[str], file: RunFile | None = None) -> RunConfig:
    """Validate the command-line options (and the run file they name, or `file`) into a RunConfig; the
    flags in `given` (typed by the user) win over the file."""
    file = read_run_file(opts) if file is None else file

    def pick(name: str, from_file: Any) -> Any:
        return opts[name] if name in given or from_file is None else from_file

    tasks = parse_task_list(pick("tasks", ",".join(file.tasks) if file.tasks is not None else None))
    model, judges, simulator = resolve_roles(opts, given, file, tasks)
    for role in [model, *judges, *([simulator] if simulator else [])]:
        if role.options.batch and not role.spec.startswith("openai/"):
            raise UserError(f"{role.spec}: --batch works with openai/ models only (the OpenAI Batch API)")
    accepted = {name: set(task_class(name).Options.model_fields) for name in tasks}
    typed = split_task_options(parse_key_values(opts["task_args"], "-T"), tasks, accepted)
    demo = {"persuasion": DEMO_PERSUASION_OPTIONS} if demo_persuadee(given, file, tasks) else {}
    task_options = {
        name: {**demo.get(name, {}), **(file.task_options or {}).get(name, {}), **typed.get(name, {})} for name in tasks
    }
    unknown = set(file.task_options or {}) - set(tasks)
    if unknown:
        raise UserError(f"{opts['run_file']}: key 'task_options': task '{min(unknown)}' is not selected")
    refusal_scorer = pick("refusal_scorer", file.refusal_scorer)
    check_refusal_scorer(refusal_scorer, len(judges))
    no_cache = pick("no_cache", file.no_cache)
    prices_path, budget_usd = pick("prices", file.prices), pick("budget_usd", file.budget_usd)
    if budget_usd is not None and prices_path is None:
        raise UserError("--budget-usd needs --prices (model: {input: USD, output: USD} per million tokens)")
    return RunConfig(
        model=model,
        judges=judges,
        simulator=simulator,
        refusal_scorer=refusal_scorer,
        tasks=tasks,
        task_options={name: options for name, options in task_options.items() if options},
        limit=pick("limit", file.limit),
        repeats=pick("repeats", file.repeats),
        seed=pick("seed", file.seed),
        max_samples=pick("max_samples", file.max_samples),
        run_dir=pick("run_dir", file.run_dir) or default_run_dir(model.spec),
        cache_path=cache_file({"no_cache": no_cache, "cache_path": pick("cache_path", file.cache)}),
        retry_errors=pick("retry_errors", file.retry_errors),
        max_error_rate=pick("max_error_rate", file.max_error_rate),
        judge_calibrations=list(pick("judge_calibrations", file.judge_calibrations) or []),
        panel_rule=pick("panel_rule", file.panel_rule),
        progress=not pick("no_progress", file.no_progress),
        shard=parse_shard(shard) if (shard := pick("shard", file.shard)) else None,
        prices=load_prices(prices_path) if prices_path else None,
        budget_usd=budget_usd,
    )


@contextlib.contextmanager
def rich_progress(total: int, enabled: bool):
    """Progress bar with counts, throughput, ETA and an error tally; yields advance(record)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    errors = 0
    started = time.perf_counter()
    columns = [
        TextColumn("[bold]samples"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[errors]}"),
    ]
    with Progress(*columns, disable=not enabled, transient=False) as progress:
        bar = progress.add_task("run", total=total, rate="", errors="")

        def advance(record) -> None:
            nonlocal errors
            errors += bool(record.error)
            done = progress.tasks[0].completed + 1
            rate = done / max(time.perf_counter() - started, 1e-9)
            progress.update(bar, advance=1, rate=f"{rate:.1f}/s", errors=f"[red]{errors} errors" if errors else "")

        yield advance


def metric_line(m: dict[str, Any]) -> str:
    """One metric (as in summary.json) for the terminal: value, 95% CI, unit, n, note, direction."""
    value = (stored_bound_text(m) or "n/a") if m["value"] is None else f"{m['value']:.4g}"
    has_ci = m["ci_low"] is not None and m["ci_high"] is not None
    ci = f" [{m['ci_low']:.4g}, {m['ci_high']:.4g}]" if has_ci else ""
    unit = f" {m['unit']}" if m.get("unit") and m["unit"] != "%" else ""
    note = f"  ({m['note']})" if m.get("note") else ""
    better = {"lower": " (lower is better)", "higher": " (higher is better)"}.get(m["direction"], "")
    return f"  {m['name']:40} {value}{ci}{unit}  n={m['n']}{better}{note}"


def exclusion_line(card: dict[str, Any], metrics: dict[str, dict[str, Any]]) -> str:
    """'excluded: ...' for a task's invalid answers, judge errors and failed records; '' if none."""
    parts = []
    invalid = metrics.get(card["invalid_metric"] or "")
    if invalid and invalid["value"]:
        parts.append(f"invalid answers {invalid['value']:.4g}% ({invalid['name']})")
    if card["judge_errors"]:
        parts.append(f"judge errors {card['judge_errors']} of {card['judged']} ({card['judge_error_rate']:.4g}%)")
    if card["failed_records"]:
        parts.append(f"failed records {card['failed_records']} of {card['records']}")
    return "  excluded: " + "; ".join(parts) if parts else ""


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    """Each task's headline metrics (report.md lists every metric), its exclusions and judge-corrected rates,
    then where the report is."""
    for task, result in summary["tasks"].items():
        card = result["card"]
        metrics = {m["name"]: m for m in result["metrics"]}
        reasons = {name: group["reason"] for group in card["no_data"] for name in group["metrics"]}
        click.echo(click.style(task, bold=True))
        for name in card["headline"]:
            m = metrics.get(name)
            has_value = m is not None and (m["value"] is not None or m.get("bound") is not None)
            said = card["captions"].get(name)
            caption = f"  ({said})" if said and said != (m or {}).get("note") else ""
            click.echo(
                metric_line(m) + caption if m is not None and has_value else f"  {name:40} no data ({reasons[name]})"
            )
        if excluded := exclusion_line(card, metrics):
            click.echo(excluded)
        for row in result["tables"].get(CORRECTED_TABLE, []):
            value = "n/a" if row["corrected_%"] is None else f"{row['corrected_%']:.4g} {row['corrected_ci']}"
            note = f"; {row['note']}" if row["note"] else ""
            click.echo(f"  {row['metric']:40} judge-corrected {value}  ({row['calibration']}{note})")
    click.echo(f"report: {run_dir / 'report.html'} (every metric: report.md, summary.json; records.jsonl)")


def execute_run(opts: dict[str, Any], given: set[str]) -> None:
    """`harness run`: `given` names the options the user typed (they override the run file). Several
    models, or a sweep directory, make it a sweep (harness.sweep)."""
    from harness.sweep import is_sweep, run_sweep

    file = read_run_file(opts)
    if is_sweep(opts, given, file):
        code = run_sweep(opts, given, file)
        if code:
            sys.exit(code)
        return
    config = build_config(opts, given, file)
    run_one(config)
    exit_if_failed(config.run_dir)


def run_one(config: RunConfig) -> None:
    """Run (or resume) one run directory, then write and print its reports."""
    from harness.report.corrected import judging_settings, save_judging
    from harness.report.summary import write_reports
    from harness.runner import run

    judging = judging_settings(
        config.run_dir, config.judge_calibrations, config.panel_rule, [j.spec for j in config.judges]
    )
    click.echo(f"run directory: {config.run_dir}")
    outcome = run(config, lambda total: rich_progress(total, config.progress))
    save_judging(config.run_dir, judging)
    if outcome.skipped:
        click.echo(f"resumed: {outcome.skipped} finished records kept, {outcome.finished} new")
    if outcome.interrupted:
        raise KeyboardInterrupt
    if outcome.errors:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.errors_by_kind.items()))
        click.echo(
            f"warning: {outcome.errors} samples ended in errors ({kinds}); "
            "re-run with --retry-errors to retry only those",
            err=True,
        )
        click.echo(f"first error: {outcome.first_error}", err=True)
    print_summary(write_reports(config.run_dir), config.run_dir)
    for role in outcome.manifest.roles:
        if role.connections:
            c = role.connections
            click.echo(
                f"{role.role} connections (auto): now {c['limit']}, lowest {c['lowest']}, highest "
                f"{c['highest']}; {c['decreases']} decreases on 429, {c['increases']} increases"
            )
    if outcome.budget_stop:
        stop_for_budget(outcome.manifest.budget or {}, config.run_dir)


def report_failure(run_dir: Path) -> bool:
    """Whether the run's status is 'failed', after one line saying why."""
    from harness.store import MANIFEST, read_json

    manifest = read_json(run_dir / MANIFEST)
    if manifest.get("status") == "failed":
        click.echo(f"error: run failed: {manifest.get('failure')}; its reports are marked failed", err=True)
    return manifest.get("status") == "failed"


def exit_if_failed(run_dir: Path) -> None:
    """Exit with EXIT_RUN_FAILED, after one line saying why, when the run's status is 'failed'."""
    from harness.cli import EXIT_RUN_FAILED

    if report_failure(run_dir):
        sys.exit(EXIT_RUN_FAILED)


def stop_for_budget(budget: dict[str, Any], run_dir: Path) -> None:
    """Say what the budget bought and what the rest would cost, then exit with EXIT_BUDGET."""
    from harness.cli import EXIT_BUDGET

    rest = budget.get("rest_usd")
    spent = budget.get("spent_usd") or 0.0
    rest_text = "unknown" if rest is None else f"about ${rest:.4f} (so --budget-usd {spent + rest:.4f} or more)"
    click.echo(
        f"budget stop: spent ${spent:.4f} of ${budget.get('limit_usd', 0):g}; "
        f"{budget.get('remaining')} samples left, which would cost {rest_text}; the run is resumable: "
        f"re-run the same command with a larger --budget-usd (or none) to finish {run_dir}",
        err=True,
    )
    sys.exit(EXIT_BUDGET)
