"""The editor's open documents, looked up by the URI the editor sent.

pygls keys its documents by the *unquoted* URI (``file:///a/my file.py``) while editors send it quoted
(``file:///a/my%20file.py``): a plain ``text_documents.get(uri)`` misses every file whose path has a
space or a non-ASCII character. Lookups go through :func:`open_document`, and the URIs we publish
for are the ones the editor sent (:func:`open_uris`), never the keys.
"""

from __future__ import annotations

from urllib.parse import unquote

from pygls.workspace import TextDocument, Workspace


def open_document(workspace: Workspace, uri: str) -> TextDocument | None:
    return workspace.text_documents.get(unquote(uri))


def open_uris(workspace: Workspace) -> list[str]:
    """The URI of every open text document (notebook cells included), as the editor sent it."""
    return [doc.uri for doc in list(workspace.text_documents.values())]
