"""The document as every lifetime step sees it: its text, tree and scopes, and how messages name a place."""

from __future__ import annotations

from ..scopes import MODULE, Scopes
from ..syntax import Node, statement_of
from .syntax import short


class Doc:
    def __init__(self, analysis):
        self.a = analysis
        self.scopes: Scopes = analysis.scopes
        self.src: bytes = analysis.parsed.source
        self.root: Node = analysis.parsed.root
        self.line_of = analysis.lines.line_of
        # Notebook cells arrive joined into one text (analyze(..., notebook=True)): its line numbers mean nothing to the user.
        self.notebook = bool(getattr(analysis.scopes, "late_module_lookups", False))

    def scope_of(self, node: Node) -> tuple:
        return self.scopes.scope_of(node.start_byte)

    def fn_node(self, scope) -> Node | None:
        """The function definition of a scope (None for the module)."""
        if scope == MODULE:
            return None
        n = self.root.descendant_for_byte_range(scope[0], scope[0])
        while n is not None and not (n.type == "function_definition" and n.start_byte == scope[0] and n.end_byte == scope[1]):
            n = n.parent
        return n

    def source(self, node: Node) -> str:
        return self.a.source[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def where(self, node: Node) -> str:
        """``line 31`` in a file; in a notebook (cells joined into one text) the statement itself."""
        if not self.notebook:
            return f"line {self.line_of(node.start_byte) + 1}"
        stmt = node if node.parent is not None and node.parent.type in ("block", "module") else statement_of(node)
        first = self.src[stmt.start_byte:stmt.end_byte].split(b"\n", 1)[0].decode("utf-8", "replace")
        return f"`{short(first, 60)}`"
