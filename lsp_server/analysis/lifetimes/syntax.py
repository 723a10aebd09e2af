"""Syntax and control-flow helpers for the hook-lifetime checks (the edits their fixes make: ``fixes``).

Everything here works on tree-sitter nodes of one parse and byte offsets into its text.
"""

from __future__ import annotations

import re

from ..syntax import Node, statement_of, text

LOOPS = ("for_statement", "while_statement")
SCOPE_BOUNDARIES = ("function_definition", "lambda", "module")


# A `del` statement at the start of a line (group 1: what it deletes, up to a comment or the line's end).
_DEL = re.compile(rb"^del[ \t]+([^#\n]*)", re.M)


def deleted_at_top(root: Node, source: bytes, name: str, start: int, end: int) -> bool:
    """Whether a statement of the module itself (not of a block: every run reaches it) deletes ``name``
    between ``start`` and ``end`` (``del model``, ``del model, cache``); ``source``: the text ``root`` parses."""
    for m in _DEL.finditer(source, start, end):
        statement = root.descendant_for_byte_range(m.start(), m.start() + 3)
        statement = statement.parent if statement is not None else None
        if statement is not None and statement.type == "delete_statement" and statement.parent == root \
                and name.encode() in (part.strip() for part in m.group(1).split(b",")):
            return True
    return False


def short(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def literal(node: Node | None) -> str | None:
    if node is None or node.type != "string":
        return None
    return text(node).strip("'\"")


def permanent(node: Node | None) -> bool | None:
    """is_permanent as written: False when absent/False, True when True, None when unknown."""
    if node is None or text(node) == "False":
        return False
    if text(node) == "True":
        return True
    return None


def gives_hooks(keywords: dict) -> bool:
    """``fwd_hooks=`` / ``bwd_hooks=`` present and not an empty literal: the call adds hooks."""
    return any(keywords.get(k) is not None and text(keywords[k]).replace(" ", "") not in ("[]", "()", "None")
               for k in ("fwd_hooks", "bwd_hooks"))


def in_lambda(node: Node) -> bool:
    """Inside a lambda body: runs whenever the lambda is called, not where it is written."""
    n = node.parent
    while n is not None and n.type not in ("function_definition", "module"):
        if n.type == "lambda":
            return True
        n = n.parent
    return False


def enclosing_loops(node: Node) -> list[tuple[Node, bool]]:
    """Enclosing loops in the node's scope, innermost first, each with "an `if` lies between"."""
    out, conditional = [], False
    n = node.parent
    while n is not None and n.type not in SCOPE_BOUNDARIES:
        if n.type in ("if_statement", "conditional_expression", "elif_clause", "else_clause"):
            conditional = True
        if n.type in LOOPS:
            out.append((n, conditional))
        n = n.parent
    return out


def outer_loop_start(node: Node) -> int:
    """Where the outermost loop around ``node`` (in its scope) starts; the node's start outside loops."""
    loops = enclosing_loops(node)
    return loops[-1][0].start_byte if loops else node.start_byte


def enclosing_function_name(node: Node) -> str:
    n = node.parent
    while n is not None and n.type != "function_definition":
        n = n.parent
    return text(n.child_by_field_name("name")) if n is not None else "?"


def use_statement(anchor: Node, fwd: Node) -> Node:
    """The outermost statement around ``fwd`` (in its scope) that does not contain ``anchor``."""
    best = None
    n = fwd
    while n is not None and n.type not in SCOPE_BOUNDARIES:
        if n.parent is not None and n.parent.type in ("block", "module"):
            if n.start_byte <= anchor.start_byte < n.end_byte:
                break
            best = n
        n = n.parent
    return best or statement_of(fwd)


def reaches(a: Node, b: Node) -> bool:
    """Whether ``b`` (later in the text) can run after ``a`` on one path: not in an exclusive branch, no jump away."""
    chain: list[Node] = []
    n = a
    while n is not None:
        chain.append(n)
        n = n.parent
    index = {x.id: i for i, x in enumerate(chain)}
    n, prev_b = b, None
    while n is not None and n.id not in index:
        prev_b, n = n, n.parent
    if n is None:
        return False
    i = index[n.id]
    lca, prev_a = n, (chain[i - 1] if i > 0 else None)
    branch = ("block", "elif_clause", "else_clause", "except_clause", "finally_clause", "case_clause")
    if lca.type in ("if_statement", "match_statement", "conditional_expression"):
        if prev_a is not None and prev_b is not None and prev_a.type in branch and prev_b.type in branch:
            return False
    if lca.type == "try_statement" and prev_a is not None and prev_b is not None:
        if not (prev_b.type == "finally_clause" or (prev_a.type == "block" and prev_b.type == "else_clause")):
            return False
    for j in range(1, i):
        block = chain[j]
        if block.type != "block":
            continue
        sib = chain[j - 1].next_named_sibling
        while sib is not None:
            if sib.type in ("return_statement", "raise_statement"):
                return False
            if sib.type in ("break_statement", "continue_statement"):
                loop = block.parent
                while loop is not None and loop.type not in LOOPS and loop.type not in SCOPE_BOUNDARIES:
                    loop = loop.parent
                if loop is not None and loop.type in LOOPS and loop.start_byte <= b.start_byte < loop.end_byte:
                    return False
            sib = sib.next_named_sibling
    return True


def assigned_names(stmt: Node) -> str:
    """The target text of an assignment statement (``clean_logits, cache`` in ``clean_logits, cache = ...``)."""
    expr = stmt.named_children[0] if stmt.type == "expression_statement" and stmt.named_children else None
    left = expr.child_by_field_name("left") if expr is not None and expr.type == "assignment" else None
    return text(left)


def runs_once(loop: Node) -> bool:
    """A loop whose body ends every iteration with break/return at its top level."""
    body = loop.child_by_field_name("body")
    return body is not None and any(c.type in ("break_statement", "return_statement") for c in body.named_children)
