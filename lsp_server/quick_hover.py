"""Hovers right after an edit, from the previous analysis, for positions the edit cannot have changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .analysis.source import LineIndex
from .features.hover import hover_after_edit
from .open_documents import open_document

if TYPE_CHECKING:
    from .server import TlensServer


def hover_before_analysis(ls: TlensServer, uri: str, position: types.Position) -> types.Hover | None:
    """Right after an edit, a hover the edit cannot have changed comes from the previous analysis:
    no waiting for the whole file (or notebook) to be analysed again (the diagnostics run does that)."""
    notebook = ls.workspace.get_notebook_document(cell_uri=uri)
    cell = None
    if notebook is not None:
        previous = ls.workspace_cache.previous_notebook_view(notebook.uri, ls.code_cells(notebook))
        if previous is None:
            return None
        analysis, edit, source, spans = previous
        cell = next((s for s in spans if s.uri == uri), None)
        if cell is None:
            return None
    else:
        doc = open_document(ls.workspace, uri)
        previous = ls.workspace_cache.previous_text_view(uri, doc.source, doc.version) if doc is not None else None
        if previous is None:
            return None
        analysis, edit, source = previous
    lines = analysis.lines if source == analysis.source else LineIndex(source)  # (expired, same text: a tokenizer loaded)
    first_line = cell.start_line if cell is not None else 0
    result = hover_after_edit(analysis, edit, lines.offset(first_line + position.line, position.character))
    if result is None or (cell is not None and not cell.start_byte <= result.start <= result.end <= cell.end_byte):
        return None
    ls.hovers_before_analysis += 1
    start, end = lines.position(result.start), lines.position(result.end)
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=result.markdown),
                       range=types.Range(types.Position(start.line - first_line, start.character),
                                         types.Position(end.line - first_line, end.character)))
