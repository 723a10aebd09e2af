"""Workspace files as modules: which file ``import utils`` means, its analysis, and who imports a file.

Each analysis gets its own :class:`DocumentLinks`, which records every other file it looked at and that
file's version then (its *dependencies*): the analysis is stale as soon as one of them changes, in the
editor or on disk. Files are analysed through the same caches as open documents, so each version of a
file is analysed once whoever asks.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Callable

from .analysis.document import Analysis, AnalysisContext
from .analysis.imports import LIBRARIES
from .import_map import WORD, ImportMap, Stamp
from .workspace import Workspace, python_files

MAX_IMPORTERS = 8  # files whose calls bind a module's parameters: beyond this, the rest are not read
MAX_CHAIN = 4  # files analysed one inside another's analysis (a imports b imports c ...)
INDEX_SECONDS = 10.0  # how long a list of the workspace's files serves before it is walked again
_CUT = object()  # the stamp of a file not read (a cycle, or past MAX_CHAIN): redone when asked for itself
_DEEP = object()  # what analyse_within answers past MAX_CHAIN


class WorkspaceModules:
    """The workspace's Python files as modules, for every document's analysis."""

    def __init__(self, roots: Callable[[], list[Path]], open_version: Callable[[Path], Stamp | None],
                 analyse: Callable[[Path], Analysis | None], open_text: Callable[[Path], str | None] = lambda path: None):
        """``roots()``: the workspace folders; ``open_version(path)``: the editor's version of an open file
        (None when not open); ``analyse(path)``: that file's analysis as it stands (editor or disk);
        ``open_text(path)``: the editor's text of an open file (None when not open)."""
        self.roots = roots
        self.open_version = open_version
        self.open_text = open_text
        self.analyse = analyse
        self._lock = threading.RLock()
        self._texts: dict[Path, tuple[Stamp, str]] = {}
        # Who may import whom, read once and kept up to date per changed file (the importers of a helper).
        self.import_map = ImportMap(self.files, self.source, self.stamp)
        self._chain = threading.local()  # the files being analysed on this thread, outermost first
        self._files: tuple[float, list[Path]] | None = None  # (when listed, the workspace's .py files)

    def links(self, path: Path | None) -> DocumentLinks | None:
        return DocumentLinks(self, normal(path)) if path is not None else None

    def stamp(self, path: Path) -> Stamp | None:
        version = self.open_version(path)
        if version is not None:
            return ("editor", version)
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def resolve(self, importer: Path, module: str, level: int) -> Path | None:
        """The workspace file ``from <dots><module> import`` in ``importer`` means, if there is one."""
        parts = [p for p in module.split(".") if p]
        if not level and (not parts or parts[0] in LIBRARIES):
            return None
        if level:
            base = importer.parent
            for _ in range(level - 1):
                base = base.parent
            bases = [base]
        else:
            bases = [importer.parent] + [b for root in self.roots() for b in (root, root / "src")]
        for base in dict.fromkeys(bases):
            target = base.joinpath(*parts)
            for candidate in (target.with_suffix(".py") if parts else None, target / "__init__.py"):
                if candidate is not None and candidate != importer and candidate.is_file():
                    return normal(candidate)
        return None

    def library_copy(self, importer: Path, name: str) -> Path | None:
        """The package ``name`` of an installed library that ``importer`` would import from the workspace
        instead (a fork in a research repository, or the library's own repository): ``name/__init__.py`` in
        the importer's folder or one above it within a workspace folder, or in a workspace folder's ``src``."""
        roots = [normal(root) for root in self.roots()]
        bases = [folder for folder in importer.parents if any(folder == root or root in folder.parents for root in roots)]
        for base in dict.fromkeys(bases + [root / "src" for root in roots]):
            if (base / name / "__init__.py").is_file():
                return base / name
        return None

    def conftests(self, path: Path) -> list[Path]:
        """The ``conftest.py`` files in ``path``'s folder and the folders above it within a workspace folder."""
        roots = [normal(root) for root in self.roots()]
        folders = [f for f in path.parents if any(f == root or root in f.parents for root in roots)]
        return [f / "conftest.py" for f in folders if f / "conftest.py" != path and (f / "conftest.py").is_file()]

    def analyse_within(self, reader: Path, path: Path) -> Analysis | None | object:
        """``path``'s analysis, read while ``reader``'s is made; ``_CUT`` when that would go round a cycle
        (``path`` is being analysed already), ``_DEEP`` past the chain bound."""
        chain: list[Path] = self._chain.__dict__.setdefault("files", [])
        if path in chain or path == reader:
            return _CUT
        if len(chain) >= MAX_CHAIN:
            return _DEEP
        outermost = not chain
        if outermost:
            chain.append(reader)
        chain.append(path)
        try:
            return self.analyse(path)
        finally:
            chain.pop()
            if outermost:
                chain.pop()

    def text(self, path: Path) -> str | None:
        stamp = self.stamp(path)
        with self._lock:
            cached = self._texts.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        with self._lock:
            self._texts[path] = (stamp, text)
        return text

    def source(self, path: Path) -> str | None:
        """``path``'s text as the editor holds it (unsaved edits count), else as it is on disk."""
        text = self.open_text(path)
        return text if text is not None else self.text(path)

    def nested(self) -> bool:
        """Whether this thread is analysing a file for another file's analysis (inside a chain)."""
        return bool(self._chain.__dict__.get("files"))

    def candidate_importers(self, path: Path) -> list[Path]:
        """Workspace files with an import line that names ``path``'s module (its file or package name)."""
        stem = module_word(path)
        if stem is None:
            return []
        return [candidate for candidate in self.import_map.files_importing(stem) if candidate != path]

    def files(self) -> list[Path]:
        """The workspace's Python files, listed again after a while or after :meth:`changed` (a walk of a
        large workspace on every keystroke would cost more than the analysis)."""
        with self._lock:
            if self._files is None or time.monotonic() - self._files[0] > INDEX_SECONDS:
                self._files = (time.monotonic(), [normal(p) for root in self.roots() for p in python_files(root)])
            return self._files[1]

    def changed(self, paths: list[Path] | None = None) -> None:
        """Files were created, deleted or saved (``paths``, when known): list them again when next asked."""
        with self._lock:
            self._files = None
        self.import_map.changed(normal(p) for p in paths or [])

    def edited(self, path: Path) -> None:
        """An open file's text changed in the editor (opened, edited, closed): its import lines may have."""
        self.import_map.changed([normal(path)])


class DocumentLinks:
    """One analysis's view of the workspace modules (``analysis.imports.ModuleLinks``), recording what it read."""

    def __init__(self, modules: WorkspaceModules, path: Path):
        self.modules = modules
        self.path = path
        self.dependencies: dict[Path, Stamp | None] = {}
        self.imported: set[Path] = set()  # the dependencies read as modules this file imports
        self._importers: list[Analysis] | None = None
        self._importers_version: int | None = None  # which files named this module when its importers were read

    def resolve(self, name: str, level: int) -> Path | None:
        return self.modules.resolve(self.path, name, level)

    def library_copy(self, name: str) -> Path | None:
        return self.modules.library_copy(self.path, name)

    def module(self, name: str, level: int) -> Analysis | None:
        target = self.resolve(name, level)
        if target is None:
            return None
        self.imported.add(target)
        return self._read(target)

    def importers(self) -> list[Analysis]:
        if self._importers is None:
            self._importers = []
            word = module_word(self.path)
            self._importers_version = self.modules.import_map.version(word) if word is not None else None
            for candidate in self.modules.candidate_importers(self.path):
                analysis = self._read(candidate)
                if analysis is not None and self._imports_me(candidate, analysis):
                    self._importers.append(analysis)
                    if len(self._importers) >= MAX_IMPORTERS:
                        break
        return self._importers

    def conftests(self) -> list[Analysis]:
        return [a for path in self.modules.conftests(self.path) if (a := self._read(path)) is not None]

    def fresh(self) -> bool:
        """Whether every file this analysis read is still the version it read. A file it did not read (a
        cycle, or past the chain bound) makes it stale for the file itself (asked for on its own, it is
        analysed again, in full), not for another file's analysis that reads it as a module: otherwise
        every analysis made inside a cycle would be made again for each file that imports it."""
        word = module_word(self.path)
        if self._importers_version is not None and word is not None \
                and self.modules.import_map.version(word) != self._importers_version:
            return False  # a file started or stopped importing this one
        nested = self.modules.nested()
        for path, stamp in list(self.dependencies.items()):
            if stamp is _CUT:
                if not nested:
                    return False
            elif self.modules.stamp(path) != stamp:
                return False
        return True

    def inherit(self, previous: DocumentLinks) -> None:
        """What ``previous`` (the last analysis's links, fresh) read counts as read here: this analysis reuses
        what was worked out from it (a helper's parameters, bound by its callers)."""
        for path, stamp in previous.dependencies.items():
            self.dependencies.setdefault(path, stamp)
        self.imported |= previous.imported
        if self._importers_version is None:
            self._importers_version = previous._importers_version

    def read_files(self) -> list[tuple[Path, bool]]:
        """(file, whether it was read as a module this file imports) for each file whose analysis this one
        used: not the ones cut (a cycle, past the chain bound), whose analyses it did not read."""
        return [(path, path in self.imported) for path, stamp in list(self.dependencies.items()) if stamp is not _CUT]

    def _read(self, path: Path) -> Analysis | None:
        stamp = self.modules.stamp(path)
        analysis = self.modules.analyse_within(self.path, path)
        cut = analysis is _CUT or analysis is _DEEP
        self.dependencies[path] = _CUT if cut else stamp
        return None if cut else analysis  # type: ignore[return-value]

    def _imports_me(self, importer: Path, analysis: Analysis) -> bool:
        for d in analysis.scopes.workspace_import_definitions():
            imported = d.imported
            if self.modules.resolve(importer, imported.module, imported.level) == self.path:
                return True
            if imported.attr is not None and self.modules.resolve(
                    importer, f"{imported.module}.{imported.attr}".lstrip("."), imported.level) == self.path:
                return True  # `from package import module`
        return False


def stale_readers(caches: list[Workspace], path: Path) -> list[tuple[Workspace, str, Path]]:
    """The analyses a change of ``path`` makes stale, each (cache, uri, file): those that read it, and, up to
    MAX_CHAIN files away, those that import a module whose analysis is stale (a script whose helper read the
    changed file: neither the script's file nor the helper's changed, so their versions cannot tell)."""
    path = normal(path)
    readers: dict[Path, list[tuple[Workspace, str, Path, bool]]] = {}
    for cache in caches:
        for uri, links in cache.linked():
            for read, imported in links.read_files():
                readers.setdefault(read, []).append((cache, uri, links.path, imported))
    found: dict[tuple[int, str], tuple[Workspace, str, Path]] = {}
    frontier = [path]
    for depth in range(MAX_CHAIN):
        reached = []
        for changed in frontier:
            for cache, uri, reader, imported in readers.get(changed, []):
                if (depth == 0 or imported) and reader != path and (id(cache), uri) not in found:
                    found[(id(cache), uri)] = (cache, uri, reader)
                    reached.append(reader)
        frontier = reached
    return list(found.values())


def linked_workspace(context: Callable[[str], AnalysisContext], root: Path) -> Workspace:
    """A workspace of files read from disk (documents named by their paths), analysed in ``context(path)``,
    with imports between the files under ``root`` followed: the command line's, and the benchmarks'."""

    def analyse(path: Path) -> Analysis | None:
        text = modules.text(path)
        return workspace.text_view(str(path), text, None).analysis if text is not None else None  # keyed by the text itself

    def linked(path: str) -> AnalysisContext:
        return dataclasses.replace(context(path), links=modules.links(Path(path)))

    modules = WorkspaceModules(lambda: [root], lambda path: None, analyse)
    workspace = Workspace(linked)
    return workspace


def module_word(path: Path) -> str | None:
    """The name a file is imported by (its package's for ``__init__.py``); None when not importable."""
    word = path.parent.name if path.name == "__init__.py" else path.stem
    return word if WORD.fullmatch(word) else None


def normal(path: Path) -> Path:
    """An absolute path without ``..``; links are kept, so that paths compare with the editor's URIs."""
    return Path(os.path.normpath(os.path.abspath(path)))
