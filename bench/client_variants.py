"""What each layer of the HTTP client stack costs per request (to size a change to the openai backend).

    python bench/client_variants.py --base-url URL [--n 2000] [--concurrency 64]

Runs each variant in a fresh subprocess (same N single-turn requests, same concurrency) and prints its
loop wall time and CPU seconds:
  create    client.chat.completions.create(...)        what harness's OpenAIBackend._call does today
  post      client.post("/chat/completions", body=...,  skips the SDK's TypedDict parameter transform;
            cast_to=ChatCompletion)                      same errors, retries, headers and response model
  post-raw  client.post(..., cast_to=httpx2.Response)   also skips building the pydantic response model
            + json.loads
  httpx     httpx2.AsyncClient.post + json.loads        no SDK at all (own error mapping needed)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

VARIANTS = ("create", "post", "post-raw", "httpx")


async def run_variant(mode: str, base_url: str, n: int, concurrency: int) -> dict:
    import httpx2
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletion

    client = AsyncOpenAI(api_key="not-needed", base_url=base_url, max_retries=0, timeout=120)
    raw = httpx2.AsyncClient(base_url=base_url, timeout=120, limits=httpx2.Limits(max_connections=concurrency))
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        params = {"model": "stub", "messages": [{"role": "user", "content": f"Question {i}: how do I do it?"}],
                  "temperature": 0.0, "max_tokens": 256, "seed": 0}
        async with limit:
            if mode == "create":
                response = await client.chat.completions.create(**params)
                return response.choices[0].message.content
            if mode == "post":
                response = await client.post("/chat/completions", body=params, cast_to=ChatCompletion)
                return response.choices[0].message.content
            if mode == "post-raw":
                response = await client.post("/chat/completions", body=params, cast_to=httpx2.Response)
                return json.loads(response.content)["choices"][0]["message"]["content"]
            response = await raw.post("/chat/completions", json=params)
            response.raise_for_status()
            return response.json()["choices"][0]["message"]["content"]

    await one(-1)  # first call: lazy imports and the first connection, outside the timing
    started, cpu = time.perf_counter(), time.process_time()
    answers = await asyncio.gather(*(one(i) for i in range(n)))
    result = {"mode": mode, "requests": len(answers), "loop_s": round(time.perf_counter() - started, 3),
              "cpu_s": round(time.process_time() - cpu, 3)}
    await client.close()
    await raw.aclose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--mode", choices=VARIANTS, help="run one variant in this process")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(asyncio.run(run_variant(args.mode, args.base_url, args.n, args.concurrency))))
        return
    for mode in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--base-url", args.base_url, "--n",
                              str(args.n), "--concurrency", str(args.concurrency)],
                             capture_output=True, text=True, check=True).stdout
        result = json.loads(out)
        per_request_ms = 1000 * result["cpu_s"] / result["requests"]
        print(f"{mode:9} loop {result['loop_s']:6.2f} s  cpu {result['cpu_s']:6.2f} s  "
              f"({per_request_ms:.2f} ms CPU/request)", flush=True)


if __name__ == "__main__":
    main()
