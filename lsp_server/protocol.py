"""The custom wire contract with editors, in one place: command ids, notifications and their payloads.
The patch-sweep kinds they name are the one list in ``sweeps/kinds.py`` (re-exported here).

``extension/src/protocol.ts`` and ``package.json`` mirror it; ``tests/test_protocol_contract.py``
checks that they, the server's registered commands and the kernel payload agree. The README documents
it for other editors ("Custom protocol").
"""

from __future__ import annotations

from typing import TypedDict

from .sweeps.kinds import SWEEP_KIND_NAMES

__all__ = ["COMMANDS", "NOTIFICATIONS", "SWEEP_KIND_NAMES", "KernelStatus", "Progress", "RunSweepArgs", "SweepResult"]

# -- commands (workspace/executeCommand; each takes one options object, or none)

COMMANDS = {
    "attachKernel": "tlens.attachKernel",  # {connectionFile} -> KernelStatus | {error}
    "startKernel": "tlens.startKernel",  # {interpreter?} -> KernelStatus | {error}
    "interruptKernel": "tlens.interruptKernel",
    "kernelStatus": "tlens.kernelStatus",  # -> KernelStatus
    "listConnectionFiles": "tlens.listConnectionFiles",  # -> string[]
    "runSweep": "tlens.runSweep",  # RunSweepArgs -> SweepResult without png | {error} | {cancelled, message}
    "resetKernelHooks": "tlens.resetKernelHooks",  # {model?}
    "liveState": "tlens.liveState",  # -> what the attached kernel holds (models, caches, hooks)
    "refreshLiveState": "tlens.refreshLiveState",  # {timeout?} -> the same, asked again
    "serverInfo": "tlens.serverInfo",  # -> versions, and whether torch/transformer_lens were imported
    "compareSweeps": "tlens.compareSweeps",  # {uri, line} -> SweepResult of latest − previous run (no png) | {error}
    "showSweep": "tlens.showSweep",  # {uri, line, jsonPath} -> SweepResult of that saved run | {error}
    "livePicture": "tlens.livePicture",  # {id} (a hover's "Open in panel") -> SweepResult of kind "picture" | {error}
}

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
    detail: str | None
    progress: Progress


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
