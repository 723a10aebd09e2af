"""Positions in source text.

:class:`LineIndex` converts between byte offsets (what tree-sitter uses) and LSP positions
(line, UTF-16 column).
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass

_CELL_MARKER = re.compile(rb"^#\s*%%", re.M)


def cell_starts(text: str) -> list[int]:
    """0-based line numbers where ``# %%`` cells start (for scripts written as notebooks)."""
    return [i for i, line in enumerate(text.splitlines()) if _CELL_MARKER.match(line.encode())]


@dataclass(frozen=True)
class Position:
    line: int
    character: int  # UTF-16 code units, as LSP counts them


class LineIndex:
    """Byte offset <-> (line, UTF-16 column), built once per text version."""

    def __init__(self, source: bytes):
        self.source = source
        # C-level iterators only: this runs on every keystroke over the whole text.
        self.line_starts = [0, *itertools.accumulate(map((1).__add__, map(len, source.split(b"\n")[:-1])))]

    @property
    def line_count(self) -> int:
        return len(self.line_starts)

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset) - 1

    def line_bytes(self, line: int) -> bytes:
        start = self.line_starts[line]
        end = self.line_starts[line + 1] - 1 if line + 1 < len(self.line_starts) else len(self.source)
        return self.source[start:end]

    def position(self, offset: int) -> Position:
        line = self.line_of(offset)
        prefix = self.source[self.line_starts[line]:offset]
        if prefix.isascii():
            return Position(line, len(prefix))
        return Position(line, len(prefix.decode("utf-8", "replace").encode("utf-16-le")) // 2)

    def offset(self, line: int, character: int) -> int:
        """Byte offset of an LSP position (clamped to the line, and to the text)."""
        if line >= len(self.line_starts):
            return len(self.source)
        line = max(line, 0)
        text = self.line_bytes(line)
        if text.isascii():
            return self.line_starts[line] + min(character, len(text))
        units = text.decode("utf-8", "replace").encode("utf-16-le")[: 2 * character]
        return self.line_starts[line] + len(units.decode("utf-16-le", "replace").encode("utf-8"))
