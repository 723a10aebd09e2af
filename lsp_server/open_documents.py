"""The editor's open documents: looked up by the URI the editor sent, and split into lines as LSP does.

pygls keys its documents by the *unquoted* URI (``file:///a/my file.py``) while editors send it quoted
(``file:///a/my%20file.py``): a plain ``text_documents.get(uri)`` misses every file whose path has a
space or a non-ASCII character. Lookups go through :func:`open_document`, and the URIs we publish
for are the ones the editor sent (:func:`open_uris`), never the keys.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

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
    ``\\u2029``: an incremental edit below such a character landed on another line than the editor's."""

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(_LSP_LINE.findall(self.source))


class LspWorkspace(Workspace):
    def _create_text_document(self, doc_uri: str, source: str | None = None, version: int | None = None,
                              language_id: str | None = None) -> TextDocument:
        return LspTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                               sync_kind=self._sync_kind, position_codec=self.position_codec)


def lsp_workspace(made: Workspace) -> LspWorkspace:
    """The workspace pygls just made at ``initialize`` (no documents yet), as an :class:`LspWorkspace`."""
    return LspWorkspace(made.root_uri, made._sync_kind, list(made.folders.values()), made.position_encoding)
