"""Jupyter-kernel bridge: attach to or start a kernel, run code and the payload there.

Public API (all asyncio):
    KernelBridge.attach(connection_file) / KernelBridge.start(interpreter, cwd)
    KernelBridge.open(target, timeout=...)      any kernel target (targets.py), e.g. a kernel on a
                                               Jupyter gateway: gateway.GatewayKernel.start(config) /
                                               .attach(config, kernel_id); gateway.list_kernels(config)
    GatewayConfig.resolve(url, token)          the gateway of settings/flags, else $JUPYTER_GATEWAY_URL
    bridge.execute(code, timeout=None, user_expressions=None) -> ExecResult
    bridge.probe() -> KernelEnvironment        bridge.interrupt() / interrupt_own() / restart() / shutdown()
    bridge.state ("none"|"starting"|"idle"|"busy"|"dead"), bridge.on_state callback
    list_connection_files() -> [Path]          newest first
    KernelHolder                               the one kernel a server or a CLI run talks to

The code that runs inside the kernel lives in ``payload/`` and is sent as source. Patch sweeps,
which drive it, are the package ``lsp_server.sweeps``.
Importing this package does not import torch or transformer_lens, nor jupyter_server (``gateway``
imports it, ~1.5 s, when a gateway is used).
"""

from .bridge import ExecResult, KernelBridge, KernelEnvironment, PayloadCallInterrupted
from .connection import list_connection_files, load_connection_file
from .errors import (
    ConnectionFileError,
    ExecuteTimeout,
    GatewayAuthError,
    GatewayError,
    KernelDiedError,
    KernelEnvironmentError,
    KernelError,
    KernelNotResponding,
    KernelStartError,
    PayloadError,
)
from .gateway_config import GatewayConfig
from .holder import KernelHolder, connection_file_candidates

__all__ = [
    "ConnectionFileError",
    "ExecResult",
    "ExecuteTimeout",
    "GatewayAuthError",
    "GatewayConfig",
    "GatewayError",
    "KernelBridge",
    "KernelDiedError",
    "KernelEnvironment",
    "KernelEnvironmentError",
    "KernelError",
    "KernelHolder",
    "KernelNotResponding",
    "KernelStartError",
    "PayloadCallInterrupted",
    "PayloadError",
    "connection_file_candidates",
    "list_connection_files",
    "load_connection_file",
]
