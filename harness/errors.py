"""The harness's exception types, in one module every layer may import."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """A problem the user can fix (bad file, unknown name, missing dependency); printed without traceback."""


class BackendError(Exception):
    """A generation failed for good (after retries, or a permanent client error)."""

    def __init__(self, message: str, *, retries: list[str] | None = None, permanent: bool = True):
        super().__init__(message)
        self.retries = retries or []
        self.permanent = permanent


class NoAnswer(BackendError):
    """The model gave no final answer: an empty text, or the token limit hit while it was still reasoning.
    Never a refusal or a verdict; `completion` keeps what came back (reasoning, usage, finish reason)."""

    kind = "truncated"

    def __init__(self, message: str, completion: Any):
        super().__init__(message, retries=list(completion.retries))
        self.completion = completion


class GenerationFailed(Exception):
    """A model call of a sample failed for good; the sample's record carries the error.

    `kind` names the failure for the record's error_kind when it is more specific than the stage
    (e.g. "truncated")."""

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind


class BudgetExhausted(Exception):
    """--budget-usd: the next request would take the projected spend past the budget, so it was not sent.
    The sample is left unfinished (not recorded), to be done when the run is resumed with a larger budget."""
