"""The hover request: the static hover (hook names, weights, stacks, tokens) or a sweep's heatmap, and
with a live kernel attached the picture of the tensor under the cursor (``live_pictures.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .features import convert
from .features.hover import hover as hover_at
from .handlers import handles
from .quick_hover import hover_before_analysis

if TYPE_CHECKING:  # pragma: no cover
    from .server import TlensServer


def register(server: "TlensServer") -> None:
    """Register the hover handler on ``server``."""

    @handles(server, types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: "TlensServer", params: types.HoverParams) -> types.Hover | None:
        if ls.live.facts is None:  # a live picture needs the analysis of the new text
            quick = hover_before_analysis(ls, params.text_document.uri, params.position)
            if quick is not None:
                return quick
        view = await ls.current_view(params.text_document.uri)
        if view is None:
            return None
        offset = view.offset(params.position.line, params.position.character)
        result = hover_at(view.analysis, offset)
        if result is None:
            markdown = ls.sweeps.hover(view, offset)
            if markdown is None:
                return None
            return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=markdown))
        markdown = result.markdown
        picture = await ls.pictures.hover_section(view, offset)
        if picture:  # right under the first line (name and shapes), above the fold of a small hover
            first, _, rest = markdown.partition("\n\n")
            markdown = f"{first}\n\n{picture}\n\n---\n\n{rest}" if rest else f"{first}\n\n{picture}"
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=markdown),
                           range=convert.range_(view, result.start, result.end))
