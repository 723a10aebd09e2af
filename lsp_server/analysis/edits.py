"""What a text edit can have changed, so that the previous version's facts keep serving the rest.

An edit is the span of whole lines that differ between two versions (common prefix and suffix
aside). Offsets outside it map between the versions. A fact of the previous analysis still holds
after the edit when the edit is *local* (same lines, same indentation, the same brackets and quotes,
no word that changes the file's structure, models or flags), mentions none of the names the fact
was computed from and lies outside the code it was computed from.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
import sys
from dataclasses import dataclass

from ..knowledge.spec import GATE_FLAGS, ModelSpec
from .textscan import edit_between

# Characters whose balance decides how the lines after an edit parse (an unclosed `(` or quote, or a
# `#` that turns the rest of a line, closing brackets included, into a comment).
_BRACKETS_AND_QUOTES = (b"(", b")", b"[", b"]", b"{", b"}", b"'", b'"', b"\\", b"#")
_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
# Names an edited line can change facts of: every word except one only read through a subscript or an
# attribute (`cache[...]`, `model.run(...)`), which binds nothing and passes nothing anywhere.
_CHANGING_WORD = re.compile(rb"\b([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*[\[.])")
# An edited statement starting with one of these can change scopes and bindings anywhere.
STATEMENT_WORDS = frozenset({"def", "class", "for", "with", "import", "from", "global", "nonlocal", "del", "async",
                             "match", "case", "try", "except", "finally"})
# Words whose edit can change facts anywhere, wherever they stand: models and their configuration,
# caches, gate flags, scopes made inline.
GLOBAL_WORDS = frozenset({
    "lambda", "HookedTransformer", "HookedTransformerConfig", "TransformerBridge", "TransformerBridgeConfig",
    "HookedSAETransformer", "from_pretrained", "from_pretrained_no_processing", "boot_transformers", "run_with_cache",
    "ActivationCache", "add_caching_hooks", "get_caching_hooks", "cfg", "config", "enable_compatibility_mode",
    *GATE_FLAGS,
    *(f"set_{flag}" for flag in GATE_FLAGS), *(f.name for f in dataclasses.fields(ModelSpec)),
})
# Of those, the words of a model's configuration (`name`, `n_layers`, `cfg`, ...; common words elsewhere, as in
# `hook.name`): they change facts only through the file's models, which the next analysis compares (see
# reuse.Reuse.between).
CONFIG_WORDS = frozenset({"cfg", "config", *(f.name for f in dataclasses.fields(ModelSpec))}) - {*GATE_FLAGS, "compat_mode"}


# Why an edit is not local (:attr:`Edit.blockers`): its lines changed shape; a changed line starts with a
# statement word; it holds a word that can change facts anywhere; every such word is one of a model's
# configuration.
SHAPE, STATEMENT, GLOBAL, CONFIG = "shape", "statement", "global", "config"


@dataclass(frozen=True)
class Edit:
    """The lines that changed between two versions of a text (byte offsets)."""

    start: int  # start of the first changed line (the same in both versions)
    old_end: int  # end of the last changed line in the old version
    new_end: int  # ... and in the new one
    names: frozenset[str]  # the words on the changed lines (before and after) that can change other facts
    blockers: frozenset[str] = frozenset()  # why it is not local (SHAPE, STATEMENT, GLOBAL, CONFIG): none if it is
    changed: tuple[int, int] = (0, 0)  # the changed bytes of the new version (within the lines)
    words: frozenset[str] = frozenset()  # every word on the changed lines (before and after)

    @property
    def local(self) -> bool:
        return not self.blockers

    @property
    def shaped(self) -> bool:
        """The same lines, indentation, brackets and quotes in both versions."""
        return SHAPE not in self.blockers

    @property
    def delta(self) -> int:
        return self.new_end - self.old_end

    def to_old(self, new_offset: int) -> int | None:
        """The old offset of a new one outside the changed lines (None inside them)."""
        if new_offset < self.start:
            return new_offset
        return new_offset - self.delta if new_offset > self.new_end else None

    def to_new(self, old_offset: int) -> int | None:
        if old_offset < self.start:
            return old_offset
        return old_offset + self.delta if old_offset > self.old_end else None

    def spares(self, start: int, end: int, deps: frozenset[str], spans: tuple[tuple[int, int], ...] = ()) -> bool:
        """Whether a fact about old bytes [start, end), computed from the names ``deps`` and the code at
        ``spans`` (in order, disjoint), still holds."""
        if self.blockers or not self._outside(start, end) or deps & self.names:
            return False
        # The last span starting before the edit may reach into it; the one after it may start inside.
        i = bisect.bisect_right(spans, (self.start, sys.maxsize))
        return (i == 0 or spans[i - 1][1] < self.start) and (i == len(spans) or spans[i][0] > self.old_end)

    def _outside(self, start: int, end: int) -> bool:
        return end < self.start or start > self.old_end


def diff(old: bytes, new: bytes) -> Edit:
    """The changed lines between ``old`` and ``new``."""
    prefix, changed_old_end, changed_new_end = edit_between(old, new)
    start = old.rfind(b"\n", 0, prefix) + 1
    old_end = _line_end(old, changed_old_end)
    new_end = _line_end(new, changed_new_end)
    before, after = old[start:old_end], new[start:new_end]
    words = frozenset(w.decode() for w in _WORD.findall(before) + _WORD.findall(after))
    names = frozenset(w.decode() for w in _CHANGING_WORD.findall(before) + _CHANGING_WORD.findall(after))
    same_shape = before.count(b"\n") == after.count(b"\n") and _indents(before) == _indents(after) \
        and all(before.count(c) == after.count(c) for c in _BRACKETS_AND_QUOTES) \
        and _blank_lines(before) == _blank_lines(after)
    statements = {w.decode() for block in (before, after) for line in block.split(b"\n")
                  for w in _WORD.findall(line.lstrip())[:1]}
    global_words = words & GLOBAL_WORDS
    blockers = {SHAPE} if not same_shape else set()
    if statements & STATEMENT_WORDS:
        blockers.add(STATEMENT)
    if global_words:
        blockers.add(CONFIG if global_words <= CONFIG_WORDS else GLOBAL)
    return Edit(start, old_end, new_end, names, frozenset(blockers), (prefix, changed_new_end), words)


def widened(edit: Edit, old: bytes, new: bytes, start: int, old_end: int, new_end: int, same_models: bool) -> Edit | None:
    """``edit`` (local but for statement words and words of a model's configuration) grown to the whole lines
    from ``start`` to ``old_end`` in the old version and ``new_end`` in the new one: code whose bindings or
    parse it may have changed beyond its own lines (a loop's variable, a syntax error's recovery). Every name
    there counts as edited; None when the code there holds a word that can change facts anywhere (a model, a
    cache, a flag), unless the file's models came out the same (``same_models``)."""
    start = min(edit.start, old.rfind(b"\n", 0, start) + 1)
    old_end, new_end = _line_end(old, max(old_end, edit.old_end)), _line_end(new, max(new_end, edit.new_end))
    before, after = old[start:old_end], new[start:new_end]
    # (A statement can be long: each distinct word is decoded once.)
    words = frozenset(w.decode() for w in {*_WORD.findall(before), *_WORD.findall(after)})
    if words & GLOBAL_WORDS and not same_models:
        return None
    names = frozenset(w.decode() for w in {*_CHANGING_WORD.findall(before), *_CHANGING_WORD.findall(after)})
    return Edit(start, old_end, new_end, edit.names | names, frozenset(), edit.changed, edit.words | words)


def in_prose(edit: Edit, root) -> bool:
    """Whether the new bytes an edit of the same shape changed lie in a comment or in a docstring (a string
    that is a statement of its own): text no fact is computed from, whatever words it holds. (The same
    brackets, quotes and ``#`` before and after the edit: the old bytes were in the same comment or string.)"""
    start, end = edit.changed
    node = root.descendant_for_byte_range(start, end) if edit.shaped else None
    if node is None or node.has_error:
        return False
    if node.type == "comment":
        return node.start_byte < start
    string = node.parent
    return node.type == "string_content" and string is not None and string.type == "string" \
        and string.parent is not None and string.parent.type == "expression_statement" \
        and string.parent.named_child_count == 1 and not string.parent.has_error


def diff_in(old: bytes, new: bytes, old_root) -> Edit:
    """:func:`diff`, where an edit of white space alone changes no word (:func:`layout_only`); ``old_root``: the
    old version's tree."""
    edit = diff(old, new)
    return layout_only(edit, old, new, old_root) or edit


def layout_only(edit: Edit, old: bytes, new: bytes, old_root) -> Edit | None:
    """``edit`` without words, when it changed white space next to white space (or a line's end), outside any
    string: Enter and the editor's indentation at the end of a line, a space typed or deleted. The same tokens
    stay in the same order (no word is joined or split, no `\\` continuation broken), so no word changed.
    Blank lines added or removed and white space at the end of a line change nothing else either; any other
    layout change (a line split, joined or reindented) keeps the edit's shape, which makes it an edit of the
    statements it touches. None for any other edit."""
    start, new_end = edit.changed
    old_end = new_end - edit.delta
    changed_old, changed_new = old[start:old_end], new[start:new_end]
    if not (changed_old or changed_new) or (changed_old and not changed_old.isspace()) \
            or (changed_new and not changed_new.isspace()):
        return None
    before, after = old[start - 1:start], old[old_end:old_end + 1]  # (the same bytes in the new version)
    if not (before.isspace() or after.isspace() or not before or not after) or before == b"\\":
        return None  # `a b` -> `ab`, or a space typed after a `\`
    if _in_string(old_root, start, old_end):  # (white space next to white space cannot start or end one)
        return None
    lines_before, lines_after = old[edit.start:edit.old_end], new[edit.start:edit.new_end]
    continued = old[:edit.start].rstrip(b" \t\r\n").endswith(b"\\")  # a blank line after `\` ends the statement
    same_lines = not continued and _code_lines(lines_before) == _code_lines(lines_after)
    return dataclasses.replace(edit, names=frozenset(), words=frozenset(),
                               blockers=frozenset() if same_lines else edit.blockers & {SHAPE})


def _code_lines(block: bytes) -> list[bytes]:
    """The lines that are not blank, without the white space they end with."""
    return [line.rstrip() for line in block.split(b"\n") if line.strip()]


def _in_string(root, start: int, end: int) -> bool:
    """Whether [start, end] touches a string (white space in one is part of its value; in an f-string's
    `{ x }`, it is not, but that is rare enough to treat the same)."""
    node = root.descendant_for_byte_range(max(start - 1, 0), end)
    while node is not None:
        if node.type in ("string", "string_content", "concatenated_string"):
            return True
        node = node.parent
    return False


def _line_end(text: bytes, offset: int) -> int:
    end = text.find(b"\n", offset)
    return len(text) if end < 0 else end


def _blank_lines(block: bytes) -> list[bool]:
    """Which lines hold only white space (text typed on one at column 0 may end a block)."""
    return [not line.strip() for line in block.split(b"\n")]


def _indents(block: bytes) -> list[int]:
    return [len(line) - len(line.lstrip(b" \t")) for line in block.split(b"\n")]
