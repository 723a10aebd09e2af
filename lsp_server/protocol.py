"""The custom wire contract with editors, in one place: command ids, notifications and their payloads,
and the patch-sweep kinds.

``extension/src/protocol.ts`` and ``package.json`` mirror it; ``tests/test_protocol_contract.py``
checks that they, the server's registered commands and the kernel payload agree. The README documents
it for other editors ("Custom protocol").
"""

from __future__ import annotations

from typing import NamedTuple, TypedDict

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


# -- patch sweeps


class SweepKind(NamedTuple):
    name: str
    label: str  # progress, code actions, panel titles
    heatmap_title: str  # drawn on the image


SWEEP_KINDS = (
    SweepKind("resid_pre", "residual stream × position", "resid_pre patching"),
    SweepKind("resid_mid", "resid_mid × position", "resid_mid patching"),
    SweepKind("resid_post", "resid_post × position", "resid_post patching"),
    SweepKind("attn_out", "attention output × position", "attn_out patching"),
    SweepKind("mlp_out", "MLP output × position", "mlp_out patching"),
    SweepKind("heads", "attention heads (all positions)", "head (z) patching, all positions"),
    SweepKind("heads_by_pos", "attention heads × position", "head (z) patching by position"),
    SweepKind("block", "resid / attn / MLP side by side", "block patching"),
    SweepKind("attribution", "attribution patching (fast, approximate)", "attribution patching (gradient estimate)"),
)
SWEEP_KIND_NAMES = tuple(k.name for k in SWEEP_KINDS)
SWEEP_TITLES = {k.name: k.label for k in SWEEP_KINDS}
HEATMAP_TITLES = {k.name: k.heatmap_title for k in SWEEP_KINDS}
CODE_ACTION_KINDS = ("resid_pre", "heads", "block", "attribution")  # offered in the light bulb, default first
