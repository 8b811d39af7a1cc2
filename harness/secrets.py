"""Keep credentials out of messages, logs and reports."""
from __future__ import annotations

import os
import re

REDACTED = "[REDACTED]"
_SECRET_SUFFIXES = ("_KEY", "_TOKEN")  # covers *_API_KEY
_MIN_SECRET_LEN = 8
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-]{8,}")


_registered_names: set[str] = set()


def register_secret_env(name: str) -> None:
    """Treat the variable `name` as a credential too (e.g. the one named by --api-key-env)."""
    _registered_names.add(name)


def secret_values() -> list[str]:
    """Values of environment variables that look like or are registered as credentials, longest first."""
    values = {
        value
        for name, value in os.environ.items()
        if (name.upper().endswith(_SECRET_SUFFIXES) or name in _registered_names) and len(value) >= _MIN_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """Replace credential values from the environment and `sk-...` style keys with [REDACTED]."""
    for value in secret_values():
        text = text.replace(value, REDACTED)
    return _KEY_PATTERN.sub(REDACTED, text)


_SECRET_PARAM = re.compile(r"key|token|secret|password|sig", re.IGNORECASE)


def public_url(url: str | None) -> str | None:
    """`url` without credentials: user:password@ dropped, secret-looking query values and known keys
    replaced by [REDACTED] (for fingerprints, manifests and messages)."""
    if not url:
        return url
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = urlencode([(name, REDACTED if _SECRET_PARAM.search(name) else value)
                       for name, value in parse_qsl(parts.query, keep_blank_values=True)], safe="[]")
    return redact(urlunsplit((parts.scheme, host, parts.path, query, parts.fragment)))
