"""Errors of a patch sweep; both are kernel errors (a caller that shows any ``KernelError`` shows these).

Every message says what happened and how to fix it; the editor shows ``str(error)``.
"""

from __future__ import annotations

from ..kernel.errors import KernelError


class SweepError(KernelError):
    """A sweep could not run (its message comes from the payload or the bridge)."""

    def __init__(self, message: str, code: str = "error", details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.details = details or {}


class SweepCancelled(KernelError):
    """The sweep was cancelled before any cell finished."""
