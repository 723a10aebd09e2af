"""The kernel channels of a gateway kernel: jupyter_server's ``GatewayKernelClient``, with three fixes.

``GatewayKernelClient`` (jupyter_server 2.x) multiplexes the five channels over the gateway's
``/api/kernels/{id}/channels`` WebSocket and routes replies into one queue per channel. As shipped it
(1) opens the WebSocket without the ``Authorization`` header, so a gateway with a token answers 401;
(2) opens it with a blocking call on the event loop, which would freeze the language server while a
slow or unreachable gateway times out; (3) waits for messages by polling its queues with
``asyncio.sleep(0)``, a busy loop that keeps a core at 100 % while a kernel is attached.

This subclass connects with the same headers and TLS options as the REST calls (from
``GatewayClient.load_connection_args``), in a thread, and polls with short sleeps. A queue whose
WebSocket closed answers like a silent one (``Empty`` after the timeout); telling a culled kernel
from a restarted gateway is ``gateway.GatewayKernel``'s job.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from queue import Empty
from typing import Any

import websocket
from jupyter_client.client import KernelClient
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import ChannelQueue, GatewayKernelClient
from jupyter_server.utils import url_path_join
from tornado.escape import url_escape

POLL_FIRST_S, POLL_MAX_S = 0.001, 0.02  # a reply that is already there costs ~1 ms; an idle wait 50 wakeups/s


class TokenGatewayKernelClient(GatewayKernelClient):
    """``GatewayKernelClient`` that authenticates its WebSocket and waits politely."""

    shutting_down = False  # the kernel announced its shutdown (culled, or shut down by someone)

    async def start_channels(self, shell=True, iopub=True, stdin=True, hb=True, control=True) -> None:
        gateway = GatewayClient.instance()
        ws_url = url_path_join(gateway.ws_url or "", gateway.kernels_endpoint, url_escape(self.kernel_id), "channels")
        headers = gateway.load_connection_args().get("headers", {})
        sslopt: dict[str, Any] = {"ca_certs": gateway.ca_certs, "certfile": gateway.client_cert,
                                  "keyfile": gateway.client_key}
        if not gateway.validate_cert:
            sslopt["cert_reqs"] = ssl.CERT_NONE
        self.channel_socket = await asyncio.to_thread(
            websocket.create_connection, ws_url, header=headers,
            timeout=gateway.connect_timeout, enable_multithread=True, sslopt=sslopt)
        # The connect timeout must not become a read timeout: an idle kernel sends nothing for minutes.
        self.channel_socket.settimeout(None)
        KernelClient.start_channels(self, shell=shell, iopub=iopub, stdin=stdin, hb=hb, control=control)
        self.response_router = threading.Thread(target=self._route_responses, name="tlens-gateway-ws", daemon=True)
        self.response_router.start()

    @property
    def connected(self) -> bool:
        """False once the WebSocket closed (the kernel was culled or shut down, or the gateway went away)."""
        return self.response_router is not None and self.response_router.is_alive()

    async def _wait(self, queue: ChannelQueue, timeout: float | None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = POLL_FIRST_S
        while True:
            try:
                msg = queue.get(block=False)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, POLL_MAX_S)
            else:
                queue.task_done()
                return msg

    async def get_shell_msg(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        return await self._wait(self.shell_channel, timeout)

    async def get_iopub_msg(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        msg = await self._wait(self.iopub_channel, timeout)
        if msg.get("msg_type") == "shutdown_reply" and not msg.get("content", {}).get("restart"):
            self.shutting_down = True  # ipykernel tells every client; the gateway keeps the WebSocket open
        return msg

    async def get_control_msg(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        return await self._wait(self.control_channel, timeout)
