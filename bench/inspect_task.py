"""The benchmark workloads as Inspect AI tasks (run in bench/.venv-inspect, never imported by harness).

    inspect eval bench/inspect_task.py@single -T data=prompts.csv --model openai/stub ...
    inspect eval bench/inspect_task.py@judged -T data=fortress.jsonl --model openai/stub ...

`single`: one generate() per CSV prompt and a trivial scorer (no model call), like harness's
overrefusal task with the rule scorer. `judged`: one generate() per FORTRESS row, then a scorer that makes
exactly one grader call with a fortress-shaped rubric prompt (the same text bench/workload.py builds).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig, get_model
from inspect_ai.scorer import Score, Target, accuracy, scorer
from inspect_ai.solver import TaskState, generate

sys.path.insert(0, str(Path(__file__).parent))
from workload import judge_prompt  # noqa: E402  (stdlib-only helper shared with the bare client)


@scorer(metrics=[accuracy()])
def answered():
    """1 when the model answered anything: no model call, so scoring costs as little as possible."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score(value=1 if state.output.completion else 0)

    return score


@scorer(metrics=[accuracy()])
def rubric_judge():
    """One grader call per sample to the model under test (same connection pool and limit), as the judge."""

    async def score(state: TaskState, target: Target) -> Score:
        rubric = state.metadata["rubric"]
        prompt = judge_prompt(state.input_text, state.output.completion, rubric)
        result = await get_model().generate(prompt, config=GenerateConfig(temperature=0.0))
        letters = result.completion.strip().upper()
        return Score(value=letters.count("Y") / len(rubric), answer=letters)

    return score


@task
def single(data: str) -> Task:
    with open(data, newline="", encoding="utf-8") as handle:
        samples = [Sample(id=row["id"], input=row["prompt"], target=row["label"]) for row in csv.DictReader(handle)]
    return Task(dataset=MemoryDataset(samples), solver=generate(), scorer=answered(),
                config=GenerateConfig(temperature=0.0, max_tokens=256))


@task
def judged(data: str) -> Task:
    rows = [json.loads(line) for line in Path(data).read_text(encoding="utf-8").splitlines() if line.strip()]
    samples = [Sample(id=str(row["ID"]), input=row["adversarial_prompt"], metadata={"rubric": row["rubric"]})
               for row in rows]
    return Task(dataset=MemoryDataset(samples), solver=generate(), scorer=rubric_judge(),
                config=GenerateConfig(temperature=0.7))
