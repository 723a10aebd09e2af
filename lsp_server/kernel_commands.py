"""The server's kernel: attach, start, interrupt and status commands, and the ``tlens/kernelStatus``
notification. Patch sweeps (``sweeps/lsp.py``) and live introspection (``live.py``) use this kernel.
With ``tlens.kernel.gateway.url`` (or ``$JUPYTER_GATEWAY_URL``) set, kernels start on that Jupyter
gateway and ``tlens.listGatewayKernels`` / ``attachKernel {kernelId}`` reach its running ones.

The commands, notifications and payloads are declared in :mod:`lsp_server.protocol`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from lsprotocol import types
from pygls.uris import to_fs_path

from .handlers import command, handles
from .kernel.errors import KernelError
from .kernel.gateway_config import GatewayConfig
from .kernel.holder import KernelHolder, connection_file_candidates
from .knowledge import versions
from .protocol import NOTIFICATIONS, Progress

if TYPE_CHECKING:
    from .server import TlensServer


class KernelService:
    """The one kernel of the server, and how its state reaches the editor."""

    def __init__(self, ls: "TlensServer"):
        self.ls = ls
        self.holder = KernelHolder(on_state=self._state_changed, configured_gateway=self.gateway_config)
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

    async def attach(self, connection_file: str | None, kernel_id: str | None = None) -> dict:
        if kernel_id:
            await self.holder.attach_gateway(kernel_id)
            return await self._attached(f"kernel {kernel_id} on {self.holder.gateway.where}")
        path = connection_file or self.ls.settings.kernel.connection_file
        if not path:
            candidates = connection_file_candidates()
            if not candidates:
                raise KernelError("no connection file given and none found in the Jupyter runtime directory. "
                                  "Run `import ipykernel; print(ipykernel.get_connection_file())` in your notebook "
                                  "and attach that file.")
            path = candidates[0]
        await self.holder.attach(path)
        return await self._attached(path)

    async def _attached(self, what: str) -> dict:
        env = await self.holder.bridge.probe()
        self.message(f"attached to {what}: Python {env.python}, torch {env.torch} ({env.device}), "
                     f"transformer_lens {env.transformer_lens}")
        self.notify_status()
        return self.holder.status()

    async def gateway_kernels(self) -> dict:
        """The gateway's running kernels for the attach picker; a failure is answered, logged, not shown."""
        gateway = self.gateway_config()
        if gateway is None:
            return {"gateway": None, "kernels": []}
        try:
            return {"gateway": gateway.shown_url, "kernels": await self.holder.gateway_kernels()}
        except KernelError as e:
            self.ls.window_log_message(types.LogMessageParams(type=types.MessageType.Warning, message=f"tlens: {e}"))
            return {"gateway": gateway.shown_url, "kernels": [], "error": str(e)}

    def gateway_config(self) -> GatewayConfig | None:
        """The gateway of the settings (else of ``$JUPYTER_GATEWAY_URL``): kernels start there."""
        setting = self.ls.settings.kernel.gateway
        return GatewayConfig.resolve(setting.url, setting.token)

    async def start(self, interpreter: str | None) -> dict:
        await self.holder.start(interpreter or self.interpreter(), self.workspace_root(None))
        self.notify_status()
        return self.holder.status()

    def interpreter(self) -> str | None:
        """The interpreter a kernel we start runs (settings), else this server's."""
        return self.ls.settings.kernel_python

    async def interpreter_tl_version(self) -> versions.TLVersion | None:
        """The TransformerLens of the interpreter the settings name for kernels (it may not be the server's),
        asked in a subprocess; never in an untrusted workspace, where that interpreter may be its program."""
        python = self.interpreter()
        if not python or not self.ls.trusted:
            return None
        return await asyncio.to_thread(versions.in_interpreter, python)

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
        return await service.failing("could not attach the kernel",
                                     service.attach(args.get("connectionFile"), args.get("kernelId")))

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

    @command(server, "tlens.listGatewayKernels")
    async def list_gateway_kernels(ls, args: dict) -> dict:
        return await service.gateway_kernels()

    @handles(server, types.SHUTDOWN)
    async def shutdown(ls, params: None) -> None:
        for close in service.also_close:
            await close()
        await service.holder.close()
