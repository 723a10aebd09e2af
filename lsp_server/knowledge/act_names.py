"""``get_act_name`` and ``ActivationCache`` key rules, mirroring TransformerLens exactly.

The body of ``get_act_name`` is identical in TL 2.0–4.3 (transformer_lens ``utils.py`` /
``utilities/components_utils.py``), quirks included: it never validates, ``("scale", 4)`` gives
``blocks.4.hook_scale`` (which does not exist), the compact form fails for names with ``_``.
The server reproduces the quirks so it can tell the user what the call *really* returns.
Tests compare this module with the installed library call by call.
"""

from __future__ import annotations

import re

_COMPACT = re.compile(r"([a-z]+)(\d+)([a-z]?.*)")

LAYER_TYPE_ALIAS = {"a": "attn", "m": "mlp", "b": "", "block": "", "blocks": "", "attention": "attn"}
ACT_NAME_ALIAS = {
    "attn": "pattern",
    "attn_logits": "attn_scores",
    "key": "k",
    "query": "q",
    "value": "v",
    "mlp_pre": "pre",
    "mlp_mid": "mid",
    "mlp_post": "post",
}
LAYER_NORM_NAMES = ("scale", "normalized")
ATTN_NAMES = ("k", "v", "q", "z", "rot_k", "rot_q", "result", "pattern", "attn_scores")
MLP_NAMES = ("pre", "post", "mid", "pre_linear")

# Short names that make sense as the first element of a cache tuple key (for completion).
SHORT_NAMES = (
    "resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "attn_in", "mlp_in",
    "q_input", "k_input", "v_input", "q", "k", "v", "z", "result", "pattern", "attn_scores",
    "rot_q", "rot_k", "pre", "post", "mid", "pre_linear", "scale", "normalized",
) + tuple(ACT_NAME_ALIAS)
GLOBAL_SHORT_NAMES = ("embed", "pos_embed", "tokens", "scale", "normalized")


def get_act_name(name: str, layer: int | str | None = None, layer_type: str | None = None) -> str:
    """Exactly what ``transformer_lens.utils.get_act_name`` returns for these arguments."""
    if ("." in name or name.startswith("hook_")) and layer is None and layer_type is None:
        return name
    match = _COMPACT.match(name)
    if match is not None:
        name, layer, layer_type = match.groups(0)  # type: ignore[assignment]

    if name in ACT_NAME_ALIAS:
        name = ACT_NAME_ALIAS[name]

    full = ""
    if layer is not None:
        full += f"blocks.{layer}."
    if name in ATTN_NAMES:
        layer_type = "attn"
    elif name in MLP_NAMES:
        layer_type = "mlp"
    elif layer_type in LAYER_TYPE_ALIAS:
        layer_type = LAYER_TYPE_ALIAS[layer_type]

    if layer_type:
        full += f"{layer_type}."
    full += f"hook_{name}"

    if name in LAYER_NORM_NAMES and layer is None:
        full = f"ln_final.{full}"
    return full


class CacheKeyError(ValueError):
    """The key would raise in ``ActivationCache.__getitem__`` before any lookup (e.g. a str layer)."""


def cache_key_name(
    name: str, layer: int | str | None = None, layer_type: str | None = None, *, n_layers: int | None = None
) -> str:
    """The hook name ``cache[name, layer, layer_type]`` looks up, with the cache's one negative wrap.

    ``ActivationCache.__getitem__`` adds ``n_layers`` to a negative layer once (so ``-1`` is the
    last layer and ``-n_layers-1`` stays negative), and compares ``layer < 0`` first, so a string
    layer raises ``TypeError``. With ``n_layers`` unknown a negative layer is left as is.
    """
    if isinstance(layer, str):
        raise CacheKeyError(
            f"cache[{name!r}, {layer!r}] raises TypeError: the cache compares the layer with 0, "
            "so it must be an int"
        )
    if layer is not None and layer < 0 and n_layers is not None:
        layer = n_layers + layer
    return get_act_name(name, layer, layer_type)


# Hooks that live on the block itself (blocks.{l}.hook_<name>): a sublayer layer_type breaks them.
BLOCK_NAMES = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "attn_in", "mlp_in",
               "q_input", "k_input", "v_input")
# layer_type values that name a block's own norm layers (for "scale" / "normalized").
LN_LAYER_TYPES = ("ln1", "ln2", "ln1_post", "ln2_post")
_BRIDGE_ATTN_INPUTS = ("attn_in", "q_input", "k_input", "v_input")
_COMPACT_LIKE = re.compile(r"[a-z_]+\d+[a-z0-9_]*")


def act_name_pitfall(name: str, layer: object, layer_type: object, has_layer_arg: bool) -> str | None:
    """A message when a ``get_act_name`` call is a known trap, else None.

    ``layer`` / ``layer_type`` are the literal values, or ``...`` when the argument is an
    expression the server cannot evaluate. Every message describes a result no model has
    (tests check this against the real library).
    """
    type_known = layer_type is not ...
    # A literal None layer is the same as no layer argument.
    has_layer_arg = has_layer_arg and layer is not None
    # What the layer_type turns into inside the name ("a" -> "attn", "b" -> ""), when it is a literal.
    sublayer = LAYER_TYPE_ALIAS.get(layer_type, layer_type) if isinstance(layer_type, str) else None
    if name.startswith("hook_") and has_layer_arg:
        return (
            f"get_act_name({name!r}, …) takes a short name: it would return "
            f"'blocks.<layer>.hook_{name}'. Drop the 'hook_' prefix."
        )
    if "." in name and has_layer_arg:
        return f"get_act_name is given a full hook name and a layer: the result is 'blocks.<layer>.hook_{name}'."
    if "." not in name and not name.startswith("hook_") and "_" in name and _COMPACT_LIKE.fullmatch(name) \
            and _COMPACT.match(name) is None:
        short = name.rstrip("0123456789")
        return (
            f"get_act_name({name!r}) does not split off the layer (the compact form only works for names "
            f"without '_'): it returns a name ending in 'hook_{name}'. Write get_act_name({short!r}, <layer>)."
        )
    if name in LAYER_NORM_NAMES and has_layer_arg and layer_type is None:
        return (
            f"get_act_name({name!r}, layer) needs a layer_type ('ln1' or 'ln2'): without it the "
            f"result is 'blocks.<layer>.hook_{name}', which no model has."
        )
    if name in LAYER_NORM_NAMES and has_layer_arg and type_known and layer_type not in LN_LAYER_TYPES:
        where = f"{sublayer}." if sublayer else ""
        return (
            f"get_act_name({name!r}, layer, {layer_type!r}) gives 'blocks.<layer>.{where}hook_{name}', "
            f"which no model has: use layer_type 'ln1' or 'ln2'."
        )
    if name in LAYER_NORM_NAMES and not has_layer_arg and sublayer:
        return (
            f"get_act_name({name!r}, None, {layer_type!r}) returns "
            f"'{get_act_name(name, None, layer_type)}'; use get_act_name({name!r}) for ln_final."  # type: ignore[arg-type]
        )
    # The bridge's canonical attention inputs are attn.hook_attn_in / attn.hook_{q,k,v}_input: real names.
    if name in BLOCK_NAMES and sublayer and not (sublayer == "attn" and name in _BRIDGE_ATTN_INPUTS):
        return (
            f"{name} is a block-level hook: get_act_name({name!r}, layer, {layer_type!r}) returns "
            f"'blocks.<layer>.{sublayer}.hook_{name}', which no model has. Drop the layer_type."
        )
    return None
