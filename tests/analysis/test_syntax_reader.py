"""The parser reads the text in chunks (so that other threads run while tree-sitter parses): the trees
are the ones tree-sitter makes from the whole text, also where a chunk ends inside a character."""

import pytest
import tree_sitter

from lsp_server.analysis.syntax import LANGUAGE, READ_CHUNK, SyntaxParser


@pytest.mark.parametrize("pad", range(4))
def test_chunks_that_split_a_character_parse_as_the_whole_text(pad):
    head = b"x = 1\n" * 10 + b"#" * (READ_CHUNK - 61 - pad) + b"\n"
    text = head + 's = "😋é" * 3\ncache["resid_post", 0]\n'.encode() * 400
    parser = SyntaxParser()
    whole = tree_sitter.Parser(LANGUAGE)
    assert str(parser.parse(text).root) == str(whole.parse(text).root_node)
    edited = text.replace("😋".encode(), "😋x".encode(), 1)  # and incrementally
    assert str(parser.parse(edited).root) == str(whole.parse(edited).root_node)
