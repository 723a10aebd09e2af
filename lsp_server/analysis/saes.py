"""SAE Lens: the hook point an SAE loaded in the file reads, for ``sae.cfg.hook_name``.

``sae = SAE.from_pretrained(release, sae_id)`` (SAE Lens 4+; before, it returned ``(sae, cfg, sparsity)``).
Many releases (``gpt2-small-res-jb`` and the like) name each SAE by its hook point, so the id is the
hook name. Others use ids such as ``layer_20/width_16k/average_l0_71``: their hook comes from the SAE's
config on the Hub, which is not read offline, so it stays unknown (never guessed); so does an id that
only looks like a hook name (``blocks.5.mlp.hook_post-v1``).

An SAE hook under an SAE whose own hook is unknown (``f"{sae.cfg.hook_name}.hook_sae_acts_post"`` with
``sae`` a parameter) is still an SAE hook: :func:`sae_point_of` names its suffix, and the hover shows the
axis every SAE gives it (``[..., d_sae]``).
"""

from __future__ import annotations

from ..knowledge.hookpoints import split_layer, union_templates
from ..knowledge.sae_hooks import SAE_POINTS
from .objects import attribute_writes
from .scopes import Scopes
from .syntax import Node, call_args, call_name, text
from .value_types import Hole, Pattern, Value, lift
from .values import Evaluator

LOADERS = frozenset({"from_pretrained", "from_pretrained_with_cfg_and_sparsity"})
# `sae.cfg.hook_name` (SAE Lens 4–5), `sae.cfg.metadata.hook_name` (6+), `sae.cfg.hook_point` (before 4).
HOOK_FIELDS = (("cfg", "hook_name"), ("cfg", "metadata", "hook_name"), ("cfg", "hook_point"))


def sae_hook_name(node: Node, scopes: Scopes, evaluator: Evaluator, depth: int = 0) -> Value:
    """The value of ``<sae>.cfg.hook_name`` (or its other spellings) when ``<sae>`` was loaded by id (its id
    evaluated one level deeper than ``depth``: a notebook's `sae = SAE.from_pretrained(r, sae.cfg.hook_name)`
    reads itself)."""
    parts = text(node).replace(" ", "").split(".")
    if len(parts) < 3 or tuple(parts[1:]) not in HOOK_FIELDS or not parts[0].isidentifier():
        return None
    d = scopes.lookup(parts[0], node.start_byte)
    if d is None or d.kind != "assign":
        return None
    if any(w.receiver in (None, b"cfg", b"metadata") for w in attribute_writes(scopes.parsed.source, parts[-1])):
        return None  # `sae.cfg.hook_name = ...` somewhere: not (only) what the id says
    loader = _first_of(d.node)  # `SAE.from_pretrained(release, sae_id)[0]`: the old API's tuple, indexed
    if loader.type != "call":
        return None
    receiver, method, _ = call_name(loader)
    if method not in LOADERS or receiver not in ("SAE", "sae_lens.SAE", "SparseAutoencoder"):
        return None
    if d.target.type != "identifier":  # old API: `sae, cfg_dict, sparsity = SAE.from_pretrained(...)`
        names = [text(c) for c in d.target.named_children]
        if not names or names[0] != parts[0]:
            return None
    positional, keywords = call_args(loader)
    sae_id = keywords.get("sae_id") or (positional[1] if len(positional) > 1 else None)
    return lift(_hook_of_id, evaluator.eval(sae_id, depth + 1)) if sae_id is not None else None


def _first_of(value: Node) -> Node:
    """``call(...)[0]`` -> the call; anything else as it is."""
    if value.type == "subscript" and text(value.child_by_field_name("subscript") or value) == "0":
        inner = value.child_by_field_name("value")
        return inner if inner is not None else value
    return value


def _hook_of_id(sae_id: Value) -> Value:
    """The id itself when it is a hook name some TransformerLens model has (not ``...hook_post-v1``)."""
    if not isinstance(sae_id, str):
        return None
    template, _ = split_layer(sae_id)
    return sae_id if "hook_" in sae_id and template in union_templates() else None


def sae_point_of(value: Value) -> tuple[str, str] | None:
    """(the SAE's hook as written, SAE suffix) for a name made of one unknown part and an SAE hook suffix
    (``f"{sae.cfg.hook_name}.hook_sae_acts_post"``, ``hook_name + ".hook_sae_input"``); else None."""
    if not isinstance(value, Pattern) or len(value.parts) != 2:
        return None
    base, rest = value.parts
    if not isinstance(base, Hole) or not isinstance(rest, str) or not rest.startswith("."):
        return None
    return (base.expr, rest[1:]) if rest[1:] in SAE_POINTS else None
