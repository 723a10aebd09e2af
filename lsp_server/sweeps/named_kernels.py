"""The running kernels a user names for one sweep, beside the one it leads with (``tlens-lsp sweep
--kernel CONN --kernel CONN2``, ``--kernel-id ID`` on the gateway, ``tlens.sweep.kernels`` as a list).

They are the user's kernels, like an attached one: they already hold the model and the prompts, so
nothing but the sweep runs in them (no setup code), and a sweep only connects to them and
disconnects at its end. Their share of the cells goes through ``shards.py`` like a started kernel's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator

from ..kernel.bridge import KernelBridge
from ..kernel.errors import KernelError
from ..kernel.holder import attach_bridge

if TYPE_CHECKING:
    from ..kernel.gateway_config import GatewayConfig

GATEWAY_PREFIX = "gateway:"  # ``gateway:ID`` names a running kernel of the configured gateway


@dataclass(frozen=True)
class NamedKernel:
    """A local kernel's connection file, or the id of a running kernel on the gateway."""

    connection_file: str | None = None
    kernel_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> "NamedKernel":
        """``gateway:ID`` or a connection file's path."""
        if text.startswith(GATEWAY_PREFIX):
            return cls(kernel_id=text[len(GATEWAY_PREFIX):])
        return cls(connection_file=text)

    def describe(self, gateway: "GatewayConfig | None" = None) -> str:
        if self.kernel_id is not None:
            return f"kernel {self.kernel_id} on {gateway.where if gateway else 'the gateway'}"
        return str(self.connection_file)


def distinct(named: list[NamedKernel], lead: "NamedKernel | None" = None) -> list[NamedKernel]:
    """``named`` without repeats and without the kernel the sweep leads with: two bridges to one
    kernel would share its one prepared sweep."""
    def key(n: NamedKernel) -> tuple:
        return (os.path.realpath(n.connection_file) if n.connection_file else None, n.kernel_id)

    seen = {key(lead)} if lead is not None else set()
    out = []
    for n in named:
        if key(n) not in seen:
            seen.add(key(n))
            out.append(n)
    return out


def lead_of(bridge: KernelBridge | None) -> "NamedKernel | None":
    """The kernel a bridge leads a sweep with, as a name (None: none yet)."""
    if bridge is None or (bridge.connection_file is None and bridge.kernel_id is None):
        return None
    return NamedKernel(connection_file=bridge.connection_file if bridge.kernel_id is None else None,
                       kernel_id=bridge.kernel_id)


async def attach_named(named: list[NamedKernel], gateway: "GatewayConfig | None") -> list[KernelBridge]:
    """Connect to every named kernel at once.

    Raises:
        KernelError: one could not be reached (the message names it); the others are disconnected.
    """
    opened = await asyncio.gather(*(attach_bridge(n.connection_file, n.kernel_id, gateway) for n in named),
                                  return_exceptions=True)
    failed = [(n, e) for n, e in zip(named, opened) if isinstance(e, BaseException)]
    if failed:
        await asyncio.gather(*(b.shutdown() for b in opened if isinstance(b, KernelBridge)))
        n, e = failed[0]
        if isinstance(e, KernelError):
            raise KernelError(f"{n.describe(gateway)}: {e}") from e
        raise e
    return list(opened)


@contextlib.asynccontextmanager
async def attached_for_sweep(named: list[NamedKernel], gateway: "GatewayConfig | None") -> AsyncIterator[list[KernelBridge]]:
    """The named kernels, connected while the block runs, disconnected after it (they are the user's)."""
    bridges = await attach_named(named, gateway) if named else []
    try:
        yield bridges
    finally:
        await asyncio.gather(*(b.shutdown() for b in bridges))
