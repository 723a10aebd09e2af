"""Where a bridge's kernel lives, and what only that place knows: how to connect to it, tell that it
died and why, interrupt, restart and stop it.

``KernelBridge`` (bridge.py) does the rest the same way for every target: execute, busy/idle, the
payload. The targets here are the local ones: a kernel process we start (``OwnKernel``) and the
user's kernel found by its connection file (``AttachedKernel``); ``gateway.GatewayKernel`` is a
kernel on a Jupyter Server / Kernel Gateway / Enterprise Gateway.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from queue import Empty
from typing import Any, Protocol

from jupyter_client import AsyncKernelClient

from . import secrets
from .connection import load_connection_file
from .errors import KernelError, KernelStartError
from .launch import kernel_manager, resolve_interpreter, stderr_tail


class KernelTarget(Protocol):
    """What the bridge asks of the place its kernel lives."""

    owned: bool  # started by us: we may restart and stop it
    connection_file: str | None  # local kernels only
    gateway: str | None  # the gateway's URL (never with a token), gateway kernels only
    kernel_id: str | None  # the gateway's id of the kernel

    async def connect(self) -> AsyncKernelClient:
        """A client with its channels started."""

    async def exited(self) -> bool:
        """True when the kernel is known to be gone (a start-up wait stops at once)."""

    async def alive(self, kc: AsyncKernelClient) -> bool:
        """Polled every 0.5 s while the bridge is open; False marks the kernel dead."""

    def death_message(self) -> str: ...

    def not_responding(self, timeout: float) -> str:
        """Why a kernel that never answered ``kernel_info`` in ``timeout`` s may be silent."""

    def start_failed(self, error: BaseException) -> BaseException:
        """The error to raise when the first handshake failed with ``error``."""

    async def interrupt(self, kc: AsyncKernelClient) -> None: ...

    async def restart(self) -> None: ...

    async def disconnect(self, kc: AsyncKernelClient) -> None: ...

    async def close(self, dead: bool) -> None:
        """Stop the kernel if it is ours (``dead``: it is gone already); free what we hold."""


class _Heartbeat:
    """Several heartbeat misses in a row make a death: ipykernel answers from a C thread even while
    Python is busy, but a loaded machine can miss one."""

    def __init__(self, misses_allowed: int) -> None:
        self.misses_allowed = misses_allowed
        self.misses = 0

    def beating(self, kc: AsyncKernelClient) -> bool:
        self.misses = 0 if kc.hb_channel.is_beating() else self.misses + 1
        return self.misses < self.misses_allowed


class AttachedKernel(_Heartbeat):
    """The user's kernel (a notebook's), reached through its connection file; never ours to stop."""

    owned = False
    gateway = kernel_id = None

    def __init__(self, connection_file: str | os.PathLike) -> None:
        super().__init__(misses_allowed=3)
        self.connection_file = str(connection_file)
        self.info = load_connection_file(connection_file)

    async def connect(self) -> AsyncKernelClient:
        kc = AsyncKernelClient()
        kc.load_connection_info(self.info)
        kc.start_channels()
        return kc

    async def exited(self) -> bool:
        return False

    async def alive(self, kc: AsyncKernelClient) -> bool:
        return self.beating(kc)

    def death_message(self) -> str:
        return (
            f"the kernel stopped answering its heartbeat ({self.connection_file}); it died "
            "or was shut down. Restart it in the notebook and attach again."
        )

    def not_responding(self, timeout: float) -> str:
        return (
            f"kernel did not reply within {timeout:.0f} s ({self.connection_file}): wrong "
            "key or dead kernel. Check that the connection file belongs to a running "
            "kernel (ipykernel.get_connection_file() in the notebook)."
        )

    def start_failed(self, error: BaseException) -> BaseException:
        return error

    async def interrupt(self, kc: AsyncKernelClient) -> None:
        kc.control_channel.send(kc.session.msg("interrupt_request", {}))
        with contextlib.suppress(Empty):
            await kc.get_control_msg(timeout=2.0)  # interrupt_reply; keep the queue empty

    async def restart(self) -> None:
        raise KernelError("cannot restart a kernel this server did not start; restart it from the notebook.")

    async def disconnect(self, kc: AsyncKernelClient) -> None:
        kc.stop_channels()

    async def close(self, dead: bool) -> None:
        pass


class OwnKernel(_Heartbeat):
    """An ipykernel process we start on an interpreter of this machine; its output goes to a log
    that start-up errors quote."""

    owned = True
    gateway = kernel_id = None

    def __init__(self, interpreter: str | os.PathLike) -> None:
        super().__init__(misses_allowed=8)
        self.exe = resolve_interpreter(interpreter)
        self.km, self.spec_dir = kernel_manager(self.exe)
        self.connection_file = self.km.connection_file
        fd, self.stderr_path = tempfile.mkstemp(prefix="tlens-kernel-", suffix=".log")
        # The log stays open for the kernel's life: restart_kernel() relaunches with it.
        self.stderr_file: Any = os.fdopen(fd, "wb")

    async def launch(self, cwd: str | os.PathLike | None, env: dict[str, str] | None) -> None:
        kwargs: dict[str, Any] = {"stderr": self.stderr_file, "stdout": self.stderr_file}
        if cwd is not None:
            kwargs["cwd"] = str(cwd)
        if env is not None:
            kwargs["env"] = {**os.environ, **env}
        await self.km.start_kernel(**kwargs)
        secrets.remember(self.km.session.key)  # masked in everything the server writes

    async def connect(self) -> AsyncKernelClient:
        kc = self.km.client()
        kc.start_channels()
        return kc

    async def exited(self) -> bool:
        return not await self.km.is_alive()

    async def alive(self, kc: AsyncKernelClient) -> bool:
        return await self.km.is_alive() and self.beating(kc)

    def death_message(self) -> str:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = getattr(process, "returncode", None)
        how = ""
        if isinstance(code, int) and code < 0:
            how = f", killed by signal {-code}" + (" (out of memory?)" if code == -9 else "")
        elif isinstance(code, int):
            how = f", exit code {code}"
        return f"the kernel process exited{how}. Start a new kernel to continue."

    def not_responding(self, timeout: float) -> str:
        return f"kernel did not reply within {timeout:.0f} s ({self.connection_file})"

    def start_failed(self, error: BaseException) -> BaseException:
        if not isinstance(error, (KernelError, OSError)):
            return error
        detail = stderr_tail(self.stderr_path)
        return KernelStartError(
            f"could not start a kernel with {self.exe}: {error}"
            + (f"\nkernel output:\n{detail}" if detail else "")
            + f"\nIf ipykernel is missing, install it: {self.exe} -m pip install ipykernel"
        )

    async def interrupt(self, kc: AsyncKernelClient) -> None:
        await self.km.interrupt_kernel()

    async def restart(self) -> None:
        await self.km.restart_kernel(now=True)

    async def disconnect(self, kc: AsyncKernelClient) -> None:
        kc.stop_channels()

    async def close(self, dead: bool) -> None:
        with contextlib.suppress(Exception):
            await self.km.shutdown_kernel(now=dead)
        with contextlib.suppress(OSError):
            os.unlink(self.km.connection_file)
        shutil.rmtree(self.spec_dir, ignore_errors=True)
        if self.stderr_file is not None:
            self.stderr_file.close()
            self.stderr_file = None
        with contextlib.suppress(OSError):
            os.unlink(self.stderr_path)
