"""The client-stack limit: a bare asyncio loop over the `openai` AsyncOpenAI client, no harness.

    python bench/bare_client.py --base-url URL --data prompts.csv --concurrency 64 [--judged fortress.jsonl]

Single-turn: one request per CSV prompt (temperature 0, max_tokens 256, seed 0, as the overrefusal task
sends). Judged (--judged): per row one target call, then one judge call with a fortress-shaped prompt.
Prints a JSON line {"requests": ..., "loop_s": ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import time
from pathlib import Path

from openai import AsyncOpenAI
from workload import judge_prompt


async def run(args: argparse.Namespace) -> dict:
    client = AsyncOpenAI(api_key="not-needed", base_url=args.base_url, max_retries=0, timeout=120)
    limit = asyncio.Semaphore(args.concurrency)
    calls = 0

    async def chat(text: str, **params) -> str:
        nonlocal calls
        response = await client.chat.completions.create(
            model="stub", messages=[{"role": "user", "content": text}], **params)
        calls += 1
        return response.choices[0].message.content or ""

    async def single(text: str) -> None:
        async with limit:
            await chat(text, temperature=0.0, max_tokens=256, seed=0)

    async def judged(row: dict) -> None:
        async with limit:
            response = await chat(row["adversarial_prompt"], temperature=0.7, seed=0)
            await chat(judge_prompt(row["adversarial_prompt"], response, row["rubric"]), temperature=0.0, seed=0)

    started = time.perf_counter()
    if args.judged:
        rows = [json.loads(line) for line in Path(args.judged).read_text().splitlines() if line.strip()]
        await asyncio.gather(*(judged(r) for r in rows))
    else:
        with open(args.data, newline="", encoding="utf-8") as handle:
            prompts = [row["prompt"] for row in csv.DictReader(handle)]
        await asyncio.gather(*(single(p) for p in prompts))
    elapsed = time.perf_counter() - started
    await client.close()
    return {"requests": calls, "loop_s": round(elapsed, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--data", help="XSTest-schema CSV (single-turn workload)")
    parser.add_argument("--judged", help="FORTRESS-schema JSONL (target + judge call per row)")
    parser.add_argument("--concurrency", type=int, default=64)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
