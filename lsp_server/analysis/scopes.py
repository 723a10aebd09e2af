"""Scopes and definitions: which assignment a name refers to at a given point.

Deliberately simple, flow-insensitive within a scope: a name at offset ``p`` refers to the last
definition before ``p`` in its function, else the module's (Python's late binding makes a module
global read inside a function see the latest module-level assignment). That is what research
scripts and notebooks need, and it never guesses across unrelated scopes.

Definitions are collected by walking *statements* only (a few thousand nodes on a 5,000-line
file, ~2 ms); names bound inside expressions (comprehension variables, lambda parameters) are
resolved at lookup time from the reference's own ancestors.
"""

from __future__ import annotations

import bisect
import re

from .imports import Imported, bindings
from .syntax import Node, Parsed, text

MODULE = (-1, -1)
# `for a, (b, c) in` targets and `lambda x, *, hook:` parameter lists (comprehensions and lambdas).
# Literal-first (a leading \b would cost a slow scan of the whole text); a superset is fine.
_EXPRESSION_BINDERS = (re.compile(rb"for\s+([\w\s,()\[\]]+?)\s+in\b"), re.compile(rb"lambda\b([^:\n]*):"))
_IDENTIFIER = re.compile(rb"[A-Za-z_]\w*")
ScopeKey = tuple[int, int]

# Statements whose bodies hold more statements.
_COMPOUND = frozenset({
    "if_statement", "elif_clause", "else_clause", "for_statement", "while_statement", "try_statement",
    "except_clause", "except_group_clause", "finally_clause", "with_statement", "match_statement",
    "case_clause", "block", "decorated_definition", "class_definition",
})
_COMPREHENSIONS = frozenset({"list_comprehension", "set_comprehension", "dictionary_comprehension", "generator_expression"})
_TARGET_LISTS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "parenthesized_expression"})


class Definition:
    """One binding of a name (a plain slots class: thousands are built per analysis)."""

    __slots__ = ("name", "offset", "kind", "node", "target", "imported")

    def __init__(self, name: str, offset: int, kind: str, node: Node, target: Node, imported: Imported | None = None):
        self.name = name
        self.offset = offset  # where the definition takes effect (end of the defining statement)
        self.kind = kind  # "assign" | "param" | "for" | "with" | "def" | "class" | "import"
        self.node = node  # the value (assign), the parameter node, the iterable (for), the def node, the import
        self.target = target  # the target expression the name appears in (for tuple unpacking)
        self.imported = imported  # what an imported name stands for

    def __repr__(self) -> str:
        return f"Definition({self.name!r}, {self.kind}, offset={self.offset})"


class Scopes:
    """Definitions per scope for one parse, plus the function nesting."""

    def __init__(self, parsed: Parsed, late_module_lookups: bool = False):
        self.parsed = parsed
        # Notebooks: a cell may use a name defined in a later cell that already ran.
        self.late_module_lookups = late_module_lookups
        self.functions: list[Node] = []
        self.classes: list[Node] = []
        self.imports: list[Node] = []
        self.function_defs: dict[str, list[Node]] = {}
        self._defs: dict[tuple[ScopeKey, str], list[Definition]] = {}
        self._walk(parsed.root, MODULE)
        self._fn_starts = [n.start_byte for n in self.functions]
        self._fn_ends = [n.end_byte for n in self.functions]
        self._fn_body = [_header_end(n) for n in self.functions]
        self._fn_parent = _parents(self._fn_starts, self._fn_ends)
        self._offsets = {key: [d.offset for d in defs] for key, defs in self._defs.items()}
        # Names a comprehension or lambda may bind (a superset, from the text): lookups of other
        # names skip the ancestor walk that finds such bindings.
        self._expression_names = {
            name.decode() for pattern in _EXPRESSION_BINDERS for group in pattern.findall(parsed.source)
            for name in _IDENTIFIER.findall(group)}

    # -- building (statements in source order, so every list comes out sorted)

    def _walk(self, block: Node, scope: ScopeKey) -> None:
        for stmt in block.named_children:
            kind = stmt.type
            if kind == "expression_statement":
                # `a = b = value`: every target gets the innermost value.
                expr, targets = stmt.named_child(0), []
                while expr is not None and expr.type == "assignment":
                    left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
                    if left is None or right is None:
                        break
                    targets.append(left)
                    expr = right
                for left in targets:
                    self._bind_target(left, "assign", expr, stmt.end_byte, scope)
            elif kind == "function_definition":
                self._function(stmt, scope)
            elif kind in ("import_statement", "import_from_statement"):
                self.imports.append(stmt)
                for name, bound, imported in bindings(stmt):
                    self._add(scope, Definition(name, stmt.end_byte, "import", stmt, bound, imported))
            elif kind == "for_statement":
                left, right = stmt.child_by_field_name("left"), stmt.child_by_field_name("right")
                if left is not None and right is not None:
                    self._bind_target(left, "for", right, stmt.start_byte, scope)
                self._walk(stmt, scope)
            elif kind == "with_statement":
                for clause in stmt.named_children:
                    if clause.type == "with_clause":
                        for item in clause.named_children:
                            self._with_item(item, scope)
                self._walk(stmt, scope)
            elif kind == "class_definition":
                self.classes.append(stmt)
                name = text(stmt.child_by_field_name("name"))
                self._add(scope, Definition(name, stmt.start_byte, "class", stmt, stmt))
                self._walk(stmt, scope)
            elif kind in _COMPOUND:
                self._walk(stmt, scope)

    def _function(self, fn: Node, scope: ScopeKey) -> None:
        self.functions.append(fn)
        name = text(fn.child_by_field_name("name"))
        self.function_defs.setdefault(name, []).append(fn)
        self._add(scope, Definition(name, fn.start_byte, "def", fn, fn))
        inner = _key(fn)
        params = fn.child_by_field_name("parameters")
        if params is not None:
            for name_node, p in _parameters(params):
                self._add(inner, Definition(text(name_node), fn.start_byte, "param", p, p))
        body = fn.child_by_field_name("body")
        if body is not None:
            self._walk(body, inner)

    def _with_item(self, item: Node, scope: ScopeKey) -> None:
        value = item.child_by_field_name("value")
        if value is not None and value.type == "as_pattern":
            alias = value.child_by_field_name("alias")
            source = value.named_children[0] if value.named_children else None
            target = alias.named_children[0] if alias is not None and alias.named_children else None
            if source is not None and target is not None:
                self._bind_target(target, "with", source, source.end_byte, scope)

    def _add(self, scope: ScopeKey, d: Definition) -> None:
        self._defs.setdefault((scope, d.name), []).append(d)

    def _bind_target(self, target: Node, kind: str, value: Node, offset: int, scope: ScopeKey) -> None:
        if target.type == "identifier":
            self._add(scope, Definition(text(target), offset, kind, value, target))
        elif target.type in _TARGET_LISTS:
            for child in target.named_children:
                if child.type == "identifier":
                    self._add(scope, Definition(text(child), offset, kind, value, target))

    # -- queries

    def scope_of(self, offset: int) -> ScopeKey:
        """The innermost function containing ``offset`` (its body or parameters), else the module."""
        i = bisect.bisect_right(self._fn_starts, offset) - 1
        while i >= 0:
            if self._fn_body[i] <= offset < self._fn_ends[i]:
                return (self._fn_starts[i], self._fn_ends[i])
            # Functions are nested intervals: only an ancestor of i can still contain offset.
            i = self._fn_parent[i]
        return MODULE

    def function_at(self, offset: int) -> Node | None:
        """The innermost def or lambda containing ``offset``."""
        node = self.parsed.root.descendant_for_byte_range(offset, offset)
        while node is not None and node.type not in ("function_definition", "lambda"):
            node = node.parent
        return node

    def lookup(self, name: str, offset: int) -> Definition | None:
        """The definition ``name`` refers to at ``offset`` (innermost scope first)."""
        if name in self._expression_names:
            local = self._expression_binding(name, offset)
            if local is not None:
                return local
        scope = self.scope_of(offset)
        while True:
            defs = self._defs.get((scope, name))
            if defs:
                i = bisect.bisect_left(self._offsets[(scope, name)], offset)
                if i > 0:
                    return defs[i - 1]
                if scope == MODULE and (self.late_module_lookups or self.scope_of(offset) != MODULE):
                    # Inside a function, a module global may be assigned after the def (before the call).
                    return defs[-1]
            if scope == MODULE:
                return None
            scope = self.scope_of(scope[0] - 1) if scope[0] > 0 else MODULE

    def _expression_binding(self, name: str, offset: int) -> Definition | None:
        """A comprehension variable or lambda parameter binding ``name`` around ``offset``."""
        node = self.parsed.root.descendant_for_byte_range(offset, offset)
        while node is not None and node.type not in ("expression_statement", "block", "module", "function_definition"):
            if node.type in _COMPREHENSIONS:
                for clause in node.named_children:
                    if clause.type == "for_in_clause":
                        left, right = clause.child_by_field_name("left"), clause.child_by_field_name("right")
                        if left is not None and right is not None and name in _names(left):
                            return Definition(name, clause.start_byte, "for", right, left)
            elif node.type == "lambda":
                params = node.child_by_field_name("parameters")
                for name_node, p in _parameters(params) if params is not None else ():
                    if text(name_node) == name:
                        return Definition(name, node.start_byte, "param", p, p)
            node = node.parent
        return None

    def definitions(self, name: str, scope: ScopeKey = MODULE) -> list[Definition]:
        return self._defs.get((scope, name), [])

    def all_definitions(self) -> list[Definition]:
        return [d for defs in self._defs.values() for d in defs]


def _names(target: Node) -> list[str]:
    if target.type == "identifier":
        return [text(target)]
    return [text(c) for c in target.named_children if c.type == "identifier"]


def _parameters(params: Node):
    """(name node, parameter node) for each named parameter."""
    for p in params.named_children:
        name_node = p
        if p.type in ("typed_parameter", "default_parameter", "typed_default_parameter"):
            name_node = p.child_by_field_name("name") or (p.named_children[0] if p.named_children else p)
        if name_node.type == "identifier":
            yield name_node, p


def parameters(fn: Node) -> list[tuple[Node, Node]]:
    """(name node, parameter node) of each named parameter of a def or lambda, in order."""
    params = fn.child_by_field_name("parameters")
    return list(_parameters(params)) if params is not None else []


def _key(fn: Node) -> ScopeKey:
    return (fn.start_byte, fn.end_byte)


def _header_end(fn: Node) -> int:
    """Where a function's own scope starts: its parameters (the name belongs to the outer scope)."""
    params = fn.child_by_field_name("parameters")
    return params.start_byte if params is not None else fn.start_byte


def _parents(starts: list[int], ends: list[int]) -> list[int]:
    """Index of the enclosing interval for each of a sorted list of nested intervals (-1: none)."""
    parents, stack = [], []
    for start, end in zip(starts, ends):
        while stack and ends[stack[-1]] <= start:
            stack.pop()
        parents.append(stack[-1] if stack else -1)
        stack.append(len(parents) - 1)
    return parents


# What may follow a name to change it in place: augmented or item assignment, and methods that remove or replace items...
_MUTATION_TAIL = (
    rb"(?!\w)(?:\s*(?:[-+*/%|&@^]|//|\*\*|>>|<<)=|\s*\[[^\]\n]*\]\s*(?:[-+*/%|&@^]|//|\*\*|>>|<<)?=(?!=)"
    rb"|\s*\.\s*(?:remove|pop|clear|__setitem__|__delitem__)\s*\()")
# ...and methods that add or reorder items (a list read as its literal must not have grown either).
_GROWING_TAIL = rb"|(?!\w)\s*\.\s*(?:append|extend|insert|add|update|discard|sort|reverse)\s*\("


def mutated_in(source: bytes, name: str, growing: bool = False) -> bool:
    """Whether ``name`` (a whole word, not an attribute) is changed in place anywhere in ``source``;
    with ``growing``, also by methods that add items. A regex scan: cheap, and errs towards "changed"."""
    tail = _MUTATION_TAIL + (_GROWING_TAIL if growing else b"")
    return any(starts_name(source, m.start()) for m in re.finditer(re.escape(name.encode()) + rb"(?:" + tail + rb")", source))


def starts_name(source: bytes, at: int) -> bool:
    """Whether a name found at ``at`` stands on its own: not the end of a longer name or an attribute.
    (Checked by hand: a look-behind in front of a literal makes ``re`` scan the whole text slowly.)"""
    before = source[at - 1:at]
    return not (before.isalnum() or before in (b"_", b"."))


def function_of(node: Node) -> Node | None:
    """The innermost def or lambda ``node`` is in (a parameter's own function)."""
    parent = node.parent
    while parent is not None and parent.type not in ("function_definition", "lambda"):
        parent = parent.parent
    return parent


def is_method(fn: Node) -> bool:
    parent = fn.parent
    while parent is not None and parent.type in ("block", "decorated_definition"):
        parent = parent.parent
    return parent is not None and parent.type == "class_definition"


def parameter_names(fn: Node) -> list[tuple[str, Node]]:
    """(name, parameter node) of each parameter that can be passed by position or keyword, in order."""
    params = fn.child_by_field_name("parameters")
    out = []
    for p in params.named_children if params is not None else ():
        if p.type in ("list_splat_pattern", "dictionary_splat_pattern", "keyword_separator", "positional_separator"):
            continue
        name = p if p.type == "identifier" else p.child_by_field_name("name") or (p.named_children[0] if p.named_children else None)
        if name is not None and name.type == "identifier":
            out.append((text(name), p))
    return out


def default_of(fn: Node, name: str) -> Node | None:
    for n, p in parameter_names(fn):
        if n == name and p.type in ("default_parameter", "typed_default_parameter"):
            return p.child_by_field_name("value")
    return None
