"""The workspace's modules as an editor session sees them: open files as the editor holds them
(unsaved edits count), the others as they are on disk."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from pygls.uris import from_fs_path, to_fs_path

from .analysis.document import Analysis
from .modules import WorkspaceModules
from .open_documents import open_document

if TYPE_CHECKING:
    from .server import TlensServer


def editor_modules(ls: TlensServer) -> WorkspaceModules:
    def roots() -> list[Path]:
        folders = [f.uri for f in ls.workspace.folders.values()] or ([ls.workspace.root_uri] if ls.workspace.root_uri else [])
        return [p for uri in folders if (p := local_path(uri)) is not None]

    def open_version(path: Path) -> int | None:
        doc = open_document(ls.workspace, uri_of(path))
        return doc.version if doc is not None else None

    def open_text(path: Path) -> str | None:
        doc = open_document(ls.workspace, uri_of(path))
        return doc.source if doc is not None else None

    def analysis(path: Path) -> Analysis | None:
        uri = uri_of(path)
        doc = open_document(ls.workspace, uri)
        if doc is not None:
            return ls.workspace_cache.text_view(uri, doc.source, doc.version).analysis
        text = modules.text(path)
        return ls.disk_cache.text_view(uri, text, None).analysis if text is not None else None

    modules = WorkspaceModules(roots, open_version, analysis, open_text)
    return modules


@functools.lru_cache(maxsize=4096)
def uri_of(path: Path) -> str:
    """The URI the editor knows a workspace file by (asked for every file an analysis read, each time its
    freshness is checked: worth remembering)."""
    return from_fs_path(str(path)) or path.as_uri()


def local_path(uri: str | None) -> Path | None:
    """The file a ``file:`` URI names (None for other schemes: untitled documents, notebook cells)."""
    path = to_fs_path(uri) if uri and uri.startswith("file:") else None
    return Path(path) if path else None
