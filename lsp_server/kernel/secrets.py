"""Secrets the server holds (kernel HMAC keys; a gateway token would be one too): remembered when read, and
masked in everything the server writes — every LSP message (so the editor's trace, shown and logged
messages, command answers) and its own log. The messages the server composes never quote a key; masking
keeps that true for the text it does not compose (a library's exception, a traceback).
"""

from __future__ import annotations

import logging
from typing import Any

MIN_LENGTH = 8  # shorter values are no secrets, and masking them would mangle ordinary text

_secrets: set[bytes] = set()


def remember(secret: str | bytes | None) -> None:
    """Mask ``secret`` from now on (a kernel key, as a connection file or a kernel manager holds it)."""
    value = secret.encode("utf-8") if isinstance(secret, str) else secret
    if value and len(value) >= MIN_LENGTH:
        _secrets.add(value)


def mask(data: bytes) -> bytes:
    """``data`` with each remembered secret replaced by as many ``*``: lengths stay, and so do the
    Content-Length headers of the LSP messages being written."""
    for secret in tuple(_secrets):  # a copy: a kernel attached on another thread may add one
        if secret in data:
            data = data.replace(secret, b"*" * len(secret))
    return data


def mask_text(text: str) -> str:
    if not _secrets:
        return text
    return mask(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")


class MaskingWriter:
    """A pygls writer (stdout) that masks secrets in every message before it leaves the server."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def write(self, data: bytes) -> Any:
        return self.inner.write(mask(data))

    def close(self) -> Any:
        return self.inner.close()


class MaskingFormatter(logging.Formatter):
    """Log lines (tracebacks included) with secrets masked: the server's log is the editor's output channel."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))
