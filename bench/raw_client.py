"""Stub capacity check: N chat requests over C keep-alive connections with raw asyncio streams.

Shows what the stub server sustains when the client costs almost nothing, so the other figures are
known to be bounded by the client side, not by the server. Prints {"requests": ..., "loop_s": ...}.

    python bench/raw_client.py --base-url http://127.0.0.1:PORT/v1 --n 2000 --concurrency 64
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlparse


async def run(base_url: str, n: int, concurrency: int) -> dict:
    url = urlparse(base_url)
    body = json.dumps({"model": "stub", "messages": [{"role": "user", "content": "hello"}]}).encode()
    request = (f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    remaining = n

    async def connection() -> int:
        nonlocal remaining
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        done = 0
        while remaining > 0:
            remaining -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            done += 1
        writer.close()
        return done

    started = time.perf_counter()
    counts = await asyncio.gather(*(connection() for _ in range(concurrency)))
    return {"requests": sum(counts), "loop_s": round(time.perf_counter() - started, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.base_url, args.n, args.concurrency))))


if __name__ == "__main__":
    main()
