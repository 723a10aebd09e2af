"""The tests that guard a read of a loop variable over a cache's names.

``for key in cache.keys(): if "hook_mlp_out" not in key: continue; cache[key]`` reads only the names
the test lets through; so do ``if key.endswith("hook_z"): cache[key]`` and
``[cache[k] for k in cache if "resid_post" in k]``. Pure syntax: which strings, and how they are matched
(the ``(needle, match)`` pairs :func:`.hook_filters.selected` takes).
"""

from __future__ import annotations

from .syntax import Node, call_args, call_name, string_value, text


def guard_tests(name: str, read: Node, loop: Node) -> tuple[list[list[tuple[str, str]]], list[Node]] | None:
    """(the tests the loop variable ``name`` passed wherever it is read at ``read``, each a list of
    ``(needle, match)`` any one of which it holds, all of them to pass; the guarding nodes) when every guard
    around the read is such a test; None when none guards it, or one guard is a test of another form (its
    names would not be narrowed: listing them would list names never read)."""
    if loop.type == "for_in_clause":  # a comprehension: its `if` clauses
        clauses = [c for c in loop.parent.named_children if c.type == "if_clause"] if loop.parent is not None else []
        guards = [(c.named_children[0], c, True) for c in clauses if c.named_children]
    else:
        guards = _statement_guards(read, loop)
    if not guards:
        return None
    tests: list[list[tuple[str, str]]] = []
    for condition, _, positive in guards:
        found = _tests(condition, name, positive)
        if found is None:
            return None
        tests += found
    return tests, [node for _, node, _ in guards]


def _statement_guards(read: Node, loop: Node) -> list[tuple[Node, Node, bool]]:
    """(condition, statement, whether the read needs it true) of each ``if <test>: continue`` before the read in
    the loop's body, and of the ``if`` of the body whose first branch holds the read."""
    body = loop.child_by_field_name("body")
    statement = next((s for s in body.named_children if s.start_byte <= read.start_byte < s.end_byte), None) \
        if body is not None else None
    if statement is None:
        return []
    guards = [(s.child_by_field_name("condition"), s, False) for s in body.named_children
              if s.start_byte < statement.start_byte and _skips_rest(s)]
    consequence = statement.child_by_field_name("consequence") if statement.type == "if_statement" else None
    if consequence is not None and consequence.start_byte <= read.start_byte < consequence.end_byte:
        guards.append((statement.child_by_field_name("condition"), statement, True))
    return guards


def _skips_rest(statement: Node) -> bool:
    """``if <test>: continue`` with no other branch."""
    if statement.type != "if_statement" or statement.child_by_field_name("alternative") is not None:
        return False
    block = statement.child_by_field_name("consequence")
    body = [s for s in block.named_children if s.type != "comment"] if block is not None else []
    return len(body) == 1 and body[0].type == "continue_statement"


def _tests(test: Node | None, name: str, positive: bool) -> list[list[tuple[str, str]]] | None:
    """What ``test`` requires of ``name`` when it holds (``positive``) or fails: a list of tests all of which
    pass, each a list of ``(needle, match)`` one of which holds (``"s" in name``, ``name.endswith("s")`` or
    ``(("a", "b"))``, ``name.startswith("s")``, under ``not``, ``and`` and ``or``); None for any other test."""
    while test is not None and test.type in ("not_operator", "parenthesized_expression"):
        if test.type == "not_operator":
            positive = not positive
            test = test.child_by_field_name("argument")
        else:
            test = test.named_children[0] if test.named_child_count == 1 else None
    if test is None:
        return None
    if test.type == "boolean_operator":
        left, right = test.child_by_field_name("left"), test.child_by_field_name("right")
        op = text(test.child_by_field_name("operator"))
        sides = [_tests(left, name, positive), _tests(right, name, positive)]
        if None in sides:
            return None
        if (op == "and") == positive:  # both must hold (`a and b`, or `not (a or b)`)
            return sides[0] + sides[1]  # type: ignore[operator]
        if any(len(side) != 1 for side in sides):  # either may hold: one test, any of both sides' needles
            return None
        return [sides[0][0] + sides[1][0]]  # type: ignore[index]
    needles = _needles(test, name, positive)
    return [needles] if needles else None


def _needles(test: Node, name: str, positive: bool) -> list[tuple[str, str]] | None:
    """One comparison or call: ``"s" in name`` / ``not in``, ``name.endswith(...)``, ``name.startswith(...)``."""
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
