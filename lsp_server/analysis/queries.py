"""Compiled tree-sitter queries, shared by every analysis (compiling one takes milliseconds)."""

from __future__ import annotations

import threading

import tree_sitter

from .syntax import LANGUAGE, Node

_compiled: dict[str, tree_sitter.Query] = {}
_lock = threading.Lock()


def run_query(name: str, source: str, root: Node) -> dict[str, list[Node]]:
    """Captures of the query ``source`` (compiled once under ``name``) over ``root``."""
    query = _compiled.get(name)
    if query is None:
        with _lock:
            query = _compiled.get(name) or tree_sitter.Query(LANGUAGE, source)
            _compiled[name] = query
    return tree_sitter.QueryCursor(query).captures(root)
