"""Inlay hints: the shape of each activation assigned from a cache. Protocol-free.

``resid = cache["resid_post", 5]`` shows ``: [batch, pos, 768]`` after ``resid``;
``lens = cache.accumulated_resid()`` shows ``: [13, batch, pos, 768]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.cache_stacks import stack_call
from ..analysis.document import Analysis
from ..analysis.syntax import Node
from ..knowledge.hookpoints import catalog_for, concrete_shape, format_shape


@dataclass(frozen=True)
class Hint:
    offset: int  # where the hint is shown (end of the assigned name)
    label: str
    tooltip: str


def inlay_hints(analysis: Analysis, start: int, end: int) -> list[Hint]:
    out: list[Hint] = []
    for ref in analysis.refs:
        if ref.context != "cache" or ref.template is None or not (start <= ref.start <= end):
            continue
        sub = analysis.parsed.root.descendant_for_byte_range(ref.start, ref.end)
        while sub is not None and sub.type != "subscript":
            sub = sub.parent
        assign = sub.parent if sub is not None else None
        if assign is None or assign.type != "assignment" or assign.child_by_field_name("right") != sub:
            continue
        target = assign.child_by_field_name("left")
        if target is None or target.type != "identifier":
            continue
        spec = ref.model.effective_spec if ref.model else None
        if spec is None:
            continue
        catalog = catalog_for(spec, analysis.context.tl_major or (4 if spec.backend == "bridge" else 2))
        found = catalog.lookup(ref.template.replace("{l}", "0"))
        if found is None:
            continue
        shape = found[0].shape
        if ref.cache is not None and ref.cache.remove_batch_dim and shape[:1] == ("batch",):
            shape = shape[1:]
        concrete = format_shape(concrete_shape(shape, spec))
        out.append(Hint(target.end_byte, f": {concrete}", f"{ref.template.replace('{l}', str(ref.layer) if ref.layer is not None else '{layer}')} {format_shape(shape)}"))
    return sorted(out + _stack_hints(analysis, start, end), key=lambda h: h.offset)


def _stack_hints(analysis: Analysis, start: int, end: int) -> list[Hint]:
    """``x = cache.accumulated_resid(...)`` and ``x, labels = ...(return_labels=True)``."""
    out = []
    for call in analysis.method_calls:
        target = _assigned_name(call) if start <= call.start_byte <= end else None
        found = stack_call(analysis, call) if target is not None else None
        if found is None or found.stack.shape is None or found.stack.raises or found.cache.model is None:
            continue
        spec = found.catalog.spec
        out.append(Hint(target.end_byte, f": {format_shape(concrete_shape(found.stack.shape, spec))}",
                        f"{found.method}: {format_shape(('components', *found.stack.shape[1:]))}"))
    return out


def _assigned_name(call: Node) -> Node | None:
    """The name a call's value goes to: ``x = call`` or, for ``(tensor, labels)``, ``x, labels = call``."""
    assign = call.parent
    if assign is None or assign.type != "assignment" or assign.child_by_field_name("right") != call:
        return None
    target = assign.child_by_field_name("left")
    if target is not None and target.type in ("pattern_list", "tuple_pattern") and target.named_children:
        target = target.named_children[0]
    return target if target is not None and target.type == "identifier" else None
