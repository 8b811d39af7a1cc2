"""Plans a run, drives generation and scoring with bounded concurrency, and resumes."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.backends import create_backend
from harness.backends.base import BackendResources
from harness.budget import Budget
from harness.cache import ResponseCache
from harness.config import RoleConfig, RunConfig, check_judge_panel
from harness.context import RoleClient, SampleContext
from harness.costs import Price, completion_usd, price_for, rest_usd, save_prices
from harness.errors import BudgetExhausted, GenerationFailed, UserError
from harness.manifest import RoleManifest, RunManifest, TaskManifest, command_line, git_commit, public_options
from harness.registry import task_class
from harness.secrets import redact
from harness.store import MANIFEST, RunStore, read_json, write_json
from harness.task import Task
from harness.types import Exchange, Record, Sample, is_judge_role, judge_role

JUDGE_DEFAULTS = {"temperature": 0.0}


@dataclass
class WorkItem:
    task: Task
    sample: Sample
    repetition: int
    previous: Record | None = None  # set when re-scoring stored responses (rejudge): no generation
    retry_of: Record | None = None  # an errored record (--retry-errors): its successful calls are reused


@dataclass
class RunOutcome:
    manifest: RunManifest
    finished: int = 0
    errors: int = 0
    skipped: int = 0
    interrupted: bool = False
    budget_stop: bool = False  # --budget-usd stopped it before every sample was done
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None  # "task/sample: message" of this session's first errored record


def build_role(
    role: str,
    cfg: RoleConfig,
    cache: ResponseCache | None,
    defaults: dict | None = None,
    resources: BackendResources | None = None,
) -> RoleClient:
    """Create the backend for one role and wrap it with cache, limits and accounting."""
    backend = create_backend(cfg.spec, cfg.options, resources)
    if cfg.answer_mode not in backend.answer_modes:
        raise UserError(
            f"{cfg.spec} ({role}) cannot answer choice questions in {cfg.answer_mode} mode; it supports "
            f"{', '.join(sorted(backend.answer_modes))} (local/, vllm/ and openai/ models support all)"
        )
    generate = cfg.generate
    if defaults:
        generate = generate.model_validate({**defaults, **cfg.generate.model_dump(exclude_none=True)})
    return RoleClient(role, backend, generate, cache, cfg.answer_mode)


def build_judge_roles(
    judges: list[RoleConfig], cache: ResponseCache | None, resources: BackendResources | None = None
) -> dict[str, RoleClient]:
    """Roles judge, judge2, ... (one per --judge model); they share the cache namespace 'judge'."""
    check_judge_panel(judges)
    return {
        judge_role(index): build_role("judge", judge, cache, JUDGE_DEFAULTS, resources)
        for index, judge in enumerate(judges)
    }


def build_roles(config: RunConfig, cache: ResponseCache | None, resources: BackendResources) -> dict[str, RoleClient]:
    """Every role of the run; backends that name the same endpoint or model share `resources`."""
    roles = {
        "model": build_role("model", config.model, cache, resources=resources),
        **build_judge_roles(config.judges, cache, resources),
    }
    if config.simulator is not None:
        roles["simulator"] = build_role("simulator", config.simulator, cache, resources=resources)
    return roles


def run_fingerprint(config: RunConfig, tasks: list[TaskManifest]) -> dict[str, Any]:
    """The settings a resumed run must share: the config's, plus each task's data and template hashes."""
    return {
        **config.fingerprint(),
        "data": {t.name: {"sha256": t.dataset.content_hash, "revision": t.dataset.revision} for t in tasks},
        "templates": {t.name: t.templates for t in tasks},
    }


NOT_RECORDED = "(not recorded)"


def differences(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted field, old value, new value) of every leaf that differs between two fingerprints."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += differences(old.get(key, NOT_RECORDED), new.get(key, NOT_RECORDED), f"{path}{key}.")
        return found
    return [] if old == new else [(path.rstrip("."), old, new)]


def shown(value: Any, limit: int = 80) -> str:
    """A fingerprint value for a one-line message, secrets redacted and long values cut."""
    text = value if value == NOT_RECORDED else json.dumps(value, ensure_ascii=False, default=str)
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_resumable(fingerprint: dict[str, Any], store: RunStore) -> None:
    """Refuse to mix results of different settings, data or harness versions in one run directory."""
    path = store.run_dir / MANIFEST
    if not path.exists() or not store.records_path.exists():
        return  # nothing finished yet that other settings could mix with
    previous = read_json(path).get("fingerprint", {})
    differing = differences(previous, fingerprint)
    if differing:
        changes = "; ".join(f"{field}: was {shown(old)}, now {shown(new)}" for field, old, new in differing)
        raise UserError(
            f"{store.run_dir} holds a run with other settings ({changes}); to start a fresh run, pass a new "
            f"--run-dir (or delete {store.run_dir}); to resume it, re-run with its original settings and data"
        )


def load_tasks(config: RunConfig) -> list[tuple[Task, list[Sample], TaskManifest]]:
    """Instantiate and load every selected task, applying --limit, then --shard (see harness.shard)."""
    loaded = []
    for name in config.tasks:
        options = config.task_options.get(name, {})
        task = task_class(name)(options)
        samples, info = task.load()
        if config.limit is not None:
            samples = samples[: config.limit]
        if config.shard is not None:
            samples = [s for s in samples if config.shard.holds(name, s.id)]
        loaded.append(
            (
                task,
                samples,
                TaskManifest(
                    name=name,
                    options=options,
                    protocol=task.protocol,
                    dataset=info,
                    generate=task.generate_config.model_dump(exclude_none=True),
                    templates=task.templates(),
                ),
            )
        )
    return loaded


def plan(
    loaded: list[tuple[Task, list[Sample], TaskManifest]],
    repeats: int,
    done: dict[tuple[str, str, int], str | None],
    retry: dict[tuple[str, str, int], Record],
) -> tuple[list[WorkItem], int]:
    """Work items still to do, and how many were skipped as already finished.

    `done` maps each finished (task, sample, repetition) to its error kind (None: succeeded); `retry`
    holds the errored records to redo (--retry-errors), the others stay as they are.
    """
    todo, skipped = [], 0
    for task, samples, _ in loaded:
        for sample in samples:
            for rep in range(task.repetitions(repeats)):
                key = (task.name, sample.id, rep)
                if key in done and key not in retry:
                    skipped += 1
                    continue
                todo.append(WorkItem(task, sample, rep, retry_of=retry.get(key)))
    return todo, skipped


def response_exchanges(record: Record) -> list[Exchange]:
    """Copies of a record's exchanges that are not judge calls (the responses a re-scoring keeps)."""
    return [ex.model_copy(deep=True) for ex in record.exchanges if not is_judge_role(ex.role)]


async def evaluate(item: WorkItem, roles: dict[str, RoleClient], seed: int, refusal_scorer: str = "rules") -> Record:
    """Solve and score one (sample, repetition); failures become an error record, not an exception.

    With `item.previous` the sample is not solved again: its stored responses are scored anew.
    """
    task, sample = item.task, item.sample
    kept = response_exchanges(item.previous) if item.previous is not None else None
    ctx = SampleContext(
        task.name,
        sample.id,
        item.repetition,
        roles,
        seed=seed,
        exchanges=kept,
        refusal_scorer=refusal_scorer,
        task_config=task.generate_config,
        reuse=item.retry_of.exchanges if item.retry_of is not None else None,
    )
    record = Record(
        task=task.name,
        sample_id=sample.id,
        repetition=item.repetition,
        metadata=task.record_metadata(sample),
        started_at=time.time(),
    )
    stage = "generation"
    try:
        if item.previous is None:
            await task.solve(sample, ctx)
        stage = "scoring"
        record.scores = await task.score(sample, ctx)
        failed_judge = next((ex for ex in ctx.exchanges if ex.error and is_judge_role(ex.role)), None)
        if failed_judge is not None:  # the task saw an abstention, but a failed call makes the sample an error
            record.error, record.error_kind = redact(call_failure(failed_judge)), "judge"
    except GenerationFailed as exc:
        failed = next((ex for ex in reversed(ctx.exchanges) if ex.error), None)
        record.error = redact(str(exc))
        record.error_kind = exc.kind or (stage if failed is None else failure_kind(failed.role))
    except (UserError, BudgetExhausted):
        raise
    except Exception as exc:  # a task bug must not lose the rest of the run
        record.error, record.error_kind = redact(f"{type(exc).__name__}: {exc}"), "task"
    record.exchanges = ctx.exchanges
    record.finished_at = time.time()
    return record


def call_failure(exchange: Exchange) -> str:
    """The error of a failed model call, naming the role, its purpose and (in the backend's text) the model."""
    return f"{exchange.role} call '{exchange.purpose}' failed: {exchange.error}"


def failure_kind(role: str) -> str:
    """The record error kind for a call of `role` that failed after retries."""
    if is_judge_role(role):
        return "judge"
    return "simulator" if role == "simulator" else "generation"


async def drive(
    items: list[WorkItem],
    roles: dict[str, RoleClient],
    store: RunStore,
    config: RunConfig,
    on_record: Callable[[Record], None],
) -> None:
    """Run the work items with at most `config.max_samples` in flight, appending each record.

    With a backend that batches in-process (vLLM) every item is in flight at once, so the engine gets all
    of a task's prompts in one batch."""
    iterator: Iterator[WorkItem] = iter(items)
    batching = any(client.backend.batches_requests for client in roles.values())
    width = len(items) if batching else config.max_samples

    async def worker() -> None:
        for item in iterator:
            try:
                record = await evaluate(item, roles, config.seed, config.refusal_scorer)
            except BudgetExhausted:
                return  # the sample stays unfinished; the other workers stop at their next request
            store.append(record)
            on_record(record)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(width, len(items))))]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def role_manifests(roles: dict[str, RoleClient]) -> list[RoleManifest]:
    return [
        RoleManifest(
            role=name,
            spec=client.backend.spec,
            endpoint=client.backend.endpoint(),
            options=public_options(client.backend.options),
            identity=client.backend.identity(),
            generate=client.config.model_dump(exclude_none=True),
            connections=client.backend.connection_report(),
            calls=client.calls,
            cache_hits=client.cache_hits,
            retries=client.retries,
            prompt_tokens=client.usage.prompt_tokens,
            completion_tokens=client.usage.completion_tokens,
            answer_mode=client.answer_mode,
            answer_forms={
                mode: form for mode, form in client.backend.answer_forms().items() if mode == client.answer_mode
            },
        )
        for name, client in roles.items()
    ]


async def execute(
    items: list[WorkItem],
    roles: dict[str, RoleClient],
    store: RunStore,
    config: RunConfig,
    manifest: RunManifest,
    cache: ResponseCache | None,
    progress_factory,
    counts: dict[str, int],
) -> RunOutcome:
    """Drive the work items, close backends and cache, and finalise the manifest (status, roles, counts).

    Ctrl-C (asyncio.run cancels the main task) and SIGTERM stop it cleanly with status 'interrupted';
    finished records are kept. Roles of `manifest` that are not in `roles` (a rejudge keeps the source's
    model) stay as they are.
    """
    write_json(config.run_dir / MANIFEST, manifest.model_dump(mode="json"))
    outcome = RunOutcome(manifest=manifest)
    main_task = asyncio.current_task()
    assert main_task is not None  # always set inside a coroutine run by asyncio
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, main_task.cancel)

    with progress_factory(len(items)) as advance:

        def on_record(record: Record) -> None:
            outcome.finished += 1
            if record.error:
                outcome.errors += 1
                kind = record.error_kind or "unknown"
                outcome.errors_by_kind[kind] = outcome.errors_by_kind.get(kind, 0) + 1
                outcome.first_error = outcome.first_error or f"{record.task}/{record.sample_id}: {record.error}"
            advance(record)

        try:
            await drive(items, roles, store, config, on_record)
            manifest.status = "complete"
            budget = next((client.budget for client in roles.values() if client.budget is not None), None)
            if budget is not None and budget.stopped:
                manifest.status, outcome.budget_stop = "budget", True
        except asyncio.CancelledError:
            manifest.status = "interrupted"
            outcome.interrupted = True
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            store.close()
            for client in roles.values():
                await client.backend.aclose()
            if cache is not None:
                cache.close()

    outcomes = store.outcomes() if outcome.interrupted else store.compact()
    kinds = Counter(kind for kind in outcomes.values() if kind is not None)
    manifest.roles = [r for r in manifest.roles if r.role not in roles] + role_manifests(roles)
    manifest.finished_at = time.time()
    manifest.counts = {
        "records": len(outcomes),
        "errors": sum(kinds.values()),
        "new_this_session": outcome.finished,
        **counts,
    }
    manifest.error_kinds = dict(sorted(kinds.items()))
    if not outcome.interrupted and not outcome.budget_stop:  # the policy judges finished runs only
        manifest.failure = error_policy(len(outcomes), manifest.error_kinds, config.max_error_rate)
        manifest.status = "failed" if manifest.failure else "complete"
    write_json(config.run_dir / MANIFEST, manifest.model_dump(mode="json"))
    return outcome


def error_policy(records: int, error_kinds: dict[str, int], max_error_rate: float) -> str | None:
    """Why a finished run counts as failed, or None: its share of errored samples is above
    `max_error_rate`, or every sample ended in an error."""
    errors = sum(error_kinds.values())
    share = errors / records if records else 0.0
    if share > max_error_rate:
        why = f"{100 * share:.1f}% > --max-error-rate {100 * max_error_rate:g}%"
    elif records and errors == records:
        why = "every sample failed"
    else:
        return None
    kinds = ", ".join(f"{kind} {count}" for kind, count in error_kinds.items())
    return f"{errors} of {records} samples ended in errors ({why}): {kinds}"


async def _run(config: RunConfig, progress_factory) -> RunOutcome:
    store = RunStore(config.run_dir)
    loaded = load_tasks(config)
    fingerprint = run_fingerprint(config, [tm for _, _, tm in loaded])
    check_resumable(fingerprint, store)
    done = store.outcomes(repair=True)
    retry = store.errored_records() if config.retry_errors else {}
    items, skipped = plan(loaded, config.repeats, done, retry)
    cache = ResponseCache(config.cache_path) if config.cache_path else None
    resources = BackendResources(config.run_dir)  # the run's shared clients and engines, closed when it ends
    roles = build_roles(config, cache, resources)
    if config.prices:
        save_prices(config.run_dir, config.prices)
    if config.budget_usd is not None:
        attach_budget(config, roles, store)
    manifest = RunManifest(
        git_commit=git_commit(),
        command=command_line(),
        fingerprint=fingerprint,
        tasks=[tm.model_copy(update={"planned": len(s) * t.repetitions(config.repeats)}) for t, s, tm in loaded],
        roles=role_manifests(roles),
        seed=config.seed,
        repeats=config.repeats,
        limit=config.limit,
    )
    try:
        outcome = await execute(
            items, roles, store, config, manifest, cache, progress_factory, {"skipped_finished": skipped}
        )
    finally:
        await resources.aclose()
    outcome.skipped = skipped
    if outcome.budget_stop:
        record_budget_stop(config, roles, store, manifest)
    return outcome


def role_prices(config: RunConfig, roles: dict[str, RoleClient]) -> dict[str, Price | None]:
    return {name: price_for(config.prices, client.backend.spec) for name, client in roles.items()}


def attach_budget(config: RunConfig, roles: dict[str, RoleClient], store: RunStore) -> None:
    """Share one Budget (counting what earlier sessions of the run spent) among the roles; an API role
    without a price is an error, since its spend could not be counted."""
    prices = role_prices(config, roles)
    unpriced = [
        f"{name} ({roles[name].backend.spec})"
        for name, price in prices.items()
        if price is None and roles[name].backend.kind == "openai"
    ]
    if unpriced:
        raise UserError(
            f"--budget-usd needs a price for every API model: none for {', '.join(unpriced)}; "
            "add it to the --prices file (model: {input: USD, output: USD} per million tokens)"
        )
    budget = Budget.for_run(config.budget_usd or 0.0, prices, store.load_records())
    for client in roles.values():
        client.budget = budget


def record_budget_stop(config: RunConfig, roles: dict[str, RoleClient], store: RunStore, manifest: RunManifest) -> None:
    """Note in the manifest what was spent and what the unfinished samples would cost."""
    records = store.load_records()
    planned = {t.name: t.planned for t in manifest.tasks}
    prices = role_prices(config, roles)
    spent = sum(
        completion_usd(ex.completion, prices.get(ex.role))
        for r in records
        for ex in r.exchanges
        if ex.completion is not None
    )
    manifest.budget = {
        "limit_usd": config.budget_usd,
        "spent_usd": round(spent, 8),
        "rest_usd": rest_usd(records, planned, prices),
        "remaining": sum(planned.values()) - len(records),
    }
    write_json(config.run_dir / MANIFEST, manifest.model_dump(mode="json"))


def run(config: RunConfig, progress_factory) -> RunOutcome:
    """Execute (or resume) a run; Ctrl-C or SIGTERM stops it cleanly with finished records kept."""
    try:
        return asyncio.run(_run(config, progress_factory))
    except KeyboardInterrupt:
        manifest_path = config.run_dir / MANIFEST
        if manifest_path.exists():
            data = read_json(manifest_path)
            data.update(status="interrupted", finished_at=time.time())
            write_json(manifest_path, data)
        raise
