"""Hover on ``cache.accumulated_resid(...)`` and the other stacking methods: shape and components."""

from __future__ import annotations

from ...analysis.cache_stacks import SIGNATURES, StackCall, stack_call, why_it_raises
from ...analysis.document import Analysis
from ...analysis.syntax import text
from ...knowledge.hookpoints import concrete_shape, format_shape
from .text import HoverText, provenance

_SHOWN_LABELS = 16


def stack_hover(analysis: Analysis, offset: int) -> HoverText | None:
    node = analysis.parsed.root.descendant_for_byte_range(offset, offset)
    if node is None or node.type != "identifier" or text(node) not in SIGNATURES:
        return None
    attr = node.parent
    call = attr.parent if attr is not None else None
    if attr is None or attr.type != "attribute" or attr.child_by_field_name("attribute") != node:
        return None
    if call is None or call.type != "call" or call.child_by_field_name("function") != attr:
        return None
    found = stack_call(analysis, call)
    if found is None:
        return None
    md = _markdown(found) + "\n\n" + provenance(found.cache.model, found.catalog.spec)
    return HoverText(md, node.start_byte, node.end_byte)


def _markdown(found: StackCall) -> str:
    stack, spec = found.stack, found.catalog.spec
    call_text = text(found.call)
    if len(call_text) > 80 or "\n" in call_text:
        call_text = text(found.call.child_by_field_name("function")) + "(…)"
    head = f"`{call_text}`"
    if stack.shape is not None and not stack.raises:
        symbolic = format_shape(("components", *stack.shape[1:]))
        concrete = format_shape(concrete_shape(stack.shape, spec))
        head += f" · `{symbolic}`" + (f" = `{concrete}`" if concrete != symbolic else "")
    lines = [head]
    if stack.raises:
        lines.append(f"⚠ {why_it_raises(found)}")
    elif stack.labels is not None:
        what = "layers" if found.method == "stack_activation" else "components"
        given = "" if found.method == "stack_activation" else " (what `return_labels=True` gives)"
        lines.append(f"**{len(stack.labels)} {what}**{given}: {_labels(stack.labels)}")
    lines.append(f"Components: {stack.count_rule}.")
    if stack.returns_labels:
        lines.append("Returns `(tensor, labels)`.")
    lines += stack.notes
    return "\n\n".join(lines)


def _labels(labels: list[str]) -> str:
    shown = labels if len(labels) <= _SHOWN_LABELS else labels[:6] + ["…"] + labels[-2:]
    return ", ".join(label if label == "…" else f"`{label}`" for label in shown) or "none"
