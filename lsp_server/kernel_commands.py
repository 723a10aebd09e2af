"""The server's kernel: attach, start, interrupt and status commands, and the ``tlens/kernelStatus``
notification. Patch sweeps (``sweeps/lsp.py``) and live introspection (``live.py``) use this kernel.

The commands, notifications and payloads are declared in :mod:`lsp_server.protocol`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from lsprotocol import types
from pygls.uris import to_fs_path

from .handlers import command, handles
from .kernel.errors import KernelError
from .kernel.holder import KernelHolder, connection_file_candidates
from .protocol import NOTIFICATIONS, Progress

if TYPE_CHECKING:
    from .server import TlensServer


class KernelService:
    """The one kernel of the server, and how its state reaches the editor."""

    def __init__(self, ls: "TlensServer"):
        self.ls = ls
        self.holder = KernelHolder(on_state=self._state_changed)
        self.progress: Progress | None = None  # of the sweep running, sent with every status
        self.also_close: list[Callable[[], Awaitable[None]]] = []  # other kernels that stop with it (sweeps')

    # -- notifications

    def _state_changed(self, state: str) -> None:
        self.notify_status()

    def notify_status(self, detail: str | None = None) -> None:
        status = self.holder.status()
        if detail is not None:
            status["detail"] = detail
        if self.progress is not None:
            status["progress"] = self.progress
        self.ls.protocol.notify(NOTIFICATIONS["kernelStatus"], status)

    def message(self, text: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.ls.window_log_message(types.LogMessageParams(type=kind, message=f"tlens: {text}"))
        self.ls.window_show_message(types.ShowMessageParams(type=kind, message=f"tlens: {text}"))

    async def failing(self, what: str, work: Awaitable[Any]) -> Any:
        """``work``'s answer; a kernel (or sweep) error is shown and answered ``{error}``."""
        try:
            return await work
        except (KernelError, OSError) as e:
            self.message(f"{what}: {e}", types.MessageType.Error)
            self.notify_status(detail=str(e))
            return {"error": str(e)}

    # -- commands

    async def attach(self, connection_file: str | None) -> dict:
        path = connection_file or self.ls.settings.kernel.connection_file
        if not path:
            candidates = connection_file_candidates()
            if not candidates:
                raise KernelError("no connection file given and none found in the Jupyter runtime directory. "
                                  "Run `import ipykernel; print(ipykernel.get_connection_file())` in your notebook "
                                  "and attach that file.")
            path = candidates[0]
        await self.holder.attach(path)
        env = await self.holder.bridge.probe()
        self.message(f"attached to {path}: Python {env.python}, torch {env.torch} ({env.device}), "
                     f"transformer_lens {env.transformer_lens}")
        self.notify_status()
        return self.holder.status()

    async def start(self, interpreter: str | None) -> dict:
        await self.holder.start(interpreter or self.interpreter(), self.workspace_root(None))
        self.notify_status()
        return self.holder.status()

    def interpreter(self) -> str | None:
        """The interpreter a kernel we start runs (settings), else this server's."""
        return self.ls.settings.kernel_python

    def workspace_root(self, uri: str | None) -> str:
        """Where a started kernel runs and sweep results are saved."""
        root = self.ls.workspace.root_path
        if root:
            return root
        if uri and (path := to_fs_path(uri)):
            return str(Path(path).parent)
        return str(Path.cwd())


def register(server: "TlensServer") -> None:
    """Register the kernel commands on ``server``; its kernel is shut down with it."""
    service = server.kernel

    @command(server, "tlens.attachKernel")
    async def attach_kernel(ls, args: dict) -> Any:
        return await service.failing("could not attach the kernel", service.attach(args.get("connectionFile")))

    @command(server, "tlens.startKernel")
    async def start_kernel(ls, args: dict) -> Any:
        return await service.failing("could not start a kernel", service.start(args.get("interpreter")))

    @command(server, "tlens.interruptKernel")
    async def interrupt_kernel(ls, args: dict) -> Any:
        return await service.failing("could not interrupt the kernel", service.holder.interrupt())

    @command(server, "tlens.kernelStatus")
    def kernel_status(ls, args: dict) -> dict:
        return service.holder.status()

    @command(server, "tlens.listConnectionFiles", default=[])
    def list_files(ls, args: dict) -> list[str]:
        return connection_file_candidates()

    @handles(server, types.SHUTDOWN)
    async def shutdown(ls, params: None) -> None:
        for close in service.also_close:
            await close()
        await service.holder.close()
