"""Keep credentials out of messages, logs and reports."""

from __future__ import annotations

import os
import re
import urllib.parse

REDACTED = "[REDACTED]"
_SECRET_SUFFIXES = ("_KEY", "_TOKEN")  # covers *_API_KEY
_MIN_SECRET_LEN = 8
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-]{8,}")
_URL_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


_registered_names: set[str] = set()
_registered_values: set[str] = set()


def register_secret_env(name: str) -> None:
    """Treat the variable `name` as a credential too (e.g. the one named by --api-key-env)."""
    _registered_names.add(name)


def public_url(url: str) -> str:
    """`url` without credentials: user:password@ and the query string (which may carry keys) are dropped."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number: leave it out
        port = None
    netloc = host + (f":{port}" if port is not None else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def register_secret_url(url: str | None) -> None:
    """Treat the userinfo and query values of an endpoint URL as credentials from now on."""
    if not url:
        return
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    candidates = [userinfo, parts.password, parts.query, *(value for _, value in urllib.parse.parse_qsl(parts.query))]
    _registered_values.update(c for c in candidates if c and len(c) >= _MIN_SECRET_LEN)


def secret_values() -> list[str]:
    """Values of environment variables that look like or are registered as credentials, longest first."""
    values = {
        value
        for name, value in os.environ.items()
        if (name.upper().endswith(_SECRET_SUFFIXES) or name in _registered_names) and len(value) >= _MIN_SECRET_LEN
    }
    return sorted(values | _registered_values, key=len, reverse=True)


def redact(text: str) -> str:
    """Replace credential values from the environment and from registered URLs, and `sk-...` style keys,
    with [REDACTED]."""
    for value in secret_values():
        text = text.replace(value, REDACTED)
    return _KEY_PATTERN.sub(REDACTED, text)


def redact_urls(text: str) -> str:
    """`text` with every URL in it reduced to its public form (see public_url), then redacted."""
    return redact(_URL_PATTERN.sub(lambda m: public_url(m.group(0)), text))
