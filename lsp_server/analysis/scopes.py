"""Scopes and definitions: which assignment a name refers to at a given point.

Deliberately simple, flow-insensitive within a scope: a name at offset ``p`` refers to the last
definition before ``p`` in its function, else the module's (Python's late binding makes a module
global read inside a function see the latest module-level assignment). That is what research
scripts and notebooks need, and it never guesses across unrelated scopes.
"""

from __future__ import annotations

import bisect
from .syntax import Node, Parsed, text

MODULE = (-1, -1)
ScopeKey = tuple[int, int]


class Definition:
    """One binding of a name (a plain slots class: thousands are built per analysis)."""

    __slots__ = ("name", "offset", "kind", "node", "target")

    def __init__(self, name: str, offset: int, kind: str, node: Node, target: Node):
        self.name = name
        self.offset = offset  # where the definition takes effect (end of the defining statement)
        self.kind = kind  # "assign" | "param" | "for" | "with" | "def" | "class"
        self.node = node  # the value (assign), the parameter node, the iterable (for), the def node
        self.target = target  # the target expression the name appears in (for tuple unpacking)

    def __repr__(self) -> str:
        return f"Definition({self.name!r}, {self.kind}, offset={self.offset})"


DEFS_QUERY = """
(assignment left: (_) @lhs right: (_) @rhs) @assign
(function_definition name: (identifier) @fname parameters: (parameters) @params) @func
(class_definition name: (identifier) @cname) @class
(for_statement left: (_) @for_lhs right: (_) @for_rhs) @for
(for_in_clause left: (_) @comp_lhs right: (_) @comp_rhs) @comp
(with_item value: (as_pattern (_) @with_value alias: (as_pattern_target (_) @with_lhs)))
(lambda parameters: (lambda_parameters) @lparams) @lambda
"""


class Scopes:
    """Definitions per scope for one parse, plus the function/lambda nesting."""

    def __init__(self, parsed: Parsed, caps: dict[str, list[Node]]):
        """``caps``: captures of :data:`DEFS_QUERY` over the tree (run together with other queries)."""
        self.parsed = parsed
        self.functions: list[Node] = list(caps.get("func", [])) + list(caps.get("lambda", []))
        self.functions.sort(key=lambda n: n.start_byte)
        self._fn_starts = [n.start_byte for n in self.functions]
        self._fn_ends = [n.end_byte for n in self.functions]
        self._fn_body = [_header_end(n) for n in self.functions]
        self._fn_parent = _parents(self._fn_starts, self._fn_ends)
        self._defs: dict[tuple[ScopeKey, str], list[Definition]] = {}
        self.function_defs: dict[str, list[Node]] = {}
        self.classes: list[Node] = list(caps.get("class", []))

        for assign in caps.get("assign", []):
            lhs, rhs = assign.child_by_field_name("left"), assign.child_by_field_name("right")
            if lhs is not None and rhs is not None:
                self._bind_target(lhs, "assign", rhs, _statement_end(assign))
        for fn in caps.get("func", []):
            name = text(fn.child_by_field_name("name"))
            self.function_defs.setdefault(name, []).append(fn)
            self._add(self.scope_of(fn.start_byte), Definition(name, fn.start_byte, "def", fn, fn))
            params = fn.child_by_field_name("parameters")
            if params is not None:
                self._bind_params(params, fn)
        for lam in caps.get("lambda", []):
            params = lam.child_by_field_name("parameters")
            if params is not None:
                self._bind_params(params, lam)
        for cls in caps.get("class", []):
            name = text(cls.child_by_field_name("name"))
            self._add(self.scope_of(cls.start_byte), Definition(name, cls.start_byte, "class", cls, cls))
        for loop in caps.get("for", []) + caps.get("comp", []):
            lhs, rhs = loop.child_by_field_name("left"), loop.child_by_field_name("right")
            if lhs is not None and rhs is not None:
                self._bind_target(lhs, "for", rhs, rhs.end_byte if loop.type == "for_in_clause" else loop.start_byte)
        for value, target in zip(caps.get("with_value", []), caps.get("with_lhs", [])):
            self._bind_target(target, "with", value, value.end_byte)
        for defs in self._defs.values():
            defs.sort(key=lambda d: d.offset)
        self._offsets = {key: [d.offset for d in defs] for key, defs in self._defs.items()}

    # -- building

    def _add(self, scope: ScopeKey, d: Definition) -> None:
        self._defs.setdefault((scope, d.name), []).append(d)

    def _bind_target(self, target: Node, kind: str, value: Node, offset: int) -> None:
        scope = self.scope_of(target.start_byte)
        if target.type == "identifier":
            self._add(scope, Definition(text(target), offset, kind, value, target))
        elif target.type in ("pattern_list", "tuple_pattern", "list_pattern", "tuple", "list"):
            for child in target.named_children:
                if child.type == "identifier":
                    self._add(scope, Definition(text(child), offset, kind, value, target))
                elif child.type == "list_splat_pattern":
                    continue

    def _bind_params(self, params: Node, fn: Node) -> None:
        scope = _key(fn)
        for p in params.named_children:
            name_node = p
            if p.type in ("typed_parameter", "default_parameter", "typed_default_parameter"):
                name_node = p.child_by_field_name("name") or (p.named_children[0] if p.named_children else p)
            if name_node.type in ("list_splat_pattern", "dictionary_splat_pattern"):
                continue
            if name_node.type == "identifier":
                self._add(scope, Definition(text(name_node), fn.start_byte, "param", p, p))

    # -- queries

    def scope_of(self, offset: int) -> ScopeKey:
        """The innermost function (or lambda) containing ``offset``, else the module."""
        i = bisect.bisect_right(self._fn_starts, offset) - 1
        while i >= 0:
            if self._fn_body[i] <= offset < self._fn_ends[i]:
                return (self._fn_starts[i], self._fn_ends[i])
            # Functions are nested intervals: only an ancestor of i can still contain offset.
            i = self._fn_parent[i]
        return MODULE

    def function_at(self, offset: int) -> Node | None:
        key = self.scope_of(offset)
        if key == MODULE:
            return None
        i = bisect.bisect_left(self._fn_starts, key[0])
        while i < len(self.functions) and self.functions[i].start_byte == key[0]:
            if _key(self.functions[i]) == key:
                return self.functions[i]
            i += 1
        return None

    def lookup(self, name: str, offset: int) -> Definition | None:
        """The definition ``name`` refers to at ``offset`` (innermost scope first)."""
        scope = self.scope_of(offset)
        while True:
            defs = self._defs.get((scope, name))
            if defs:
                i = bisect.bisect_left(self._offsets[(scope, name)], offset)
                if i > 0:
                    return defs[i - 1]
                if scope == MODULE and self._is_late_bound(offset):
                    return defs[-1]
            if scope == MODULE:
                return None
            scope = self._parent_scope(scope)

    def definitions(self, name: str, scope: ScopeKey = MODULE) -> list[Definition]:
        return self._defs.get((scope, name), [])

    def all_definitions(self) -> list[Definition]:
        return [d for defs in self._defs.values() for d in defs]

    def _parent_scope(self, scope: ScopeKey) -> ScopeKey:
        return self.scope_of(scope[0] - 1) if scope[0] > 0 else MODULE

    def _is_late_bound(self, offset: int) -> bool:
        # Inside a function body a module global may be assigned after the def (still before the call).
        return self.scope_of(offset) != MODULE


def _key(fn: Node) -> ScopeKey:
    return (fn.start_byte, fn.end_byte)


def _header_end(fn: Node) -> int:
    """Where a function's own scope starts: its parameters (defaults belong to the outer scope)."""
    params = fn.child_by_field_name("parameters")
    return params.start_byte if params is not None else fn.start_byte


def _parents(starts: list[int], ends: list[int]) -> list[int]:
    """Index of the enclosing interval for each of a sorted list of nested intervals (-1: none)."""
    parents, stack = [], []
    for i, (start, end) in enumerate(zip(starts, ends)):
        while stack and ends[stack[-1]] <= start:
            stack.pop()
        parents.append(stack[-1] if stack else -1)
        stack.append(i)
    return parents


def _statement_end(node: Node) -> int:
    return node.end_byte

