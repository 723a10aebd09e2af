"""Incremental regex scans equal full scans after any edit."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

import re

from lsp_server.analysis.document import _METHOD_CALL, _NAME_CALL, _NAME_SUBSCRIPT
from lsp_server.analysis.syntax import _HELP, _MAGIC, _MAGIC_ASSIGN
from lsp_server.analysis.textscan import MARGIN_LINES, IncrementalScan, edit_between

TEXT = (Path(__file__).parent.parent.parent / "examples" / "hooked_transformer" / "ioi_patching.py").read_bytes()
INSERTS = [b"", b"x", b"(", b"[", b"\n", b"cache[", b"model(", b".run_with_cache(", b" \n(", b"'", b'"', b"# (", b"f(\n",
           b"\n%timeit ", b"\nx = !ls", b"obj?", b"!", b"=", b"%"]
PATTERNS = (_METHOD_CALL, _NAME_CALL, _NAME_SUBSCRIPT, _MAGIC, _MAGIC_ASSIGN, _HELP)


def full(pattern, text):
    return [m.span(1) for m in pattern.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(TEXT)), st.integers(0, 40), st.sampled_from(INSERTS)), min_size=1, max_size=6))
def test_incremental_equals_full(edits):
    scans = [IncrementalScan(p) for p in PATTERNS]
    text = TEXT
    for scan in scans:
        scan.spans(text)
    for at, delete, insert in edits:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + delete:]
        for scan in scans:
            assert scan.spans(text) == full(scan.pattern, text)


def test_edit_between():
    assert edit_between(b"abcdef", b"abXdef") == (2, 3, 3)
    assert edit_between(b"abc", b"abc") == (3, 3, 3)
    assert edit_between(b"", b"x") == (0, 0, 1)
    assert edit_between(b"aaaa", b"aa") == (2, 4, 2)


def test_a_match_found_near_the_edit_keeps_its_whole_extent():
    """The scan after an edit looks for matches only a few lines past it, but a match it finds there is
    matched again on the whole text: one running on past those lines keeps its full span."""
    pattern = re.compile(rb"(call\([a-z\n]*)")
    before = b"x = 1\n" + b"abc\n" * (MARGIN_LINES + 10) + b"y = 2\n"
    scan = IncrementalScan(pattern)
    assert scan.spans(before) == []
    after = b"x = call(\n" + before[len(b"x = 1\n"):]
    assert scan.spans(after) == full(pattern, after) == [(4, len(after) - len(b" = 2\n"))]  # (to the "y")


def test_a_match_far_after_the_edit_is_kept_not_searched_again():
    text = b"a = 1\n" * 50 + b"f(x)\n"
    scan = IncrementalScan(_NAME_CALL)
    assert scan.spans(text) == [(len(text) - 5, len(text) - 4)]
    edited = b"b" + text
    assert scan.spans(edited) == full(_NAME_CALL, edited) == [(len(edited) - 5, len(edited) - 4)]
