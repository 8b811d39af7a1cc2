"""Backend registry: model spec `kind/name` -> backend class, imported only when used."""
from __future__ import annotations

import importlib

from harness.backends.base import Backend, BackendOptions, BackendResources
from harness.errors import UserError

BACKENDS: dict[str, str] = {
    "openai": "harness.backends.openai_api:OpenAIBackend",
    "vllm": "harness.backends.vllm_local:VLLMBackend",
    "local": "harness.backends.llama_cpp:LlamaCppBackend",
    "replay": "harness.backends.replay:ReplayBackend",
    "scripted": "harness.backends.scripted:ScriptedBackend",
}


def parse_model_spec(spec: str) -> tuple[str, str]:
    """Split 'kind/name' (name may contain further slashes) and check the kind exists."""
    kind, sep, name = spec.partition("/")
    if not sep or not name or kind not in BACKENDS:
        kinds = ", ".join(f"{k}/<name>" for k in BACKENDS)
        raise UserError(f"model spec '{spec}' is not of the form kind/name; known kinds: {kinds}")
    return kind, name


def create_backend(spec: str, options: BackendOptions | None = None,
                   resources: BackendResources | None = None) -> Backend:
    """Instantiate the backend for a model spec such as 'openai/gpt-4o-mini'; with `resources` it shares
    the run's clients and engines."""
    kind, name = parse_model_spec(spec)
    module_name, _, class_name = BACKENDS[kind].partition(":")
    module = importlib.import_module(module_name)
    backend = getattr(module, class_name)(name, options or BackendOptions())
    if resources is not None:
        backend.share(resources)
    return backend
