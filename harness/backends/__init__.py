"""Backend registry: model spec `kind/name` -> backend class, one `harness.backends` entry point per kind.

A kind's module is imported only when a spec of that kind is used; third-party packages add kinds
(e.g. `mykind/name`) through the same entry-point group as the built-in ones.
"""

from __future__ import annotations

from harness.backends.base import Backend, BackendOptions, BackendResources
from harness.errors import UserError
from harness.plugins import BACKENDS, plugins


def parse_model_spec(spec: str) -> tuple[str, str]:
    """Split 'kind/name' (name may contain further slashes) and check the kind exists."""
    kind, sep, name = spec.partition("/")
    kinds = plugins(BACKENDS)
    if not sep or not name or kind not in kinds:
        known = ", ".join(f"{k}/<name>" for k in kinds)
        raise UserError(f"model spec '{spec}' is not of the form kind/name; known kinds: {known}")
    return kind, name


def create_backend(
    spec: str, options: BackendOptions | None = None, resources: BackendResources | None = None
) -> Backend:
    """Instantiate the backend for a model spec such as 'openai/gpt-4o-mini'; with `resources` it shares
    the run's clients and engines."""
    kind, name = parse_model_spec(spec)
    plugin = plugins(BACKENDS)[kind]
    cls = plugin.load()
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise UserError(
            f"model kind '{kind}' from package {plugin.origin} ({plugin.target}) is not a "
            "harness.backends.base.Backend subclass"
        )
    backend = cls(name, options or BackendOptions())
    if resources is not None:
        backend.share(resources)
    return backend
