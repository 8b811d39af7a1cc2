"""A small OpenAI-compatible chat-completions server for tests (stdlib only, binds 127.0.0.1).

    with FakeOpenAIServer(faults=first_attempts(2, "500")) as srv:
        backend = OpenAIBackend("fake-model", BackendOptions(base_url=srv.base_url))

Faults are chosen per request by a callable `(prompt, attempt) -> Fault | str | None`, where `prompt`
is the last user message and `attempt` counts this prompt's requests from 1. Helpers build the usual
ones: `first_attempts(k, fault)` (deterministic) and `random_faults({"429": 0.2, "500": 0.1}, seed)`;
a plain dict passed as `faults` means `random_faults(dict)`. Fault names: an HTTP status ("429",
"500", ...), "drop", "malformed", "empty", "content_filter", "slow".

`reasoning_model=True` makes it answer 400 as the OpenAI API does for o1/o3/gpt-5 models given a
parameter they reject (max_tokens, stop, a temperature or top_p other than 1). A responder may return a
dict of message fields (`content`, `reasoning_content`) plus `finish_reason` instead of a string.

Run as a script for another process: `python tests/fake_openai_server.py --port-file PATH [--delay S]`.
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

DEFAULT_ANSWER = "Sure. Here is a clear, step-by-step answer to your question."
MAX_BODY_BYTES = 10_000_000
MAX_RECORDED = 1000
POLL_INTERVAL_S = 0.02  # how quickly stop() returns
KINDS = ("status", "drop", "malformed", "empty", "content_filter", "slow")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "model_not_found",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}


@dataclass(frozen=True)
class Fault:
    """One injected failure. `kind` is one of KINDS; `status` is used when kind == "status"."""

    kind: str = "status"
    status: int = 500
    retry_after: float | None = None  # seconds, sent as `Retry-After`
    retry_after_ms: int | None = None  # sent as `retry-after-ms`
    delay_s: float = 5.0  # for kind == "slow": sleep this long, then answer normally
    message: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")


FaultSpec = Fault | str | None
FaultFn = Callable[[str, int], FaultSpec]


def as_fault(spec: FaultSpec) -> Fault | None:
    """Turn a fault name ("429", "drop", ...) or Fault into a Fault (None stays None)."""
    if spec is None or isinstance(spec, Fault):
        return spec
    if spec.isdigit():
        return Fault(status=int(spec))
    return Fault(kind=spec)


def first_attempts(k: int, fault: FaultSpec) -> FaultFn:
    """The first k requests of each distinct prompt fail with `fault`; later ones succeed."""
    return lambda prompt, attempt: fault if attempt <= k else None


def random_faults(plan: dict[str, float], seed: int = 0) -> FaultFn:
    """Each request fails with fault name X with probability plan[X] (seeded, thread-safe)."""
    rng = random.Random(seed)
    lock = threading.Lock()
    if sum(plan.values()) > 1:
        raise ValueError("fault probabilities must sum to at most 1")

    def choose(prompt: str, attempt: int) -> FaultSpec:
        with lock:
            draw = rng.random()
        for name, probability in plan.items():
            if draw < probability:
                return name
            draw -= probability
        return None

    return choose


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Content of the last user message ("" if none); non-string content is JSON-encoded."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content", "")
            return content if isinstance(content, str) else json.dumps(content, sort_keys=True)
    return ""


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default of 5 drops bursts of concurrent connections
    daemon_threads = True


class FakeOpenAIServer:
    """Context manager running the fake server in a background thread; see the module docstring."""

    def __init__(
        self,
        responder: Callable[[list[dict[str, Any]]], str | dict[str, Any]] | None = None,
        faults: FaultFn | dict[str, float] | None = None,
        *,
        delay_s: float = 0.0,
        models: list[str] | None = None,
        port: int = 0,
        seed: int = 0,
        reasoning_model: bool = False,
        reasoning_tokens: int = 0,
        max_concurrent: int | None = None,
    ):
        """`delay_s` delays every request; `models`, if given, are the only known models (others 404)."""
        self.responder: Callable[[list[dict[str, Any]]], str | dict[str, Any]] = (
            responder or (lambda messages: DEFAULT_ANSWER))
        self.reasoning_model = reasoning_model
        self.reasoning_tokens = reasoning_tokens  # reported as usage.completion_tokens_details.reasoning_tokens
        self.usage_served: Counter[str] = Counter()  # prompt/completion tokens of every answer sent
        # max_concurrent: more chat requests at once than this are answered 429 (an overloaded server)
        self.max_concurrent = max_concurrent
        self.in_flight = self.peak_in_flight = self.rejected_429 = 0
        self.batches = FakeBatches(self)
        self.faults: FaultFn | None = random_faults(faults, seed) if isinstance(faults, dict) else faults
        self.delay_s = delay_s
        self.models = models
        self.hits = 0
        self.hits_by_prompt: Counter[str] = Counter()
        self.successes_by_prompt: Counter[str] = Counter()
        self.requests: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED)  # {"path", "headers", "body"}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", port), _make_handler(self))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def last_body(self) -> dict[str, Any] | None:
        """JSON body of the most recent chat-completions request."""
        with self._lock:
            for entry in reversed(self.requests):
                if entry["path"].endswith("/chat/completions"):
                    return entry["body"]
        return None

    @property
    def successes(self) -> int:
        with self._lock:
            return sum(self.successes_by_prompt.values())

    def start(self) -> "FakeOpenAIServer":
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes sleeping handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the server stops."""
        self._stopping.wait(seconds)

    def record(self, path: str, headers: dict[str, str], body: Any) -> tuple[str, int]:
        """Count a chat request; return (prompt, attempt number for that prompt)."""
        messages = body.get("messages", []) if isinstance(body, dict) else []
        prompt = last_user_text(messages) if isinstance(messages, list) else ""
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            self.hits += 1
            self.hits_by_prompt[prompt] += 1
            return prompt, self.hits_by_prompt[prompt]

    def record_success(self, prompt: str) -> None:
        with self._lock:
            self.successes_by_prompt[prompt] += 1


def reasoning_rejection(body: dict[str, Any]) -> dict[str, Any] | None:
    """The error object the OpenAI API returns (with HTTP 400) when a reasoning model gets a parameter it
    rejects; None when the request is acceptable."""
    for name in ("max_tokens", "stop"):
        if body.get(name) is not None:
            hint = " Use 'max_completion_tokens' instead." if name == "max_tokens" else ""
            return {"message": f"Unsupported parameter: '{name}' is not supported with this model.{hint}",
                    "type": "invalid_request_error", "param": name, "code": "unsupported_parameter"}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None and body[name] != 1:
            return {"message": f"Unsupported value: '{name}' does not support {body[name]} with this model. "
                               "Only the default (1) value is supported.",
                    "type": "invalid_request_error", "param": name, "code": "unsupported_value"}
    return None


def completion_payload(server: FakeOpenAIServer, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
    """The chat.completion object answering `body` (usage: words of the messages in, of the answer out)."""
    messages = body.get("messages", [])
    n = int(body.get("n") or 1)
    if fault is not None and fault.kind == "empty":
        choices: list[dict[str, Any]] = []
        text = ""
    elif fault is not None and fault.kind == "content_filter":
        text = ""
        choices = [
            {"index": i, "message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"}
            for i in range(n)
        ]
    else:
        answer = server.responder(messages)
        fields = dict(answer) if isinstance(answer, dict) else {"content": answer}
        finish_reason = fields.pop("finish_reason", "stop")
        text = fields.get("content") or ""
        choices = [
            {"index": i, "message": {"role": "assistant", **fields}, "finish_reason": finish_reason}
            for i in range(n)
        ]
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion_tokens = len(text.split()) * len(choices)
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens}
    if server.reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": server.reasoning_tokens}
    with server._lock:
        server.usage_served["prompt_tokens"] += prompt_tokens
        server.usage_served["completion_tokens"] += completion_tokens
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": choices,
        "usage": usage,
    }


class FakeBatches:
    """The Batch API of the fake server: `POST /v1/files` (multipart upload, purpose batch), `POST /v1/batches`,
    `GET /v1/batches/{id}` and `GET /v1/files/{id}/content`, with the shapes of the OpenAI API.

    A batch is `validating` when created, `in_progress` at the next retrieve, and `completed` at the one
    after, unless `hold` is set (it then stays in progress). Each input line is answered like a chat request
    (the server's responder and faults: a status fault becomes that line's error in the error file)."""

    def __init__(self, server: FakeOpenAIServer):
        self.server = server
        self.files: dict[str, dict[str, Any]] = {}  # id -> file object + "content" bytes
        self.jobs: dict[str, dict[str, Any]] = {}
        self.uploads = self.creates = self.retrieves = 0
        self.hold = False

    def post(self, path: str, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if path == "/v1/files":
            return self._upload(content_type, raw)
        body = json.loads(raw or b"{}")
        problems = [name for name, want in (("endpoint", "/v1/chat/completions"), ("completion_window", "24h"))
                    if body.get(name) != want]
        if body.get("input_file_id") not in self.files:
            problems.append("input_file_id")
        if problems:
            return 400, {"error": {"message": f"invalid {', '.join(problems)}", "type": "invalid_request_error",
                                   "param": problems[0], "code": None}}
        lines = [json.loads(line) for line in self.files[body["input_file_id"]]["content"].splitlines() if line.strip()]
        job_id = f"batch_{uuid.uuid4().hex[:20]}"
        with self.server._lock:
            self.creates += 1
            self.jobs[job_id] = {
                "id": job_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
                "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
                "in_progress_at": None, "expires_at": int(time.time()) + 86400, "completed_at": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "metadata": None,
                "_lines": lines,
            }
            return 200, self._public(self.jobs[job_id])

    def _upload(self, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        import email.parser
        import email.policy

        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        purpose = fields["purpose"].get_payload(decode=True).decode() if "purpose" in fields else None
        if purpose != "batch" or "file" not in fields:
            return 400, {"error": {"message": "expected a file with purpose 'batch'", "type": "invalid_request_error",
                                   "param": "purpose", "code": None}}
        content = fields["file"].get_payload(decode=True)
        return 200, self._store(content, fields["file"].get_filename() or "upload.jsonl", "batch", count=True)

    def _store(self, content: bytes, filename: str, purpose: str, count: bool = False) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        entry = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                 "filename": filename, "purpose": purpose, "status": "processed"}
        with self.server._lock:
            self.uploads += count
            self.files[file_id] = {**entry, "content": content}
        return entry

    def get(self, path: str) -> tuple[int, dict[str, Any] | bytes]:
        parts = path.split("/")  # ['', 'v1', 'batches', id] or ['', 'v1', 'files', id, 'content']
        if parts[2] == "files" and len(parts) == 5 and parts[4] == "content" and parts[3] in self.files:
            return 200, self.files[parts[3]]["content"]
        if parts[2] == "batches" and len(parts) == 4 and parts[3] in self.jobs:
            with self.server._lock:
                self.retrieves += 1
            return 200, self._public(self._advance(self.jobs[parts[3]]))
        return 404, {"error": {"message": f"No such object: {path}", "type": "invalid_request_error",
                               "param": None, "code": None}}

    def _advance(self, job: dict[str, Any]) -> dict[str, Any]:
        if job["status"] == "validating":
            job.update(status="in_progress", in_progress_at=int(time.time()))
        elif job["status"] == "in_progress" and not self.hold:
            self._finish(job)
        return job

    def _finish(self, job: dict[str, Any]) -> None:
        outputs, errors = [], []
        for line in job["_lines"]:
            body = line["body"]
            prompt, attempt = self.server.record("/v1/chat/completions (batch)", {}, body)
            fault = as_fault(self.server.faults(prompt, attempt)) if self.server.faults else None
            answer: dict[str, Any] = {"id": f"batch_req_{uuid.uuid4().hex[:16]}", "custom_id": line["custom_id"]}
            if fault is not None and fault.kind == "status":
                error = {"message": fault.message or f"Injected fault: HTTP {fault.status}",
                         "type": ERROR_TYPES.get(fault.status, "server_error"), "param": None, "code": None}
                errors.append({**answer, "response": {"status_code": fault.status, "request_id": "req_x",
                                                      "body": {"error": error}}, "error": None})
                continue
            payload = completion_payload(self.server, body, None)
            self.server.record_success(prompt)
            outputs.append({**answer, "response": {"status_code": 200, "request_id": "req_x", "body": payload},
                            "error": None})
        counts = {"total": len(job["_lines"]), "completed": len(outputs), "failed": len(errors)}
        as_file = lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()  # noqa: E731
        job.update(status="completed", completed_at=int(time.time()), request_counts=counts,
                   output_file_id=self._store(as_file(outputs), "output.jsonl", "batch_output")["id"] if outputs else None,
                   error_file_id=self._store(as_file(errors), "errors.jsonl", "batch_output")["id"] if errors else None)

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            if self.path.startswith(("/v1/batches/", "/v1/files/")):
                status, data = server.batches.get(self.path.partition("?")[0].rstrip("/"))
                if isinstance(data, bytes):
                    self._send_raw(status, data)
                else:
                    self._send_json(status, data)
                return
            if self.path.rstrip("/") != "/v1/models":
                self._error(404, f"Unknown path {self.path}", "not_found")
                return
            created = int(time.time())
            data = [
                {"id": name, "object": "model", "created": created, "owned_by": "fake"}
                for name in (server.models or ["fake-model"])
            ]
            self._send_json(200, {"object": "list", "data": data})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._error(413, "Request body too large", "invalid_request_error")
                return
            raw = self.rfile.read(length)
            path = self.path.partition("?")[0].rstrip("/")
            if path in ("/v1/files", "/v1/batches"):
                status, payload = server.batches.post(path, self.headers.get("Content-Type", ""), raw)
                self._send_json(status, payload)
                return
            if server.max_concurrent is not None:
                self._limited_post(raw)
                return
            self._post(raw)

        def _limited_post(self, raw: bytes) -> None:
            """Answer 429 while more than max_concurrent requests are being served."""
            with server._lock:
                server.in_flight += 1
                server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                over = server.in_flight > (server.max_concurrent or 0)
                server.rejected_429 += over
            try:
                if over:
                    server.sleep(server.delay_s)
                    self._error(429, "Rate limit reached: too many concurrent requests", "rate_limit_exceeded")
                else:
                    self._post(raw)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _post(self, raw: bytes) -> None:
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = None
            if not isinstance(body, dict):
                self._error(400, "Request body is not a JSON object", "invalid_request_error")
                return
            prompt, attempt = server.record(self.path, dict(self.headers), body)
            if self.path.partition("?")[0].rstrip("/") != "/v1/chat/completions":  # query: e.g. ?api-key=
                self._error(404, f"Unknown path {self.path}", "not_found")
                return
            if server.delay_s:
                server.sleep(server.delay_s)
            fault = as_fault(server.faults(prompt, attempt)) if server.faults else None
            model = str(body.get("model", ""))
            if fault is None and server.models is not None and model not in server.models:
                fault = Fault(status=404, message=f"The model `{model}` does not exist")
            if fault is not None and fault.kind == "status":
                self._status_fault(fault)
                return
            if fault is not None and fault.kind == "drop":
                self.close_connection = True  # close the socket without a response
                return
            if fault is not None and fault.kind == "malformed":
                self._send_raw(200, b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess')
                return
            if fault is not None and fault.kind == "slow":
                server.sleep(fault.delay_s)
            rejection = reasoning_rejection(body) if server.reasoning_model else None
            if rejection is not None:
                self._send_json(400, {"error": rejection})
                return
            self._answer(body, prompt, fault)

        def _answer(self, body: dict[str, Any], prompt: str, fault: Fault | None) -> None:
            payload = completion_payload(server, body, fault)
            if self._send_json(200, payload) and payload["choices"]:
                server.record_success(prompt)

        def _status_fault(self, fault: Fault) -> None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = str(fault.retry_after_ms)
            message = fault.message or f"Injected fault: HTTP {fault.status}"
            self._error(fault.status, message, ERROR_TYPES.get(fault.status, "server_error"), headers)

        def _error(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
            error = {"message": message, "type": code, "param": None, "code": code}
            self._send_json(status, {"error": error}, headers)

        def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> bool:
            return self._send_raw(status, json.dumps(payload).encode(), headers)

        def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> bool:
            """Write a JSON response; False if the client already went away."""
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return False
            return True

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT/SIGTERM, writing the chosen port to --port-file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to delay every request")
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with FakeOpenAIServer(delay_s=args.delay, port=args.port) as srv:
        tmp = args.port_file.with_name(args.port_file.name + ".tmp")
        tmp.write_text(str(srv.port))
        tmp.replace(args.port_file)  # atomic: readers never see a partial port
        try:
            done.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
