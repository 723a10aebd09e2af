"""Incremental regex scans equal full scans after any edit."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

from lsp_server.analysis.document import _METHOD_CALL, _NAME_CALL, _NAME_SUBSCRIPT
from lsp_server.analysis.textscan import IncrementalScan, edit_between

TEXT = (Path(__file__).parent.parent.parent / "examples" / "hooked_transformer" / "ioi_patching.py").read_bytes()
INSERTS = [b"", b"x", b"(", b"[", b"\n", b"cache[", b"model(", b".run_with_cache(", b" \n(", b"'", b'"', b"# (", b"f(\n"]


def full(pattern, text):
    return [m.span(1) for m in pattern.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(TEXT)), st.integers(0, 40), st.sampled_from(INSERTS)), min_size=1, max_size=6))
def test_incremental_equals_full(edits):
    scans = [IncrementalScan(p) for p in (_METHOD_CALL, _NAME_CALL, _NAME_SUBSCRIPT)]
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
