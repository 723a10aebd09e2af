"""SAE Lens: the hook point an SAE loaded in the file reads, for ``sae.cfg.hook_name``.

``sae = SAE.from_pretrained(release, sae_id)`` (SAE Lens 4+; before, it returned ``(sae, cfg, sparsity)``).
Many releases (``gpt2-small-res-jb`` and the like) name each SAE by its hook point, so the id is the
hook name. Others use ids such as ``layer_20/width_16k/average_l0_71``: their hook comes from the SAE's
config on the Hub, which is not read offline, so it stays unknown (never guessed).
"""

from __future__ import annotations

from ..knowledge.hookpoints import split_layer
from .scopes import Scopes
from .syntax import Node, call_args, call_name, text
from .value_types import Value, lift
from .values import Evaluator

LOADERS = frozenset({"from_pretrained", "from_pretrained_with_cfg_and_sparsity"})
# `sae.cfg.hook_name` (SAE Lens 4–5), `sae.cfg.metadata.hook_name` (6+), `sae.cfg.hook_point` (before 4).
HOOK_FIELDS = (("cfg", "hook_name"), ("cfg", "metadata", "hook_name"), ("cfg", "hook_point"))


def sae_hook_name(node: Node, scopes: Scopes, evaluator: Evaluator) -> Value:
    """The value of ``<sae>.cfg.hook_name`` (or its other spellings) when ``<sae>`` was loaded by id."""
    parts = text(node).replace(" ", "").split(".")
    if len(parts) < 3 or tuple(parts[1:]) not in HOOK_FIELDS or not parts[0].isidentifier():
        return None
    d = scopes.lookup(parts[0], node.start_byte)
    if d is None or d.kind != "assign" or d.node.type != "call":
        return None
    receiver, method, _ = call_name(d.node)
    if method not in LOADERS or receiver not in ("SAE", "sae_lens.SAE", "SparseAutoencoder"):
        return None
    if d.target.type != "identifier":  # old API: `sae, cfg_dict, sparsity = SAE.from_pretrained(...)`
        names = [text(c) for c in d.target.named_children]
        if not names or names[0] != parts[0]:
            return None
    positional, keywords = call_args(d.node)
    sae_id = keywords.get("sae_id") or (positional[1] if len(positional) > 1 else None)
    return lift(_hook_of_id, evaluator.eval(sae_id)) if sae_id is not None else None


def _hook_of_id(sae_id: Value) -> Value:
    if not isinstance(sae_id, str):
        return None
    template, _ = split_layer(sae_id)
    return sae_id if ("hook_" in sae_id and template) else None
