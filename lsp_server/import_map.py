"""Which workspace files have an import line naming a word: the reverse of the workspace's imports.

A helper's parameters are bound by the calls of the files that import it, so its analysis asks which
files those may be. The words of every file's import lines are read once (the first time anyone asks,
or in the background index) and then again only for the files said to have changed (an editor edit,
a change on disk) or, when the workspace is listed again, whose version differs: a later analysis never
reads the whole workspace again.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Callable, Hashable, Iterable

WORD = re.compile(r"\w+")
_IMPORT_LINE = re.compile(r"^\s*(?:from\s+(\.*)([\w.]*)\s+import\s+([^#\n]+)|import\s+([^#\n]+))", re.M)

Stamp = Hashable  # a file's version: the editor's document version, or (mtime_ns, size) on disk


def import_words(text: str) -> frozenset[str]:
    """The words of ``text``'s import lines (module and package names among them)."""
    return frozenset(w for m in _IMPORT_LINE.finditer(text) for w in WORD.findall(m.group(0)))


class ImportMap:
    """Word -> the workspace files whose import lines hold it, kept up to date file by file."""

    def __init__(self, files: Callable[[], list[Path]], source: Callable[[Path], str | None],
                 stamp: Callable[[Path], Stamp | None]):
        """``files()``: the workspace's files (a new list each time they are listed again); ``source(path)``:
        a file's text as the editor holds it, else as on disk; ``stamp(path)``: its version."""
        self._files = files
        self._source = source
        self._stamp = stamp
        self._lock = threading.RLock()
        self._listing: list[Path] | None = None
        self._order: dict[Path, int] = {}  # a file's place in the listing: answers keep the listing's order
        self._words: dict[Path, tuple[Stamp | None, frozenset[str]]] = {}
        self._files_by_word: dict[str, set[Path]] = {}
        self._changed: set[Path] = set()
        # How often the files naming a word changed: an analysis that asked for a module's importers is stale
        # once a file starts or stops importing it (an unsaved edit, a new file).
        self._versions: dict[str, int] = {}
        self.reads = 0  # files whose import lines were read (tests check that a change reads only its file)

    def files_importing(self, word: str) -> list[Path]:
        """The files with an import line naming ``word``, in the order the workspace lists them."""
        with self._lock:
            self.refresh()
            return sorted(self._files_by_word.get(word, ()), key=self._order.__getitem__)

    def version(self, word: str) -> int:
        """Changes so far to which files name ``word`` (the files said to have changed are read again, the
        workspace is not listed again: asked whenever an analysis's freshness is checked)."""
        with self._lock:
            if self._listing is None:
                self.refresh()
            self._read_changed()
            return self._versions.get(word, 0)

    def changed(self, paths: Iterable[Path]) -> None:
        """These files changed (in the editor or on disk): read them again when next asked."""
        with self._lock:
            self._changed.update(paths)

    def refresh(self) -> None:
        """Bring the map up to date: the whole workspace the first time, then only what changed."""
        with self._lock:
            listing = self._files()
            if listing is not self._listing:
                self._relisted(listing)
            self._read_changed()

    def _read_changed(self) -> None:
        if self._listing is None:
            return  # nothing read yet: the first refresh reads every file
        for path in self._changed:
            _, before = self._words.pop(path, (None, frozenset()))
            for word in before:
                self._files_by_word[word].discard(path)
            after = self._read(path) if path in self._order else frozenset()
            for word in before ^ after:
                self._versions[word] = self._versions.get(word, 0) + 1
        self._changed.clear()

    def _relisted(self, listing: list[Path]) -> None:
        """A new listing: files created or deleted, and (checked by version, as no notice may have come)
        files changed on disk."""
        self._listing, self._order = listing, {path: i for i, path in enumerate(listing)}
        for path in [p for p in self._words if p not in self._order]:
            self._changed.add(path)
        for path in listing:
            known = self._words.get(path)
            if known is None or known[0] != self._stamp(path):
                self._changed.add(path)

    def _read(self, path: Path) -> frozenset[str]:
        stamp = self._stamp(path)
        words = import_words(self._source(path) or "")
        self._words[path] = (stamp, words)
        for word in words:
            self._files_by_word.setdefault(word, set()).add(path)
        self.reads += 1
        return words
