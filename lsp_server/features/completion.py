"""Completion of hook names inside strings, filtered by what the model in use has. Protocol-free.

Lists stay short so every request answers in well under a millisecond: short names and global
hooks first, then ``blocks.N.`` prefixes; once a layer is typed, that layer's hook names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..analysis.document import Analysis
from ..analysis.syntax import Node, call_name, string_content_range, text
from ..knowledge.act_names import ACT_NAME_ALIAS, GLOBAL_SHORT_NAMES, SHORT_NAMES, get_act_name
from ..knowledge.hookpoints import Catalog, catalog_for, concrete_shape, format_shape
from ..knowledge.spec import SYMBOLIC

_LAYER_PREFIX = re.compile(r"^blocks\.(\d+)\.")
HOOK_CALLS = frozenset({"add_hook", "add_perma_hook", "get_act_name"})


@dataclass(frozen=True)
class Candidate:
    label: str
    detail: str  # shape, or what a short name expands to
    documentation: str
    kind: str  # "short" | "hook" | "prefix"
    start: int  # byte range the completion replaces (the string content typed so far)
    end: int
    retrigger: bool = False  # ask the editor to complete again after inserting (for "blocks.N.")


def completions(analysis: Analysis, offset: int) -> list[Candidate]:
    node = _string_at(analysis, offset)
    if node is not None:
        context = _context(analysis, node)
        start, end = string_content_range(node)
    else:  # a string still being typed (no closing quote yet): the parser has no string node
        context, start = _context_from_line(analysis, offset)
        end = offset
    if context is None:
        return []
    kind, model = context
    typed = analysis.source[start:offset].decode("utf-8", "replace")
    spec = model.effective_spec if model else SYMBOLIC
    catalog = catalog_for(spec, analysis.context.tl_major or (4 if spec.backend == "bridge" else 2))
    out: list[Candidate] = []
    m = _LAYER_PREFIX.match(typed)
    if m:
        return _layer_names(catalog, int(m.group(1)), start, end)
    if kind in ("first", "act_name", "key"):
        out += _short_names(catalog, start, end, layered=True)
    if kind in ("short", "act_name", "key"):
        out += _short_names(catalog, start, end, layered=False)
    if kind in ("short", "full", "act_name", "key"):
        out += _global_names(catalog, start, end)
        n = spec.n_layers or 1
        for layer in range(n):
            out.append(Candidate(f"blocks.{layer}.", f"layer {layer} hooks", "", "prefix", start, end, True))
    return out


def _string_at(analysis: Analysis, offset: int) -> Node | None:
    node = analysis.parsed.root.descendant_for_byte_range(max(offset - 1, 0), offset)
    while node is not None and node.type not in ("string", "module"):
        node = node.parent
    if node is None or node.type != "string":
        return None
    start, end = string_content_range(node)
    return node if start <= offset <= end else None


def _context(analysis: Analysis, string: Node):
    """("short" | "first" | "act_name" | "full", model) when the string is a hook name position, else None."""
    parent = string.parent
    if parent is None:
        return None
    models = analysis.models
    # cache["...  or  cache["...", layer
    sub = parent if parent.type == "subscript" else parent.parent if parent.type == "tuple" else None
    if sub is not None and sub.type == "subscript":
        value = sub.child_by_field_name("value")
        if value is not None and value.type == "identifier":
            cache = models.cache_at(value)
            if cache is not None or "cache" in text(value).lower():
                model = (cache.model if cache else None) or models.sole_model()
                in_tuple = parent.type == "tuple" or len(sub.children_by_field_name("subscript")) > 1
                if in_tuple and string != (parent.named_children[0] if parent.type == "tuple" else sub.children_by_field_name("subscript")[0]):
                    return None
                return ("first" if in_tuple else "short"), model
    # add_hook("...", fn) / get_act_name("...")
    args = parent if parent.type == "argument_list" else None
    if args is not None and args.named_children and args.named_children[0] == string:
        call = args.parent
        _, method, receiver = call_name(call)
        if method in HOOK_CALLS:
            model = models.model_at(receiver) if receiver is not None and receiver.type == "identifier" else None
            return ("act_name" if method == "get_act_name" else "full"), model or models.sole_model()
        if method == "stack_activation" and receiver is not None and receiver.type == "identifier":
            cache = models.cache_at(receiver)  # stacks cache[name, l] over layers: per-layer short names
            return ("first", cache.model or models.sole_model()) if cache is not None else None
    # fwd_hooks=[("...", fn)]
    if parent.type == "tuple" and parent.named_children and parent.named_children[0] == string:
        holder = parent.parent
        while holder is not None and holder.type in ("list", "list_comprehension"):
            holder = holder.parent
        if holder is not None and holder.type == "keyword_argument" and text(holder.child_by_field_name("name")) in ("fwd_hooks", "bwd_hooks"):
            return "full", models.sole_model()
    # names_filter="..."  /  hook.name == "..."
    if parent.type == "keyword_argument" and text(parent.child_by_field_name("name")) == "names_filter":
        return "full", models.sole_model()
    if parent.type == "comparison_operator" and any(text(c).endswith(".name") for c in parent.named_children):
        return "full", models.sole_model()
    return None


_OPEN_SUBSCRIPT = re.compile(r"""(?P<obj>[A-Za-z_]\w*)\[\s*["'](?P<typed>[^"'\\]*)$""")
_OPEN_CALL = re.compile(r"""(?:\.|\b)(?P<fn>add_hook|add_perma_hook|get_act_name)\(\s*["'](?P<typed>[^"'\\]*)$""")
_OPEN_STACK = re.compile(r"""(?P<obj>[A-Za-z_]\w*)\.stack_activation\(\s*["'](?P<typed>[^"'\\]*)$""")
_OPEN_HOOK_TUPLE = re.compile(r"""(?:fwd_hooks|bwd_hooks)\s*=\s*\[(?:[^\]]*,)?\s*\(\s*["'](?P<typed>[^"'\\]*)$""")


def _context_from_line(analysis: Analysis, offset: int):
    """Context of an unterminated string, from the text of the line before the cursor."""
    line_start = analysis.source.rfind(b"\n", 0, offset) + 1
    prefix = analysis.source[line_start:offset].decode("utf-8", "replace")
    models = analysis.models
    m = _OPEN_SUBSCRIPT.search(prefix)
    if m:
        cache = models.cache_named(m.group("obj"), offset)
        if cache is None and "cache" not in m.group("obj").lower():
            return None, offset
        model = (cache.model if cache else None) or models.sole_model()
        return ("key", model), offset - len(m.group("typed").encode())
    m = _OPEN_CALL.search(prefix)
    if m:
        kind = "act_name" if m.group("fn") == "get_act_name" else "full"
        return (kind, models.sole_model()), offset - len(m.group("typed").encode())
    m = _OPEN_HOOK_TUPLE.search(prefix)
    if m:
        return ("full", models.sole_model()), offset - len(m.group("typed").encode())
    m = _OPEN_STACK.search(prefix)
    if m and (cache := models.cache_named(m.group("obj"), offset)) is not None:
        return ("first", cache.model or models.sole_model()), offset - len(m.group("typed").encode())
    return None, offset


def _short_names(catalog: Catalog, start: int, end: int, layered: bool) -> list[Candidate]:
    """Short keys: per-layer names for ``cache[name, layer]``, global ones for ``cache[name]``."""
    out = []
    for short in dict.fromkeys(SHORT_NAMES if layered else GLOBAL_SHORT_NAMES):
        layer = 0 if layered else None
        layer_type = "ln1" if layered and short in ("scale", "normalized") else None
        found = catalog.lookup(get_act_name(short, layer, layer_type))
        if found is None:
            continue
        point = found[0]
        target = point.template.replace("{l}", "<layer>")
        if layer_type:
            target += " (with 'ln1' or 'ln2' as third element)"
        alias = f" (alias of {ACT_NAME_ALIAS[short]!r})" if short in ACT_NAME_ALIAS else ""
        shape = format_shape(concrete_shape(point.shape, catalog.spec))
        gate = f" — needs {point.gate}=True" if point.gate else ""
        out.append(Candidate(short, f"{target}{alias}", f"{point.meaning}. `{shape}`{gate}", "short", start, end))
    return out


def _global_names(catalog: Catalog, start: int, end: int) -> list[Candidate]:
    return [
        Candidate(p.template, format_shape(concrete_shape(p.shape, catalog.spec)), p.meaning, "hook", start, end)
        for p in catalog.points if not p.per_layer and "{e}" not in p.template
    ]


def _layer_names(catalog: Catalog, layer: int, start: int, end: int) -> list[Candidate]:
    if catalog.spec.n_layers is not None and layer >= catalog.spec.n_layers:
        return []
    return [
        Candidate(p.name(layer), format_shape(concrete_shape(p.shape, catalog.spec)),
                  p.meaning.replace("{l}", str(layer)) + (f" (needs {p.gate}=True)" if p.gate else ""), "hook", start, end)
        for p in catalog.points if p.per_layer and "{e}" not in p.template and not p.dead
    ]
