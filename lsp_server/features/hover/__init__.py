"""Hover text, Markdown and protocol-free: hook names and weights (``hooks``, which states the
first-line contract), cache-stacking calls (``stacks``), token strings (``tokens``)."""

from __future__ import annotations

from ...analysis.document import Analysis
from .hooks import hook_ref_markdown, weight_hover
from .stacks import stack_hover
from .text import HoverText
from .tokens import token_hover

__all__ = ["HoverText", "hook_ref_markdown", "hover"]


def hover(analysis: Analysis, offset: int) -> HoverText | None:
    """Hover for the hook reference or weight at ``offset``, if any."""
    ref = analysis.ref_at(offset)
    if ref is not None:
        md = hook_ref_markdown(analysis, ref)
        if md:
            return HoverText(md, ref.start, ref.end)
    return weight_hover(analysis, offset) or stack_hover(analysis, offset) or token_hover(analysis, offset)
