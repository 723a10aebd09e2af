"""The kernel channels of a gateway kernel: jupyter_server's ``GatewayKernelClient``, with three fixes.

``GatewayKernelClient`` (jupyter_server 2.x) multiplexes the five channels over the gateway's
``/api/kernels/{id}/channels`` WebSocket and routes replies into one queue per channel (a thread
reads the WebSocket). As shipped it (1) opens the WebSocket without the ``Authorization`` header, so
a gateway with a token answers 401; (2) opens it with a blocking call on the event loop, which would
freeze the language server while a slow or unreachable gateway times out; (3) waits for messages by
polling its queues with ``asyncio.sleep(0)``, a busy loop that keeps a core at 100 % while a kernel
is attached.

This subclass connects with the same headers and TLS options as the REST calls (from
``GatewayClient.load_connection_args``), in a thread, and waits on an asyncio event that the reader
thread sets when it queues a message (no polling), and acknowledges what it reads at once. A
queue whose WebSocket closed answers like a silent one (``Empty`` after the timeout); telling a
culled kernel from a restarted gateway is ``gateway.GatewayKernel``'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
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



QUICKACK = getattr(socket, "TCP_QUICKACK", None)


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
        self._ack_at_once()
        KernelClient.start_channels(self, shell=shell, iopub=iopub, stdin=stdin, hb=hb, control=control)
        self._arrived = asyncio.Event()
        loop = asyncio.get_running_loop()
        for queue in self._channel_queues.values():
            self._wake_on_put(queue, loop)
        self.response_router = threading.Thread(target=self._route_responses, name="tlens-gateway-ws", daemon=True)
        self.response_router.start()

    @property
    def connected(self) -> bool:
        """False once the WebSocket closed (the kernel was culled or shut down, or the gateway went away)."""
        return self.response_router is not None and self.response_router.is_alive()

    def _wake_on_put(self, queue: ChannelQueue, loop: asyncio.AbstractEventLoop) -> None:
        """The reader thread's ``put_nowait`` on ``queue`` also wakes the waiters on the event loop."""
        put = queue.put_nowait

        def put_and_wake(msg: dict[str, Any]) -> None:
            put(msg)
            self._ack_at_once()
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(self._arrived.set)

        queue.put_nowait = put_and_wake  # type: ignore[method-assign]

    def _ack_at_once(self) -> None:
        """Gateways (tornado) write without TCP_NODELAY, so the frames of one reply wait for our ACK, which
        Linux delays by up to 40 ms: 48 ms per request instead of 6. Acknowledge at once (Linux only)."""
        if QUICKACK is not None and self.channel_socket is not None and self.channel_socket.sock is not None:
            with contextlib.suppress(OSError):
                self.channel_socket.sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)

    async def _wait(self, queue: ChannelQueue, timeout: float | None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Clear, then look: a message queued after the look sets the event again.
            self._arrived.clear()
            try:
                msg = queue.get(block=False)
            except Empty:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), left)
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
