"""Hover on hook names (with their shapes) and weights (with theirs).

First line contract (editors and tests rely on it): the full hook name, then the symbolic shape,
then the concrete shape for the model in use:
``blocks.5.hook_resid_post`` · ``[batch, pos, d_model]`` = ``[batch, pos, 768]``
"""

from __future__ import annotations

import re

from ...analysis.document import Analysis
from ...analysis.findings import sentence
from ...analysis.hook_meaning import meanings
from ...analysis.hookrefs import HookRef
from ...analysis.live_facts import live_cache_note
from ...analysis.models import ModelInfo
from ...analysis.syntax import Node, text
from ...knowledge.hookpoints import Catalog, HookPoint, catalog_for, concrete_shape, format_shape, union_templates
from ...knowledge.hookpoints import all_variants
from ...knowledge.sae_hooks import ANY_BASE_SHAPES, SAE_POINTS, sae_shape, split_sae_name
from ...knowledge.spec import ModelSpec, SYMBOLIC
from .text import HoverText, provenance


# ------------------------------------------------------------------------------ hook names


def _catalog(analysis: Analysis, model: ModelInfo | None) -> tuple[Catalog, ModelSpec]:
    spec = model.effective_spec if model else SYMBOLIC
    tl_major = analysis.context.tl_major or (4 if spec.backend == "bridge" else 2)
    return catalog_for(spec, tl_major), spec


def _find_point(catalog: Catalog, template: str) -> HookPoint | None:
    found = catalog.lookup(template.replace("{l}", "0"))
    if found:
        return found[0]
    if catalog.spec.structure_known or template not in union_templates():
        return None
    # Unknown structure: take the hook from a configuration that has it (shapes do not change).
    for spec in all_variants():
        found = catalog_for(spec, 3).lookup(template.replace("{l}", "0"))
        if found and (spec.backend == catalog.spec.backend or found[0].canonical is None):
            return found[0]
    return None


def hook_ref_markdown(analysis: Analysis, ref: HookRef) -> str | None:
    if ref.error:
        return f"**Invalid cache key**\n\n{ref.error}"
    if ref.options:
        return _options_markdown(analysis, ref)
    if ref.template is None:
        if ref.sae_point is not None:
            return _sae_unknown_base_markdown(analysis, ref, *ref.sae_point)
        if ref.alternatives:
            return "`hook.name` is one of: " + ", ".join(f"`{a}`" for a in ref.alternatives)
        return None
    catalog, spec = _catalog(analysis, ref.model)
    if ref.match != "exact":
        return _filter_markdown(ref, catalog)
    point = _find_point(catalog, ref.template)
    name = _display_name(ref)
    if point is None and (sae := split_sae_name(ref.template)) is not None:
        return _sae_markdown(ref, name, sae, catalog, spec)
    if point is None and ref.template in SAE_POINTS:  # `sae.run_with_cache(x)`: the SAE's own hook points
        return _sae_own_markdown(analysis, ref)
    if point is None:
        return f"`{name}`\n\n*Not a hook point of {spec.label if ref.model else 'any known configuration'}.*"
    shape = point.shape
    if ref.cache is not None and ref.cache.remove_batch_dim and shape and shape[0] == "batch":
        shape = shape[1:]
    symbolic = format_shape(shape)
    concrete = format_shape(concrete_shape(shape, spec))
    if ref.context == "key":
        return _dict_key_markdown(ref, name, point, symbolic, concrete, spec)
    head = f"`{name}` · `{symbolic}`"
    if concrete != symbolic:
        head += f" = `{concrete}`"
    head += live_cache_note(analysis, ref, concrete_shape(shape, spec))  # "" without a live kernel
    lines = [head, _meaning(ref, point.meaning) + "."]
    if ref.context == "store":
        lines.append("Read from a dict a hook function fills under `hook.name` (a plain dict, not an ActivationCache).")
    if ref.layer is None and ref.layer_expr and spec.n_layers:
        lines.append(f"For each `{ref.layer_expr}` in 0–{spec.n_layers - 1}.")
    if ref.how:
        lines.append(f"`{ref.how}`")
    if point.canonical or (spec.backend == "bridge" and not point.canonical):
        canonical = point.canonical or point.template
        shown = canonical.replace("{l}", str(ref.layer) if ref.layer is not None else "{" + (ref.layer_expr or "l") + "}")
        if point.canonical:
            lines.append(f"TransformerBridge canonical name: `{shown}` (the cache holds both spellings).")
    if point.gate and getattr(spec, point.gate, False):
        lines.append(f"Fires: `{point.gate}` is on for `{ref.model.var if ref.model else 'the model'}`.")
    elif point.gate and point.gate in analysis.flags_mentioned:
        lines.append(f"Fires once `{point.gate}` is on (this file switches it on).")
    elif point.gate:
        lines.append(f"Only fires with `{point.gate}=True` (`model.set_{point.gate}(True)`).")
    if point.dead:
        lines.append(sentence(f"⚠ Never fires: {point.dead}"))
    lines += [m.hover_line() for m in meanings(analysis, ref)]
    if point.note and spec.backend == "hooked":
        lines.append(sentence(f"Note: {point.note}"))
    if ref.cache is not None and ref.cache.assumed:
        lines.append(ref.cache.assumed + ".")
    if ref.cache is not None and ref.cache.remove_batch_dim:
        lines.append("Cached with `remove_batch_dim=True`: no batch axis.")
    if ref.cache is not None and ref.cache.pos_slice:
        lines.append("Cached with `pos_slice`: the sliced axis keeps size 1 or the slice length.")
    if ref.alternatives and len(ref.alternatives) > 1:
        lines.append("`hook.name` may also be: " + ", ".join(f"`{a}`" for a in ref.alternatives[1:]))
    if ref.model is not None and ref.model.spec.backend == "bridge" and ref.alternatives:
        lines.append("On TransformerBridge, `hook.name` is the canonical name in raw mode and the legacy name after `enable_compatibility_mode()`.")
    lines.append(provenance(ref.model, spec))
    return "\n\n".join(lines)


MAX_OPTIONS_SHOWN = 8


def _meaning(ref: HookRef, meaning: str) -> str:
    """A hook point's meaning for this ref: its layer, or the layer as written (`` `layer` ``) where unknown."""
    return meaning.replace("{l}", str(ref.layer) if ref.layer is not None else f"`{ref.layer_expr or 'l'}`")


def _dict_key_markdown(ref: HookRef, name: str, point: HookPoint, symbolic: str, concrete: str, spec: ModelSpec) -> str:
    """A hook name keying a dict of the code's own (``mean_cache[hook.name]``): the hook point, and its activation's
    shape as the hook point's, not as the value's (a mean, a slice, anything the code stored)."""
    own = f"`{symbolic}`" + (f" = `{concrete}`" if concrete != symbolic else "")
    lines = [f"`{name}` · a dict key", _meaning(ref, point.meaning) + ".",
             f"A key of a plain dict, not an ActivationCache: the value is what the code stored under it. "
             f"The hook point's own activation is {own}."]
    if ref.how:
        lines.append(f"`{ref.how}`")
    lines.append(provenance(ref.model, spec))
    return "\n\n".join(lines)


def _options_markdown(analysis: Analysis, ref: HookRef) -> str:
    """Every possible name, each with its shape (the first few when there are many)."""
    heads = [(hook_ref_markdown(analysis, o) or f"`{o.name() or o.template}`").split("\n\n")[0]
             for o in ref.options[:MAX_OPTIONS_SHOWN]]
    lines = [f"One of {len(ref.options)} hook names:", "\n".join(f"- {h}" for h in heads)]
    if len(ref.options) > MAX_OPTIONS_SHOWN:
        lines.append(f"… and {len(ref.options) - MAX_OPTIONS_SHOWN} more.")
    if ref.how:
        lines.append(f"`{ref.how}`")
    _, spec = _catalog(analysis, ref.model)
    lines.append(provenance(ref.model, spec))
    return "\n\n".join(lines)


def _sae_markdown(ref: HookRef, name: str, sae: tuple[str, str], catalog: Catalog, spec: ModelSpec) -> str:
    base_template, suffix = sae
    base_name = name[: -len(suffix) - 1]
    meaning = SAE_POINTS.get(suffix, (None, "A hook point of the SAE"))[1]
    base = _find_point(catalog, base_template)
    shape = sae_shape(base.shape, base_template, suffix) if base else None
    head = f"`{name}`"
    if shape:
        concrete, dims = concrete_shape(shape, spec), spec.dims()
        if "n_heads" in dims and "d_head" in dims:  # a hook_z SAE's d_in, as one number
            concrete = tuple(str(dims["n_heads"] * dims["d_head"]) if d == "n_heads*d_head" else c
                             for d, c in zip(shape, concrete))
        symbolic, concrete_text = format_shape(shape), format_shape(concrete)
        head += f" · `{symbolic}`" + (f" = `{concrete_text}`" if concrete_text != symbolic else "")
    attached = f"`{base_name}`"
    if base is not None:
        attached += f" ({_meaning(ref, base.meaning)})"
    width = "; `d_sae` is the SAE's width" if shape and "d_sae" in shape else ""
    return "\n\n".join([
        head,
        f"{meaning}, for the SAE attached at {attached}.",
        "Exists only while that SAE is attached (SAE Lens: `model.add_sae(sae)`, or "
        f"`model.run_with_cache_with_saes(..., saes=[sae])`){width}.",
        provenance(ref.model, spec),
    ])


def _sae_unknown_base_markdown(analysis: Analysis, ref: HookRef, base: str, suffix: str) -> str:
    """An SAE hook under an SAE whose own hook point is not known here: the axis every SAE gives it."""
    shape = ANY_BASE_SHAPES.get(suffix)
    head = f"`{{{base}}}.{suffix}`" + (f" · `{format_shape(shape)}`" if shape else "")
    rest = "" if shape else " (the shape of that hook)"
    _, spec = _catalog(analysis, ref.model)
    return "\n\n".join([
        head,
        f"{SAE_POINTS[suffix][1]}{rest}, for the SAE attached at `{base}`, a hook point not known here.",
        "Exists only while that SAE is attached (SAE Lens: `model.add_sae(sae)`, or "
        "`model.run_with_cache_with_saes(..., saes=[sae])`)" + ("; `d_sae` is the SAE's width, `d_in` its input's" if shape else "") + ".",
        *([f"`{ref.how}`"] if ref.how else []),
        provenance(ref.model, spec),
    ])


def _sae_own_markdown(analysis: Analysis, ref: HookRef) -> str:
    """``cache["hook_sae_acts_post"]`` of a cache an SAE made itself (an SAE is a HookedRootModule)."""
    shape = ANY_BASE_SHAPES.get(ref.template or "")
    head = f"`{ref.template}`" + (f" · `{format_shape(shape)}`" if shape else "")
    return "\n\n".join([
        head,
        f"{SAE_POINTS[ref.template or ''][1]}: a hook point of an SAE itself (a cache of `sae.run_with_cache(x)`), "
        "not of a model" + (" (the shape of the SAE's input)" if not shape else "; `d_sae` is the SAE's width, `d_in` its input's") + ".",
    ])


def _display_name(ref: HookRef) -> str:
    name = ref.name()
    if name is not None:
        return name
    return (ref.template or "").replace("{l}", "{" + (ref.layer_expr or "l") + "}")


def _filter_markdown(ref: HookRef, catalog: Catalog) -> str:
    verb = {"suffix": "ends with", "prefix": "starts with", "substring": "contains"}[ref.match]
    needle = ref.template or ""
    test = {"suffix": str.endswith, "prefix": str.startswith, "substring": str.__contains__}[ref.match]
    matches = [p for p in catalog.points if test(p.template.replace("{l}", "0"), needle)]
    n = catalog.spec.n_layers
    lines = [f"**names_filter**: hook name {verb} `{needle!s}`", ""]
    if not matches:
        lines.append("Matches no hook point" + (f" of {catalog.spec.label}." if catalog.spec.structure_known else "."))
    else:
        for p in matches[:12]:
            count = f" × {n} layers" if p.per_layer and n else ""
            lines.append(f"- `{p.template}` `{format_shape(concrete_shape(p.shape, catalog.spec))}`{count}")
        if len(matches) > 12:
            lines.append(f"- … {len(matches) - 12} more")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ weights

# Stacked (model-level) weight shapes; the per-block attribute drops the leading n_layers.
WEIGHTS: dict[str, tuple[tuple[str, ...], str]] = {
    "W_E": (("d_vocab", "d_model"), "Token embedding"),
    "W_pos": (("n_ctx", "d_model"), "Positional embedding"),
    "W_E_pos": (("d_vocab+n_ctx", "d_model"), "Token and positional embeddings, stacked"),
    "W_U": (("d_model", "d_vocab"), "Unembedding"),
    "b_U": (("d_vocab",), "Unembedding bias"),
    "W_Q": (("n_layers", "n_heads", "d_model", "d_head"), "Query weights"),
    "W_K": (("n_layers", "n_heads", "d_model", "d_head"), "Key weights (expanded to n_heads under GQA)"),
    "W_V": (("n_layers", "n_heads", "d_model", "d_head"), "Value weights (expanded to n_heads under GQA)"),
    "W_O": (("n_layers", "n_heads", "d_head", "d_model"), "Output weights"),
    "b_Q": (("n_layers", "n_heads", "d_head"), "Query bias"),
    "b_K": (("n_layers", "n_heads", "d_head"), "Key bias"),
    "b_V": (("n_layers", "n_heads", "d_head"), "Value bias"),
    "b_O": (("n_layers", "d_model"), "Output bias"),
    "W_in": (("n_layers", "d_model", "d_mlp"), "MLP input weights"),
    "W_gate": (("n_layers", "d_model", "d_mlp"), "MLP gate weights (gated MLPs)"),
    "W_out": (("n_layers", "d_mlp", "d_model"), "MLP output weights"),
    "b_in": (("n_layers", "d_mlp"), "MLP input bias"),
    "b_out": (("n_layers", "d_model"), "MLP output bias"),
    "QK": (("n_layers", "n_heads", "d_model", "d_model"), "FactoredMatrix W_Q @ W_K.T"),
    "OV": (("n_layers", "n_heads", "d_model", "d_model"), "FactoredMatrix W_V @ W_O"),
}
_BLOCK = re.compile(r"^(?P<model>\w+)\.blocks\[[^\]]+\](?:\.(?:attn|mlp))?$")


def weight_hover(analysis: Analysis, offset: int) -> HoverText | None:
    node = analysis.parsed.root.descendant_for_byte_range(offset, offset)
    if node is None or node.type != "identifier" or text(node) not in WEIGHTS:
        return None
    attr = node.parent
    if attr is None or attr.type != "attribute" or attr.child_by_field_name("attribute") != node:
        return None
    obj = attr.child_by_field_name("object")
    shape, meaning = WEIGHTS[text(node)]
    model = analysis.models.model_at(obj) if obj is not None and obj.type == "identifier" else None
    if model is None and obj is not None:
        m = _BLOCK.match(text(obj))
        if m is None:
            return None
        base = _base_identifier(obj)
        model = analysis.models.model_at(base) if base is not None else None
        if model is None or shape[0] != "n_layers":
            return None
        shape = shape[1:]
    if model is None:
        return None
    spec = model.effective_spec
    symbolic = format_shape(shape)
    concrete = format_shape(concrete_shape(shape, spec))
    head = f"`{text(attr)}` · `{symbolic}`" + (f" = `{concrete}`" if concrete != symbolic else "")
    md = "\n\n".join([head, meaning + ".", provenance(model, spec)])
    return HoverText(md, attr.start_byte, attr.end_byte)


def _base_identifier(node: Node) -> Node | None:
    while node is not None and node.type != "identifier":
        node = node.child_by_field_name("object") or node.child_by_field_name("value")  # type: ignore[assignment]
    return node
