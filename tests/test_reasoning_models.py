"""Reasoning models (o1/o3/o4-mini/gpt-5 style): request shape, 400 'unsupported parameter' fallback,
reasoning text kept apart from the answer, and no-answer completions as `truncated` errors."""
from __future__ import annotations

import asyncio

import pytest
from conftest import metric, read_records, read_summary
from fake_openai_server import FakeOpenAIServer

from harness.backends.base import BackendOptions
from harness.backends.openai_api import OpenAIBackend, is_reasoning_model
from harness.errors import BackendError
from harness.types import Completion, GenerateConfig, Message, Request

ANSWER = "Sure, here is a careful answer."


@pytest.fixture(autouse=True)
def fake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_RETRY_BASE_S", "0.01")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def generate_each(backend: OpenAIBackend, *configs: GenerateConfig) -> list[Completion | BaseException]:
    """One request per config, one after another, then close the backend."""
    async def run() -> list[Completion | BaseException]:
        results: list[Completion | BaseException] = []
        try:
            for config in configs:
                request = Request(messages=[Message(role="user", content="hi")], config=config)
                try:
                    results.append(await backend.generate(request))
                except BackendError as exc:
                    results.append(exc)
        finally:
            await backend.aclose()
        return results

    return asyncio.run(run())


def sent(srv: FakeOpenAIServer) -> list[dict]:
    return [r["body"] for r in srv.requests if r["path"].endswith("/chat/completions")]


@pytest.mark.parametrize("name, expected", [
    ("o1", True), ("o1-mini", True), ("o3", True), ("o3-pro", True), ("o4-mini", True), ("gpt-5", True),
    ("gpt-5-mini", True), ("azure/o3-mini", True), ("O3", True),
    ("gpt-4o", False), ("gpt-4.1-mini", False), ("llama-3-o1", False), ("foo1", False), ("o", False),
])
def test_model_name_rule(name: str, expected: bool) -> None:
    assert is_reasoning_model(name) is expected


def test_reasoning_model_gets_max_completion_tokens_and_no_sampling_knobs() -> None:
    with FakeOpenAIServer(reasoning_model=True) as srv:
        backend = OpenAIBackend("o3-mini", BackendOptions(base_url=srv.base_url))
        [completion] = generate_each(backend, GenerateConfig(temperature=0.0, top_p=0.5, max_tokens=64,
                                                             stop=["END"], seed=3))
        assert completion.text
        [body] = sent(srv)
    assert body["max_completion_tokens"] == 64 and body["seed"] == 3
    assert not {"max_tokens", "temperature", "top_p", "stop"} & set(body)
    assert backend.identity()["reasoning"] is True


def test_reasoning_override_for_a_model_the_name_rule_misses() -> None:
    with FakeOpenAIServer(reasoning_model=True) as srv:
        backend = OpenAIBackend("my-reasoner", BackendOptions(base_url=srv.base_url, reasoning=True))
        [completion] = generate_each(backend, GenerateConfig(temperature=0.0, max_tokens=8))
        assert completion.text == "Sure. Here is a clear, step-by-step answer to your question."
        assert srv.hits == 1


def test_unsupported_parameter_400_is_retried_once_without_it_and_logged(caplog) -> None:
    with FakeOpenAIServer(reasoning_model=True) as srv:
        backend = OpenAIBackend("o3-mini", BackendOptions(base_url=srv.base_url, reasoning=False))
        first, second = generate_each(backend, GenerateConfig(temperature=0.0, max_tokens=32),
                                      GenerateConfig(temperature=0.0, max_tokens=32))
        bodies = sent(srv)
    assert isinstance(first, Completion) and isinstance(second, Completion)
    # first request: rejected for max_tokens, then for temperature, then accepted; each parameter retried once
    assert [("max_tokens" in b, "max_completion_tokens" in b, "temperature" in b) for b in bodies] == [
        (True, False, True), (False, True, True), (False, True, False), (False, True, False)]
    assert bodies[-1]["max_completion_tokens"] == 32
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert "does not accept 'max_tokens'" in warnings[0] and "max_completion_tokens" in warnings[0]
    assert "does not accept 'temperature'" in warnings[1]


def test_a_400_that_names_no_parameter_we_sent_is_not_retried() -> None:
    def fault(prompt: str, attempt: int):
        return "400"

    with FakeOpenAIServer(faults=fault) as srv:
        [error] = generate_each(OpenAIBackend("o3", BackendOptions(base_url=srv.base_url)), GenerateConfig())
        assert isinstance(error, BackendError) and "HTTP 400" in str(error)
        assert srv.hits == 1


def test_reasoning_content_is_kept_apart_from_the_answer() -> None:
    def responder(messages):
        return {"content": "The final answer.", "reasoning_content": "First, consider the question."}

    with FakeOpenAIServer(responder=responder) as srv:
        [completion] = generate_each(OpenAIBackend("deepseek-r1", BackendOptions(base_url=srv.base_url)),
                                     GenerateConfig())
    assert completion.text == "The final answer."
    assert completion.reasoning == "First, consider the question."


def test_think_tags_are_split_from_the_answer() -> None:
    answers = iter(["<think>weighing it</think>\n\nNo, I can't help with that.", "half a thought</think>Yes."])
    with FakeOpenAIServer(responder=lambda messages: next(answers)) as srv:
        backend = OpenAIBackend("qwen3", BackendOptions(base_url=srv.base_url, reasoning=True))
        tagged, untagged_open = generate_each(backend, GenerateConfig(), GenerateConfig())
    assert (tagged.text, tagged.reasoning) == ("No, I can't help with that.", "weighing it")
    assert (untagged_open.text, untagged_open.reasoning) == ("Yes.", "half a thought")


def run_overrefusal(cli, srv: FakeOpenAIServer, model: str, *extra: str):
    return cli(["run", "--model", model, "--base-url", srv.base_url, "-t", "overrefusal", "--limit", "4",
                "--run-dir", "run", "--no-progress", "--max-retries", "0", *extra])


def test_cli_reasoning_model_runs_cleanly_against_the_real_error_shape(cli, tmp_path) -> None:
    with FakeOpenAIServer(reasoning_model=True) as srv:
        out = run_overrefusal(cli, srv, "openai/o4-mini", "--max-tokens", "100")
        bodies = sent(srv)
    assert out.returncode == 0, out.stderr
    assert len(bodies) == 4 and all(b["max_completion_tokens"] == 100 and "temperature" not in b for b in bodies)
    assert all(r["error"] is None for r in read_records(tmp_path / "run"))


def test_cli_fallback_is_said_in_the_log(cli, tmp_path) -> None:
    with FakeOpenAIServer(reasoning_model=True) as srv:
        out = run_overrefusal(cli, srv, "openai/o4-mini", "--no-reasoning", "--max-samples", "1")
    assert out.returncode == 0, out.stderr
    assert "does not accept 'max_tokens'" in out.stderr and "does not accept 'temperature'" in out.stderr
    assert all(r["error"] is None for r in read_records(tmp_path / "run"))


def test_cli_no_final_answer_is_a_truncated_error_not_a_refusal(cli, tmp_path) -> None:
    def responder(messages):
        prompt = messages[-1]["content"]
        if "photo" in prompt:  # reasoning used up the budget
            return {"content": None, "reasoning_content": "Let me think " * 50, "finish_reason": "length"}
        if "interviewers" in prompt:
            return {"content": "<think>still thinking", "finish_reason": "length"}
        if "mould" in prompt:
            return ""  # an empty answer
        return {"content": "I'm sorry, but I can't help with that.", "reasoning_content": "Unsafe request."}

    with FakeOpenAIServer(responder=responder) as srv:
        out = run_overrefusal(cli, srv, "openai/r1", "--reasoning", "--limit", "6")
    assert out.returncode == 1, out.stderr  # 3 of 6 samples errored: above --max-error-rate, the run failed
    records = {r["sample_id"]: r for r in read_records(tmp_path / "run")}
    truncated = {sid for sid, r in records.items() if r["error_kind"] == "truncated"}
    assert truncated == {"1", "3", "5"}
    for sid in truncated:
        assert records[sid]["scores"] == {}
        completion = records[sid]["exchanges"][0]["completion"]
        assert completion["text"] == ""
    assert records["1"]["exchanges"][0]["completion"]["reasoning"].startswith("Let me think")
    assert records["3"]["exchanges"][0]["completion"]["reasoning"] == "still thinking"
    kept = records["2"]["exchanges"][0]["completion"]
    assert kept["text"] == "I'm sorry, but I can't help with that." and kept["reasoning"] == "Unsafe request."
    assert records["2"]["scores"]  # an answer is scored; its reasoning is not part of it
    assert "truncated: 3" in out.stderr
    summary = read_summary(tmp_path / "run")  # the three safe prompts had no answer: none counts as refused
    assert metric(summary, "overrefusal", "overrefusal.safe_refusal")["n"] == 0
    assert metric(summary, "overrefusal", "overrefusal.unsafe_compliance")["n"] == 3


@pytest.mark.parametrize("text, finish, reasoning, reasoning_model, truncated", [
    ("", "length", None, False, True),  # the token limit hit before any answer
    ("", "stop", "thought a lot", False, True),  # reasoning, then nothing
    ("", "stop", None, True, True),  # a reasoning model's empty answer
    ("", "stop", None, False, False),  # another model's empty answer: the benchmarks' convention applies
    ("", "content_filter", None, True, False),  # the provider's filter answered
    ("Partial ans", "length", "x", True, False),  # cut short, but there is an answer
])
def test_which_completions_have_no_answer(text, finish, reasoning, reasoning_model, truncated) -> None:
    from harness.context import check_answer
    from harness.errors import NoAnswer

    completion = Completion(text=text, finish_reason=finish, reasoning=reasoning)
    if truncated:
        with pytest.raises(NoAnswer) as caught:
            check_answer(completion, reasoning_model)
        assert caught.value.kind == "truncated" and caught.value.completion is completion
    else:
        check_answer(completion, reasoning_model)
