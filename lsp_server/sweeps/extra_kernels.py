"""The kernels tlens starts besides the holder's, so that one sweep runs over several
(``tlens.sweep.kernels``, ``tlens-lsp sweep --kernels N``).

They are started like the one kernel a sweep starts when none is attached (the same interpreter
and working folder), each runs the file's setup code once per version of it, and they stay up
between sweeps (a server keeps them until it shuts down; a CLI run closes them at its end).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import Callable

from ..kernel.bridge import KernelBridge

Log = Callable[[str], None]


@dataclass
class ExtraKernel:
    bridge: KernelBridge
    interpreter: str
    setups_run: set[str] = field(default_factory=set)  # the setup codes that ran in it


class ExtraKernels:
    """Started kernels for sharded sweeps: as many as asked for, alive, on the interpreter asked for."""

    def __init__(self) -> None:
        self.kernels: list[ExtraKernel] = []

    async def ensure(self, count: int, interpreter: str | None, cwd: str | None, log: Log) -> list[ExtraKernel]:
        """``count`` live kernels on ``interpreter``: dead, surplus or other-interpreter ones are
        shut down, missing ones started (all at once).

        Raises:
            KernelStartError: a kernel could not start (the ones that did are kept).
        """
        exe = interpreter or sys.executable
        keep = [k for k in self.kernels if k.bridge.state != "dead" and k.interpreter == exe][:count]
        await asyncio.gather(*(k.bridge.shutdown() for k in self.kernels if k not in keep))
        self.kernels = keep
        missing = count - len(keep)
        if missing > 0:
            log(f"starting {missing} more kernel{'s' if missing > 1 else ''} with {exe} to share the sweep")
            started = await asyncio.gather(*(KernelBridge.start(exe, cwd) for _ in range(missing)),
                                           return_exceptions=True)
            self.kernels += [ExtraKernel(b, exe) for b in started if isinstance(b, KernelBridge)]
            failed = [e for e in started if isinstance(e, BaseException)]
            if failed:
                raise failed[0]
        return list(self.kernels)

    async def drop(self, kernel: ExtraKernel) -> None:
        """Shut down one kernel (its setup code failed: what it holds is not the file's)."""
        if kernel in self.kernels:
            self.kernels.remove(kernel)
        await kernel.bridge.shutdown()

    async def close(self) -> None:
        kernels, self.kernels = self.kernels, []
        await asyncio.gather(*(k.bridge.shutdown() for k in kernels))
