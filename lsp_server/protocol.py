"""The custom wire contract with editors, in one place: command ids, notifications and their payloads.
The patch-sweep kinds they name are the one list in ``sweeps/kinds.py`` (re-exported here).

``extension/src/protocol.ts`` and ``package.json`` mirror it; ``tests/test_protocol_contract.py``
checks that they, the server's registered commands and the kernel payload agree. The README documents
it for other editors ("Custom protocol").
"""

from __future__ import annotations

from typing import TypedDict

from .sweeps.kinds import SWEEP_KIND_NAMES

__all__ = ["COMMANDS", "NOTIFICATIONS", "RESTRICTED_SETTINGS", "RUNS_CODE", "SWEEP_KIND_NAMES", "WORKSPACE_TRUSTED",
           "GatewayKernel", "GatewayKernels", "KernelStatus", "Progress", "RunSweepArgs", "SweepResult"]

# -- commands (workspace/executeCommand; each takes one options object, or none)

COMMANDS = {
    "attachKernel": "tlens.attachKernel",  # {connectionFile} | {kernelId} (of the gateway) -> KernelStatus | {error}
    "startKernel": "tlens.startKernel",  # {interpreter?} -> KernelStatus | {error}
    "interruptKernel": "tlens.interruptKernel",
    "kernelStatus": "tlens.kernelStatus",  # -> KernelStatus
    "listConnectionFiles": "tlens.listConnectionFiles",  # -> string[]
    "listGatewayKernels": "tlens.listGatewayKernels",  # -> GatewayKernels
    "runSweep": "tlens.runSweep",  # RunSweepArgs -> SweepResult without png | {error} | {cancelled, message}
    "resetKernelHooks": "tlens.resetKernelHooks",  # {model?}
    "liveState": "tlens.liveState",  # -> what the attached kernel holds (models, caches, hooks)
    "refreshLiveState": "tlens.refreshLiveState",  # {timeout?} -> the same, asked again
    "serverInfo": "tlens.serverInfo",  # -> versions, whether torch/transformer_lens were imported, diagnostics timings
    "compareSweeps": "tlens.compareSweeps",  # {uri, line} -> SweepResult of latest − previous run (no png) | {error}
    "showSweep": "tlens.showSweep",  # {uri, line, jsonPath} -> SweepResult of that saved run | {error}
    "livePicture": "tlens.livePicture",  # {id} (a hover's "Open in panel") -> SweepResult of kind "picture" | {error}
}

# Commands that run code (start or talk to a kernel or a gateway, run a sweep and its setup code, compute a
# live picture in the kernel): refused in an untrusted workspace (VS Code's Restricted Mode; see
# trust.py), by the server and by the extension.
RUNS_CODE = frozenset(COMMANDS[name] for name in (
    "attachKernel", "startKernel", "interruptKernel", "runSweep", "resetKernelHooks", "refreshLiveState",
    "livePicture", "listGatewayKernels"))

# -- initializationOptions fields (besides `settings`)

WORKSPACE_TRUSTED = "workspaceTrusted"  # false: an untrusted workspace (Restricted Mode); absent: trusted

# Settings that make tlens run a program (an interpreter; a kernel to attach to runs what it is sent):
# package.json lists them under `capabilities.untrustedWorkspaces.restrictedConfigurations`, so VS Code
# ignores a workspace's own values for them in Restricted Mode. Every `kernel.*` setting belongs here.
RESTRICTED_SETTINGS = ("interpreter", "kernel.connectionFile", "kernel.interpreter", "kernel.gateway.url", "kernel.gateway.token")

# -- notifications (server -> client)

NOTIFICATIONS = {
    "kernelStatus": "tlens/kernelStatus",  # KernelStatus, on every kernel state change
    "sweepResult": "tlens/sweepResult",  # SweepResult, when a sweep ends
}


class Progress(TypedDict):
    done: int
    total: int


class KernelStatus(TypedDict, total=False):
    state: str  # none | starting | idle | busy | dead
    connectionFile: str | None
    owned: bool  # started by tlens (shut down with the server) rather than attached
    gateway: str | None  # the Jupyter gateway's URL (no token) for a kernel there
    kernelId: str | None  # the gateway's id of the kernel
    detail: str | None
    progress: Progress


class GatewayKernel(TypedDict):
    id: str
    name: str | None  # its kernelspec
    executionState: str | None
    lastActivity: str | None
    connections: int | None


class GatewayKernels(TypedDict, total=False):
    gateway: str | None  # the URL (no token); None: no gateway set
    kernels: list[GatewayKernel]
    error: str  # the gateway could not list them (unreachable, refused token, listing disabled)


class RunSweepArgs(TypedDict, total=False):
    uri: str
    line: int  # 0-based line of the experiment
    kind: str  # one of SWEEP_KIND_NAMES; default: the setting tlens.sweep.defaultKind


class SweepResult(TypedDict):
    uri: str
    line: int
    kind: str
    title: str
    png: str  # base64 PNG, no data: prefix
    values: list  # nested lists of float | None (None: cell not run), [row][col] or deeper
    rowLabels: list[str]
    colLabels: list[str]
    panelLabels: list[str] | None  # the panels of 3-D kinds (block: resid / attn / MLP)
    headLabels: list[str] | None
    pngPath: str
    jsonPath: str
    partial: bool
    metric: str
    summary: str
    cellsDone: int
    cellsTotal: int
    elapsed: float
    panels: list  # where each cell grid lies in the PNG (render.heatmap.PanelGeometry.to_dict)
    history: list  # past runs of this experiment, newest first: {jsonPath, label, kind, current}
