"""Open documents and notebooks -> analyses, memoised per version.

A plain file is analysed on its own. A notebook's code cells are analysed *together*, in order,
as one program (a model built in cell 2 is known in cell 9), through a virtual text made of the
cells joined by newlines; a :class:`View` maps one cell's positions into that text and back.
"""

from __future__ import annotations

import bisect

import re
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .analysis.document import Analysis, AnalysisContext, analyze, forget_resolutions
from .analysis.edits import Edit, diff_in
from .analysis.findings import Finding
from .analysis.imports import ModuleLinks
from .analysis.syntax import SyntaxParser
from .collection import collection_paused

_CELL_MAGIC = re.compile(r"^\s*%%(\w+)")
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "px", "autoreload", "cython"})


@dataclass(frozen=True)
class CellText:
    """One code cell of a notebook, as the editor holds it."""

    uri: str
    text: str
    version: int | None
    number: int  # 1-based position among all the notebook's cells, as editors show it


@dataclass
class CellSpan:
    uri: str
    start_line: int  # first line of the cell in the virtual text
    line_count: int
    start_byte: int
    end_byte: int
    number: int = 0  # 1-based position in the notebook (0: unknown)


@dataclass
class View:
    """An analysis as one client URI (a file, or a notebook cell) sees it."""

    analysis: Analysis
    uri: str
    cell: CellSpan | None = None
    # Every cell of the notebook (for findings that point into other cells), in analysis order.
    cells: list[CellSpan] = field(default_factory=list)

    def offset(self, line: int, character: int) -> int:
        if self.cell is not None:
            line += self.cell.start_line
        return self.analysis.lines.offset(line, character)

    def position(self, offset: int) -> tuple[int, int] | None:
        """(line, character) in this URI, or None if the offset lies in another cell."""
        pos = self.analysis.lines.position(offset)
        if self.cell is None:
            return pos.line, pos.character
        if not (self.cell.start_byte <= offset <= self.cell.end_byte):
            return None
        return pos.line - self.cell.start_line, pos.character

    def contains(self, offset: int) -> bool:
        return self.cell is None or self.cell.start_byte <= offset <= self.cell.end_byte

    def locate(self, offset: int) -> tuple[str, int, int] | None:
        """(uri, line, character) of an offset anywhere in the analysed text: this file, or any cell."""
        if self.cell is None:
            pos = self.analysis.lines.position(offset)
            return self.uri, pos.line, pos.character
        for span in self.cells:
            if span.start_byte <= offset <= span.end_byte:
                pos = self.analysis.lines.position(offset)
                return span.uri, pos.line - span.start_line, pos.character
        return None


def mask_cell_magic(cell: str) -> str:
    """Blank a non-Python cell magic cell (``%%bash`` ...), keeping its line structure."""
    m = _CELL_MAGIC.match(cell)
    if m is None:
        return cell
    if m.group(1) in PYTHON_CELL_MAGICS:
        first, nl, rest = cell.partition("\n")
        return " " * len(first) + nl + rest
    return "\n".join(" " * len(line) for line in cell.split("\n"))


@dataclass
class _Entry:
    key: tuple
    analysis: Analysis
    cells: list[CellSpan] = field(default_factory=list)
    source: bytes = b""  # the text analysed, unmasked (text documents)


class Workspace:
    """Caches analyses by document (or notebook) and version."""

    def __init__(self, context: Callable[[str], AnalysisContext], extra_checks: list | None = None,
                 lock: threading.RLock | None = None):
        """``context(uri)``: what the analysis of that document may know (its TransformerLens version
        may come from its project's files). Workspaces whose analyses read each other (a file and the
        modules it imports) share one ``lock``."""
        self._context = context
        self._entries: dict[str, _Entry] = {}
        self._parsers: dict[str, SyntaxParser] = {}
        self.extra_checks = extra_checks or []
        # Analyses run on the server's worker thread and, when a request needs one first, on the event
        # loop: one at a time (a parser keeps the previous tree of its document).
        self._lock = lock or threading.RLock()
        # Entries expired (:meth:`expire`): when, on a clock of expiries, so that an analysis under way when its
        # entry expired is not kept as fresh; apart, when a file the analysis read changed (it is then stale).
        self._expiries = 0
        self._expired_at: dict[str, int] = {}
        self._stale_at: dict[str, int] = {}
        # Entries newer versions replaced, freed by release_retired() once their diagnostics are out:
        # freeing a 5,000-line file's analysis and tree takes ~3 ms (bounded: the oldest go first).
        self._retired: deque[_Entry] = deque(maxlen=4)

    def invalidate(self) -> None:
        """Forget every analysis (settings or the TL version changed)."""
        with self._lock:
            self._entries.clear()
            for parser in self._parsers.values():
                forget_resolutions(parser)

    def refresh(self) -> None:
        """Analyse every document again when next asked, from what its analysis resolved: a tokenizer became
        available, and only the token checks read one (what hook names resolve to does not change). Until then
        the analyses serve as the previous ones (hovers right after an edit). Never waits for the lock: an
        analysis under way is kept as expired (see :meth:`_keep`)."""
        for uri in {*self._entries, *self._parsers}:
            self.expire(uri, resolutions=False)

    def forget(self, uri: str) -> None:
        with self._lock:
            self._entries.pop(uri, None)
            self._parsers.pop(uri, None)
            self._expired_at.pop(uri, None)
            self._stale_at.pop(uri, None)

    def text_view(self, uri: str, text: str, version: int | None, ready_only: bool = False) -> View | None:
        """The view of ``text`` (version ``version`` of ``uri``), analysed now unless it is already; with
        ``ready_only``, None instead of analysing."""
        key = _text_key(text, version)
        entry = self._entries.get(uri)  # an analysis made already needs no lock: never wait for another file's
        if _current(entry, key):
            return View(entry.analysis, uri)
        if ready_only:
            return None
        with self._lock:
            entry = self._entries.get(uri)
            if not _current(entry, key):
                parser = self._parsers.setdefault(uri, SyntaxParser())
                started = self._expiries
                with collection_paused():
                    analysis = analyze(text, self._context(uri), parser, self.extra_checks)
                entry = _Entry(key, analysis, source=text.encode("utf-8"))
                self._keep(uri, entry, started)
        return View(entry.analysis, uri)

    def expire(self, uri: str, resolutions: bool = True) -> None:
        """Analyse ``uri`` again when next asked. By default a file it read changed: it resolves its hook names
        afresh and its analysis is stale (no hover comes from it: any answer may read the changed file). With
        ``resolutions=False`` nothing it resolved changed (a tokenizer loaded): its analysis still serves as the
        previous one (hovers right after an edit)."""
        self._expiries += 1
        entry = self._entries.get(uri)
        if resolutions:
            self._stale_at[uri] = self._expiries
            if (parser := self._parsers.get(uri)) is not None:
                forget_resolutions(parser)  # they read the changed file through the other one
        else:
            self._expired_at[uri] = self._expiries
        if entry is not None and entry.key is not _STALE:
            entry.key = _STALE if resolutions else _EXPIRED

    def _keep(self, uri: str, entry: _Entry, started: int) -> None:
        if self._stale_at.get(uri, 0) > started:  # a file it read changed while it was being analysed
            entry.key = _STALE
            forget_resolutions(self._parsers[uri])  # (what it resolved may predate the change)
        elif self._expired_at.get(uri, 0) > started:
            entry.key = _EXPIRED
        previous = self._entries.get(uri)
        if previous is not None:
            self._retired.append(previous)
        self._entries[uri] = entry

    def release_retired(self) -> None:
        """Free the analyses that newer versions replaced (off the path from an edit to its diagnostics)."""
        with self._lock:
            retired = list(self._retired)
            self._retired.clear()
        del retired  # (freed here, outside the lock)

    def linked(self) -> list[tuple[str, ModuleLinks]]:
        """(uri, what its analysis read of the workspace) of every analysis that followed imports."""
        return [(uri, links) for uri, entry in list(self._entries.items())
                if (links := entry.analysis.context.links) is not None]

    def stale(self) -> list[str]:
        """Documents whose analysis read a file that changed since (their next analysis is made afresh)."""
        return [uri for uri, entry in list(self._entries.items()) if not _fresh(entry.analysis)]

    def previous_text_view(self, uri: str, text: str, version: int | None) -> tuple[Analysis, Edit, bytes] | None:
        """The last analysis of a text document, the edit from its text to ``text`` and ``text`` encoded,
        while ``text`` itself is not analysed yet (None once it is, or when there is none)."""
        entry = self._entries.get(uri)
        if not _previous(entry) or entry.cells or entry.key == _text_key(text, version):
            return None
        source = text.encode("utf-8")
        return entry.analysis, diff_in(entry.source, source, entry.analysis.parsed.root), source

    def notebook_views(self, notebook_uri: str, cells: list[CellText], ready_only: bool = False) -> list[View] | None:
        """Views of every code cell of a notebook, ``cells`` in analysis order; with ``ready_only``, None unless
        they are analysed already.

        Keyed on every cell's version and length, not on the notebook's version: VS Code's first
        ``notebookDocument/didChange`` may carry the notebook version of ``didOpen``.
        """
        key = _notebook_key(cells)
        entry = self._entries.get(notebook_uri)  # analysed already: no lock, as for a text document
        if not _current(entry, key):
            if ready_only:
                return None
            with self._lock:
                entry = self._entries.get(notebook_uri)
                if not _current(entry, key):
                    text, spans = joined_cells(cells)
                    parser = self._parsers.setdefault(notebook_uri, SyntaxParser())
                    started = self._expiries
                    with collection_paused():
                        analysis = analyze(text, self._context(notebook_uri), parser, self.extra_checks, notebook=True)
                    entry = _Entry(key, analysis, spans, source=text.encode("utf-8"))
                    self._keep(notebook_uri, entry, started)
        return [View(entry.analysis, span.uri, span, entry.cells) for span in entry.cells]

    def previous_notebook_view(self, notebook_uri: str, cells: list[CellText]) -> tuple[Analysis, Edit, bytes, list[CellSpan]] | None:
        """The last analysis of a notebook, the edit from its text to the cells' joined text now, that
        text and its cell spans, while the cells as they are now are not analysed yet."""
        entry = self._entries.get(notebook_uri)
        if not _previous(entry) or not entry.cells or entry.key == _notebook_key(cells):
            return None
        text, spans = joined_cells(cells)
        source = text.encode("utf-8")
        return entry.analysis, diff_in(entry.source, source, entry.analysis.parsed.root), source, spans


# The keys of expired entries, equal to no document's: one a tokenizer load expired, one a changed file it read did.
_EXPIRED = ("expired",)
_STALE = ("stale",)


def _current(entry: _Entry | None, key: tuple) -> bool:
    """Whether ``entry`` is the analysis of the version ``key`` names, and the other files it read are as they were."""
    return entry is not None and entry.key == key and _fresh(entry.analysis)


def _previous(entry: _Entry | None) -> bool:
    """Whether ``entry`` may answer for positions an edit to its own text cannot have changed: no file it read
    changed since (else any answer may read that file)."""
    return entry is not None and entry.key is not _STALE and _fresh(entry.analysis)


def _fresh(analysis: Analysis) -> bool:
    """Whether the other files an analysis read (imported modules, importers) are as they were."""
    links = analysis.context.links
    return links is None or links.fresh()


def joined_cells(cells: list[CellText]) -> tuple[str, list[CellSpan]]:
    """The text a notebook is analysed as (its code cells joined by newlines) and where each cell lies."""
    parts, spans, line, offset = [], [], 0, 0
    for cell in cells:
        masked = mask_cell_magic(cell.text)
        n_lines = masked.count("\n") + 1
        n_bytes = len(masked.encode("utf-8"))
        spans.append(CellSpan(cell.uri, line, n_lines, offset, offset + n_bytes, cell.number))
        parts.append(masked)
        line += n_lines
        offset += n_bytes + 1
    return "\n".join(parts), spans


def _notebook_key(cells: list[CellText]) -> tuple:
    return ("notebook",) + tuple((c.uri, c.version, len(c.text)) for c in cells)


_SKIPPED_DIRS = frozenset({"node_modules", "site-packages", "__pycache__", "build", "dist", "venv", "env"})


def python_files(root: Path, limit: int = 300) -> list[Path]:
    """The workspace's own ``.py`` files (no hidden folders, environments or build output), at most ``limit``."""
    out: list[Path] = []
    stack = [root]
    while stack and len(out) < limit:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir():
                if not entry.name.startswith(".") and entry.name not in _SKIPPED_DIRS and not (entry / "pyvenv.cfg").exists():
                    stack.append(entry)
            elif entry.suffix == ".py" and len(out) < limit:
                out.append(entry)
    return out


def _text_key(text: str, version: int | None) -> tuple:
    return ("text", version, len(text), hash(text) if version is None else 0)


def findings_in(view: View) -> list[Finding]:
    """The findings starting in the view (the analysis's findings are sorted by start: a notebook's
    200 cells take one bisection each, not a pass over every finding)."""
    findings = view.analysis.findings
    if view.cell is None:
        return list(findings)
    starts = view.analysis.finding_starts()
    return findings[bisect.bisect_left(starts, view.cell.start_byte):bisect.bisect_right(starts, view.cell.end_byte)]
