"""tlens in-kernel payload, part: the sweep kinds, their grids, cells and hook points.

Plain data and arithmetic: no imports at all, so ``tests/test_protocol_contract.py`` can load
this file by path to compare ``KINDS`` with the server's list.
"""

# Kinds of exact sweeps: name -> (grid axes, activation patched).
_LAYER_POS_KINDS = {
    "resid_pre": "hook_resid_pre",
    "resid_mid": "hook_resid_mid",
    "resid_post": "hook_resid_post",
    "attn_out": "hook_attn_out",
    "mlp_out": "hook_mlp_out",
}
KINDS = tuple(_LAYER_POS_KINDS) + ("heads", "heads_by_pos", "block", "attribution")
_BLOCK_PANELS = ("resid_pre", "attn_out", "mlp_out")
# Within one entry layer, the order cells are queued in (the order their hooks fire).
_SITE_ORDER = {"resid_pre": 0, "resid_mid": 1, "attn_out": 1, "z": 1, "mlp_out": 2, "resid_post": 3}
# Switches a benchmark or test may set in the kernel (``__tlens__._OPTIONS[...] = ...``):
#   reuse_prefix   run only the positions a patch can change (sweep_prefix.py); False = every position
#   memory_budget  bytes one forward may use; None = measured from the device (sweep_plan.py)
_OPTIONS = {"reuse_prefix": True, "memory_budget": None}


class _Cell:
    """One patched run: where to patch and which flat grid index receives the value."""

    __slots__ = ("flat", "layer", "site", "pos", "head", "entry", "work", "start")

    def __init__(self, flat, layer, site, pos, head, n_layers):
        # ``pos`` is a column of the position axis: a token position, or with a position
        # labelling the index of a label (its token position may differ per prompt).
        self.flat = flat
        self.layer = layer
        self.site = site  # resid_pre | resid_post | resid_mid | attn_out | mlp_out | z
        self.pos = pos  # int or None (all positions, heads kind)
        self.head = head  # int or None
        # The stage whose input the patched row first differs at: layers below are the
        # corrupted run, so the row joins the batch there (resid_post(l) == input of l+1).
        self.entry = layer + 1 if site == "resid_post" else layer
        self.work = n_layers - self.entry + 1
        # The first token position the patch changes (set by the plan from the activations):
        # every earlier position of the patched run equals the corrupted run (causal attention).
        self.start = pos if pos is not None else 0


def _site_hook_name(site, layer):
    if site == "z":
        return f"blocks.{layer}.attn.hook_z"
    return f"blocks.{layer}.hook_{site}"


def _site_names(kind):
    """The activations a sweep of ``kind`` patches (attribution: every panel and the heads)."""
    if kind in _LAYER_POS_KINDS:
        sites = [kind]
    elif kind in ("heads", "heads_by_pos"):
        sites = ["z"]
    elif kind == "block":
        sites = list(_BLOCK_PANELS)
    else:
        sites = ["resid_pre", "attn_out", "mlp_out", "z"]
    return sites


def _grid_shape(kind, L, P, H):
    if kind in _LAYER_POS_KINDS:
        return [L, P]
    if kind == "heads":
        return [L, H]
    if kind == "heads_by_pos":
        return [L, P, H]
    return [3, L, P]  # block, attribution


def _grid_cells(kind, L, P, H):
    """Every cell of an exact sweep, each with its flat index into the grid (row-major)."""
    k = kind
    out = []
    if k in _LAYER_POS_KINDS:
        for l in range(L):
            for p in range(P):
                out.append(_Cell(l * P + p, l, k, p, None, L))
    elif k == "heads":
        for l in range(L):
            for h in range(H):
                out.append(_Cell(l * H + h, l, "z", None, h, L))
    elif k == "heads_by_pos":
        for l in range(L):
            for p in range(P):
                for h in range(H):
                    out.append(_Cell((l * P + p) * H + h, l, "z", p, h, L))
    elif k == "block":
        for i, site in enumerate(_BLOCK_PANELS):
            for l in range(L):
                for p in range(P):
                    out.append(_Cell((i * L + l) * P + p, l, site, p, None, L))
    return out
