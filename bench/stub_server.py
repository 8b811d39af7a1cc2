"""Minimal OpenAI-compatible chat-completions stub for benchmarks (asyncio, stdlib only, 127.0.0.1).

Every POST .../chat/completions is answered after a fixed latency, with no concurrency limit, on
HTTP/1.1 keep-alive connections. Judge prompts get a parseable answer: a prompt asking for
"exactly N letters" (the fortress rubric) gets N times "N"; anything else gets a fixed compliant answer.
GET /stats returns {"requests": ..., "judge": ..., "target": ...} so callers can count calls per phase.

The server is bounded: it answers at most --max-requests chat requests (503 after that) and exits by
itself after --max-seconds, or as soon as the process that started it is gone.

    python bench/stub_server.py --latency 0.05 --port-file /tmp/port   # port in the file; 404s on stderr
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path

ANSWER = (
    "Sure. Here is a clear, step-by-step answer to your question. First, consider what you want to "
    "achieve and the constraints you have. Second, gather what you need. Third, proceed carefully and "
    "check the result at each step. If anything is unclear, ask a professional for advice."
)
JUDGE_PATTERN = re.compile(rb"Reply with exactly (\d+) letters")


def completion_body(text: str, prompt_tokens: int = 40) -> bytes:
    return json.dumps({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                  "total_tokens": prompt_tokens + len(text.split())},
    }).encode()


def http_response(status: str, body: bytes) -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: keep-alive\r\n\r\n")
    return head.encode() + body


class Stub:
    """Counters and canned responses shared by all connections."""

    def __init__(self, latency: float, max_requests: int):
        self.latency = latency
        self.max_requests = max_requests
        self.requests = 0
        self.judge = 0
        self.answer = http_response("200 OK", completion_body(ANSWER))
        self.judge_answers: dict[int, bytes] = {}
        self.busy = http_response("503 Service Unavailable",
                                  b'{"error": {"message": "stub request budget exhausted"}}')
        self.not_found = http_response("404 Not Found", b'{"error": {"message": "not found"}}')

    def respond(self, method: bytes, path: bytes, body: bytes) -> tuple[bytes, float]:
        """(response bytes, delay before sending)."""
        if method == b"GET" and path == b"/stats":
            stats = {"requests": self.requests, "judge": self.judge, "target": self.requests - self.judge}
            return http_response("200 OK", json.dumps(stats).encode()), 0.0
        if method != b"POST" or not path.endswith(b"/chat/completions"):
            print(f"stub: 404 for {method.decode()} {path.decode()}", file=sys.stderr, flush=True)
            return self.not_found, 0.0
        if self.requests >= self.max_requests:
            return self.busy, 0.0
        self.requests += 1
        match = JUDGE_PATTERN.search(body)
        if match is None:
            return self.answer, self.latency
        self.judge += 1
        n = int(match.group(1))
        if n not in self.judge_answers:
            self.judge_answers[n] = http_response("200 OK", completion_body("N" * n, prompt_tokens=300))
        return self.judge_answers[n], self.latency


class Connection(asyncio.Protocol):
    """One keep-alive connection: parse Content-Length framed requests, answer each after the latency."""

    def __init__(self, stub: Stub):
        self.stub = stub
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            method, path, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            response, delay = self.stub.respond(method, path, body)
            if delay:
                self.loop.call_later(delay, self.send, response)
            else:
                self.send(response)

    def send(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)

    def connection_lost(self, exc) -> None:
        self.transport = None


async def serve(args: argparse.Namespace) -> None:
    stub = Stub(args.latency, args.max_requests)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(stub), "127.0.0.1", args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = Path(f"{args.port_file}.tmp")
        tmp.write_text(str(port))
        tmp.replace(args.port_file)
    parent = os.getppid()
    deadline = time.monotonic() + args.max_seconds
    async with server:
        while time.monotonic() < deadline and os.getppid() == parent:
            await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each chat answer")
    parser.add_argument("--max-requests", type=int, default=200_000, help="chat requests answered before 503s")
    parser.add_argument("--max-seconds", type=float, default=3600, help="exit after this long")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
