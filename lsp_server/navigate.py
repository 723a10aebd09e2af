"""Navigation handlers: go to definition, find references and document symbols on hook names.

The answers are computed protocol-free by :mod:`features.navigation`; here they become LSP locations.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

from .analysis.source import LineIndex
from .analysis.syntax import Node
from .analysis.values import Evaluator
from .features import convert, navigation
from .handlers import handles
from .knowledge import hook_sources

if TYPE_CHECKING:
    from .server import TlensServer
    from .workspace import View

SYMBOL_KINDS = {"experiment": types.SymbolKind.Event, "hook function": types.SymbolKind.Function}


def tl_package(ls: "TlensServer") -> Path | None:
    """The installed ``transformer_lens`` the code runs with: the kernel interpreter's, else the server's."""
    python = ls.settings.kernel_python
    return (hook_sources.package_dir(python) if python else None) or hook_sources.package_dir(None)


def _point(line: int, character: int) -> types.Range:
    return types.Range(types.Position(line, character), types.Position(line, character))


def _function_location(view: View, evaluator: Evaluator, fn: Node) -> types.Location | None:
    """Where a def's name is: in this document (a file, or any cell of its notebook) or in another workspace file."""
    name = fn.child_by_field_name("name") or fn
    if evaluator is view.analysis.evaluator:
        found = view.locate(name.start_byte)
        return types.Location(uri=found[0], range=_point(found[1], found[2])) if found is not None else None
    if evaluator.links is None:
        return None
    position = LineIndex(evaluator.scopes.parsed.source).position(name.start_byte)
    return types.Location(uri=evaluator.links.path.as_uri(), range=_point(position.line, position.character))


def register(server: "TlensServer") -> None:
    """Register the navigation handlers on ``server``."""

    @handles(server, types.TEXT_DOCUMENT_DEFINITION, default=None)
    async def definition(ls: "TlensServer", params: types.DefinitionParams) -> list[types.Location] | None:
        """On a hook name: the workspace helper that builds it, if any, and where the installed
        TransformerLens defines that hook point."""
        view = await ls.current_view(params.text_document.uri)
        if view is None:
            return None
        offset = view.offset(params.position.line, params.position.character)
        out = [loc for evaluator, fn in navigation.helper_definitions(view.analysis, offset)
               if (loc := _function_location(view, evaluator, fn)) is not None]
        if navigation.hook_names_at(view.analysis, offset):
            package = await asyncio.to_thread(tl_package, ls)  # may ask another interpreter, once
            out += [types.Location(uri=loc.path.as_uri(), range=_point(loc.line, loc.column))
                    for loc in navigation.definition(view.analysis, offset, package)]
        return out or None

    @handles(server, types.TEXT_DOCUMENT_DOCUMENT_SYMBOL, default=None)
    async def document_symbol(ls: "TlensServer", params: types.DocumentSymbolParams) -> list[types.DocumentSymbol] | None:
        """The patching experiments and hook functions of a file (or of a notebook cell)."""
        view = await ls.current_view(params.text_document.uri)
        if view is None:
            return None
        out = []
        for symbol in navigation.document_symbols(view.analysis):
            if view.contains(symbol.start):  # a notebook cell lists its own
                out.append(types.DocumentSymbol(name=symbol.name, detail=symbol.detail, kind=SYMBOL_KINDS[symbol.kind],
                                                range=convert.range_(view, symbol.start, symbol.end),
                                                selection_range=convert.range_(view, symbol.name_start, symbol.name_end)))
        return out or None

    @handles(server, types.WORKSPACE_SYMBOL, default=None)
    async def workspace_symbol(ls: "TlensServer", params: types.WorkspaceSymbolParams) -> list[types.WorkspaceSymbol] | None:
        """The patching experiments and hook functions of every open document and workspace file whose name
        holds the query (any case), as document symbols list them."""
        views = await asyncio.get_running_loop().run_in_executor(ls.analysis_worker, ls.all_views())
        query, out = params.query.lower(), []
        for view in views:
            for symbol in navigation.document_symbols(view.analysis):
                if query in symbol.name.lower() and view.contains(symbol.start):
                    out.append(types.WorkspaceSymbol(name=symbol.name, kind=SYMBOL_KINDS[symbol.kind], container_name=symbol.detail,
                                                     location=types.Location(uri=view.uri, range=convert.range_(
                                                         view, symbol.name_start, symbol.name_end))))
        return out or None

    @handles(server, types.TEXT_DOCUMENT_REFERENCES, default=None)
    async def references(ls: "TlensServer", params: types.ReferenceParams) -> list[types.Location] | None:
        """On a hook name: every read, registration, filter and get_act_name of that hook point in the
        open documents and the workspace's Python files (any layer, where a layer is unknown)."""
        view = await ls.current_view(params.text_document.uri)
        if view is None:
            return None
        targets = navigation.hook_names_at(view.analysis, view.offset(params.position.line, params.position.character))
        if not targets:
            return None
        views = await asyncio.get_running_loop().run_in_executor(ls.analysis_worker, ls.all_views())
        out, seen = [], set()
        for other in views:
            if id(other.analysis) in seen and other.cell is None:
                continue
            seen.add(id(other.analysis))
            for start, end in navigation.references(other.analysis, targets):
                where = other.locate(start)
                stop = other.locate(end)
                if where is None or stop is None or (other.cell is not None and where[0] != other.uri):
                    continue
                out.append(types.Location(uri=where[0], range=types.Range(types.Position(where[1], where[2]),
                                                                           types.Position(stop[1], stop[2]))))
        unique = {(l.uri, l.range.start.line, l.range.start.character): l for l in out}
        return list(unique.values()) or None
