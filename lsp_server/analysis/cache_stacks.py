"""What ``ActivationCache``'s stacking methods return, from the arguments of the call.

``accumulated_resid``, ``decompose_resid``, ``stack_head_results`` and ``stack_activation`` stack
one tensor per component on a new first axis; how many, and in what order, depends on the layer
and the flags. That order is what ``return_labels=True`` gives, and what a logit-lens plot needs.
The rules mirror ``transformer_lens.ActivationCache`` (the same in TL 2.x, 3.x and 4.x;
``tests/knowledge`` checks them against each installed version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from ..knowledge.act_names import get_act_name
from ..knowledge.hookpoints import BRIDGE_PROFILES, Catalog, catalog_for
from ..knowledge.spec import SYMBOLIC
from .findings import Finding, sentence
from .models import CacheInfo
from .syntax import Node, call_args, call_name
from .value_types import Hole, Items, Pattern, Seq

if TYPE_CHECKING:
    from .document import Analysis

UNKNOWN = object()  # an argument whose value the server cannot compute

# Parameters in signature order (positional arguments map onto them), with their defaults.
SIGNATURES: dict[str, tuple[tuple[str, object], ...]] = {
    "accumulated_resid": (("layer", None), ("incl_mid", False), ("apply_ln", False), ("pos_slice", None),
                          ("mlp_input", False), ("return_labels", False)),
    "decompose_resid": (("layer", None), ("mlp_input", False), ("mode", "all"), ("apply_ln", False),
                        ("pos_slice", None), ("incl_embeds", True), ("return_labels", False)),
    "stack_head_results": (("layer", -1), ("return_labels", False), ("incl_remainder", False),
                           ("pos_slice", None), ("apply_ln", False)),
    "stack_activation": (("activation_name", UNKNOWN), ("layer", -1), ("sublayer_type", None)),
}
RESID = ("batch", "pos", "d_model")


@dataclass
class Stack:
    """The result of one stacking call.

    Attributes:
        labels: one per component, as ``return_labels=True`` gives them; None when unknown.
        count_rule: how the number of components is made, in words (always set).
        item_shape: one component's shape (None when unknown).
        returns_labels: the call returns ``(tensor, labels)``.
        notes: caveats for the hover.
        reads: the hook names it stacks, in order (when the labels are known).
        raises: what TL raises for this model ("KeyError: 'blocks.0.hook_resid_mid'"), if it does.
    """

    labels: list[str] | None
    count_rule: str
    item_shape: tuple[str, ...] | None
    returns_labels: bool = False
    notes: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    raises: str | None = None

    @property
    def shape(self) -> tuple[str, ...] | None:
        if self.item_shape is None:
            return None
        return (str(len(self.labels)) if self.labels is not None else "components", *self.item_shape)


def bind(method: str, positional: list[object], keywords: dict[str, object]) -> dict[str, object] | None:
    """Argument values by parameter name, defaults filled in; None if the call does not fit."""
    params = SIGNATURES[method]
    if len(positional) > len(params) or any(k not in dict(params) for k in keywords):
        return None
    values = {name: default for name, default in params}
    values.update({name: v for (name, _), v in zip(params, positional)})
    values.update(keywords)
    return values


def stack_of(method: str, args: dict[str, object], catalog: Catalog, batch: bool = True) -> Stack:
    """What ``cache.<method>(**args)`` returns for the model behind ``catalog`` (shared: read it, do not change it)."""
    key = tuple((name, type(value), value) for name, value in args.items())  # (True == 1, but not here)
    try:
        return _stack_memo(method, key, catalog, batch)
    except TypeError:  # an argument value that cannot be a key
        return _stack_of(method, args, catalog, batch)


@lru_cache(maxsize=1024)  # the same calls, on the same models, on every keystroke
def _stack_memo(method: str, args: tuple[tuple[str, type, object], ...], catalog: Catalog, batch: bool) -> Stack:
    return _stack_of(method, {name: value for name, _, value in args}, catalog, batch)


def _stack_of(method: str, args: dict[str, object], catalog: Catalog, batch: bool) -> Stack:
    spec = catalog.spec
    n = spec.n_layers
    stack = _RULES[method](args, catalog, n)
    # Only a model whose structure is known (and, for a bridge, verified against TL) can be said to lack a hook.
    judged = spec.structure_known and (spec.backend == "hooked" or spec.architecture in BRIDGE_PROFILES)
    missing = next((name for name in stack.reads if not _cached(catalog, name)), None) if judged else None
    if missing is not None:
        stack.raises = f"KeyError: '{missing}'"
    elif stack.labels == [] and method != "stack_head_results":  # that one returns an empty tensor
        stack.raises = "RuntimeError: stack expects a non-empty TensorList"
    if stack.item_shape is not None and method != "stack_activation":
        stack.item_shape = _pos_sliced(stack.item_shape, args.get("pos_slice"), stack.notes)
    if stack.item_shape is not None and not batch and stack.item_shape[:1] == ("batch",):
        stack.item_shape = stack.item_shape[1:]
    stack.returns_labels = args.get("return_labels") is True
    if args.get("apply_ln") is True:
        stack.notes.append("`apply_ln=True` normalises each component like the LayerNorm that reads it (same shape).")
    return stack


def _top_layer(layer: object, n: int | None) -> int | None:
    """The layer bound the methods use: ``None`` and ``-1`` mean n_layers."""
    if layer is None or layer == -1:
        return n
    if isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0:
        return layer
    return None


def _known(*values: object) -> bool:
    return all(v is not UNKNOWN for v in values)


def _accumulated_resid(args: dict, catalog: Catalog, n: int | None) -> Stack:
    incl_mid, mlp_input = args["incl_mid"], args["mlp_input"]
    rule = ("`resid_pre` of layers 0…layer" + (", `resid_mid` of the layers before it" if incl_mid is not False else "")
            + (", `resid_mid` of `layer` itself" if mlp_input is not False else "")
            + "; `layer` = n_layers (the default, or -1) adds the final `resid_post`")
    top = _top_layer(args["layer"], n)
    labels = None
    if top is not None and _known(incl_mid, mlp_input) and (n is not None or args["layer"] not in (None, -1)):
        labels = []
        for l in range(top + 1):
            if l == n:
                labels.append("final_post")
                continue
            labels.append(f"{l}_pre")
            if (incl_mid and l < top) or (mlp_input and l == top):
                labels.append(f"{l}_mid")
    reads = [_resid_hook(label, n) for label in labels or []]
    return Stack(labels, rule, RESID, reads=reads)


def _resid_hook(label: str, n: int | None) -> str:
    """``3_pre`` -> ``blocks.3.hook_resid_pre``; ``final_post`` -> the last ``resid_post``."""
    if label == "final_post":
        return get_act_name("resid_post", (n or 1) - 1)
    layer, kind = label.split("_")
    return get_act_name(f"resid_{kind}", int(layer))


def _decompose_resid(args: dict, catalog: Catalog, n: int | None) -> Stack:
    mode, mlp_input, incl_embeds = args["mode"], args["mlp_input"], args["incl_embeds"]
    rule = ("`embed` and `pos_embed` (when the model has them), then `attn_out` and `mlp_out` of each layer "
            "before `layer` (`mode` keeps one kind), plus `attn_out` of `layer` with `mlp_input=True`")
    top = _top_layer(args["layer"], n)
    labels = None
    # Which embeddings exist (and whether there are MLPs) needs the model's structure.
    known = catalog.spec.structure_known and _known(mode, mlp_input, incl_embeds) and mode in ("all", "mlp", "attn")
    if top is not None and known:
        incl_attn = mode != "mlp"
        incl_mlp = mode != "attn" and not catalog.spec.attn_only
        labels = []
        if incl_embeds:
            labels += [label for label in ("embed", "pos_embed") if _cached(catalog, f"hook_{label}")]
        for l in range(top):
            labels += [f"{l}_attn_out"] * incl_attn + [f"{l}_mlp_out"] * incl_mlp
        if mlp_input and incl_attn:
            labels.append(f"{top}_attn_out")
    return Stack(labels, rule, RESID, reads=[_output_hook(label) for label in labels or []])


def _output_hook(label: str) -> str:
    """``embed`` -> ``hook_embed``; ``3_attn_out`` -> ``blocks.3.hook_attn_out``."""
    if label in ("embed", "pos_embed"):
        return f"hook_{label}"
    layer, name = label.split("_", 1)
    return get_act_name(name, int(layer))


def _stack_head_results(args: dict, catalog: Catalog, n: int | None) -> Stack:
    rule = "one per head of every layer before `layer` (`L{l}H{h}`), plus `remainder` with `incl_remainder=True`"
    top, heads, remainder = _top_layer(args["layer"], n), catalog.spec.n_heads, args["incl_remainder"]
    labels = None
    if top is not None and heads and _known(remainder):
        labels = [f"L{l}H{h}" for l in range(top) for h in range(heads)] + ["remainder"] * (remainder is True)
    notes = []
    if not catalog.spec.use_attn_result:
        notes.append("Without `use_attn_result` the cache has no `hook_result`: the call computes the head "
                     "results from `hook_z` and `W_O` (and prints that it does).")
    return Stack(labels, rule, RESID, notes=notes)


def _stack_activation(args: dict, catalog: Catalog, n: int | None) -> Stack:
    name, sublayer = args["activation_name"], args["sublayer_type"]
    rule = "`cache[activation_name, l, sublayer_type]` for every layer `l` before `layer`"
    top = _top_layer(args["layer"], n)
    if not isinstance(name, str) or not (sublayer is None or isinstance(sublayer, str)):
        return Stack(None, rule, None)
    found = catalog.lookup(get_act_name(name, 0, sublayer))
    labels = [get_act_name(name, l, sublayer) for l in range(top)] if top is not None else None
    return Stack(labels, rule, found[0].shape if found else None, reads=list(labels or []))


_RULES = {
    "accumulated_resid": _accumulated_resid,
    "decompose_resid": _decompose_resid,
    "stack_head_results": _stack_head_results,
    "stack_activation": _stack_activation,
}


def _cached(catalog: Catalog, name: str) -> bool:
    """The hook fires in a default forward, so an unfiltered cache holds it."""
    found = catalog.lookup(name)
    return found is not None and found[0] in catalog.firing()


def _pos_sliced(shape: tuple[str, ...], pos_slice: object, notes: list[str]) -> tuple[str, ...]:
    if pos_slice is None:
        return shape
    if isinstance(pos_slice, int) and not isinstance(pos_slice, bool):
        return tuple(d for d in shape if d != "pos")  # an int position drops the axis
    notes.append("`pos_slice` keeps the positions it selects.")
    return shape


# ------------------------------------------------------------------------------ in a document

_LITERALS = {"none": None, "true": True, "false": False}


@dataclass
class StackCall:
    """A stacking call on a known cache: ``cache.accumulated_resid(...)``."""

    call: Node
    method: str
    cache: CacheInfo
    catalog: Catalog
    stack: Stack


def stack_call(analysis: "Analysis", call: Node) -> StackCall | None:
    """The stacking call ``call`` makes, if its receiver is a cache the analysis knows."""
    receiver, method, receiver_node = call_name(call)
    if method not in SIGNATURES or receiver_node is None or receiver_node.type != "identifier":
        return None
    cache = analysis.models.cache_at(receiver_node)
    args_node = call.child_by_field_name("arguments")
    if cache is None or args_node is None or any(c.type in ("list_splat", "dictionary_splat")
                                                 for c in args_node.named_children):
        return None
    positional, keywords = call_args(call)
    args = bind(method, [_value(analysis, n) for n in positional], {k: _value(analysis, v) for k, v in keywords.items()})
    if args is None:
        return None
    spec = cache.model.effective_spec if cache.model else SYMBOLIC
    catalog = catalog_for(spec, analysis.context.tl_major or (4 if spec.backend == "bridge" else 2))
    return StackCall(call, method, cache, catalog, stack_of(method, args, catalog, batch=not cache.remove_batch_dim))


def why_it_raises(found: StackCall) -> str:
    """One sentence for the hover and the diagnostic."""
    stack, spec = found.stack, found.catalog.spec
    if stack.raises is None:
        return ""
    if not stack.raises.startswith("KeyError"):
        return f"`{found.method}` raises {stack.raises} for {spec.label}: there is nothing to stack with these arguments."
    name = stack.raises.split("'")[1]
    point = found.catalog.lookup(name)
    if "resid_mid" in name and spec.parallel_attn_mlp:
        reason = "attention and MLP read the same residual stream in parallel, so there is no `resid_mid`"
    elif spec.attn_only and ("resid_mid" in name or "mlp" in name):
        reason = "an attention-only model has no MLP, so there is no `resid_mid`"
    elif point is None:
        reason = f"it has no `{name}`"
    elif point[0].dead:
        reason = f"`{name}` never fires ({point[0].dead})"
    else:
        reason = f"`{name}` only fires with `{point[0].gate}=True`"
    return sentence(f"`{found.method}` raises {stack.raises} for {spec.label}: {reason}")


def check_stacking_calls(analysis: "Analysis") -> list[Finding]:
    """Stacking calls that raise for the model in use (a layer's hook it does not have)."""
    out = []
    for call in analysis.calls_of(*SIGNATURES):
        found = stack_call(analysis, call)
        if found is not None and found.stack.raises:
            function = call.child_by_field_name("function")
            attribute = function.child_by_field_name("attribute") if function is not None else None
            start = attribute.start_byte if attribute is not None else call.start_byte
            out.append(Finding(start, call.end_byte, "unknown-hook", "error", why_it_raises(found)))
    return out


def _value(analysis: "Analysis", node: Node) -> object:
    if node.type in _LITERALS:
        return _LITERALS[node.type]
    value = analysis.evaluator.eval(node)
    return UNKNOWN if value is None or isinstance(value, (Pattern, Hole, Seq, Items, float)) else value
