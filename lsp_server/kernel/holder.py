"""The one kernel a language server (or a CLI run) talks to: attached, or started by us.

Shared by patch sweeps (``lsp_server.sweeps``) and live introspection (``lsp_server.live``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

from .bridge import KernelBridge
from .connection import list_connection_files

Log = Callable[[str], None]
StateCallback = Callable[[str], None]


@dataclass
class KernelHolder:
    """A kernel bridge that is replaced as the user attaches or starts another kernel."""

    on_state: StateCallback | None = None
    bridge: KernelBridge | None = None
    setups_run: set[str] = field(default_factory=set)  # the setup codes a sweep ran in this kernel
    last_error: str | None = None

    @property
    def state(self) -> str:
        return self.bridge.state if self.bridge is not None else "none"

    def status(self) -> dict:
        b = self.bridge
        return {
            "state": self.state,
            "connectionFile": b.connection_file if b is not None else None,
            "owned": b.owned if b is not None else False,
            "detail": self.last_error,
        }

    def _notify(self, state: str) -> None:
        if self.on_state is not None:
            self.on_state(state)

    async def attach(self, connection_file: str) -> None:
        await self.close()
        self.bridge = await KernelBridge.attach(connection_file, on_state=self._notify)
        self.setups_run.clear()

    async def start(self, interpreter: str | None, cwd: str | None) -> None:
        await self.close()
        self.bridge = await KernelBridge.start(interpreter or sys.executable, cwd, on_state=self._notify)
        self.setups_run.clear()

    async def ensure(self, interpreter: str | None, cwd: str | None, log: Log) -> bool:
        """A usable kernel; start one if none is attached. Returns True if it was just started."""
        if self.bridge is not None and self.bridge.state != "dead":
            return False
        if self.bridge is not None:
            log("the kernel died; starting a new one")
        log(f"no kernel attached: starting one with {interpreter or sys.executable}")
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


def connection_file_candidates() -> list[str]:
    """Connection files of the kernels running on this machine, newest first."""
    return [str(p) for p in list_connection_files()]
