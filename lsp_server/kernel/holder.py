"""The one kernel a language server (or a CLI run) talks to: attached, or started by us, on this machine
or on a Jupyter gateway.

Shared by patch sweeps (``lsp_server.sweeps``) and live introspection (``lsp_server.live``). With a
``gateway`` set, the kernels it starts run there; a gateway kernel is a ``KernelBridge`` like any other.
jupyter_server (the gateway client) is imported only when a gateway is used: it takes ~1.5 s.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable

from .bridge import KernelBridge
from .connection import list_connection_files
from .errors import KernelError

if TYPE_CHECKING:
    from .gateway_config import GatewayConfig

Log = Callable[[str], None]
StateCallback = Callable[[str], None]
GATEWAY_TIMEOUT_S = 120.0  # a remote kernel's first answer (a cluster may schedule it first)


@dataclass
class KernelHolder:
    """A kernel bridge that is replaced as the user attaches or starts another kernel."""

    on_state: StateCallback | None = None
    bridge: KernelBridge | None = None
    setups_run: set[str] = field(default_factory=set)  # the setup codes a sweep ran in this kernel
    last_error: str | None = None
    # Where the kernels it starts run (None: this machine); asked at each start, as settings change.
    configured_gateway: "Callable[[], GatewayConfig | None]" = lambda: None

    @property
    def gateway(self) -> "GatewayConfig | None":
        return self.configured_gateway()

    @property
    def state(self) -> str:
        return self.bridge.state if self.bridge is not None else "none"

    def status(self) -> dict:
        b = self.bridge
        return {
            "state": self.state,
            "connectionFile": b.connection_file if b is not None else None,
            "owned": b.owned if b is not None else False,
            "gateway": b.gateway if b is not None else None,
            "kernelId": b.kernel_id if b is not None else None,
            "detail": self.last_error,
        }

    def _notify(self, state: str) -> None:
        if self.on_state is not None:
            self.on_state(state)

    async def attach(self, connection_file: str) -> None:
        await self._replace(attach_bridge(connection_file, None, None, self._notify))

    async def attach_gateway(self, kernel_id: str) -> None:
        """Attach to the running kernel ``kernel_id`` of the gateway."""
        await self.close()
        await self._replace(attach_bridge(None, kernel_id, self._gateway_config(), self._notify))

    async def start(self, interpreter: str | None, cwd: str | None) -> None:
        """Start a kernel: on the gateway if one is set, else on ``interpreter`` here."""
        gateway = self.gateway
        if gateway is not None:
            from .gateway import GatewayKernel

            await self.close()
            target = await GatewayKernel.start(gateway)
            await self._replace(KernelBridge.open(target, timeout=GATEWAY_TIMEOUT_S, on_state=self._notify))
            return
        await self._replace(KernelBridge.start(interpreter or sys.executable, cwd, on_state=self._notify))

    async def _replace(self, opening: Awaitable[KernelBridge]) -> None:
        """Close the kernel held, then hold the one ``opening`` connects to."""
        await self.close()
        self.bridge = await opening
        self.setups_run.clear()

    def _gateway_config(self) -> "GatewayConfig":
        gateway = self.gateway
        if gateway is None:
            raise KernelError("no Jupyter gateway is set: set tlens.kernel.gateway.url (or JUPYTER_GATEWAY_URL) "
                              "to the gateway's URL.")
        return gateway

    def where_kernels_start(self, interpreter: str | None) -> str:
        """``on the Jupyter gateway at URL`` or ``with /path/python``, for messages."""
        gateway = self.gateway
        return f"on {gateway.where}" if gateway is not None else f"with {interpreter or sys.executable}"

    async def gateway_kernels(self) -> list[dict]:
        """The kernels running on the gateway (``gateway.list_kernels``)."""
        from .gateway import list_kernels

        return await list_kernels(self._gateway_config())

    async def ensure(self, interpreter: str | None, cwd: str | None, log: Log) -> bool:
        """A usable kernel; start one if none is attached. Returns True if it was just started."""
        if self.bridge is not None and self.bridge.state != "dead":
            return False
        if self.bridge is not None:
            log("the kernel died; starting a new one")
        log(f"no kernel attached: starting one {self.where_kernels_start(interpreter)}")
        await self.start(interpreter, cwd)
        return True

    async def interrupt(self) -> None:
        if self.bridge is not None:
            await self.bridge.interrupt()

    async def close(self) -> None:
        """Stop a kernel we started; disconnect from an attached one."""
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            await bridge.shutdown()
            self._notify("none")


async def attach_bridge(connection_file: str | None, kernel_id: str | None, gateway: "GatewayConfig | None",
                        on_state: StateCallback | None = None) -> KernelBridge:
    """A bridge to a running kernel: a local one by its connection file, or ``kernel_id`` on ``gateway``.

    Raises:
        KernelError: no such kernel, or it does not answer (GatewayError for the gateway's reasons).
    """
    if connection_file is not None:
        return await KernelBridge.attach(connection_file, on_state=on_state)
    from .gateway import GatewayKernel

    if gateway is None:
        raise KernelError(f"kernel {kernel_id} is on a Jupyter gateway, but none is set: set tlens.kernel.gateway.url "
                          "(or JUPYTER_GATEWAY_URL) to the gateway's URL.")
    target = await GatewayKernel.attach(gateway, kernel_id)
    return await KernelBridge.open(target, timeout=GATEWAY_TIMEOUT_S, on_state=on_state)


def connection_file_candidates() -> list[str]:
    """Connection files of the kernels running on this machine, newest first."""
    return [str(p) for p in list_connection_files()]
