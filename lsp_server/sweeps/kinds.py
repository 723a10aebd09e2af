"""The patch-sweep kinds and their titles: the one list.

Everything else that names the kinds is derived from it (the setting's check, the CLI's ``--kind``
choices, the progress, code-action, hover and heatmap titles) or tied to it by a test
(``tests/test_protocol_contract.py``: ``extension/src/protocol.ts``, ``package.json``'s enum and
its descriptions, and the kernel payload's own ``KINDS``, which stays stdlib-only source text).
"""

from __future__ import annotations

from typing import NamedTuple


class SweepKind(NamedTuple):
    name: str
    label: str  # progress, code actions, hovers, panel titles
    heatmap_title: str  # drawn on the image
    description: str  # what is patched, and the shape of ``values`` (the setting's enum description)


SWEEP_KINDS = (
    SweepKind("resid_pre", "residual stream × position", "resid_pre patching", "Patch the residual stream before each block: [layer, pos]."),
    SweepKind("resid_mid", "resid_mid × position", "resid_mid patching", "Patch the residual stream between attention and MLP: [layer, pos]."),
    SweepKind("resid_post", "resid_post × position", "resid_post patching", "Patch the residual stream after each block: [layer, pos]."),
    SweepKind("attn_out", "attention output × position", "attn_out patching", "Patch each attention layer's output: [layer, pos]."),
    SweepKind("mlp_out", "MLP output × position", "mlp_out patching", "Patch each MLP layer's output: [layer, pos]."),
    SweepKind("heads", "attention heads (all positions)", "head (z) patching, all positions", "Patch each attention head's output over all positions: [layer, head]."),
    SweepKind("heads_by_pos", "attention heads × position", "head (z) patching by position", "Patch each attention head's output per position: [layer, pos, head]."),
    SweepKind("block", "resid / attn / MLP side by side", "block patching", "resid_pre, attn_out and mlp_out together: [3, layer, pos]."),
    SweepKind("attribution", "attribution patching (fast, approximate)", "attribution patching (gradient estimate)", "Attribution patching (one forward and one backward pass, a linear estimate): [layer, pos]."),
)
SWEEP_KIND_NAMES = tuple(k.name for k in SWEEP_KINDS)
SWEEP_TITLES = {k.name: k.label for k in SWEEP_KINDS}
HEATMAP_TITLES = {k.name: k.heatmap_title for k in SWEEP_KINDS}
DEFAULT_KIND = "resid_pre"  # the setting's default, the CLI's and a SweepSpec's
CODE_ACTION_KINDS = ("resid_pre", "heads", "block", "attribution")  # offered in the light bulb, default first
