"""Findings: what the analysis reports, with the fixes it can offer. Protocol-free.

Ranges are byte offsets into the document text; the features layer converts them to LSP
positions. Codes are stable strings users can suppress with ``# tlens: ignore[code]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Literal

Severity = Literal["error", "warning", "information", "hint"]

CODES = (
    "unknown-hook",
    "layer-out-of-range",
    "hook-not-enabled",
    "hook-meaning",
    "removed-api",
    "unavailable-api",
    "stale-hook",
    "hook-accumulates",
    "reset-hooks-end-false",
    "hook-signature",
    "multi-token",
    "leading-space",
    "live-hooks",
    "not-cached",
)


@dataclass(frozen=True)
class Edit:
    """Replace bytes ``[start, end)`` with ``new_text`` (an insertion when start == end)."""

    start: int
    end: int
    new_text: str


@dataclass(frozen=True)
class Fix:
    title: str
    edits: tuple[Edit, ...]
    preferred: bool = False


class LazyFix(Fix):
    """A fix whose edits are worked out when first read: a file-wide rewrite (the TransformerLens 4
    migration) then costs nothing on the keystrokes that never ask for it."""

    def __init__(self, title: str, make: Callable[[], tuple[Edit, ...]], preferred: bool = False):
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "preferred", preferred)
        object.__setattr__(self, "_make", make)

    @property
    def edits(self) -> tuple[Edit, ...]:  # type: ignore[override]
        if self._make is not None:
            object.__setattr__(self, "_edits", self._make())
            object.__setattr__(self, "_make", None)  # (and what it held: the tree, the text)
        return self._edits


@dataclass(frozen=True)
class Related:
    """A second place that explains the finding (where a hook was added, ...)."""

    start: int
    end: int
    message: str


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    code: str
    severity: Severity
    message: str
    fixes: tuple[Fix, ...] = ()
    related: tuple[Related, ...] = field(default=())


def sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (knowledge and kernel messages may already end in one)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?", "…")) else text + "."


_IGNORE = re.compile(rb"#\s*tlens:\s*ignore(?:\[([\w\-, ]+)\])?")


def suppressed_codes(line: bytes) -> set[str] | None:
    """Codes a ``# tlens: ignore[...]`` comment on this line silences; ``{"*"}`` for a bare ignore."""
    m = _IGNORE.search(line)
    if m is None:
        return None
    if m.group(1) is None:
        return {"*"}
    return {c.strip() for c in m.group(1).decode().split(",") if c.strip()}


def apply_suppressions(findings: list[Finding], source: bytes) -> list[Finding]:
    """Drop findings whose first line carries a matching ``# tlens: ignore`` comment."""
    if b"tlens:" not in source:
        return findings
    kept = []
    for f in findings:
        line_start = source.rfind(b"\n", 0, f.start) + 1
        line_end = source.find(b"\n", f.start)
        codes = suppressed_codes(source[line_start: line_end if line_end >= 0 else len(source)])
        if codes is not None and ("*" in codes or f.code in codes):
            continue
        kept.append(f)
    return kept
