"""The editor's documents: an incremental change spliced into the text gives the text and lines that
pygls's own rewrite of every line gives (on the same LSP line breaks)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace import PositionCodec, TextDocument

from lsp_server.open_documents import _LSP_LINE, LspTextDocument

# Line breaks of every kind, a form feed (not a line break in LSP), and characters of 1 and 2 UTF-16 units.
_CHARS = st.sampled_from(["a", "b", " ", "\n", "\r", "\r\n", "\x0c", "é", "😋", "\u2028"])
_TEXT = st.lists(_CHARS, max_size=30).map("".join)


def _document(text: str, encoding: types.PositionEncodingKind) -> LspTextDocument:
    return LspTextDocument("file:///a.py", source=text, version=1, position_codec=PositionCodec(encoding))


@settings(max_examples=400, deadline=None)
@given(text=_TEXT, edits=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 12), st.integers(0, 8),
                                            st.integers(0, 12), _TEXT), max_size=6),
       encoding=st.sampled_from([types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf32]))
def test_spliced_change_matches_rewriting_every_line(text, edits, encoding):
    spliced, rewritten = _document(text, encoding), _document(text, encoding)
    for l1, c1, l2, c2, new_text in edits:
        (l1, c1), (l2, c2) = sorted([(l1, c1), (l2, c2)])
        def change():  # (each its own: pygls's codec clamps a position past a line's end in place)
            return types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(l1, c1), types.Position(l2, c2)), text=new_text)
        where = spliced._position_codec.range_from_client_units(spliced.lines, change().range)
        if (where.start.line, where.start.character) > (where.end.line, where.end.character):
            break  # past a line's end pygls clamps the end before the start (and would duplicate text)
        spliced._apply_incremental_change(change())
        TextDocument._apply_incremental_change(rewritten, change())  # pygls's own, on the same lines
        assert spliced.source == rewritten.source
        assert spliced.lines == tuple(_LSP_LINE.findall(spliced.source))


def test_lines_are_split_once_per_text():
    doc = _document("a\nb\n", types.PositionEncodingKind.Utf16)
    assert doc.lines is doc.lines
    doc._apply_incremental_change(types.TextDocumentContentChangePartial(
        range=types.Range(types.Position(1, 0), types.Position(1, 0)), text="x"))
    assert doc.lines == ("a\n", "xb\n")
