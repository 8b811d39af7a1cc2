"""Clients and engines belong to the run's BackendResources: shared per endpoint, closed with the run."""
from __future__ import annotations

import asyncio

import pytest

from harness.backends import create_backend
from harness.backends.base import BackendOptions, BackendResources


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_A", "key-a-0123456789")
    monkeypatch.setenv("KEY_B", "key-b-0123456789")


def test_roles_on_one_endpoint_share_a_client_and_the_run_closes_it() -> None:
    resources = BackendResources()
    url = "http://127.0.0.1:9/v1"
    model = create_backend("openai/m", BackendOptions(base_url=url, api_key_env="KEY_A"), resources)
    judge = create_backend("openai/j", BackendOptions(base_url=url, api_key_env="KEY_A"), resources)
    other_key = create_backend("openai/j", BackendOptions(base_url=url, api_key_env="KEY_B"), resources)
    other_url = create_backend("openai/j", BackendOptions(base_url=url + "x", api_key_env="KEY_A"), resources)

    async def run():
        clients = [b._get_client() for b in (model, judge, other_key, other_url)]
        for backend in (model, judge, other_key, other_url):
            await backend.aclose()  # a shared client is not the backend's to close
        still_open = [c.is_closed() for c in clients]
        await resources.aclose()
        return clients, still_open, [c.is_closed() for c in clients]

    clients, after_backends, after_run = asyncio.run(run())
    assert clients[0] is clients[1]
    assert len({id(c) for c in clients}) == 3
    assert after_backends == [False] * 4 and after_run == [True] * 4


def test_a_backend_without_the_runs_resources_closes_its_own_client() -> None:
    backend = create_backend("openai/m", BackendOptions(base_url="http://127.0.0.1:9/v1", api_key_env="KEY_A"))

    async def run():
        client = backend._get_client()
        await backend.aclose()
        return client.is_closed()

    assert asyncio.run(run()) is True


def test_shared_objects_close_newest_first_and_the_registry_empties() -> None:
    closed: list[str] = []
    resources = BackendResources()

    async def close(name: str) -> None:
        closed.append(name)

    first = resources.shared("a", lambda: "engine-a", close)
    assert resources.shared("a", lambda: "another", close) is first
    resources.shared("b", lambda: "engine-b", close)
    asyncio.run(resources.aclose())
    assert closed == ["engine-b", "engine-a"]
    assert resources.shared("a", lambda: "fresh", close) == "fresh"
