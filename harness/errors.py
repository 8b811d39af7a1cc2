"""The harness's exception types, in one module every layer may import."""
from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad file, unknown name, missing dependency); printed without traceback."""


class BackendError(Exception):
    """A generation failed for good (after retries, or a permanent client error)."""

    def __init__(self, message: str, *, retries: list[str] | None = None, permanent: bool = True):
        super().__init__(message)
        self.retries = retries or []
        self.permanent = permanent


class GenerationFailed(Exception):
    """A model call of a sample failed for good; the sample's record carries the error."""
