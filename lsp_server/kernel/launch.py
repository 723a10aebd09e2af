"""Bringing a kernel up: the interpreter, the kernel manager of a kernel we start, the first handshake.

The kernel targets (targets.py) and ``KernelBridge`` use these; they hold no state.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING

from jupyter_client import AsyncKernelClient, AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager

from .errors import KernelNotResponding, KernelStartError

if TYPE_CHECKING:
    from .targets import KernelTarget

_KERNEL_NAME = "tlens-python"
# Kernels we start talk over Unix sockets: no TCP ports for editors to list and forward (VS Code's
# Ports view showed five per kernel) and none reachable from other users. Windows has no IPC transport.
KERNEL_TRANSPORT = "tcp" if sys.platform == "win32" else "ipc"


def resolve_interpreter(interpreter: str | os.PathLike) -> str:
    """The absolute path of ``interpreter`` (a path or a name on PATH).

    Raises:
        KernelStartError: it does not exist or is not an executable file.
    """
    text = os.fspath(interpreter)
    path = Path(text).expanduser()
    if path.exists():
        if not os.access(path, os.X_OK) or path.is_dir():
            raise KernelStartError(f"interpreter {path} is not an executable file.")
        return str(path.absolute())
    found = shutil.which(text)
    if found:
        return found
    raise KernelStartError(
        f"interpreter {text} not found; give the full path of a Python that has ipykernel "
        "(e.g. /path/to/.venv/bin/python)."
    )


def kernel_manager(exe: str) -> tuple[AsyncKernelManager, str]:
    """A manager for an ipykernel on ``exe`` (not started yet) and the kernelspec folder it reads.

    The caller removes the folder when the kernel is gone.
    """
    spec_dir = tempfile.mkdtemp(prefix="tlens-kernelspec-")
    (Path(spec_dir) / _KERNEL_NAME).mkdir()
    (Path(spec_dir) / _KERNEL_NAME / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [exe, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": f"tlens ({exe})",
                "language": "python",
                "interrupt_mode": "signal",
            }
        )
    )
    from jupyter_core.paths import jupyter_runtime_dir

    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True)
    km = AsyncKernelManager(
        kernel_name=_KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[spec_dir]),
        # Short: IPC socket paths (<connection file stem>-ipc-<n>) must fit in 104 bytes on macOS.
        connection_file=str(runtime / f"kernel-tlens-{uuid.uuid4().hex[:12]}.json"),
        transport=KERNEL_TRANSPORT,
    )
    km.shutdown_wait_time = 3.0
    return km, spec_dir


async def wait_ready(kc: AsyncKernelClient, target: "KernelTarget", timeout: float, check_iopub: bool = True) -> None:
    """Send kernel_info until it answers; a kernel that never answers gets a clear error.

    With ``check_iopub`` it also waits until our iopub subscription receives the status
    messages of that request: a fresh SUB socket misses messages published before it
    is connected, and busy/idle, streams and ``interrupt_own`` rely on iopub.
    """
    deadline = time.monotonic() + timeout
    while True:
        if await target.exited():
            raise KernelStartError("the kernel process exited during start-up")
        msg_id = kc.kernel_info()
        replied = False
        try:
            while not replied:
                msg = await kc.get_shell_msg(timeout=1.0)
                replied = msg["parent_header"].get("msg_id") == msg_id
            if not check_iopub:
                return
            while True:
                msg = await kc.get_iopub_msg(timeout=0.5)
                if msg["parent_header"].get("msg_id") == msg_id:
                    return
        except Empty:
            pass
        if time.monotonic() > deadline:
            raise KernelNotResponding(target.not_responding(timeout))


def stderr_tail(path: str | None, limit: int = 1500) -> str:
    """The end of a kernel's output log, without ipykernel's "without encryption" warnings."""
    if not path:
        return ""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    lines = [l for l in text.splitlines() if "without encryption" not in l]
    return "\n".join(lines)[-limit:].strip()
