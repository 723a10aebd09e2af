"""Scopes and definitions: which assignment a name refers to at a given point.

Deliberately simple, flow-insensitive within a scope: a name at offset ``p`` refers to the last
definition before ``p`` in its function, else the module's (Python's late binding makes a module
global read inside a function see the latest module-level assignment). That is what research
scripts and notebooks need, and it never guesses across unrelated scopes.

Definitions are collected by walking *statements* only; names bound inside expressions
(comprehension variables, lambda parameters) are resolved at lookup time from the reference's own
ancestors. After an edit, only the top-level statements whose text changed are walked again: the
others' definitions come from the previous version's facts (offsets relative to the statement, no
tree nodes), their nodes found in the new tree when read.
"""

from __future__ import annotations

import bisect
import re
from typing import Callable

from .imports import Imported, bindings
from .syntax import Node, Parsed, text

MODULE = (-1, -1)
# Entries of the memo besides the statements' (filed under their text, bytes): the module-level name index,
# and the statements answering each question of definitions_where (both with the statements' indexes they
# were made from, to be updated where only a few statements changed).
_MODULE_INDEX, _ANSWERS = "module index", "answers"
_FEW = 4  # changed statements, at most, for those to be updated rather than made again
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
    """One binding of a name (a plain slots class: thousands are built per analysis).

    A definition carried over from the previous version of the document (its statement's text did
    not change) holds where its nodes are, not the nodes: they are found in the new tree when read.
    """

    __slots__ = ("name", "offset", "kind", "imported", "_node", "_target", "_spans", "_base", "_root")

    def __init__(self, name: str, offset: int, kind: str, node: Node | None, target: Node | None,
                 imported: Imported | None = None, spans: tuple | None = None, base: int = 0, root: Node | None = None):
        self.name = name
        self.offset = offset  # where the definition takes effect (end of the defining statement)
        self.kind = kind  # "assign" | "param" | "for" | "with" | "def" | "class" | "import"
        self._node = node  # the value (assign), the parameter node, the iterable (for), the def node, the import
        self._target = target  # the target expression the name appears in (for tuple unpacking)
        self.imported = imported  # what an imported name stands for
        # When the nodes are not given: ((start, end, type) of the node, of the target) relative to
        # ``base``, and the tree to find them in.
        self._spans = spans
        self._base = base
        self._root = root

    @property
    def node(self) -> Node:
        if self._node is None:
            self._node = _located(self._root, self._spans[0], self._base)
        return self._node

    @property
    def target(self) -> Node:
        if self._target is None:
            self._target = _located(self._root, self._spans[1], self._base)
        return self._target

    @property
    def target_start(self) -> int:
        """Where the target starts, without finding it."""
        return self._target.start_byte if self._target is not None else self._spans[1][0] + self._base

    @property
    def node_type(self) -> str:
        """The value's node type, without finding the node."""
        return self._node.type if self._node is not None else self._spans[0][2]

    @property
    def target_type(self) -> str:
        return self._target.type if self._target is not None else self._spans[1][2]

    def node_bytes(self, source: bytes) -> bytes:
        """The value's text, without finding the node."""
        if self._node is not None:
            return source[self._node.start_byte:self._node.end_byte]
        start, end, _ = self._spans[0]
        return source[start + self._base:end + self._base]

    def spans(self, base: int) -> tuple:
        """Where the node and the target are, relative to ``base``."""
        if self._spans is None or self._base != base:
            self._spans = (_span(self.node, base), _span(self.target, base))
            self._base = base
        return self._spans

    def __repr__(self) -> str:
        return f"Definition({self.name!r}, {self.kind}, offset={self.offset})"


def _span(node: Node, base: int = 0) -> tuple[int, int, str]:
    return node.start_byte - base, node.end_byte - base, node.type


def _located_exactly(root: Node, span: tuple[int, int, str], base: int = 0) -> Node | None:
    """The node of type ``span[2]`` exactly covering ``span[:2]`` + ``base``, if this tree has one."""
    node = _located(root, span, base)
    start, end, kind = span
    return node if node.type == kind and node.start_byte == start + base and node.end_byte == end + base else None


def _located_all(spans: tuple, stmt: Node, root: Node) -> list[Node | None]:
    """The nodes at ``spans`` (relative to the top-level statement ``stmt``), None for one not there; a top-level
    def, class or import is the statement itself."""
    base = stmt.start_byte
    whole = (0, stmt.end_byte - base, stmt.type)
    return [stmt if span == whole else _located_exactly(root, span, base) for span in spans]


def _located(root: Node, span: tuple[int, int, str], base: int = 0) -> Node:
    """The node of type ``span[2]`` exactly covering ``span[:2]`` + ``base`` (the smallest one spanning
    it: it exists, since the statement holding it has the same text as where the span was taken)."""
    start, end, kind = span
    start, end = start + base, end + base
    found = node = root.descendant_for_byte_range(start, end)
    while node is not None and not (node.type == kind and node.start_byte == start and node.end_byte == end):
        node = node.parent
    return node if node is not None else found


class Scopes:
    """Definitions per scope for one parse, plus the function nesting."""

    def __init__(self, parsed: Parsed, late_module_lookups: bool = False, memo: dict | None = None):
        """``memo``: the previous version's facts per top-level statement, by the statement's text (a
        document's :class:`SyntaxParser` keeps it); it is replaced by this version's. A statement whose
        text did not change is not walked again: an edit costs in proportion to the statements it changes."""
        self.parsed = parsed
        # Notebooks: a cell may use a name defined in a later cell that already ran.
        self.late_module_lookups = late_module_lookups
        self.functions: list[Node] = []
        self.classes: list[Node] = []
        self.imports: list[Node] = []
        self.function_defs: dict[str, list[Node]] = {}
        # What the walk defined, in order, and in which scopes (for the memo).
        self._walked: list[Definition] = []
        self._walked_scopes: list[ScopeKey] = []
        # Each top-level statement that defines something: where its definitions are by name (kept across
        # versions with its facts), where it starts, and its facts when they came from the memo (their
        # Definitions are made when first asked for: a keystroke does not rebuild thousands of them).
        self._placed: list[tuple[_NameIndex, int, _StatementFacts | None]] = []
        self._placed_starts: list[int] = []
        self._made: dict[tuple[int, int], Definition] = {}  # (statement, index) -> its Definition in this version
        self._module_index: dict[str, list[int]] = {}  # name -> the statements binding it at module level
        # The placed statements that changed since the memo's version (positions), None if too many or they
        # came or went; and that version's statement indexes and answers, this version's filed with them.
        self._changed: list[int] | None = None
        self._indexes: list[_NameIndex] = []
        self._previous_indexes: list | None = None
        self._previous_answers: dict[str, tuple[list, list[int]]] = {}
        self._answers: dict[str, tuple[list, list[int]]] = {}
        self._defs: dict[tuple[ScopeKey, str], list[Definition]] = {}  # filled on first lookup
        # Where the top-level statements with a syntax error are (how tree-sitter recovered may reach past an edit).
        self.error_spans: list[tuple[int, int]] = []
        # Whether a statement of unchanged text came out in other blocks than before (see _replay).
        self.parsed_otherwise = False
        self._statement_spans: list[tuple[int, int]] = []  # the top-level statements', comments aside
        self._statements(memo)
        self._fn_starts = [n.start_byte for n in self.functions]
        self._fn_ends = [n.end_byte for n in self.functions]
        parameters = [n.child_by_field_name("parameters") for n in self.functions]
        # Where each function's own scope starts (its parameters: the name belongs to the outer scope), and where
        # its parameter list ends (defaults and annotations there are read in the outer scope, when the def runs).
        self._fn_body = [p.start_byte if p is not None else n.start_byte for n, p in zip(self.functions, parameters)]
        self._fn_params_end = [p.end_byte if p is not None else n.start_byte for n, p in zip(self.functions, parameters)]
        self._fn_parent = _parents(self._fn_starts, self._fn_ends)
        self._offsets: dict[tuple[ScopeKey, str], list[int]] = {}  # filled on first lookup
        self._bound: frozenset[str] | None = None
        # Names a comprehension or lambda may bind (a superset, from the text): lookups of other
        # names skip the ancestor walk that finds such bindings.
        self._expression_names = {
            name.decode() for pattern in _EXPRESSION_BINDERS for group in pattern.findall(parsed.source)
            for name in _IDENTIFIER.findall(group)}

    def _statements(self, memo: dict | None) -> None:
        """Walk each top-level statement, or take its facts from ``memo``, then keep this version's there."""
        root, source = self.parsed.root, self.parsed.source
        previous = dict(memo) if memo else {}
        current: dict = {}
        spans = self._statement_spans
        for stmt in root.named_children:
            base, end, kind = stmt.start_byte, stmt.end_byte, stmt.type
            if kind != "comment":
                spans.append((base, end))
            key = source[base:end]
            facts = previous.get(key)
            error = stmt.has_error
            if error:
                self.error_spans.append((base, end))
            if facts is not None and (facts.type != kind or error):
                facts = None  # the same text parsed otherwise (error recovery depends on the text around)
            if facts is not None:
                if isinstance(facts, _Walked):
                    facts = facts.facts()  # made when first reused: a version read once costs no more
                if facts.nodes and not self._replay(facts, stmt, root):
                    facts = None  # the same text, parsed into other blocks (how an error before it was recovered)
                    self.parsed_otherwise = True
            if facts is None:
                first = len(self._walked)
                self._statement(stmt, MODULE)
                facts = _Walked(kind, self, base, end, first, len(self._walked))
                if facts.index.count:
                    self._made.update(((len(self._placed), i), d) for i, d in enumerate(self._walked[first:]))
                    self._placed.append((facts.index, base, None))
                    self._placed_starts.append(base)
            elif facts.definitions:
                self._placed.append((facts.index, base, facts))
                self._placed_starts.append(base)
            if not error:  # (the same text recovered otherwise later must not take these facts)
                current[key] = facts
        self._indexes = indexes = [index for index, _, _ in self._placed]
        before = previous.get(_MODULE_INDEX)
        if before is not None and len(before[0]) == len(indexes):
            changed = [k for k, (old, new) in enumerate(zip(before[0], indexes)) if old is not new]
            self._changed = changed if len(changed) <= _FEW else None
            self._previous_indexes, self._previous_answers = before[0], previous.get(_ANSWERS, {})
        self._module_index = _module_index(indexes, self._changed, before)
        if memo is not None:
            memo.clear()
            memo.update(current)
            memo[_MODULE_INDEX] = (indexes, self._module_index)
            memo[_ANSWERS] = self._answers

    def _replay(self, facts: "_StatementFacts", stmt: Node, root: Node) -> bool:
        """Add the defs, classes and imports of a statement that did not change, ``stmt`` in this version; False
        (adding nothing) when one of them is not where it was: tree-sitter parsed the same text into other
        blocks (its recovery from an error earlier in the file depends on the parse history)."""
        if facts.alone == "import":  # the statement is the import (most of them): nothing to find
            self.imports.append(stmt)
            return True
        if facts.alone == "def":
            self.functions.append(stmt)
            self.function_defs.setdefault(facts.function_names[0], []).append(stmt)
            return True
        functions, classes, imports = (_located_all(spans, stmt, root) if spans else ()
                                       for spans in (facts.functions, facts.classes, facts.imports))
        if None in functions or None in classes or None in imports:
            return False
        for fn, name in zip(functions, facts.function_names):
            self.functions.append(fn)
            self.function_defs.setdefault(name, []).append(fn)
        self.classes += classes
        self.imports += imports
        return True

    def _made_at(self, k: int, i: int) -> Definition:
        """The ``i``-th definition of placed statement ``k`` in this version (made once: callers compare identities)."""
        d = self._made.get((k, i))
        if d is None:
            _, base, facts = self._placed[k]
            _, name, offset, kind, imported, spans = facts.definitions[i]
            d = self._made.setdefault((k, i), Definition(name, offset + base, kind, None, None, imported, spans, base,
                                                         self.parsed.root))
        return d

    # -- building (statements in source order, so every list comes out sorted)

    def _walk(self, block: Node, scope: ScopeKey) -> None:
        for stmt in block.named_children:
            self._statement(stmt, scope)

    def _statement(self, stmt: Node, scope: ScopeKey) -> None:
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
        self._walked.append(d)
        self._walked_scopes.append(scope)

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
        i = self._function_index(offset)
        return (self._fn_starts[i], self._fn_ends[i]) if i >= 0 else MODULE

    def _function_index(self, offset: int) -> int:
        """The index of the innermost function containing ``offset`` (its body or parameters); -1: none."""
        i = bisect.bisect_right(self._fn_starts, offset) - 1
        while i >= 0:
            if self._fn_body[i] <= offset < self._fn_ends[i]:
                return i
            # Functions are nested intervals: only an ancestor of i can still contain offset.
            i = self._fn_parent[i]
        return -1

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
        i = self._function_index(offset)
        if i >= 0 and offset < self._fn_params_end[i] and _in_default_or_annotation(self.parsed.root, offset):
            i = self._fn_parent[i]  # `def patch(x, hook, layer=layer)`: read where the def runs, in the outer scope
        scope = (self._fn_starts[i], self._fn_ends[i]) if i >= 0 else MODULE
        while True:
            defs = self.definitions(name, scope)
            if defs:
                offsets = self._offsets.get((scope, name))
                if offsets is None:
                    offsets = self._offsets[(scope, name)] = [d.offset for d in defs]
                i = bisect.bisect_left(offsets, offset)
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
                if params is not None and offset < params.end_byte and _in_default_or_annotation(self.parsed.root, offset):
                    params = None  # `lambda x, hook, l=layer: ...`: the default is read outside the lambda
                for name_node, p in _parameters(params) if params is not None else ():
                    if text(name_node) == name:
                        return Definition(name, node.start_byte, "param", p, p)
            node = node.parent
        return None

    def definitions_where(self, question: str, wanted: Callable[[Definition, bytes], bool]) -> list[Definition]:
        """The definitions ``wanted(definition, source)`` accepts, in source order. ``wanted`` must depend on
        nothing but the text of the definition's top-level statement (its name is ``question``): a
        statement that did not change keeps the previous version's answer."""
        source, placed = self.parsed.source, self._placed

        def answer(k: int) -> tuple[int, ...]:
            index = placed[k][0]
            chosen = index.answers.get(question)
            if chosen is None:
                chosen = index.answers[question] = tuple(
                    i for i in range(index.count) if wanted(self._made_at(k, i), source))
            return chosen

        before = self._previous_answers.get(question)
        if before is not None and before[0] is self._previous_indexes and self._changed is not None:
            # The previous version's statements with answers, but for the few that changed (each unchanged
            # statement's index holds its answer: it is the same object).
            changed = set(self._changed)
            ks = sorted({*(k for k in before[1] if k not in changed), *(k for k in changed if answer(k))})
        else:
            ks = [k for k in range(len(placed)) if answer(k)]
        self._answers[question] = (self._indexes, ks)
        return [self._made_at(k, i) for k in ks for i in placed[k][0].answers[question]]

    def definitions(self, name: str, scope: ScopeKey = MODULE) -> list[Definition]:
        """The definitions of ``name`` in ``scope``, in source order."""
        found = self._defs.get((scope, name))
        if found is None:
            if scope == MODULE:
                found = [self._made_at(k, i) for k in self._module_index.get(name, ())
                         for i in self._placed[k][0].module[name]]
            else:  # a function's scope lies within one top-level statement
                k = bisect.bisect_right(self._placed_starts, scope[0]) - 1
                index, base, _ = self._placed[k] if k >= 0 else (None, 0, None)
                within = index.scoped.get(((scope[0] - base, scope[1] - base), name), ()) if index is not None else ()
                found = [self._made_at(k, i) for i in within]
            found = self._defs.setdefault((scope, name), found)
        return found

    def statement_spans(self) -> list[tuple[int, int]]:
        """Where the top-level statements are (comments aside), in order."""
        return self._statement_spans

    def bound_names(self) -> frozenset[str]:
        """Every name the file binds anywhere (a superset: comprehension variables and lambda parameters from the text)."""
        if self._bound is None:
            self._bound = frozenset(name for index, _, _ in self._placed for name in index.names()) | self._expression_names
        return self._bound

    def all_definitions(self) -> list[Definition]:
        """Every definition, in source order (each made: ask :meth:`definitions_where` for some)."""
        return [self._made_at(k, i) for k, (index, _, _) in enumerate(self._placed) for i in range(index.count)]

    def workspace_import_definitions(self) -> list[Definition]:
        """The names imports bind, in source order, but for an installed library's (never followed into a
        workspace copy of it: see Imported.from_library)."""
        return self.definitions_where("workspace import?", _is_workspace_import)


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


def _in_default_or_annotation(root: Node, offset: int) -> bool:
    """Whether ``offset`` (in a parameter list) lies in a parameter's default or annotation, not its name."""
    node = root.descendant_for_byte_range(offset, offset)
    while node is not None and node.parent is not None and node.type not in ("parameters", "lambda_parameters"):
        parent = node.parent
        if parent.type in ("default_parameter", "typed_default_parameter") and node == parent.child_by_field_name("value") \
                or node.type == "type":
            return True
        node = parent
    return False


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


def _module_index(indexes: list["_NameIndex"], changed: list[int] | None,
                  before: tuple[list["_NameIndex"], dict[str, list[int]]] | None) -> dict[str, list[int]]:
    """Name -> the statements (positions in ``indexes``) binding it at module level; from the previous version's
    (``before``: its statement indexes and its name index) when only the statements at ``changed`` differ."""
    if before is not None and changed is not None:
        old_indexes, index = before[0], dict(before[1])  # (its lists are shared: replaced, never changed)
        for k in changed:
            for name in old_indexes[k].module:
                rest = [x for x in index[name] if x != k]
                if rest:
                    index[name] = rest
                else:
                    del index[name]
            for name in indexes[k].module:
                index[name] = sorted([*index.get(name, ()), k])
        return index
    index: dict[str, list[int]] = {}
    for k, statement in enumerate(indexes):
        for name in statement.module:
            found = index.get(name)
            if found is None:
                index[name] = [k]
            else:
                found.append(k)
    return index


def _is_workspace_import(d: Definition, source: bytes) -> bool:
    return d.kind == "import" and d.imported is not None and not d.imported.from_library


class _NameIndex:
    """Where one top-level statement's definitions are (indices, in source order), by name: at module level
    and in each function's scope (relative to the statement's start). Kept across versions with the
    statement's facts, with the answers of Scopes.definitions_where."""

    __slots__ = ("count", "module", "scoped", "answers")

    def __init__(self, scopes_and_names: list[tuple[ScopeKey, str]]):
        self.count = len(scopes_and_names)
        self.module: dict[str, tuple[int, ...]] = {}
        self.scoped: dict[tuple[ScopeKey, str], tuple[int, ...]] = {}
        for i, (scope, name) in enumerate(scopes_and_names):
            if scope == MODULE:
                self.module[name] = self.module.get(name, ()) + (i,)
            else:
                self.scoped[(scope, name)] = self.scoped.get((scope, name), ()) + (i,)
        self.answers: dict[str, tuple[int, ...]] = {}  # Scopes.definitions_where's, by question

    def names(self) -> set[str]:
        return {*self.module, *(name for _, name in self.scoped)}


class _Walked:
    """A top-level statement walked in one version: its facts are taken from that version's Scopes
    when a later version first reuses them (a version that is read once costs nothing more)."""

    __slots__ = ("type", "scopes", "base", "end", "first", "last", "index")

    def __init__(self, type: str, scopes: Scopes, base: int, end: int, first: int, last: int):
        self.type, self.scopes, self.base, self.end, self.first, self.last = type, scopes, base, end, first, last
        self.index = _NameIndex([(scope if scope == MODULE else (scope[0] - base, scope[1] - base), d.name)
                                 for scope, d in zip(scopes._walked_scopes[first:last], scopes._walked[first:last])])

    def facts(self) -> "_StatementFacts":
        """What the statement defines, relative to its start and without nodes."""
        base, scopes = self.base, self.scopes
        definitions = tuple((scope if scope == MODULE else (scope[0] - base, scope[1] - base), d.name, d.offset - base,
                             d.kind, d.imported, d.spans(base))
                            for scope, d in zip(scopes._walked_scopes[self.first:self.last], scopes._walked[self.first:self.last]))

        def inside(nodes: list[Node]) -> tuple:  # (each list is in source order)
            lo = bisect.bisect_left(nodes, base, key=_start_of)
            hi = bisect.bisect_left(nodes, self.end, key=_start_of)
            return tuple(_span(n, base) for n in nodes[lo:hi])

        lo = bisect.bisect_left(scopes.functions, base, key=_start_of)
        hi = bisect.bisect_left(scopes.functions, self.end, key=_start_of)
        names = tuple(text(fn.child_by_field_name("name")) for fn in scopes.functions[lo:hi])
        return _StatementFacts(self.type, definitions, inside(scopes.functions), names, inside(scopes.classes),
                               inside(scopes.imports), self.index)


def _start_of(node: Node) -> int:
    return node.start_byte


class _StatementFacts:
    """What one top-level statement defines, with offsets relative to its start (node-free, so that
    the next version of the document can reuse it wherever the statement moved)."""

    __slots__ = ("type", "definitions", "functions", "function_names", "classes", "imports", "nodes", "alone", "index")

    def __init__(self, type: str, definitions: tuple, functions: tuple, function_names: tuple, classes: tuple,
                 imports: tuple, index: _NameIndex):
        self.type = type  # the statement's node type
        self.definitions = definitions  # (scope, name, offset, kind, imported, (node span, target span))
        self.index = index  # where they are by name, and Scopes.definitions_where's answers
        self.functions = functions  # (start, end, type) of each def, in source order
        self.function_names = function_names
        self.classes = classes
        self.imports = imports
        self.nodes = bool(functions or classes or imports)  # (most statements bind names only, or nothing)
        # "def" or "import" when the statement itself is its only def or import (most of those statements).
        self.alone = None
        if not classes and len(functions) + len(imports) == 1 and (functions or imports)[0][:1] == (0,) \
                and (functions or imports)[0][2] == type:
            self.alone = "def" if functions else "import"
