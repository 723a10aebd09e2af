"""Seeded mutations of a document's text, each one edit an editor could send.

Offsets are Python string indices; :func:`lsp_position` turns one into the LSP position an editor would
send (lines end at ``\\n``, ``\\r\\n`` or ``\\r``; characters count UTF-16 code units).
"""

from __future__ import annotations

import bisect
import random
import re
from dataclasses import dataclass

from lsprotocol import types


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]`` with ``new_text``."""

    start: int
    end: int
    new_text: str
    kind: str  # what the mutation did, for the failure report

    def apply(self, text: str) -> str:
        return text[: self.start] + self.new_text + text[self.end :]


# Token kinds a truncation cuts at; a regular expression tokenizer never fails on broken text.
_TOKEN = re.compile(
    r"""(?P<string>[rRbBuUfF]{0,2}(?:\"\"\"[\s\S]*?(?:\"\"\"|$)|'''[\s\S]*?(?:'''|$)|"[^"\n]*"?|'[^'\n]*'?))"""
    r"|(?P<comment>\#[^\n]*)"
    r"|(?P<number>\b\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?j?)"
    r"|(?P<keyword>\b(?:def|class|for|while|if|elif|else|with|return|lambda|import|from|as|in|not|and|or|yield|async|await|try|except|finally)\b)"
    r"|(?P<name>[^\W\d]\w*)"
    r"|(?P<bracket>[()\[\]{}])"
    r"|(?P<operator>[-+*/%@&|^~<>=!:.,;]+)"
    r"|(?P<newline>\r\n|\r|\n)"
    r"|(?P<indent>(?<=\n)[ \t]+)"
    r"|(?P<other>\S)"
)
TOKEN_KINDS = ("string", "comment", "number", "keyword", "name", "bracket", "operator", "newline", "indent", "other")

SNIPPETS = ("(", ")", "[", "]", "{", "}", '"', "'", '"""', "'''", 'f"', "f'{", 'f"{x!r:>{', 'rf"""{', "\\",
            "\x00", "\r\n", "\r", "\t", "\t\t", "🙂", "👩‍🔬", "𝕏", "é", "\ufeff", "#", ":", "lambda", "@", "...",
            "\x0c", " " * 40, "cache[", 'cache["blocks.', "model.run_with_hooks(", ".hook_", "\n\n\n")
MAGICS = ("%%time\n", "%matplotlib inline\n", "%pip install transformer_lens\n", "!ls -la\n", "%%capture out\n",
          "x = %time f()\n", "%load_ext autoreload\n%autoreload 2\n", "%%bash\necho hi\n", "?model\n", "%%\n", "%\n")


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]


def _safe_offset(text: str, offset: int) -> int:
    """Not between the ``\\r`` and ``\\n`` of a line break: an editor cannot place a cursor there."""
    return offset + 1 if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n" else offset


def _utf16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def lsp_position(text: str, offset: int) -> types.Position:
    starts = _line_starts(text)
    line = bisect.bisect_right(starts, offset) - 1
    return types.Position(line=line, character=_utf16(text[starts[line] : offset]))


# Where the features have something to say: hook names in strings, caches, hook calls, attribute access.
_INTERESTING = re.compile(r"""["'][\w.]*["']|cache\[|hook\w*|run_with_\w+|\.\w+|\bblocks\b|from_pretrained|to_(?:str_)?tokens""")


def random_position(text: str, rng: random.Random) -> types.Position:
    """Anywhere, or (more often) in or just after something the features answer on."""
    found = list(_INTERESTING.finditer(text)) if rng.random() < 0.7 else []
    if found:
        m = rng.choice(found)
        offset = rng.randint(m.start(), m.end())
    else:
        offset = rng.randint(0, len(text))
    return lsp_position(text, _safe_offset(text, offset))


def lsp_change(text: str, edit: Edit, full: bool) -> types.TextDocumentContentChangeEvent:
    """The ``didChange`` content change for ``edit`` on ``text``: the whole new text, or the range."""
    if full:
        return types.TextDocumentContentChangeWholeDocument(text=edit.apply(text))
    return types.TextDocumentContentChangePartial(
        range=types.Range(start=lsp_position(text, edit.start), end=lsp_position(text, edit.end)), text=edit.new_text)


def _random_line_range(text: str, rng: random.Random, most: int = 12) -> tuple[int, int]:
    starts = _line_starts(text) + [len(text)]
    first = rng.randrange(len(starts) - 1)
    last = min(len(starts) - 1, first + rng.randint(1, most))
    return starts[first], starts[last]


def truncate_at_token(text: str, rng: random.Random) -> Edit:
    """Cut the text at, inside or after a token of a kind chosen first (so every kind gets its turn)."""
    kind = rng.choice(TOKEN_KINDS)
    found = [m for m in _TOKEN.finditer(text) if m.lastgroup == kind]
    if not found:
        return Edit(len(text) // 2, len(text), "", "truncate at the middle")
    m = rng.choice(found)
    where = rng.choice(("before", "inside", "after"))
    cut = {"before": m.start(), "inside": (m.start() + m.end()) // 2, "after": m.end()}[where]
    cut = _safe_offset(text, cut)
    return Edit(cut, len(text), "", f"truncate {where} a {kind} token")


def delete_lines(text: str, rng: random.Random) -> Edit:
    a, b = _random_line_range(text, rng)
    return Edit(a, b, "", "delete lines")


def duplicate_lines(text: str, rng: random.Random) -> Edit:
    a, b = _random_line_range(text, rng)
    return Edit(b, b, text[a:b], "duplicate lines")


def insert_snippet(text: str, rng: random.Random) -> Edit:
    at = _safe_offset(text, rng.randint(0, len(text)))
    snippet = rng.choice(SNIPPETS)
    return Edit(at, at, snippet, f"insert {snippet!r}")


def insert_magic(text: str, rng: random.Random) -> Edit:
    at = rng.choice(_line_starts(text))
    magic = rng.choice(MAGICS)
    return Edit(at, at, magic, f"insert magic {magic!r}")


def backspace(text: str, rng: random.Random) -> Edit:
    at = rng.randint(1, len(text)) if text else 0
    at = _safe_offset(text, at)
    return Edit(max(0, at - rng.randint(1, 3)), at, "", "delete characters")


def crlf(text: str, rng: random.Random) -> Edit:
    a, b = _random_line_range(text, rng, most=40)
    part = re.sub(r"\r?\n", "\r\n", text[a:b])
    return Edit(a, b, part, "line endings to CRLF")


def indent_with_tabs(text: str, rng: random.Random) -> Edit:
    a, b = _random_line_range(text, rng)
    return Edit(a, b, re.sub(r"(?m)^", "\t", text[a:b]), "indent lines with a tab")


MUTATIONS = (truncate_at_token, delete_lines, duplicate_lines, insert_snippet, insert_snippet, insert_magic,
             backspace, crlf, indent_with_tabs)


def mutate(text: str, rng: random.Random) -> Edit:
    return rng.choice(MUTATIONS)(text, rng)


def typing(text: str, rng: random.Random) -> list[Edit]:
    """Typing a line of the document again somewhere else, a character at a time: a burst of one-character
    insertions, each against the text the previous one left."""
    lines = [l for l in re.split(r"\r\n|\r|\n", text) if l.strip()] or ["x = 1"]
    typed = rng.choice(lines)[:60] + "\n"
    at = rng.choice(_line_starts(text))
    return [Edit(at + i, at + i, ch, f"type {typed!r}") for i, ch in enumerate(typed)]
