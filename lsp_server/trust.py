"""Workspace trust: in a workspace the user has not trusted (VS Code's Restricted Mode) the server does
static analysis only and runs no code.

The editor says whether the workspace is trusted in ``initializationOptions.workspaceTrusted``
(``protocol.WORKSPACE_TRUSTED``); the VS Code extension sends it and restarts the server when the user
grants trust. Without the field (Neovim, other editors) the workspace is trusted, as it always was.

What runs code, and so is off in Restricted Mode: starting or attaching a kernel (and with it live
introspection), patch sweeps and the file's setup code they run, and starting the interpreter the
settings name (to ask which TransformerLens it has). The commands that do so are ``protocol.RUNS_CODE``;
``handlers.command`` refuses them with :func:`unavailable`.
"""

from __future__ import annotations

from typing import Any

from .protocol import COMMANDS, RUNS_CODE, WORKSPACE_TRUSTED

WAY_OUT = ('To allow it, trust this workspace: in VS Code run "Manage Workspace Trust" from the Command Palette '
           "(or click Restricted Mode in the status bar).")


# What each refused command would have done, as the message names it.
WHAT = {
    COMMANDS["attachKernel"]: "attaching a Jupyter kernel",
    COMMANDS["startKernel"]: "starting a kernel",
    COMMANDS["interruptKernel"]: "interrupting the kernel",
    COMMANDS["runSweep"]: "running a patch sweep",
    COMMANDS["resetKernelHooks"]: "resetting hooks in the kernel",
    COMMANDS["refreshLiveState"]: "live kernel introspection",
    COMMANDS["livePicture"]: "computing a live picture in the kernel",
    COMMANDS["listGatewayKernels"]: "asking the Jupyter gateway for its kernels",
}
assert set(WHAT) == RUNS_CODE


def workspace_trusted(initialization_options: Any) -> bool:
    """False only when the editor said so: a missing field means an editor that knows no trust."""
    return not (isinstance(initialization_options, dict) and initialization_options.get(WORKSPACE_TRUSTED) is False)


def unavailable(command: str) -> str:
    """The message for a command that would run code, refused in Restricted Mode."""
    what = WHAT.get(command, command)
    return (f"tlens: {what} ({command}) is unavailable in Restricted Mode: this workspace is not trusted, so tlens runs no "
            f"code for it (no kernel, sweep, setup code or interpreter); analysis, hovers and diagnostics still "
            f"work. {WAY_OUT}")
