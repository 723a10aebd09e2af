"""Hover text, Markdown and protocol-free: hook names and weights (``hooks``, which states the
first-line contract), cache-stacking calls (``stacks``), token strings (``tokens``)."""

from __future__ import annotations

from ...analysis.document import Analysis
from ...analysis.edits import Edit
from .hooks import hook_ref_markdown, weight_hover
from .stacks import stack_hover
from .text import HoverText
from .tokens import token_hover

__all__ = ["HoverText", "hook_ref_markdown", "hover", "hover_after_edit"]


def hover(analysis: Analysis, offset: int) -> HoverText | None:
    """Hover for the hook reference or weight at ``offset``, if any."""
    ref = analysis.ref_at(offset)
    if ref is not None:
        md = hook_ref_markdown(analysis, ref)
        if md:
            return HoverText(md, ref.start, ref.end)
    return weight_hover(analysis, offset) or stack_hover(analysis, offset) or token_hover(analysis, offset)


def hover_after_edit(previous: Analysis, edit: Edit, offset: int) -> HoverText | None:
    """The previous version's hover at ``offset`` (a new-text offset), when the edit cannot have changed
    it: a hook name outside the edited lines, computed from names the edit does not mention. None: not
    sure, analyse the new text."""
    old = edit.to_old(offset)
    ref = previous.ref_at(old) if old is not None else None
    if ref is None or not edit.spares(ref.start, ref.end, ref.deps, ref.spans):
        return None
    markdown = hook_ref_markdown(previous, ref)
    start, end = edit.to_new(ref.start), edit.to_new(ref.end)
    if not markdown or start is None or end is None:
        return None
    return HoverText(markdown, start, end)
