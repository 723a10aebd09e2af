"""The editor's open documents: looked up by the URI the editor sent, and split into lines as LSP does.

pygls keys its documents by the *unquoted* URI (``file:///a/my file.py``) while editors send it quoted
(``file:///a/my%20file.py``): a plain ``text_documents.get(uri)`` misses every file whose path has a
space or a non-ASCII character. Lookups go through :func:`open_document`, and the URIs we publish
for are the ones the editor sent (:func:`open_uris`), never the keys.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def open_document(workspace: Workspace, uri: str) -> TextDocument | None:
    return workspace.text_documents.get(unquote(uri))


def open_uris(workspace: Workspace) -> list[str]:
    """The URI of every open text document (notebook cells included), as the editor sent it."""
    return [doc.uri for doc in list(workspace.text_documents.values())]


class LspTextDocument(TextDocument):
    """Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` only, as in LSP and in editors. pygls splits with
    ``str.splitlines``, which also breaks at form feeds, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028`` and
    ``\\u2029``: an incremental edit below such a character landed on another line than the editor's.

    The lines are kept with the text they were split from, and an incremental change is spliced into
    the text, splitting again only the lines around it: pygls splits and rewrites the whole text on
    every keystroke (~5 ms on a 5,000-line file, more than a hover costs)."""

    _split: tuple[str, tuple[str, ...]] | None = None  # (text, its lines)

    @property
    def lines(self) -> tuple[str, ...]:
        source = self.source
        if self._split is None or self._split[0] is not source:
            self._split = (source, tuple(_LSP_LINE.findall(source)))
        return self._split[1]

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        lines, source = self.lines, self.source
        where = self._position_codec.range_from_client_units(lines, change.range)
        start = _offset(lines, where.start.line, where.start.character)
        end = max(start, _offset(lines, where.end.line, where.end.character))
        new = source[:start] + change.text + source[end:]
        # The lines from the one before the change (a `\\r` there may now end in `\\r\\n`) to the one after it.
        first = max(min(where.start.line, len(lines)) - 1, 0)
        last = min(where.end.line + 2, len(lines))
        lo, hi = len("".join(lines[:first])), len("".join(lines[:last])) + len(new) - len(source)
        self._source = new
        self._split = (new, lines[:first] + tuple(_LSP_LINE.findall(new, lo, hi)) + lines[last:])


def _offset(lines: tuple[str, ...], line: int, character: int) -> int:
    """The offset of (line, character in code points) in the text of ``lines``; past a line's end: its end."""
    if line >= len(lines):
        return sum(map(len, lines))
    return len("".join(lines[:line])) + min(character, len(lines[line]))


class LspWorkspace(Workspace):
    def _create_text_document(self, doc_uri: str, source: str | None = None, version: int | None = None,
                              language_id: str | None = None) -> TextDocument:
        return LspTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                               sync_kind=self._sync_kind, position_codec=self.position_codec)


def lsp_workspace(made: Workspace) -> LspWorkspace:
    """The workspace pygls just made at ``initialize`` (no documents yet), as an :class:`LspWorkspace`."""
    return LspWorkspace(made.root_uri, made._sync_kind, list(made.folders.values()), made.position_encoding)
