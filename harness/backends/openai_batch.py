"""`--batch`: an openai role's requests go through the OpenAI Batch API instead of one call each.

Requests that arrive together (the runner keeps every sample in flight, so one stage of the run: every
sample's model call, then every judge call, ...) are collected until none has arrived for a short window,
written as JSONL, uploaded (`POST /v1/files`, purpose `batch`) and sent as one job (`POST /v1/batches`,
endpoint /v1/chat/completions, completion window 24h). The job is polled (`GET /v1/batches/{id}`) with a
progress line per change; its output and error files (`GET /v1/files/{id}/content`) answer each request
by its custom_id, and a request's own error becomes that request's BackendError.

Every job is journalled in the run directory (batches/<id>.json) before it is polled, and its results are
kept next to it once downloaded: a killed run, resumed, polls its jobs again instead of submitting their
requests a second time, and reads results it already has from disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from harness.backends.arrivals import ArrivalWindow
from harness.errors import BackendError, UserError
from harness.types import Completion, Request

if TYPE_CHECKING:
    from harness.backends.openai_api import OpenAIBackend

WINDOW_ENV, POLL_ENV = "HARNESS_BATCH_WINDOW_S", "HARNESS_BATCH_POLL_S"
DEFAULT_WINDOW_S, DEFAULT_POLL_S = 1.0, 30.0
ENDPOINT: Final = "/v1/chat/completions"
TERMINAL = {"completed", "failed", "expired", "cancelled"}
JOURNAL_DIR = "batches"
Pending = tuple[str, Request, "asyncio.Future[Completion]"]


def custom_id(backend: OpenAIBackend, request: Request) -> str:
    """A stable id of one request of one sample: the same on a resumed run, distinct within a job."""
    key = {
        "sample": [request.task, request.sample_id, request.repetition, request.purpose],
        "body": backend.chat_body(request),
    }
    return "req-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def _seconds(env: str, default: float) -> float:
    value = os.environ.get(env)
    try:
        return float(value) if value else default
    except ValueError:
        raise UserError(f"${env} must be a number of seconds, got {value!r}") from None


class BatchCollector:
    """The batch path of one openai role (see the module docstring)."""

    def __init__(self, backend: OpenAIBackend):
        self.backend = backend
        self.window_s = _seconds(WINDOW_ENV, DEFAULT_WINDOW_S)
        self.poll_s = _seconds(POLL_ENV, DEFAULT_POLL_S)
        self._arrivals: ArrivalWindow[Pending] = ArrivalWindow(self.window_s, self._start_job, lambda p: p[2])
        self._jobs: set[asyncio.Task[None]] = set()

    def journal(self) -> Path:
        state = self.backend.resources.state_dir
        if state is None:
            raise UserError(f"{self.backend.spec}: --batch needs a run directory to keep its batch jobs in")
        return Path(state) / JOURNAL_DIR

    async def submit(self, request: Request) -> Completion:
        """Queue one request; its answer (or BackendError) arrives when its batch job ends."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self._arrivals.add((custom_id(self.backend, request), request, future))
        return await future

    async def _start_job(self, group: list[Pending]) -> None:
        """Answer a group of requests that arrived together in a job of its own, while the next group gathers."""
        job = asyncio.create_task(self._answer(group))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _answer(self, group: list[Pending]) -> None:
        """Resolve every future of `group`: from stored results, by polling a stored job, or by a new job."""
        try:
            waiting: dict[str, list[Pending]] = {cid: [] for cid, _, _ in group}
            for item in group:
                waiting[item[0]].append(item)
            stored, unfinished = self._stored_jobs()
            resolve(waiting, {cid: r for cid, r in stored.items() if cid in waiting and r.get("ok")}, self)
            for batch_id, ids in unfinished.items():
                if waiting.keys() & ids:
                    resolve(waiting, await self._poll(batch_id, resumed=True), self)
            if waiting:
                batch_id = await self._create({cid: items[0][1] for cid, items in waiting.items()})
                resolve(waiting, await self._poll(batch_id, resumed=False), self)
            for cid in list(waiting):
                fail(waiting, cid, BackendError(f"{self.backend.spec}: request {cid} is missing from the batch output"))
        except Exception as exc:  # noqa: BLE001 - any failure of the job fails its requests, loudly
            error = (
                exc
                if isinstance(exc, (BackendError, UserError))
                else BackendError(f"{self.backend.spec}: batch job failed: {self.backend._describe(exc)}")
            )
            for _, _, future in group:
                if not future.done():
                    future.set_exception(error)

    def _stored_jobs(self) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
        """(custom_id -> stored result of jobs already downloaded, batch id -> custom_ids of jobs not yet)."""
        results: dict[str, dict[str, Any]] = {}
        unfinished: dict[str, set[str]] = {}
        folder = self.journal()
        for path in sorted(folder.glob("*.json")) if folder.exists() else []:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("spec") != self.backend.spec:
                continue
            done = path.with_suffix(".results.jsonl")
            if done.exists():
                for line in done.read_text(encoding="utf-8").splitlines():
                    result = json.loads(line)
                    if result.get("ok") or result["custom_id"] not in results:
                        results[result["custom_id"]] = result
            else:
                unfinished[entry["batch_id"]] = set(entry["custom_ids"])
        return results, unfinished

    async def _create(self, requests: dict[str, Request]) -> str:
        """Upload the JSONL and create the job; it is journalled before this returns."""
        lines = [
            json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": self.backend.chat_body(request)})
            for cid, request in requests.items()
        ]
        client = self.backend._get_client()
        upload = await client.files.create(file=("batch.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch")
        batch = await client.batches.create(input_file_id=upload.id, endpoint=ENDPOINT, completion_window="24h")
        replace_file(
            self.journal() / f"{batch.id}.json",
            json.dumps(
                {
                    "batch_id": batch.id,
                    "spec": self.backend.spec,
                    "input_file_id": upload.id,
                    "submitted_at": time.time(),
                    "custom_ids": list(requests),
                },
                indent=1,
            ),
        )
        progress(f"{self.backend.spec}: submitted batch {batch.id} ({len(requests)} requests)")
        return batch.id

    async def _poll(self, batch_id: str, resumed: bool) -> dict[str, dict[str, Any]]:
        """Wait for the job to end; its results by custom_id (also kept in the journal)."""
        client = self.backend._get_client()
        if resumed:
            progress(f"{self.backend.spec}: resuming batch {batch_id} (submitted by an earlier session)")
        started, shown, failures = time.perf_counter(), "", 0
        while True:
            try:
                batch = await client.batches.retrieve(batch_id)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - a poll that fails is tried again, a few times
                failures += 1
                if failures > self.backend.options.max_retries:
                    raise
                progress(
                    f"{self.backend.spec}: polling batch {batch_id} failed "
                    f"({self.backend._describe(exc)}); trying again"
                )
                await asyncio.sleep(self.poll_s)
                continue
            line = status_line(batch)
            if line != shown:
                progress(f"{self.backend.spec}: batch {batch_id} {line}")
                shown = line
            if batch.status in TERMINAL:
                break
            await asyncio.sleep(self.poll_s)
        texts = [await self._download(file_id) for file_id in (batch.output_file_id, batch.error_file_id) if file_id]
        results = [
            parse_line(line, time.perf_counter() - started)
            for text in texts
            for line in text.splitlines()
            if line.strip()
        ]
        if batch.status != "completed" and not results:
            problems = "; ".join(e.message or e.code or "" for e in (batch.errors.data or [])) if batch.errors else ""
            raise BackendError(
                f"{self.backend.spec}: batch {batch_id} ended {batch.status}" + (f": {problems}" if problems else "")
            )
        replace_file(self.journal() / f"{batch_id}.results.jsonl", "".join(json.dumps(r) + "\n" for r in results))
        return {r["custom_id"]: r for r in results}

    async def _download(self, file_id: str) -> str:
        content = await self.backend._get_client().files.content(file_id)
        return content.text


def status_line(batch: Any) -> str:
    """'in_progress [#####-----] 5/10 requests, 0 failed'."""
    counts = batch.request_counts
    if counts is None or not counts.total:
        return batch.status
    done = counts.completed + counts.failed
    filled = round(20 * done / counts.total)
    return (
        f"{batch.status} [{'#' * filled}{'-' * (20 - filled)}] {done}/{counts.total} requests, {counts.failed} failed"
    )


def parse_line(line: str, waited_s: float) -> dict[str, Any]:
    """One output or error file line -> {custom_id, ok, body | error, latency_s}."""
    data = json.loads(line)
    response, error = data.get("response") or {}, data.get("error")
    status = response.get("status_code")
    if error is None and status == 200:
        return {"custom_id": data["custom_id"], "ok": True, "body": response.get("body"), "latency_s": waited_s}
    if error is None:
        body = response.get("body") or {}
        detail = body.get("error", body) if isinstance(body, dict) else {}
        error = {"code": status, "message": detail.get("message") if isinstance(detail, dict) else str(body)}
    message = (
        f"HTTP {error.get('code')} {error.get('message')}"
        if isinstance(status, int)
        else f"{error.get('code')}: {error.get('message')}"
    )
    return {"custom_id": data["custom_id"], "ok": False, "error": message, "latency_s": waited_s}


def resolve(waiting: dict[str, list[Pending]], results: dict[str, dict[str, Any]], collector: BatchCollector) -> None:
    """Answer every waiting request that has a result (and forget it)."""
    from openai.types.chat import ChatCompletion

    for cid, result in results.items():
        if cid not in waiting:
            continue
        spec = collector.backend.spec
        if not result.get("ok"):
            fail(waiting, cid, BackendError(f"{spec}: batch request failed: {result['error']}"))
            continue
        try:
            request = waiting[cid][0][1]
            completion = collector.backend.completion_of(request, ChatCompletion.model_validate(result["body"]))
        except Exception as exc:  # noqa: BLE001 - a malformed line fails its request alone
            fail(waiting, cid, BackendError(f"{spec}: malformed batch output line: {type(exc).__name__}"))
            continue
        completion = completion.model_copy(update={"batch": True, "latency_s": result["latency_s"]})
        for _, _, future in waiting.pop(cid):
            if not future.done():
                future.set_result(completion)


def fail(waiting: dict[str, list[Pending]], cid: str, error: BackendError) -> None:
    for _, _, future in waiting.pop(cid):
        if not future.done():
            future.set_exception(error)


def replace_file(path: Path, text: str) -> None:
    """Write `path` whole or not at all (a kill never leaves half a journal entry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def progress(line: str) -> None:
    """One progress line on stderr (above the run's progress bar)."""
    print(line, file=sys.stderr, flush=True)
