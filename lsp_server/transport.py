"""The JSON-RPC protocol object of the server: pygls's, with routine cancels kept quiet and secrets
(kernel keys) masked in every message it writes (``kernel/secrets.py``)."""

from __future__ import annotations

import logging
from typing import Any

from pygls.protocol import LanguageServerProtocol

from .kernel.secrets import MaskingWriter

log = logging.getLogger(__name__)


class TlensProtocol(LanguageServerProtocol):
    def _handle_cancel_notification(self, msg_id):
        """A cancel for a request that already finished is routine (editors cancel hovers and code
        actions as the cursor moves): no warning in the user's output channel."""
        if msg_id not in self._request_futures:
            log.debug("cancel for request %s, which already finished", msg_id)
            return
        super()._handle_cancel_notification(msg_id)

    def set_writer(self, writer: Any, include_headers: bool = True) -> None:
        super().set_writer(MaskingWriter(writer), include_headers)
