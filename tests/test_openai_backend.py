"""OpenAIBackend against the fake OpenAI-compatible server: success, retries, permanent errors, secrets."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fake_openai_server import DEFAULT_ANSWER, FakeOpenAIServer, Fault, first_attempts, random_faults
from harness.backends.base import BackendOptions
from harness.errors import BackendError, UserError
from harness.backends.openai_api import OpenAIBackend
from harness.secrets import redact
from harness.types import Completion, GenerateConfig, Message, Request

SECRET = "sk-test-SECRET123456"


@pytest.fixture(autouse=True)
def fake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("HARNESS_RETRY_BASE_S", "0.01")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def make_request(prompt: str = "hello there", config: GenerateConfig | None = None) -> Request:
    return Request(messages=[Message(role="user", content=prompt)], config=config or GenerateConfig())


def backend_for(srv: FakeOpenAIServer, model: str = "fake-model", **options: object) -> OpenAIBackend:
    return OpenAIBackend(model, BackendOptions(base_url=srv.base_url, **options))


def generate(backend: OpenAIBackend, request: Request | None = None) -> Completion:
    async def run() -> Completion:
        try:
            return await backend.generate(request or make_request())
        finally:
            await backend.aclose()

    return asyncio.run(run())


def header(srv: FakeOpenAIServer, name: str) -> str | None:
    headers = srv.requests[-1]["headers"]
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def test_success_returns_text_usage_and_latency() -> None:
    with FakeOpenAIServer() as srv:
        completion = generate(backend_for(srv))
        assert completion.text == DEFAULT_ANSWER
        assert completion.model == "fake-model"
        assert completion.usage.prompt_tokens == 2
        assert completion.usage.completion_tokens == len(DEFAULT_ANSWER.split())
        assert completion.finish_reason == "stop"
        assert completion.latency_s > 0
        assert completion.retries == []
        assert srv.hits == 1 and srv.successes_by_prompt["hello there"] == 1
        assert header(srv, "Authorization") == f"Bearer {SECRET}"


def test_responder_sees_messages() -> None:
    with FakeOpenAIServer(responder=lambda messages: messages[-1]["content"].upper()) as srv:
        request = Request(messages=[Message(role="system", content="be brief"), Message(role="user", content="echo me")])
        assert generate(backend_for(srv), request).text == "ECHO ME"
        assert srv.last_body["messages"] == [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "echo me"},
        ]


@pytest.mark.parametrize(
    "fault",
    [Fault(status=429, retry_after=0.3), Fault(status=503, retry_after_ms=300)],
    ids=["429-retry-after", "503-retry-after-ms"],
)
def test_retry_after_is_honoured(fault: Fault) -> None:
    with FakeOpenAIServer(faults=first_attempts(1, fault)) as srv:
        completion = generate(backend_for(srv))
        assert completion.text == DEFAULT_ANSWER
        assert srv.hits_by_prompt["hello there"] == 2
        assert len(completion.retries) == 1
        assert completion.retries[0].startswith(f"attempt 1: HTTP {fault.status}")
        assert "waited 0.30s" in completion.retries[0]
        assert 0.3 <= completion.latency_s < 2.0


def test_retry_after_is_capped_per_role() -> None:
    with FakeOpenAIServer(faults=first_attempts(1, Fault(status=429, retry_after=3600))) as srv:
        completion = generate(backend_for(srv, max_retry_after_s=0.2))
        assert completion.text == DEFAULT_ANSWER
        assert "waited 0.20s" in completion.retries[0]  # not the hour the server asked for
        assert completion.latency_s < 2.0


def test_server_errors_are_retried_until_success() -> None:
    with FakeOpenAIServer(faults=first_attempts(2, "500")) as srv:
        completion = generate(backend_for(srv))
        assert completion.text == DEFAULT_ANSWER
        assert srv.hits == 3 and srv.successes == 1
        assert [r.split(":")[0] for r in completion.retries] == ["attempt 1", "attempt 2"]
        assert all("HTTP 500" in r for r in completion.retries)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "check the generation settings"),
        (401, "check the API key in $OPENAI_API_KEY"),
        (403, "no access"),
        (404, "unknown model or wrong --base-url"),
        (422, "could not process"),
    ],
)
def test_client_errors_are_not_retried(status: int, expected: str) -> None:
    with FakeOpenAIServer(faults=lambda prompt, attempt: str(status)) as srv:
        with pytest.raises(BackendError) as info:
            generate(backend_for(srv))
        assert srv.hits == 1
        err = info.value
        assert err.permanent and err.retries == []
        message = str(err)
        assert f"HTTP {status}" in message and f"Injected fault: HTTP {status}" in message
        assert expected in message
        assert "\n" not in message


def test_unknown_model_gets_404_with_server_message() -> None:
    with FakeOpenAIServer(models=["other-model"]) as srv:
        with pytest.raises(BackendError, match="model `fake-model` does not exist.*unknown model") as info:
            generate(backend_for(srv))
        assert info.value.permanent and srv.hits == 1


def test_timeout_is_retried() -> None:
    with FakeOpenAIServer(faults=first_attempts(1, Fault(kind="slow", delay_s=2.0))) as srv:
        completion = generate(backend_for(srv, timeout_s=0.3))
        assert completion.text == DEFAULT_ANSWER
        assert len(completion.retries) == 1 and "timed out after 0.3s" in completion.retries[0]
        assert srv.hits == 2
        assert 0.3 <= completion.latency_s < 1.5


@pytest.mark.parametrize(
    ("fault", "noted"),
    [("malformed", "malformed response: invalid JSON"), ("empty", "no choices"), ("drop", "connection error")],
)
def test_bad_responses_are_retried(fault: str, noted: str) -> None:
    with FakeOpenAIServer(faults=first_attempts(2, fault)) as srv:
        completion = generate(backend_for(srv))
        assert completion.text == DEFAULT_ANSWER
        assert srv.hits == 3 and srv.successes == 1
        assert len(completion.retries) == 2 and all(noted in r for r in completion.retries)


def test_exhausted_retries_raise_transient_error() -> None:
    with FakeOpenAIServer(faults=lambda prompt, attempt: "502") as srv:
        with pytest.raises(BackendError) as info:
            generate(backend_for(srv, max_retries=2))
        err = info.value
        assert not err.permanent
        assert srv.hits == 3
        assert len(err.retries) == 2 and all("HTTP 502" in r for r in err.retries)
        assert "HTTP 502" in str(err) and "gave up after 3 attempts" in str(err)


def test_content_filter_is_a_completion_not_an_error() -> None:
    with FakeOpenAIServer(faults=lambda prompt, attempt: "content_filter") as srv:
        completion = generate(backend_for(srv))
        assert completion.finish_reason == "content_filter"
        assert completion.text == "" and completion.retries == []
        assert srv.hits == 1


def test_generate_config_reaches_server() -> None:
    config = GenerateConfig(temperature=0.2, top_p=0.9, max_tokens=17, seed=7, stop=["END"], n=2)
    with FakeOpenAIServer() as srv:
        generate(backend_for(srv, model="m1"), make_request(config=config))
        body = srv.last_body
        assert body["model"] == "m1"
        assert {k: body[k] for k in ("temperature", "top_p", "max_tokens", "seed", "stop", "n")} == {
            "temperature": 0.2, "top_p": 0.9, "max_tokens": 17, "seed": 7, "stop": ["END"], "n": 2,
        }
        generate(backend_for(srv))
        assert not {"temperature", "top_p", "max_tokens", "seed", "stop"} & set(srv.last_body)


def test_api_key_never_leaks() -> None:
    leaky = f"Incorrect API key provided: {SECRET}"
    with FakeOpenAIServer(faults=lambda prompt, attempt: Fault(status=401, message=leaky)) as srv:
        backend = backend_for(srv)
        assert SECRET not in json.dumps(backend.identity()) and SECRET not in repr(backend)
        with pytest.raises(BackendError) as info:
            generate(backend)
        assert SECRET not in str(info.value) and "[REDACTED]" in str(info.value)
    with FakeOpenAIServer(faults=first_attempts(1, Fault(status=500, message=leaky))) as srv:
        completion = generate(backend_for(srv))
        assert "[REDACTED]" in completion.retries[0]
        assert SECRET not in completion.model_dump_json()
    with FakeOpenAIServer(faults=lambda prompt, attempt: Fault(status=500, message=leaky)) as srv:
        with pytest.raises(BackendError) as info:
            generate(backend_for(srv, max_retries=1))
        assert SECRET not in str(info.value) and SECRET not in json.dumps(info.value.retries)


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(UserError, match=r"\$OPENAI_API_KEY"):
        OpenAIBackend("gpt-x")
    with pytest.raises(UserError, match=r"\$MY_KEY"):
        OpenAIBackend("gpt-x", BackendOptions(api_key_env="MY_KEY"))
    with FakeOpenAIServer() as srv:  # local servers need no key
        assert generate(backend_for(srv)).text == DEFAULT_ANSWER
        assert header(srv, "Authorization") == "Bearer not-needed"


def test_key_env_and_base_url_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_API_KEY", "custom-key-1234")
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        backend = OpenAIBackend("fake-model", BackendOptions(api_key_env="MY_API_KEY"))
        assert backend.identity() == {"kind": "openai", "model": "fake-model", "base_url": srv.base_url}
        generate(backend)
        assert header(srv, "Authorization") == "Bearer custom-key-1234"


def test_bad_retry_base_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_RETRY_BASE_S", "fast")
    with pytest.raises(UserError, match="HARNESS_RETRY_BASE_S"):
        OpenAIBackend("m", BackendOptions(base_url="http://127.0.0.1:9/v1"))


def test_concurrent_requests_with_random_faults() -> None:
    prompts = [f"prompt {i}" for i in range(20)]
    with FakeOpenAIServer(faults=random_faults({"429": 0.2, "500": 0.1, "drop": 0.1}, seed=3)) as srv:
        backend = backend_for(srv, max_retries=20)

        async def run() -> list[Completion]:
            try:
                return await asyncio.gather(*(backend.generate(make_request(p)) for p in prompts))
            finally:
                await backend.aclose()

        completions = asyncio.run(run())
        assert all(c.text == DEFAULT_ANSWER for c in completions)
        assert all(srv.successes_by_prompt[p] == 1 for p in prompts)
        assert srv.hits == len(prompts) + sum(len(c.retries) for c in completions)
        assert srv.hits > len(prompts)  # seed 3 injects some faults


def test_redact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-abcdefgh")
    monkeypatch.setenv("SHORT_KEY", "abc")
    text = f"a {SECRET} b tok-abcdefgh c sk-proj-ABCDEFGH1234 d abc"
    assert redact(text) == "a [REDACTED] b [REDACTED] c [REDACTED] d abc"


def test_server_runs_as_script(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    script = Path(__file__).with_name("fake_openai_server.py")
    proc = subprocess.Popen([sys.executable, str(script), "--port-file", str(port_file)])
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        port = int(port_file.read_text())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as response:
            assert json.load(response)["data"][0]["id"] == "fake-model"
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
