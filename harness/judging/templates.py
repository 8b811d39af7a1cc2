"""Judge templates: Jinja2 files in `rubrics/` (package `harness_rubrics`) or in a plugin's package,
rendered in a sandbox.

Dataset text and model output are only ever passed as variables, so text such as `{{ 7*7 }}` in a
prompt reaches the judge verbatim. A template's hash is the SHA-256 of its source file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from harness.errors import UserError

PACKAGE = "harness_rubrics"


@dataclass(frozen=True)
class JudgeTemplate:
    """One judge template: name (file stem), source text and its SHA-256."""

    name: str
    source: str
    sha256: str

    def render(self, variables: dict[str, Any]) -> str:
        """Render with the variables; a missing variable is an error, never an empty string."""
        from jinja2 import TemplateError

        try:
            return _compiled(self.source).render(**variables)
        except TemplateError as exc:
            raise UserError(f"judge template {self.name}.j2: {type(exc).__name__}: {exc}") from None


@cache
def _compiled(source: str):
    return _environment().from_string(source)


@cache
def _environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False)


def template_hashes(*names: str) -> dict[str, str]:
    """{'<name>.j2': sha256} for judge templates, for a task's `templates()`."""
    return {f"{name}.j2": load_template(name).sha256 for name in names}


@cache
def load_template(name: str) -> JudgeTemplate:
    """The template `rubrics/<name>.j2`, or `<stem>.j2` inside the installed package `pkg` for a name
    `pkg:stem` (a plugin's own rubric); unknown names are a UserError listing the available ones."""
    package, _, stem = name.rpartition(":")
    try:
        files = resources.files(package or PACKAGE)
    except ModuleNotFoundError:
        raise UserError(f"judge template '{name}': no installed package '{package}'") from None
    resource = files / f"{stem}.j2"
    if not resource.is_file():
        prefix = f"{package}:" if package else ""
        available = sorted(prefix + p.name[:-3] for p in files.iterdir() if p.name.endswith(".j2"))
        raise UserError(f"unknown judge template '{name}'; available: {', '.join(available) or 'none'}")
    data = resource.read_bytes()
    return JudgeTemplate(name=name, source=data.decode("utf-8"), sha256=hashlib.sha256(data).hexdigest())
