"""What pytest passes a test function: the rows of ``@pytest.mark.parametrize`` and the values of fixtures.

A test function has no call sites in the code: pytest calls it once per row of its parametrize
decorators, so a parameter they name takes exactly one of the values listed there; any other
parameter gets what the ``@pytest.fixture`` function of its name returns or yields.
"""

from __future__ import annotations

from .scopes import function_of
from .syntax import Node, call_args, descendants, string_value, text

_PARAMETRIZE = frozenset({"pytest.mark.parametrize", "mark.parametrize"})


def parametrized(fn: Node, names: list[str]) -> tuple[Node, list[tuple[Node, ...]]] | None:
    """(the decorator, each row's value nodes for ``names``, in order) when one parametrize decorator of ``fn``
    names every one of the parameters ``names``; None when none does, or when its rows cannot be read (not
    a literal list, a row of another width, ``indirect=`` handing the values to fixtures)."""
    decorated = fn.parent
    if decorated is None or decorated.type != "decorated_definition":
        return None
    for decorator in decorated.named_children:
        call = decorator.named_children[0] if decorator.type == "decorator" and decorator.named_children else None
        if call is None or call.type != "call" or _decorator_name(decorator) not in _PARAMETRIZE:
            continue
        positional, keywords = call_args(call)
        filled = _argnames(positional[0] if positional else keywords.get("argnames"))
        if filled is None or not set(names) <= set(filled):
            continue
        rows_node = positional[1] if len(positional) > 1 else keywords.get("argvalues")
        if rows_node is None or rows_node.type not in ("list", "tuple") or "indirect" in keywords:
            return None
        rows = [_cells(row, len(filled)) for row in rows_node.named_children if row.type != "comment"]
        if not rows or None in rows:
            return None
        return decorator, [tuple(row[filled.index(n)] for n in names) for row in rows]  # type: ignore[index]
    return None


def _argnames(node: Node | None) -> list[str] | None:
    """``"site"``, ``"site, layer"``, ``["site", "layer"]``: the parameter names a decorator fills."""
    if node is None:
        return None
    if node.type == "string":
        value = string_value(node)
        return [n.strip() for n in value.split(",") if n.strip()] if value is not None else None
    if node.type in ("list", "tuple"):
        names = [string_value(c) if c.type == "string" else None for c in node.named_children]
        return names if None not in names else None  # type: ignore[return-value]
    return None


def _cells(row: Node, width: int) -> list[Node] | None:
    """The values of one row (``pytest.param(...)`` rows give their positional arguments)."""
    if row.type == "call" and text(row.child_by_field_name("function")) in ("pytest.param", "param"):
        cells = call_args(row)[0]
    elif width == 1:
        return [row]
    elif row.type in ("tuple", "list", "parenthesized_expression"):
        cells = [c for c in row.named_children if c.type != "comment"]
    else:
        return None
    return cells if len(cells) == width else None


_FIXTURE = frozenset({"pytest.fixture", "fixture"})


def pytest_calls(fn: Node) -> bool:
    """Whether pytest calls ``fn`` and fills its parameters with fixtures: a ``test*`` function or a fixture."""
    name = fn.child_by_field_name("name")
    return name is not None and text(name).startswith("test") or _is_fixture(fn)


def _is_fixture(fn: Node) -> bool:
    decorated = fn.parent
    return decorated is not None and decorated.type == "decorated_definition" and any(
        _decorator_name(d) in _FIXTURE for d in decorated.named_children if d.type == "decorator")


def fixture_values(fn: Node) -> list[Node] | None:
    """What a ``@pytest.fixture`` function hands the tests that name it: the expression of each of its own
    ``return`` and ``yield`` statements; None when ``fn`` is not a fixture or hands over nothing."""
    if not _is_fixture(fn):
        return None
    body = fn.child_by_field_name("body")
    values = []
    for node in descendants(body, "return_statement", "yield") if body is not None else ():
        if function_of(node) is None or function_of(node).start_byte != fn.start_byte:
            continue  # a nested function's
        values.append(node.named_children[0] if node.named_children else None)
    return values if values and None not in values else None  # type: ignore[return-value]


def _decorator_name(decorator: Node) -> str:
    """``pytest.fixture`` for ``@pytest.fixture`` and ``@pytest.fixture(scope="module")``."""
    expr = decorator.named_children[0] if decorator.named_children else None
    if expr is not None and expr.type == "call":
        expr = expr.child_by_field_name("function")
    return text(expr).replace(" ", "") if expr is not None else ""
