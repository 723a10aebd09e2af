"""The test that guards a read of a loop variable over a cache's names.

``for key in cache.keys(): if "hook_mlp_out" not in key: continue; cache[key]`` reads only the names
the test lets through; so do ``if key.endswith("hook_z"): cache[key]`` and
``[cache[k] for k in cache if "resid_post" in k]``. Pure syntax: which strings, and how they are matched
(the ``(needle, match)`` pairs :func:`.hook_filters.selected` takes).
"""

from __future__ import annotations

from .syntax import Node, call_args, call_name, string_value, text


def guard_needles(name: str, read: Node, loop: Node) -> tuple[list[tuple[str, str]], Node] | None:
    """((needle, match) of each string the name must hold, any one of them; the guarding node) when every read
    of the loop variable ``name`` at ``read`` passed exactly one such test; None when none guards it, or
    more than one (each would narrow further: listing one test's names would list names never read)."""
    if loop.type == "for_in_clause":  # a comprehension: its `if` clause
        clauses = [c for c in loop.parent.named_children if c.type == "if_clause"] if loop.parent is not None else []
        test = clauses[0].named_children[0] if len(clauses) == 1 and clauses[0].named_children else None
        needles = _needles(test, name, positive=True) if test is not None else None
        return (needles, clauses[0]) if needles else None
    body = loop.child_by_field_name("body")
    statement = next((s for s in body.named_children if s.start_byte <= read.start_byte < s.end_byte), None) \
        if body is not None else None
    if statement is None:
        return None
    guards = []
    for earlier in body.named_children:
        if earlier.start_byte >= statement.start_byte:
            break
        if _skips_rest(earlier):  # `if "mlp_out" not in key: continue`
            guards.append((earlier, False))
    consequence = statement.child_by_field_name("consequence") if statement.type == "if_statement" else None
    if consequence is not None and consequence.start_byte <= read.start_byte < consequence.end_byte:
        guards.append((statement, True))  # `if "mlp_out" in key: cache[key]`
    if len(guards) != 1:
        return None
    guard, positive = guards[0]
    needles = _needles(guard.child_by_field_name("condition"), name, positive)
    return (needles, guard) if needles else None


def _skips_rest(statement: Node) -> bool:
    """``if <test>: continue`` with no other branch."""
    if statement.type != "if_statement" or statement.child_by_field_name("alternative") is not None:
        return False
    block = statement.child_by_field_name("consequence")
    body = [s for s in block.named_children if s.type != "comment"] if block is not None else []
    return len(body) == 1 and body[0].type == "continue_statement"


def _needles(test: Node | None, name: str, positive: bool) -> list[tuple[str, str]] | None:
    """The strings ``test`` requires of ``name`` when it holds (``positive``) or fails: ``"s" in name``,
    ``name.endswith("s")`` / ``(("a", "b"))``, ``name.startswith("s")``, under any number of ``not``."""
    while test is not None and test.type in ("not_operator", "parenthesized_expression"):
        if test.type == "not_operator":
            positive = not positive
            test = test.child_by_field_name("argument")
        else:
            test = test.named_children[0] if test.named_child_count == 1 else None
    if test is None:
        return None
    if test.type == "comparison_operator" and test.named_child_count == 2:
        left, right = test.named_children
        ops = [text(c) for c in test.children if not c.is_named]
        if ops not in (["in"], ["not in"]) or right.type != "identifier" or text(right) != name:
            return None
        needle = string_value(left) if left.type == "string" else None
        return [(needle, "substring")] if needle and positive == (ops == ["in"]) else None
    if test.type == "call" and positive:
        obj, method, _ = call_name(test)
        positional, keywords = call_args(test)
        if obj != name or method not in ("endswith", "startswith") or len(positional) != 1 or keywords:
            return None
        arg = positional[0]
        strings = [string_value(s) if s.type == "string" else None for s in (arg.named_children if arg.type == "tuple" else [arg])]
        match = "suffix" if method == "endswith" else "prefix"
        return [(s, match) for s in strings] if strings and all(strings) else None  # type: ignore[misc]
    return None
