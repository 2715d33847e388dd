"""Secrets (Tiled API keys) never printed: redact them from URIs, messages and logs."""

from __future__ import annotations

import logging
import re
import threading

_MASK = "***"
_QUERY_KEY = re.compile(r"(?i)((?:api[_-]?key|token|password)=)[^&\s'\"]+")
_USERINFO = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret (an API key) so that :func:`redact` hides it wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: object) -> str:
    """``str(text)`` with API keys, passwords and registered secrets replaced by ``***``.

    Examples
    --------
    >>> redact("http://tiled:8000/api/v1?api_key=secret&x=1")
    'http://tiled:8000/api/v1?api_key=***&x=1'
    >>> redact("https://user:pass@host/")
    'https://user:***@host/'
    """
    out = _USERINFO.sub(rf"\1{_MASK}@", _QUERY_KEY.sub(rf"\1{_MASK}", str(text)))
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        out = out.replace(secret, _MASK)
    return out


class RedactingFormatter(logging.Formatter):
    """A log formatter whose output (message, arguments, traceback) goes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        """Format the record, then redact it."""
        return redact(super().format(record))
