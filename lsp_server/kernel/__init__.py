"""Jupyter-kernel bridge and activation-patching sweeps.

Public API (all asyncio):
    KernelBridge.attach(connection_file) / KernelBridge.start(interpreter, cwd)
    bridge.execute(code, timeout=None, user_expressions=None) -> ExecResult
    bridge.probe() -> KernelEnvironment        bridge.interrupt() / interrupt_own() / restart() / shutdown()
    bridge.state ("none"|"starting"|"idle"|"busy"|"dead"), bridge.on_state callback
    list_connection_files() -> [Path]          newest first
    run_setup(bridge, code) -> SetupResult
    run_sweep(bridge, SweepSpec, on_progress, cancel_event) -> SweepResult
    save_result(result, png_bytes, workspace_root) -> (png_path, json_path)

The code that runs inside the kernel lives in ``payload/`` and is sent as source.
Importing this package does not import torch or transformer_lens.
"""

from .bridge import ExecResult, KernelBridge, KernelEnvironment, PayloadCallInterrupted
from .connection import list_connection_files, load_connection_file
from .errors import (
    ConnectionFileError,
    ExecuteTimeout,
    KernelDiedError,
    KernelEnvironmentError,
    KernelError,
    KernelNotResponding,
    KernelStartError,
    PayloadError,
    SweepCancelled,
    SweepError,
)
from .spec import KINDS, SweepProgress, SweepResult, SweepSpec
from .sweeps import SetupResult, run_setup, run_sweep, save_result

__all__ = [
    "KINDS",
    "ConnectionFileError",
    "ExecResult",
    "ExecuteTimeout",
    "KernelBridge",
    "KernelDiedError",
    "KernelEnvironment",
    "KernelEnvironmentError",
    "KernelError",
    "KernelNotResponding",
    "KernelStartError",
    "PayloadCallInterrupted",
    "PayloadError",
    "SetupResult",
    "SweepCancelled",
    "SweepError",
    "SweepProgress",
    "SweepResult",
    "SweepSpec",
    "list_connection_files",
    "load_connection_file",
    "run_setup",
    "run_sweep",
    "save_result",
]
