"""Kernels on a Jupyter gateway: Jupyter Server, Kernel Gateway or Enterprise Gateway, which all speak
the same REST + WebSocket kernel API. The engine is jupyter_server's gateway client
(``GatewayKernelManager`` for REST, ``gateway_request``; the WebSocket client in gateway_channels.py).

``GatewayKernel`` is the kernel target (see targets.py) that ``KernelBridge.open`` connects to, so a
gateway kernel is a bridge like any other. Errors say what went wrong in the user's terms (refused
token, unreachable host, TLS, kernel culled, gateway restarted) and never contain the token: every
message made from a caught exception passes ``GatewayConfig.redact``.

jupyter_server keeps its gateway settings in one process-wide ``GatewayClient``; ``_call`` points it at
the right gateway before each request, so kernels of several gateways can be open at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import socket
import ssl
import time
from typing import Any, Awaitable, TypeVar

import websocket
from jupyter_client import AsyncKernelClient
from jupyter_server.gateway.gateway_client import GatewayClient, gateway_request
from jupyter_server.gateway.managers import GatewayKernelManager
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import TraitError

from .errors import GatewayAuthError, GatewayError, KernelError
from .gateway_channels import TokenGatewayKernelClient
from .gateway_config import GatewayConfig

CONNECT_TIMEOUT_S = 10.0  # an editor waits on it; JUPYTER_GATEWAY_CONNECT_TIMEOUT overrides
CLOSE_TIMEOUT_S = 15.0
CHECK_EVERY_S = 3.0  # how often an open kernel is looked up on the gateway (a culled one keeps its WebSocket)
T = TypeVar("T")


def _use(config: GatewayConfig) -> GatewayClient:
    """jupyter_server's process-wide ``GatewayClient`` pointed at ``config``'s gateway.

    Every request of ours goes through ``_call``, which points it first: a request reads the URL and
    token synchronously when it starts, so kernels of several gateways (or tokens) can be open at once.
    """
    scheme = config.url.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise GatewayError(f"the gateway URL {config.shown_url} must start with http:// or https://.")
    if not GatewayClient.initialized():
        GatewayClient.instance(
            connect_timeout=float(os.environ.get("JUPYTER_GATEWAY_CONNECT_TIMEOUT") or CONNECT_TIMEOUT_S))
    gateway = GatewayClient.instance()
    if gateway.url != config.url or gateway.auth_token != config.token:
        try:
            gateway.url = config.url
            gateway.ws_url = os.environ.get("JUPYTER_GATEWAY_WS_URL") or "ws" + config.url[4:]
            gateway.auth_token = config.token
        except TraitError:
            raise GatewayError(f"the gateway URL {config.shown_url} is not valid.") from None
    return gateway


async def _call(config: GatewayConfig, what: str, call: Awaitable[T], kernel_id: str | None = None) -> T:
    """``await call`` (a request not started yet) on ``config``'s gateway; its failures as a ``GatewayError``
    that says ``what`` failed and why."""
    try:
        _use(config)
    except KernelError:
        if inspect.iscoroutine(call):
            call.close()  # never started
        raise
    try:
        return await call
    except KernelError:
        raise
    except Exception as e:  # noqa: BLE001 - translated into one message; the token never in it
        raise gateway_error(config, what, e, kernel_id) from None


def gateway_error(config: GatewayConfig, what: str, error: BaseException, kernel_id: str | None = None) -> GatewayError:
    """The message for a failed gateway request (REST or WebSocket)."""
    where = config.where
    code = getattr(error, "status_code", None)  # tornado.web.HTTPError, websocket's bad handshake
    cause = error.__cause__ or error.__context__
    if code == 401:
        return GatewayAuthError(config.redact(
            f"{what}: {where} refused the token (HTTP 401 Unauthorized). "
            "Set tlens.kernel.gateway.token or JUPYTER_GATEWAY_AUTH_TOKEN to the gateway's token."))
    if code == 403:  # Jupyter Server's answer to a wrong token; Kernel Gateway's to a request it does not allow
        return GatewayAuthError(config.redact(
            f"{what}: {where} refused the token or the request (HTTP 403 Forbidden). Check tlens.kernel.gateway.token "
            "or JUPYTER_GATEWAY_AUTH_TOKEN (a Kernel Gateway lists kernels only when started with "
            "--JupyterWebsocketPersonality.list_kernels=True, and may cap the number of kernels)."))
    tls = next((e for e in (error, cause) if isinstance(e, ssl.SSLError)), None)
    if tls is not None or "TLS" in _short(error) or "SSL" in _short(error):
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or _short(error)
        return GatewayError(config.redact(
            f"{what}: TLS error talking to {where} ({reason}). For a self-signed certificate set "
            "JUPYTER_GATEWAY_CA_CERTS to its CA file; check that the URL's scheme (http/https) is the gateway's."))
    if isinstance(cause, socket.gaierror) or isinstance(error, socket.gaierror):
        return GatewayError(config.redact(f"{what}: the host of {where} is unknown (DNS lookup failed). Check the URL."))
    if code == 404 and kernel_id is not None:
        return GatewayError(config.redact(
            f"{what}: there is no kernel {kernel_id} on {where}; it was culled (idle timeout) or shut down."))
    no_answer = code is None and isinstance(error, (OSError, websocket.WebSocketException))
    if no_answer or code in (503, 599) or isinstance(cause, OSError):
        return GatewayError(config.redact(
            f"{what}: cannot reach {where} ({_short(error)}). Check the URL (tlens.kernel.gateway.url or "
            "JUPYTER_GATEWAY_URL) and that the gateway is running."))
    return GatewayError(config.redact(f"{what}: {where} answered {_short(error)}."))


def _short(error: BaseException) -> str:
    cause = error.__cause__
    if isinstance(error, web.HTTPError) and isinstance(cause, OSError) and not isinstance(cause, ssl.SSLError):
        return cause.strerror or type(cause).__name__  # "Connection refused"
    if isinstance(error, web.HTTPError):
        text = error.log_message % error.args if error.log_message and error.args else (error.log_message or "")
        return f"HTTP {error.status_code}: {text.split('. Ensure')[0]}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def list_kernels(config: GatewayConfig) -> list[dict[str, Any]]:
    """The kernels running on the gateway: ``[{id, name, executionState, lastActivity, connections}]``.

    Raises:
        GatewayError: unreachable; ``GatewayAuthError`` for a refused token, or listing disabled (a Kernel
            Gateway lists kernels only with ``--JupyterWebsocketPersonality.list_kernels=True``: HTTP 403).
    """
    gateway = _use(config)
    url = url_path_join(gateway.url, gateway.kernels_endpoint)
    response = await _call(config, "could not list the gateway's kernels", gateway_request(url, method="GET"))
    return [{"id": k["id"], "name": k.get("name"), "executionState": k.get("execution_state"),
             "lastActivity": k.get("last_activity"), "connections": k.get("connections")}
            for k in json.loads(response.body)]


async def default_kernel_name(config: GatewayConfig) -> str:
    """The kernelspec the gateway starts by default (``python3`` if it does not say)."""
    gateway = _use(config)
    url = url_path_join(gateway.url, gateway.kernelspecs_endpoint)
    response = await _call(config, "could not read the gateway's kernel specs", gateway_request(url, method="GET"))
    return json.loads(response.body).get("default") or "python3"


class GatewayKernel:
    """A kernel on a Jupyter gateway: started by us (ours to restart and stop) or attached by id."""

    connection_file = None

    def __init__(self, config: GatewayConfig, km: GatewayKernelManager, owned: bool) -> None:
        self.config, self.km, self.owned = config, km, owned
        self.gateway = config.shown_url
        self.kernel_id: str = km.kernel_id
        self._why_dead: str | None = None
        self._next_check = time.monotonic() + CHECK_EVERY_S

    @classmethod
    async def start(cls, config: GatewayConfig, kernel_name: str | None = None) -> "GatewayKernel":
        """Start a kernel on the gateway (its default kernelspec unless ``kernel_name``)."""
        name = kernel_name or await default_kernel_name(config)
        _use(config)  # the manager reads the gateway's URL when made
        km = GatewayKernelManager()
        await _call(config, "could not start a kernel on the gateway", km.start_kernel(kernel_name=name))
        return cls(config, km, owned=True)

    @classmethod
    async def attach(cls, config: GatewayConfig, kernel_id: str) -> "GatewayKernel":
        """The running kernel ``kernel_id`` of the gateway; never ours to stop."""
        _use(config)  # the manager reads the gateway's URL when made
        km = GatewayKernelManager()
        await _call(config, f"could not attach to kernel {kernel_id}", km.start_kernel(kernel_id=kernel_id), kernel_id)
        if km.kernel is None:
            raise GatewayError(config.redact(
                f"there is no kernel {kernel_id} on {config.where}; list the running kernels to pick one."))
        return cls(config, km, owned=False)

    async def connect(self) -> AsyncKernelClient:
        self.km.client_factory = TokenGatewayKernelClient
        kc = self.km.client()
        await _call(self.config, f"could not connect to kernel {self.kernel_id}", kc.start_channels(), self.kernel_id)
        return kc

    async def exited(self) -> bool:
        return False

    async def alive(self, kc: AsyncKernelClient) -> bool:
        """False when the WebSocket closed, or when the gateway no longer lists the kernel (a gateway
        keeps the WebSocket of a kernel it culled or shut down open); asked every ``CHECK_EVERY_S``,
        and at every poll once the kernel announced its shutdown."""
        connected = getattr(kc, "connected", True)
        if connected and not getattr(kc, "shutting_down", False) and time.monotonic() < self._next_check:
            return True
        self._next_check = time.monotonic() + CHECK_EVERY_S
        try:
            model = await asyncio.wait_for(_call(self.config, "", self.km.refresh_model()), CONNECT_TIMEOUT_S)
        except (KernelError, asyncio.TimeoutError):  # the gateway does not answer
            if connected:
                return True  # a slow or briefly unreachable gateway: the connection decides
            self._why_dead = (
                f"lost the connection to {self.config.where}, which does not answer: it was "
                "stopped or restarted, or the network is down. Kernels do not survive a gateway restart: "
                "start a new kernel, or attach again when the gateway is back.")
            return False
        if model is None:
            self._why_dead = (f"kernel {self.kernel_id} is gone from {self.config.where}: it was culled (the "
                              "gateway's idle timeout) or shut down. Start a new kernel to continue.")
            return False
        if not connected:
            self._why_dead = (f"the gateway closed the connection to kernel {self.kernel_id}, which is still "
                              "running there; attach to it again.")
        return connected

    def death_message(self) -> str:
        return self._why_dead or f"lost the connection to kernel {self.kernel_id} on {self.config.where}."

    def not_responding(self, timeout: float) -> str:
        return (f"kernel {self.kernel_id} on {self.config.where} did not reply within {timeout:.0f} s; it may "
                "still be starting (remote kernels can take longer) or have died.")

    def start_failed(self, error: BaseException) -> BaseException:
        return error

    async def interrupt(self, kc: AsyncKernelClient) -> None:
        await _call(self.config, "could not interrupt the kernel", self.km.interrupt_kernel(), self.kernel_id)

    async def restart(self) -> None:
        if not self.owned:
            raise KernelError(f"cannot restart kernel {self.kernel_id}: this server did not start it; restart it "
                              "where it was started.")
        await _call(self.config, "could not restart the kernel", self.km.restart_kernel(), self.kernel_id)

    async def disconnect(self, kc: AsyncKernelClient) -> None:
        await asyncio.to_thread(kc.stop_channels)  # closing the WebSocket waits for the gateway's answer

    async def close(self, dead: bool) -> None:
        if self.owned:  # a kernel already gone is known to the manager (no request then)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_call(self.config, "", self.km.shutdown_kernel(now=True)), CLOSE_TIMEOUT_S)
