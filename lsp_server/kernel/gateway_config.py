"""Which Jupyter gateway to use and its token: from the settings or flags, else jupyter_server's variables.

Light on purpose (no jupyter_server import): the server reads it on every start of a kernel.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import secrets

URL_ENV, TOKEN_ENV = "JUPYTER_GATEWAY_URL", "JUPYTER_GATEWAY_AUTH_TOKEN"  # jupyter_server's own variables


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway is and the token it wants (never shown: ``repr`` and messages leave it out)."""

    url: str = field(repr=False)  # may hold a user, password or ?token=
    token: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"GatewayConfig({self.shown_url!r})"

    @classmethod
    def resolve(cls, url: str | None = None, token: str | None = None) -> "GatewayConfig | None":
        """The gateway of the settings or flags, else of ``JUPYTER_GATEWAY_URL`` / ``_AUTH_TOKEN``; None if none.

        A ``?token=`` in the URL (as Jupyter prints it) becomes the token and leaves the URL, which
        jupyter_server puts in its log lines.
        """
        url = (url or os.environ.get(URL_ENV) or "").strip()
        if not url:
            return None
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        in_url = next((v for k, v in query if k == "token"), "")
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), rest, parts.fragment))
        config = cls(url, token or os.environ.get(TOKEN_ENV) or in_url)
        secrets.remember(config.token)  # masked in everything the server writes, as kernel keys are
        return config

    @property
    def shown_url(self) -> str:
        """The URL without user, password, query or fragment: what messages and the status show."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        with contextlib.suppress(ValueError):
            netloc += f":{parts.port}" if parts.port else ""
        shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return shown.replace(self.token, "***") if self.token else shown

    def redact(self, text: str) -> str:
        """``text`` without the token, and with the URL as ``shown_url`` shows it."""
        text = text.replace(self.url, self.shown_url)
        return text.replace(self.token, "***") if self.token else text

    @property
    def where(self) -> str:
        return f"the Jupyter gateway at {self.shown_url}"
