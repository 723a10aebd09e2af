"""Errors raised by the kernel bridge (a sweep's own are in ``lsp_server.sweeps.errors``).

Every message says what happened and how to fix it; the LSP layer shows ``str(error)``.
"""

from __future__ import annotations


class KernelError(Exception):
    """Base class for everything that goes wrong talking to a Jupyter kernel."""


class ConnectionFileError(KernelError):
    """The connection file is missing, unreadable, not JSON or lacks a key."""


class KernelStartError(KernelError):
    """A kernel could not be started for the requested interpreter."""


class KernelNotResponding(KernelError):
    """The kernel never answered (wrong HMAC key, dead kernel, or a firewall)."""


class KernelDiedError(KernelError):
    """The kernel process died (or its heartbeat stopped) while we were using it."""


class ExecuteTimeout(KernelError):
    """An execute request got no reply in time; the code may still be running."""


class KernelEnvironmentError(KernelError):
    """The kernel's interpreter lacks torch or transformer_lens."""


class PayloadError(KernelError):
    """The in-kernel payload reported an error (bad spec, missing variables, ...).

    Attributes:
        code: short machine-readable code, e.g. ``missing-variables``.
        details: extra data from the payload (e.g. ``{"names": [...]}``).
    """

    def __init__(self, message: str, code: str = "error", details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.details = details or {}


class GatewayError(KernelError):
    """A Jupyter gateway could not be reached, refused a request, or lost the kernel."""


class GatewayAuthError(GatewayError):
    """The gateway refused the token (HTTP 401 or 403)."""
