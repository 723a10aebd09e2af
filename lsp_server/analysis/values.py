"""Constant evaluation of the expressions that build hook names.

Covers what research code writes: string and int literals, negative numbers, f-strings with holes
(``f"blocks.{layer}.hook_resid_post"``), ``+`` concatenation, ``get_act_name(...)``, tuples and lists,
and data flow through names (``name = "blocks.0.hook_z"; cache[name]``), through loops over literal
collections, through parameters (every call site of the function in the file, and ``partial``), and
through the return values of the file's functions. A hole keeps the expression text so a hover can say
"for every ``layer``"; a value with several possibilities is a :class:`OneOf`.

Never a guess: one unknown possibility makes the whole value unknown, and so does passing a bound
(options, call sites, depth).
"""

from __future__ import annotations

import bisect
import re
import string
import threading
import weakref
from pathlib import Path
from typing import Callable, NamedTuple

from .imports import ModuleLinks, followed, module_of, module_path
from .loop_guards import guard_tests
from .objects import ObjectAttributes, class_of, enclosing_class
from .pytest_params import parametrized
from .scopes import Definition, Scopes, default_of, function_of, is_method, mutated_in, parameter_names, starts_name
from .syntax import Node, call_args, call_name, descendants, string_value, text
from .value_types import (ACT_NAME_FUNCS, MAX_OPTIONS, Hole, Items, Seq, Value, act_name_value, binary_value, concat, interpolated,
                          is_int, item_options, lift, normalise, one_of, options_of)

MAX_DEPTH = 8
MAX_CALL_SITES = 16  # a parameter of a function called from more places than this: unknown
MAX_BRANCHES = 4  # nested conditional statements walked out of to find what else may reach a read
# Expressions one outermost evaluation may go through, all files together: depth and call sites bound each path,
# but not how paths multiply (each construction of a class whose attribute is read from instances built from
# attributes of instances...: 16 ** 8). Past it the value is unknown.
MAX_STEPS = 2_000


class _Work(threading.local):
    active = 0  # evaluations in progress on this thread (nested, any file's evaluator)
    steps = 0  # expressions evaluated since the outermost one began


_WORK = _Work()

# Calls that make an empty container, without arguments (a helper that fills one returns keys of its own).
_EMPTY_CONTAINERS = frozenset({"dict", "OrderedDict", "list", "Counter"})


class Passed(NamedTuple):
    """What one call site passes for a parameter."""
    evaluator: "Evaluator"  # of the file holding ``argument`` (the caller's; the function's own for a default)
    call: Node
    argument: Node | None  # None: not known (a ``*args`` may pass it; a partial's caller may)


class _WeakCallback:
    """An evaluator's callback into an object that holds the evaluator (the models, the hook-name
    collector): a method held weakly, so that an analysis has no reference cycle and is freed as soon
    as it is dropped, without waiting for the cycle collector. None until set (or once its owner is gone)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, evaluator: Evaluator | None, owner: type | None = None):
        if evaluator is None:
            return self
        method = evaluator.__dict__.get(self.slot)
        return method() if method is not None else None

    def __set__(self, evaluator: Evaluator, method: Callable[..., Value]) -> None:
        evaluator.__dict__[self.slot] = weakref.WeakMethod(method)


class Evaluator(ObjectAttributes):
    """Evaluates expression nodes of one document to :data:`Value` s (``None`` = unknown)."""

    # Values of attributes such as ``model.cfg.n_layers``, once the models are known (set by the
    # analysis after it has found them; until then attributes are unknown).
    attribute = _WeakCallback()
    # The hook names a cache expression holds (``cache`` of ``run_with_cache(x, names_filter=...)``), set
    # by the hook-ref collector, which knows the caches and reads filters; unknown until then.
    cache_keys = _WeakCallback()

    def __init__(self, scopes: Scopes):
        self.scopes = scopes
        # Calls of plain names (``fn(...)``, ``partial(fn, ...)``), set by the analysis once found: the
        # call sites that bind the file's function parameters. Until then parameters are unknown.
        self.calls: list[Node] | None = None
        # The workspace modules this document imports and the files that import it (None: this file alone).
        self.links: ModuleLinks | None = None
        self._calls_by_name: dict[str, list[Node]] | None = None
        self._bindings: list[tuple[int, dict[str, Value]]] = []  # (def start, parameter values) of calls being followed
        # What is being worked out (recursion guard): (def start, parameter), (def start, "") for a followed call,
        # ("attribute", class start, attribute, construction start, caller) for an instance's attribute.
        self._following: set[tuple] = set()
        # (function, parameter) -> its value, with the names and code ranges computing it read.
        self._param_memo: dict[tuple[int, str], tuple[Value, frozenset[str], tuple]] = {}
        self._mutated_names: dict[str, bool] = {}
        self._globals: frozenset[str] | None = None  # names `global` statements declare
        self._attribute_writes: dict[str, bool] = {}  # attribute name -> this file writes `<x>.name = ...`
        # (list name, binding offset) -> handed to a function changing it, with what finding that out read
        self._handed: dict[tuple[str, int], tuple[bool, frozenset[str], tuple]] = {}
        self._dicts_unchanged: dict = {}  # (name, binding offset) -> (only ever read, what that was read from)
        self._augmented_at: dict[str, list[int]] = {}  # name -> where `name += ...` (any op) is written
        self._classes: dict[int, tuple] = {}  # class start -> (its defs by name, its `self.x = ...` by x)
        self._outside_sets: dict[tuple[int, str], bool] = {}  # (class start, attr) -> assigned outside its methods
        self._instance_callers: list[Evaluator] = []  # files whose constructions of this file's classes are followed
        self._escapes: dict[tuple[int, str], bool] = {}  # (binding start, name) -> used as a value
        self._sites: dict[int, list | None] = {}  # function start -> its call sites
        # Names read while evaluating, when recording (a hook ref's dependencies: an edit that mentions
        # none of them leaves the ref as it was).
        self.reads: set[str] | None = None
        # ...and the byte ranges of the code evaluated (an edit inside one of them may change the ref).
        self.read_spans: list[tuple[int, int]] | None = None

    def eval(self, node: Node | None, depth: int = 0) -> Value:
        """The value of ``node``; None when unknown, also past :data:`MAX_DEPTH` or when the outermost evaluation
        in progress (of any file's evaluator, on this thread) has used up :data:`MAX_STEPS`."""
        if node is None or depth > MAX_DEPTH:
            return None
        work = _WORK
        if not work.active:
            work.steps = 0
        work.steps += 1
        if work.steps > MAX_STEPS:
            return None
        work.active += 1
        try:
            return self._eval(node, depth)
        finally:
            work.active -= 1

    def _eval(self, node: Node, depth: int) -> Value:
        if self.read_spans is not None:
            self.read_spans.append((node.start_byte, node.end_byte))
        kind = node.type
        if kind == "string":
            value = string_value(node)
            return value if value is not None else self._fstring(node, depth)
        if kind == "concatenated_string":
            result: Value = ""
            for child in node.named_children:
                result = concat(result, self.eval(child, depth + 1))
            return result
        if kind == "integer":
            try:
                return int(text(node), 0)
            except ValueError:
                return None
        if kind == "unary_operator":
            operand = self.eval(node.child_by_field_name("argument"), depth + 1)
            op = text(node.child_by_field_name("operator"))
            return lift(lambda v: -v if is_int(v) and op == "-" else None, operand)
        if kind in ("true", "false"):
            return kind == "true"
        if kind == "none":
            return None
        if kind == "parenthesized_expression" and node.named_child_count == 1:
            return self.eval(node.named_children[0], depth + 1)
        if kind == "named_expression":  # `cache[name := f"blocks.{l}.hook_z"]`
            return self.eval(node.child_by_field_name("value"), depth + 1)
        if kind in ("tuple", "list", "expression_list"):
            return Seq(tuple(self.eval(c, depth + 1) for c in node.named_children if c.type != "comment"))
        if kind in _COMPREHENDING:
            return self._comprehension(node, depth)
        if kind == "binary_operator":
            return self._binary(node, depth)
        if kind == "conditional_expression" and node.named_child_count == 3:  # `a if cond else b`
            consequence, condition, alternative = node.named_children
            test = self.eval(condition, depth + 1)
            if isinstance(test, bool):
                return self.eval(consequence if test else alternative, depth + 1)
            return one_of((self.eval(consequence, depth + 1), self.eval(alternative, depth + 1)))
        if kind == "subscript":
            item = self._dict_item(node, depth)
            return item if item is not None else self._returned_item(node, depth)
        if kind == "identifier":
            return self._name(node, depth)
        if kind == "call":
            return self._call(node, depth)
        if kind == "attribute":
            if self.reads is not None:
                self.reads.update(text(n) for n in descendants(node, "identifier"))
            value = self.attribute(node, depth) if self.attribute is not None else None
            return value if value is not None else self.object_attribute(node, depth)
        return None

    def _binary(self, node: Node, depth: int) -> Value:
        """``a + b`` on strings (concatenation) and ``+ - * // %`` on ints (``n_layers - 1``)."""
        op = text(node.child_by_field_name("operator"))
        left = self.eval(node.child_by_field_name("left"), depth + 1)
        right = self.eval(node.child_by_field_name("right"), depth + 1)
        return lift(lambda l, r: binary_value(op, l, r), left, right)

    def eval_or_hole(self, node: Node | None, depth: int = 0) -> Value:
        """Like :meth:`eval`, but an unknown expression becomes a :class:`Hole` with its text."""
        value = self.eval(node, depth)
        if value is None and node is not None and node.type != "none":
            return Hole(text(node))
        return value

    def _name(self, node: Node, depth: int) -> Value:
        if self.reads is not None:
            self.reads.add(text(node))
        d = self.scopes.lookup(text(node), node.start_byte)
        if d is not None and self._augmented_in_scope(d) and not (d.kind == "assign" and d.node.type in _MUTABLE):
            return None  # `layer -= 1` somewhere: the bound value is not the one read (a list's: see _grown_list)
        others = self.other_reaching(d, node.start_byte)
        if others is None:
            return None
        if others:  # `name = "a"` then `if c: name = "b"`: either may reach the read
            return one_of(self.value_of(x, depth) for x in sorted((d, *others), key=_written_at))  # in source order
        value = self.value_of(d, depth)
        if value is None and d is not None and d.kind == "param":
            return self._asserted(d, node.start_byte, depth)
        if value is None and d is not None and d.kind == "for":
            return self._guarded_cache_key(d, node)
        return value

    def _asserted(self, d: Definition, offset: int, depth: int) -> Value:
        """A parameter read after ``assert site in ("q", "k", "v")`` at the top level of its function's body
        (every later statement runs only if it passed): one of those values."""
        fn = function_of(d.node)
        body = fn.child_by_field_name("body") if fn is not None and fn.type == "function_definition" else None
        if body is None or self.scopes.parsed.source.find(b"assert", body.start_byte, offset) < 0:
            return None
        for statement in body.named_children:
            if statement.end_byte > offset:
                break
            test = statement.named_children[0] if statement.type == "assert_statement" and statement.named_children else None
            if test is None or test.type != "comparison_operator" or test.named_child_count != 2 or \
                    [text(c) for c in test.children if not c.is_named] != ["in"]:
                continue
            left, right = test.named_children
            if left.type == "identifier" and text(left) == d.name and right.type in ("list", "tuple", "set"):
                if self.read_spans is not None:  # an edit of the assertion changes what the read may be
                    self.read_spans.append((statement.start_byte, statement.end_byte))
                return self._items(right, depth)
        return None

    def other_reaching(self, d: Definition | None, offset: int) -> list[Definition] | None:
        """The other bindings of ``d``'s name, in its scope, that may reach a read at ``offset`` where
        the textually last one is ``d``: when ``d`` is inside an ``if``, loop or ``try`` the read is
        outside of, the other branches' bindings and the binding before that statement (unless every
        branch of an ``if``/``else`` binds the name). None past the bound (unknown)."""
        if d is None or d.kind not in ("assign", "for", "with", "def", "param"):
            return []
        out = self._from_later_iterations(d, offset)
        current, seen = d, 0
        while current is not None:
            compound = _conditional_around(current.target, offset)
            if compound is None:
                return out
            seen += 1
            if seen > MAX_BRANCHES:
                return None
            same = [x for x in self.scopes.definitions(d.name, self.scopes.scope_of(current.target_start))
                    if x.kind != "import"]
            inside = [x for x in same if compound.start_byte <= x.target_start < compound.end_byte]
            clauses = _clauses(compound)
            own = next((c for c in clauses if c.start_byte <= current.target_start < c.end_byte), None)
            for clause in clauses:  # the last binding in each other branch
                if clause is own:
                    continue
                last = [x for x in inside if clause.start_byte <= x.target_start < clause.end_byte]
                if last and last[-1] not in out:
                    out.append(last[-1])
            if compound.type == "if_statement" and any(c.type == "else_clause" for c in clauses) \
                    and all(any(c.start_byte <= x.target_start < c.end_byte for x in inside) for c in clauses):
                return out  # every branch binds it: nothing from before the `if` gets through
            before = [x for x in same if x.offset <= compound.start_byte]
            current = before[-1] if before else None
            if current is not None and current not in out:
                out.append(current)
            if len(out) > MAX_OPTIONS:
                return None
        return out

    def value_of(self, d: Definition | None, depth: int = 0) -> Value:
        """The value a binding gives its name; an imported one's, in the workspace module it comes from."""
        if d is None or depth > MAX_DEPTH:
            return None
        if d.kind == "assign" and d.target.type == "identifier":
            if d.node.type in _MUTABLE and self.changed_after_binding(d):
                return self._grown_list(d, depth)  # `sites = ["z"]; sites.append("q")`: not the literal any more
            if function_of(d.target) is None and self._rebound_elsewhere(d.name):
                return None  # `global NAME; NAME = ...` in a function, `module.NAME = ...` in an importer
            return self.eval(d.node, depth + 1)
        if d.kind == "assign" and d.target.type in _UNPACKING:
            return self._unpacked(d, depth)
        if d.kind == "for":
            return self._loop_variable(d.name, d.target, d.node, depth)
        if d.kind == "param":
            return self._parameter(d.name, d.node, depth)
        if d.kind == "import" and (found := followed(d.imported, self.links)) is not None:
            other, definition = found
            if self.writes_attribute(definition.name):
                return None  # `import utils; utils.LAYER = 5` here (the module's importers are checked there)
            return other.evaluator.value_of(definition, depth + 1)
        return None

    def _unpacked(self, d: Definition, depth: int) -> Value:
        """A name a flat tuple assignment binds (``hook, layer = get_resid_name(3)``, ``name, layer = "z", 3``):
        its item of each sequence the right side may be; unknown with ``*rest``, nesting or a length mismatch."""
        names = [c for c in d.target.named_children if c.type != "comment"]
        if any(c.type != "identifier" for c in names):
            return None
        rows = options_of(self.eval(d.node, depth + 1))
        if not rows or not all(isinstance(row, Seq) and len(row.items) == len(names) for row in rows):
            return None
        index = [text(c) for c in names].index(d.name)
        return one_of(row.items[index] for row in rows)

    def _augmented_in_scope(self, d: Definition) -> bool:
        """Whether the scope ``d`` binds its name in also changes it with an augmented assignment
        (``layer += 1``, ``name += ".hook_z"``): not a binding the scopes record, so any read may see it."""
        if d.kind not in ("assign", "param", "for", "with") or d.target is None:
            return False
        at = self._augmented_at.get(d.name)
        if at is None:
            source = self.scopes.parsed.source
            pattern = re.escape(d.name.encode()) + rb"\s*(?:[-+*/%|&@^]|//|\*\*|>>|<<)=(?!=)"
            root = self.scopes.parsed.root
            at = self._augmented_at[d.name] = [  # written as code, not in a comment or a string
                m.start() for m in re.finditer(pattern, source) if starts_name(source, m.start())
                and (n := root.descendant_for_byte_range(m.start(), m.start())) is not None
                and n.parent is not None and n.parent.type == "augmented_assignment"]
        if not at:
            return False
        scope = function_of(d.target)  # the def or lambda whose local it is (None: the module's)
        for offset in at:
            inner = self.scopes.function_at(offset)
            if (inner.start_byte if inner is not None else None) == (scope.start_byte if scope is not None else None):
                return True
        return False

    def changed_after_binding(self, d: Definition) -> bool:
        """Whether the list or set the name ``d`` binds may be changed in place after (appended to here, or
        handed on to a function that changes it)."""
        return self._mutated(d.name) or self._handed_to_a_changer(d)

    def _grown_list(self, d: Definition, depth: int) -> Value:
        """A list (or set) changed in place after it was bound (``names = []`` ... ``names.append(f"...")``,
        ``names += [...]``, ``names[0] = ...``): items of one of what it was bound to and everything put in it,
        wherever (items removed or reordered are still among them). Unknown when it is handed to a function of
        the workspace that changes it, given another name, or changed some other way."""
        if self._handed_to_a_changer(d):
            return None
        base = self.eval(d.node, depth + 1)
        if not isinstance(base, (Seq, Items)):
            return None
        items = list(item_options(base))
        for use in self._uses(d):
            added = self._put_in(use, depth)
            if added is None:
                return None
            items += added
        item = one_of(items)
        return Items(item) if item is not None else None

    def _put_in(self, use: Node, depth: int) -> list[Value] | None:
        """What a use of a list puts in it: ``[]`` for a read or a removal, the item or items added; None for a
        change of another kind."""
        parent = use.parent
        if parent is None:
            return []
        if parent.type == "augmented_assignment" and parent.child_by_field_name("left") == use:
            added = self.eval(parent.child_by_field_name("right"), depth + 1)
            op = text(parent.child_by_field_name("operator"))
            return list(item_options(added)) if op == "+=" and isinstance(added, (Seq, Items)) else None
        if parent.type == "subscript" and parent.child_by_field_name("value") == use:
            assignment = parent.parent
            written = assignment is not None and assignment.child_by_field_name("left") == parent
            if written and assignment.type == "assignment":
                return [self.eval(assignment.child_by_field_name("right"), depth + 1)]  # `names[0] = ...`
            return None if written else []  # `names[0] += "x"`: an item changed into something else
        if parent.type != "attribute" or parent.child_by_field_name("object") != use:
            return []  # read, iterated, passed on (see _handed_to_a_changer)
        call, method = parent.parent, text(parent.child_by_field_name("attribute"))
        if call is None or call.type != "call":
            return []
        positional, keywords = call_args(call)
        if method in ("append", "add") and len(positional) == 1 and not keywords:
            return [self.eval(positional[0], depth + 1)]
        if method == "insert" and len(positional) == 2 and not keywords:
            return [self.eval(positional[1], depth + 1)]
        if method in ("extend", "update") and len(positional) == 1 and not keywords:
            added = self.eval(positional[0], depth + 1)
            return list(item_options(added)) if isinstance(added, (Seq, Items)) else None
        return [] if method in _LIST_READS_AND_REMOVALS else None

    def _handed_to_a_changer(self, d: Definition) -> bool:
        """Whether the list or set ``d`` binds is given another name (``other = sites``) or handed to a function
        of the workspace that changes that parameter in place (``def add(l): l.append(...)``; a function
        this file defines under the callee's name counts when the call is not resolved). Library functions
        are taken not to change what they are given."""
        return bool(self.memoised(self._handed, (d.name, d.offset),  # (the callees it names are read)
                                  lambda: any(self._changes_it(node) for node in self._uses(d))))

    def _uses(self, d: Definition) -> list[Node]:
        """Every identifier that refers to the binding ``d`` (its own target left out)."""
        source, root, word = self.scopes.parsed.source, self.scopes.parsed.root, d.name.encode()
        out, at = [], source.find(word)
        while at >= 0:
            found, at = at, source.find(word, at + len(word))
            node = root.descendant_for_byte_range(found, found + len(word))
            if node is None or node.type != "identifier" or node.start_byte != found or node.end_byte != found + len(word) \
                    or found == d.target.start_byte:
                continue
            other = self.scopes.lookup(d.name, found)
            if other is not None and (other.offset, other.kind) == (d.offset, d.kind):
                out.append(node)
        return out

    def _changes_it(self, use: Node) -> bool:
        parent = use.parent
        if parent is not None and parent.type == "assignment" and parent.child_by_field_name("right") == use:
            return True  # another name for the same list
        passed = _argument_of(use)
        if passed is None:
            return False
        call, keyword = passed
        called = self.function_called(call)
        candidates = [called[1]] if called is not None else \
            self.scopes.function_defs.get(text(call.child_by_field_name("function")).rpartition(".")[2], [])
        for fn in candidates:
            bound = self.bind(fn, call)
            if bound is None:
                return True  # `*args`: which parameter it lands in is not known
            param = keyword if keyword is not None else next((n for n, arg in bound.items() if arg == use), None)
            body = fn.child_by_field_name("body")
            if self.read_spans is not None and (called is None or called[0] is self):
                self.read_spans.append((fn.start_byte, fn.end_byte))  # an edit of this file's callee may change it
            if param is not None and body is not None and mutated_in(body.text or b"", param, growing=True):
                return True
        return False

    def _rebound_elsewhere(self, name: str) -> bool:
        """Whether a module-level ``name`` may be bound again where no lookup sees it: by a function that
        declares it ``global``, or by a file that imports this one (``utils.LAYER = 5``). A regex scan,
        erring towards "rebound"."""
        if name in self._declared_global():
            return True
        importers = self.links.importers() if self.links is not None else []
        return any(other.evaluator.writes_attribute(name) for other in importers)

    def _declared_global(self) -> frozenset[str]:
        """The names ``global`` statements of this file declare (found once: most files have none)."""
        if self._globals is None:
            source, root, names = self.scopes.parsed.source, self.scopes.parsed.root, set()
            for m in re.finditer(rb"\bglobal\b", source):
                n = root.descendant_for_byte_range(m.start(), m.end())
                statement = n if n is not None and n.type == "global_statement" else n.parent if n is not None else None
                if statement is not None and statement.type == "global_statement":
                    names.update(text(c) for c in statement.named_children)
            self._globals = frozenset(names)
        return self._globals

    def _mutated(self, name: str) -> bool:
        """Whether the file changes the list or set ``name`` in place anywhere (appends, item assignment, ``+=``)."""
        if name not in self._mutated_names:
            self._mutated_names[name] = mutated_in(self.scopes.parsed.source, name, growing=True)
        return self._mutated_names[name]

    def _dict_item(self, node: Node, depth: int) -> Value:
        """``cfg["act_name"]`` where ``cfg`` is a dict literal of the file (``cfg = {"act_name": ...}``); with a key
        that may be several strings or is unknown (``SITES[component]``, ``component`` a parameter), one of the values
        those keys select (any other key raises KeyError: no value at all)."""
        container, key = node.child_by_field_name("value"), node.child_by_field_name("subscript")
        found = self._read_only_dict(container) if key is not None else None
        if found is None:
            return None
        ev, d = found  # (the evaluator of the file the literal is written in)
        wanted = self.eval(key, depth + 1)
        pairs = [p for p in d.node.named_children if p.type != "comment"]
        if isinstance(wanted, str):
            for pair in reversed(pairs):  # the last pair with the key wins
                if pair.type != "pair":
                    return None  # `**other` after it: other may hold the key too
                written = ev.eval(pair.child_by_field_name("key"), depth + 1)
                if written == wanted:
                    return ev.eval(pair.child_by_field_name("value"), depth + 1)
                if not isinstance(written, (str, int, float, Seq)):
                    return None  # a key not known here may be the one
            return None
        keys = options_of(wanted) if wanted is not None else None
        if keys is not None and not all(isinstance(k, str) for k in keys) or not pairs or len(pairs) > MAX_OPTIONS \
                or any(p.type != "pair" for p in pairs):  # (`**other` in the literal: keys not seen here)
            return None
        chosen = [p for p in pairs if keys is None or ev.eval(p.child_by_field_name("key"), depth + 1) in keys]
        return one_of(ev.eval(p.child_by_field_name("value"), depth + 1) for p in chosen) if chosen else None

    def _returned_item(self, node: Node, depth: int) -> Value:
        """``get_resid_name(layer, model)[0]``: the item at a literal index of the tuple a call returns."""
        call, index = node.child_by_field_name("value"), node.child_by_field_name("subscript")
        if call is None or index is None or call.type != "call" or index.type not in ("integer", "unary_operator"):
            return None
        at = self.eval(index, depth + 1)
        if not is_int(at):
            return None
        items = []
        for row in options_of(self.eval(call, depth + 1)):
            if not isinstance(row, Seq) or not -len(row.items) <= int(at) < len(row.items):
                return None
            items.append(row.items[int(at)])
        return one_of(items)

    def _read_only_dict(self, name: Node | None) -> tuple[Evaluator, Definition] | None:
        """The binding of ``name`` to a dict literal, of this file or imported from a workspace module (``from
        patching import SITES``), with the evaluator of the file it is written in, when nothing may change the dict."""
        if name is None or name.type != "identifier":
            return None
        d = self.scopes.lookup(text(name), name.start_byte)
        if d is None:
            return None
        if self.reads is not None:
            self.reads.add(text(name))
        ev, literal = self, d
        if d.kind == "import":
            found = followed(d.imported, self.links)
            if found is None or self.writes_attribute(found[1].name):
                return None
            ev, literal = found[0].evaluator, found[1]
        if literal.kind != "assign" or literal.target.type != "identifier" or literal.node.type != "dictionary":
            return None
        # `cfg["act_name"] = ...`, `cfg.update(...)`, `post_init_cfg(cfg)`: not the literal any more (here, or there)
        return (ev, literal) if self._dict_unchanged(d) and ev._dict_unchanged(literal) else None

    def _dict_loop(self, name: str, target: Node, iterable: Node, depth: int) -> Value:
        """``for k in SITES`` (or ``SITES.keys()``), ``for v in SITES.values()``, ``for k, v in SITES.items()`` over a
        dict literal that nothing changes (see :meth:`_read_only_dict`): one of its keys, or of its values."""
        iterated = _iterated_mapping(name, target, iterable)
        found = self._read_only_dict(iterated[0]) if iterated is not None else None
        pairs = [p for p in found[1].node.named_children if p.type != "comment"] if found is not None else []
        if not pairs or len(pairs) > MAX_OPTIONS or any(p.type != "pair" for p in pairs):
            return None
        return one_of(found[0].eval(p.child_by_field_name(iterated[1]), depth + 1) for p in pairs)

    def _dict_unchanged(self, d: Definition, depth: int = 0) -> bool:
        """Whether the dict literal ``d`` binds is only ever read: every use of the name bound there is an
        item read (not an assignment or ``del`` target), a reading method (``get``, ``keys``, ...), an ``in``
        test, ``len``/``print``, a ``**`` spread, or an argument of a function of this file that only reads that
        parameter likewise (``train(config=CONFIG)``); any other use (``update``, an item assignment, handing
        the dict to another function or name) may change it."""
        return bool(self.memoised(self._dicts_unchanged, (d.name, d.offset), lambda: all(
            _read_only_use(use) or depth < 2 and self._only_read_by_callee(use, depth) for use in self._uses(d))))

    def _only_read_by_callee(self, use: Node, depth: int) -> bool:
        """Whether ``use`` is an argument of a call of a function of this file whose parameter it binds is only
        ever read there (see :meth:`_dict_unchanged`)."""
        passed = _argument_of(use)
        if passed is None:
            return False
        call, keyword = passed
        called = self.function_called(call)
        if called is None or called[0] is not self:
            return False
        fn = called[1]
        bound = self.bind(fn, call)
        param = keyword if keyword is not None else next((n for n, arg in (bound or {}).items() if arg == use), None)
        body = fn.child_by_field_name("body")
        if bound is None or param not in bound or body is None:
            return False
        if self.read_spans is not None:
            self.read_spans.append((fn.start_byte, fn.end_byte))  # an edit of the callee may make it write
        own = next((p for p in self.scopes.definitions(param, self.scopes.scope_of(body.start_byte)) if p.kind == "param"), None)
        return own is not None and self._dict_unchanged(own, depth + 1)

    def _loop_variable(self, name: str, target: Node, iterable: Node, depth: int) -> Value:
        """``for site in ["resid_pre", "attn_out"]`` (or ``for name, layer in [("z", 3), ...]``): one of the items;
        also over a name holding such a list (``for site in sites``, a parameter every call site passes one)."""
        if iterable.type == "call" and text(iterable.child_by_field_name("function")) == "enumerate" \
                and target.type in ("pattern_list", "tuple_pattern") and len(target.named_children) == 2:
            positional, _ = call_args(iterable)  # `for i, letter in enumerate("qkv")`: the items; the index unknown
            if len(positional) != 1 or text(target.named_children[1]) != name:
                return None
            return self._items(positional[0], depth)
        if iterable.type == "string" and target.type == "identifier":
            return self._items(iterable, depth)  # `for letter in "qkv"`
        if iterable.type not in ("list", "tuple", "set"):
            keys = self._cache_key_loop(name, target, iterable)
            if keys is None:
                keys = self._dict_loop(name, target, iterable, depth)
            return keys if keys is not None else self._loop_over_value(name, target, self.eval(iterable, depth + 1))
        items = [c for c in iterable.named_children if c.type != "comment"]
        if target.type == "identifier":
            return one_of(self.eval(item, depth + 1) for item in items)
        names = [text(c) for c in target.named_children]
        index = names.index(name)
        if any(item.type not in ("tuple", "list", "parenthesized_expression") for item in items):
            return None
        rows = [[c for c in (item.named_children[0] if item.type == "parenthesized_expression" else item).named_children
                 if c.type != "comment"] for item in items]
        if any(len(row) != len(names) for row in rows):
            return None
        return one_of(self.eval(row[index], depth + 1) for row in rows)

    def _comprehension(self, node: Node, depth: int) -> Value:
        """A comprehension without conditions (``[f"blocks.{l}.hook_z" for l in layers]``): items of the values its
        element expression takes, whatever its own variables are (unknown ones stay holes). An ``if`` clause
        keeps some items only: unknown."""
        if any(c.type != "for_in_clause" for c in node.named_children[1:]):
            return None
        item = self.eval(node.child_by_field_name("body"), depth + 1)
        return Items(item) if item is not None else None

    def _items(self, node: Node, depth: int) -> Value:
        """One of the items of an iterated collection: a literal list's elements, a string's characters."""
        if node.type in ("list", "tuple", "set"):
            return one_of(self.eval(c, depth + 1) for c in node.named_children if c.type != "comment")
        value = self.eval(node, depth + 1)
        if isinstance(value, str):
            return one_of(value) if 0 < len(value) <= MAX_OPTIONS else None
        return one_of(item for seq in options_of(value) for item in item_options(seq)) \
            if options_of(value) and all(isinstance(v, (Seq, Items)) for v in options_of(value)) else None

    def _cache_key_loop(self, name: str, target: Node, iterable: Node) -> Value:
        """``for key in cache.keys()`` / ``for key in cache`` / ``for key, act in cache.items()``: the key is
        one of the hook names the cache holds."""
        cache = _iterated_cache(name, target, iterable)
        return self.cache_keys(cache) if cache is not None and self.cache_keys is not None else None

    def _guarded_cache_key(self, d: Definition, read: Node) -> Value:
        """A key of a cache that holds every hook point, read where a test lets only some through
        (``for key in cache: if "hook_mlp_out" not in key: continue``; ``[cache[k] for k in cache if "z" in k]``)."""
        cache = _iterated_cache(d.name, d.target, d.node)
        loop = d.target.parent
        guard = guard_tests(d.name, read, loop) if cache is not None and loop is not None and self.cache_keys is not None else None
        if guard is None:
            return None
        tests, guarding = guard
        if self.read_spans is not None:  # an edit of a test changes what the read may be
            self.read_spans.extend((g.start_byte, g.end_byte) for g in guarding)
        return self.cache_keys(cache, tests)

    @staticmethod
    def _loop_over_value(name: str, target: Node, iterated: Value) -> Value:
        """A loop variable over a computed sequence (each option's items, when the value has several)."""
        sequences = options_of(iterated)
        if not sequences or not all(isinstance(seq, (Seq, Items)) for seq in sequences):
            return None
        items = [item for seq in sequences for item in item_options(seq)]
        if target.type == "identifier":
            return one_of(items)
        names = [text(c) for c in target.named_children]
        rows = [row for item in items for row in options_of(item)]
        if not all(isinstance(row, Seq) and len(row.items) == len(names) for row in rows):
            return None
        return one_of(row.items[names.index(name)] for row in rows)  # type: ignore[union-attr]

    def loop_rows(self, nodes: list[Node]) -> list[tuple[Value, ...]] | None:
        """Values of names unpacked together by one loop, row by row: ``for name, layer in [("z", 3), ("q", 5)]``
        gives ``[("z", 3), ("q", 5)]`` for ``(name, layer)``, not every combination."""
        defs = [self.scopes.lookup(text(n), n.start_byte) if n.type == "identifier" else None for n in nodes]
        if all(d is not None and d.kind == "param" for d in defs):
            return self._parametrized_rows(defs)
        if any(d is None or d.kind != "for" for d in defs) or len({d.target_start for d in defs}) != 1:
            return None
        target, iterable = defs[0].target, defs[0].node
        if target.type == "identifier" or iterable.type not in ("list", "tuple", "set"):
            return None
        names = [text(c) for c in target.named_children]
        rows = []
        for item in (c for c in iterable.named_children if c.type != "comment"):
            item = item.named_children[0] if item.type == "parenthesized_expression" and item.named_children else item
            cells = [c for c in item.named_children if c.type != "comment"] if item.type in ("tuple", "list") else []
            if len(cells) != len(names):
                return None
            rows.append(tuple(self.eval(cells[names.index(d.name)]) for d in defs))
        return rows if len(rows) <= MAX_OPTIONS else None

    def _parametrized_rows(self, params: list[Definition]) -> list[tuple[Value, ...]] | None:
        """``@pytest.mark.parametrize("site, layer", [("z", 0), ("q", 3)])``: the parameters' values row by row."""
        fn = function_of(params[0].node)
        if fn is None or any(function_of(d.node) != fn for d in params):
            return None
        found = parametrized(fn, [d.name for d in params])
        if found is None:
            return None
        decorator, cells = found
        if self.read_spans is not None:
            self.read_spans.append((decorator.start_byte, decorator.end_byte))
        rows = [tuple(self.eval(c) for c in row) for row in cells]
        return rows if len(rows) <= MAX_OPTIONS else None

    # -- through functions

    def _parameter(self, name: str, param: Node, depth: int) -> Value:
        """A parameter of a function of this file: bound by the call being followed, else every call site's value."""
        fn = function_of(param)
        if fn is None:
            return None
        for start, values in reversed(self._bindings):
            if start == fn.start_byte:
                return values.get(name)
        key = (fn.start_byte, name)
        if key in self._param_memo:
            value, reads, spans = self._param_memo[key]
            self.note_reads(reads, spans)  # what a ref reading it depends on, as when it was computed
            return value
        if key in self._following or self.calls is None:
            return None
        self._following.add(key)
        try:
            value, reads, spans = self.recorded(lambda: self._passed_value(fn, name, depth))
        finally:
            self._following.discard(key)
        self.note_reads(reads, spans)
        if not self._bindings:  # a value computed under a followed call's bindings holds only there
            self._param_memo[key] = (value, reads, spans)
        return value

    def _passed_value(self, fn: Node, name: str, depth: int) -> Value:
        """What a parameter holds: for a test function, each of the rows pytest passes; else what every call
        site passes (recorded: see :meth:`recorded`)."""
        if (rows := parametrized(fn, [name])) is not None:
            decorator, cells = rows
            self.read_spans.append((decorator.start_byte, decorator.end_byte))
            return one_of(self.eval(v, depth + 1) for v, in cells)
        passed = self.passed(fn, name, defaults=True)
        if not passed and (declared := self._literal_annotation(fn, name)) is not None:
            return declared  # `site: Literal["q", "k", "v"]`, its callers unknown
        if passed == [] and (default := default_of(fn, name)) is not None:
            return self._default_when_uncalled(fn, default, depth)
        return one_of(p.evaluator.eval(p.argument, depth + 1) if p.argument is not None else None
                      for p in passed) if passed else None

    def _literal_annotation(self, fn: Node, name: str) -> Value:
        """One of the values a ``Literal[...]`` annotation of the parameter allows."""
        for n, p in parameter_names(fn):
            annotation = p.child_by_field_name("type") if n == name else None
            inner = annotation.named_children[0] if annotation is not None and annotation.named_children else None
            if inner is None or inner.type not in ("subscript", "generic_type") or \
                    not re.fullmatch(r"(?:\w+\.)?Literal\s*\[.*", text(inner), re.S):
                continue
            self.read_spans.append((p.start_byte, p.end_byte))
            values = [self.eval(c) for c in descendants(inner, "string") if c.parent.type != "string"]
            return one_of(values) if values and all(isinstance(v, str) for v in values) else None
        return None

    def _default_when_uncalled(self, fn: Node, default: Node, depth: int) -> Value:
        """A parameter's default, for a function called from no code the workspace shows (a notebook's helper,
        a script's entry point), if every call of it names it: not handed on as a value (``fire.Fire(main)``),
        not a method or a lambda, not decorated by something that may call it with arguments (``@app.route``).
        A name's default (``component_type="hook_post"``) is what such calls mean; a number's (``layer: int =
        0``) is a placeholder for whatever index the caller passes, unless it captures a loop's variable
        (``def patch(x, hook, layer=layer)``, registered in the loop: TransformerLens passes the other two)."""
        head = fn.parent if fn.parent is not None and fn.parent.type == "decorated_definition" else fn
        self.read_spans.append((head.start_byte, default.end_byte))  # its decorators decide too
        if fn.type != "function_definition" or is_method(fn) or self.escapes(text(fn.child_by_field_name("name")), fn):
            return None
        if any(d.type == "decorator" and not _ARGUMENT_FREE_DECORATOR.search(text(d)) for d in head.children):
            return None
        value = self.eval(default, depth + 1)
        if default.type == "identifier" and (bound := self.scopes.lookup(text(default), default.start_byte)) is not None \
                and bound.kind == "for":
            return value  # `def patch(x, hook, layer=layer)` in a loop: the iteration's value, captured
        return None if any(isinstance(o, (int, float)) for o in options_of(value)) else value

    def recorded(self, compute: Callable[[], object]) -> tuple[object, frozenset[str], tuple]:
        """``compute()``, with the names and code ranges it read (for a memo whose users must depend on what
        its value was computed from, whichever user computed it first: see :meth:`note_reads`)."""
        outer = self.reads, self.read_spans
        self.reads, self.read_spans = reads, spans = set(), []
        try:
            value = compute()
        finally:
            self.reads, self.read_spans = outer
        return value, frozenset(reads), tuple(spans)

    def memoised(self, memo: dict, key, compute: Callable[[], object]):
        """``compute()`` once per analysis, kept with the names and code ranges it read; every use notes them, so
        that every reader depends on what the value was worked out from, not only the first. None while it is
        computed (a cycle: a helper returning what it calls itself for)."""
        if key not in memo:
            memo[key] = (None, frozenset(), ())
            memo[key] = self.recorded(compute)
        value, reads, spans = memo[key]
        self.note_reads(reads, spans)
        return value

    def note_reads(self, reads: set[str] | frozenset[str], spans: list | tuple) -> None:
        """Add names and code ranges read by a computation (also a memoised one) to those being recorded."""
        if self.reads is not None:
            self.reads.update(reads)
        if self.read_spans is not None:
            self.read_spans.extend(spans)

    def call_sites(self, fn: Node) -> list[tuple[Evaluator, Node, bool]] | None:
        """(evaluator of the call's file, call, through partial) for each call of ``fn``: in this file and, for a
        public module-level function, in the workspace files that import it; None past the bound, or when
        the function is also handed on as a value (see :meth:`escapes`)."""
        if self.calls is None:
            return None  # calls not known yet
        if fn.start_byte not in self._sites:
            sites = self._call_sites(fn)  # kept with None for this evaluator: no reference cycle through it
            self._sites[fn.start_byte] = None if sites is None else [(None if e is self else e, c, p) for e, c, p in sites]
        kept = self._sites[fn.start_byte]
        return None if kept is None else [(self if e is None else e, c, p) for e, c, p in kept]

    def _call_sites(self, fn: Node) -> list[tuple[Evaluator, Node, bool]] | None:
        name_node = fn.child_by_field_name("name")
        if name_node is None or fn.type != "function_definition":
            return None
        name = text(name_node)
        if is_method(fn):  # a constructor's call sites (`Node("z", 9)` calls `Node.__init__`), or `self.name(...)`
            cls = class_of(fn)
            if name != "__init__":
                return self._method_call_sites(fn, cls, name) if cls is not None else None
            if cls.parent is None or cls.parent.type != "module":
                return None
            fn, name_node = cls, cls.child_by_field_name("name")
            name = text(name_node)
        sites = []
        for call in self._calls_named(name):
            sites.append((call, False))
        for call in self._calls_named("partial"):
            positional, _ = call_args(call)
            if positional and positional[0].type == "identifier" and text(positional[0]) == name:
                sites.append((call, True))
        resolved = [(self, c, p) for c, p in sites if self._resolves_to(c, name, fn)]
        if resolved and self.escapes(name, fn):
            return None  # `patch_fn = a if c else fn; patch_fn(...)`: called where its name is not seen
        if self.links is not None and fn.parent is not None and fn.parent.type in ("module", "decorated_definition") \
                and not name.startswith("_"):
            for other in self.links.importers():
                found = other.evaluator.calls_of_imported(name, self.links.path)
                if found is None or found and not resolved and self.escapes(name, fn):
                    return None
                resolved += [(other.evaluator, c, p) for c, p in found]
                if len(resolved) > MAX_CALL_SITES:
                    return None
        return resolved if len(resolved) <= MAX_CALL_SITES else None

    def _method_call_sites(self, fn: Node, cls: Node, name: str) -> list[tuple[Evaluator, Node, bool]] | None:
        """The calls of a method, when every use of the attribute ``name`` in the file is a call ``self.name(...)``
        inside its own class and no importing file mentions ``.name(``; else None (called on an instance
        elsewhere, or handed on as a value: callers the file does not show). Never for ``forward`` or a dunder
        method: ``module(x)`` and Python's operators call them without naming them."""
        if name == "forward" or name.startswith("__"):
            return None
        source, root, word = self.scopes.parsed.source, self.scopes.parsed.root, b"." + name.encode()
        sites: list[tuple[Evaluator, Node, bool]] = []
        at = source.find(word)
        while at >= 0:
            end, at = at + len(word), source.find(word, at + 1)
            ident = root.descendant_for_byte_range(end - len(name), end)
            attribute = ident.parent if ident is not None and ident.type == "identifier" and ident.end_byte == end else None
            if attribute is None or attribute.type != "attribute" or attribute.child_by_field_name("attribute") != ident:
                continue  # a longer name, a string or a comment
            call, receiver = attribute.parent, attribute.child_by_field_name("object")
            if call is None or call.type != "call" or call.child_by_field_name("function") != attribute or \
                    receiver is None or text(receiver) != "self" or enclosing_class(call) != cls:
                return None
            sites.append((self, call, False))
            if len(sites) > MAX_CALL_SITES:
                return None
        if self.links is not None and any(word + b"(" in other.source for other in self.links.importers()):
            return None
        return sites

    def escapes(self, name: str, binding: Node) -> bool:
        """Whether the function bound to ``name`` here (its def, or the import of it) is used as a value
        (assigned, passed to a call, stored, returned), so that it may be called under another name.
        Its name as a callee, ``partial``'s first argument and a hook registration (TransformerLens calls
        the function with the activation and the hook only) are not escapes."""
        key = (binding.start_byte, name)
        if key not in self._escapes:
            self._escapes[key] = self._find_escape(name, binding)
        return self._escapes[key]

    def _find_escape(self, name: str, binding: Node) -> bool:
        root = self.scopes.parsed.root
        # A name bound in a function is seen only in that function's body; a module-level one anywhere.
        scope = self.scopes.scope_of(binding.start_byte)
        start, end = (0, len(self.scopes.parsed.source)) if scope[0] <= 0 and scope[1] <= 0 else scope
        source, word = self.scopes.parsed.source, name.encode()
        at = source.find(word, start, end)
        while at >= 0:
            found, at = at, source.find(word, at + len(word), end)
            node = root.descendant_for_byte_range(found, found + len(word))
            if node is None or node.type != "identifier" or node.start_byte != found or node.end_byte != found + len(word):
                continue  # part of a longer name, in a string or a comment
            d = self.scopes.lookup(name, node.start_byte)
            if d is None or d.node.start_byte != binding.start_byte and d.target.start_byte != binding.start_byte:
                continue  # another binding of the name
            if not _used_as_value(node):
                continue
            return True
        return False

    def calls_of_imported(self, name: str, module: Path) -> list[tuple[Node, bool]] | None:
        """(call, through partial) for each call in this file of the function ``name`` of the workspace
        module ``module`` (a file), imported here under any name (``from m import f as g``,
        ``import m as h; h.f(...)``, ``from package import m; m.f(...)``); None when this file uses
        it as a value (see :meth:`escapes`)."""
        out: list[tuple[Node, bool]] = []
        for d in self.scopes.workspace_import_definitions() if self.links is not None else ():
            imported = d.imported
            if imported.attr == name and self.links.resolve(imported.module, imported.level) == module:
                if self.escapes(d.name, d.node):
                    return None
                out += [(c, False) for c in self._calls_named(d.name) if c.child_by_field_name("function").type == "identifier"]
                out += [(c, True) for c in self._calls_named("partial") if (args := call_args(c)[0])
                        and args[0].type == "identifier" and text(args[0]) == d.name]
            elif module_path(imported, self.links) == module:
                out += [(c, False) for c in self._calls_named(name) if _called_through(c, d.name)]
        return out

    def _calls_named(self, name: str) -> list[Node]:
        """Calls of ``name`` as a plain name or an attribute (``fn(...)``, ``h.fn(...)``, ``functools.partial(...)``)."""
        if self._calls_by_name is None:
            self._calls_by_name = {}
            for call in self.calls or ():
                function = call.child_by_field_name("function")
                if function is not None:
                    callee = text(function).rpartition(".")[2]  # `functools.partial` too
                    self._calls_by_name.setdefault(callee, []).append(call)
        return self._calls_by_name.get(name, [])

    def _resolves_to(self, call: Node, name: str, fn: Node) -> bool:
        """Whether ``call`` may run ``fn``: the def its name refers to there, or one of the defs that may
        reach it (``if attn: def hook(...)`` / ``else: def hook(...)``)."""
        d = self.scopes.lookup(name, call.start_byte)
        if d is None or d.kind not in ("def", "class"):
            return False
        return d.node.start_byte == fn.start_byte or any(
            x.kind == "def" and x.node.start_byte == fn.start_byte for x in self.other_reaching(d, call.start_byte) or ())

    def passed(self, fn: Node, name: str, defaults: bool = False) -> list[Passed] | None:
        """What each call site of ``fn`` (a function of this file) passes for its parameter ``name``: the argument,
        or with ``defaults`` the default where none is passed (not through a partial, whose caller may pass it);
        None when the call sites are not known (see :meth:`call_sites`)."""
        if self.reads is not None:  # its call sites name the function
            self.reads.add(text(fn.child_by_field_name("name")) if fn.type == "function_definition" else "lambda")
        sites = self.call_sites(fn)
        if sites is None:
            return None
        out: list[Passed] = []
        for caller, call, through_partial in sites:
            bound = caller.bind(fn, call, skip=1 if through_partial else 0, splats=True)
            if bound is not None and name in bound:
                out.append(Passed(caller, call, bound[name]))
            elif bound is not None and defaults and not through_partial and (default := default_of(fn, name)) is not None:
                out.append(Passed(self, call, default))
            else:
                out.append(Passed(caller, call, None))
        return out

    def bind(self, fn: Node, call: Node, skip: int = 0, splats: bool = False) -> dict[str, Node | None] | None:
        """Parameter name -> argument node of ``call``; None when it splats ``*args``/``**kwargs``. With
        ``splats``, such a call binds what it passes by name and the positions before a ``*args``, and every other
        parameter to None (it may come from the splat: unknown, not its default)."""
        args = call.child_by_field_name("arguments")
        if args is None:
            return None
        if self.read_spans is not None:  # which argument lands in a parameter depends on all of them
            self.read_spans.append((args.start_byte, args.end_byte))
        splat = next((c for c in args.named_children if c.type in ("list_splat", "dictionary_splat")), None)
        if splat is not None and not splats:
            return None
        positional, keywords = call_args(call)
        names = [n for n, _ in parameter_names(fn)][1 if _takes_self(fn) else 0:]  # `self` (or `cls`) is not passed
        listed = next((c for c in args.named_children if c.type == "list_splat"), None)
        if listed is not None:
            positional = [p for p in positional if p.start_byte < listed.start_byte]
        bound: dict[str, Node | None] = dict(zip(names, positional[skip:]))
        bound.update({k: v for k, v in keywords.items() if k in names})
        if splat is not None:
            bound.update({n: None for n in names if n not in bound})
        return bound

    def _from_later_iterations(self, d: Definition, offset: int) -> list[Definition]:
        """Bindings of ``d``'s name after a read inside a loop, in that loop: the next iteration reads them
        (``for ...: x = cache[name]; name = "b"``)."""
        scope = self.scopes.scope_of(offset)
        defs = self.scopes.definitions(d.name, scope)
        if not defs or defs[-1].offset <= offset:
            return []  # nothing bound after the read (most reads)
        out: list[Definition] = []
        after = bisect.bisect_right(defs, offset, key=_offset_of)
        node = self.scopes.parsed.root.descendant_for_byte_range(offset, offset)
        while node is not None and node.type not in _SCOPE_EDGES:
            body, left = (node.child_by_field_name("body"), node.child_by_field_name("left")) \
                if node.type == "for_statement" else (None, None)
            if body is not None and left is not None and body.start_byte <= offset and any(
                    text(n) == d.name and n.parent.type not in ("attribute", "subscript") for n in descendants(left, "identifier")):
                return out  # read in a loop over the name itself: each iteration binds it afresh
            if node.type in ("for_statement", "while_statement"):
                end = bisect.bisect_right(defs, node.end_byte, key=_offset_of)
                out += [x for x in defs[after:end] if x.kind != "import" and x not in out]
            node = node.parent
        return out

    def _returned(self, call: Node, fn: Node, owner: Evaluator, depth: int) -> Value:
        """What ``fn`` (a function of ``owner``'s file) returns for this call: its ``return`` expressions
        with the call's arguments bound (evaluated here; defaults in ``fn``'s file)."""
        values = self._bound_values(call, fn, owner, depth)
        return owner._returns(fn, values, depth) if values is not None else None

    def under_call(self, call: Node, fn: Node, compute: Callable[[], Value]) -> Value:
        """``compute()`` with ``fn``'s parameters bound to ``call``'s arguments (defaults where none is
        passed), as when following what ``fn`` returns for that call (``fn`` is a function of this file)."""
        values = self._bound_values(call, fn, self, 0)
        return self._with_bindings(fn, values, compute) if values is not None else None

    def _bound_values(self, call: Node, fn: Node, owner: Evaluator, depth: int) -> dict[str, Value] | None:
        """``fn``'s parameters as this call binds them: its arguments, evaluated here, or their defaults,
        evaluated in ``owner`` (``fn``'s file). None for a method, a splat, or a function being followed."""
        if is_method(fn) or (fn.start_byte, "") in owner._following:
            return None
        bound = self.bind(fn, call)
        if bound is None:
            return None
        values: dict[str, Value] = {}
        for name, _ in parameter_names(fn):
            if name in bound:
                values[name] = self.eval(bound[name], depth + 1)
            elif (default := default_of(fn, name)) is not None:
                values[name] = owner.eval(default, depth + 1)
        return values

    def _returns(self, fn: Node, values: dict[str, Value], depth: int) -> Value:
        """What ``fn`` of this file returns with its parameters bound to ``values``."""
        returns = returns_of(fn)
        if not returns or len(returns) > MAX_OPTIONS:
            return None
        return self._with_bindings(fn, values, lambda: one_of(
            self.eval(r.named_children[0] if r.named_children else None, depth + 1) for r in returns))

    def _with_bindings(self, fn: Node, values: dict[str, Value], compute: Callable[[], Value]) -> Value:
        """``compute()`` while ``fn``'s parameters read as ``values`` (and ``fn`` is not followed again)."""
        self._bindings.append((fn.start_byte, values))
        self._following.add((fn.start_byte, ""))
        try:
            return compute()
        finally:
            self._bindings.pop()
            self._following.discard((fn.start_byte, ""))

    def _fstring(self, node: Node, depth: int) -> Value:
        parts: list = []
        for child in node.children:
            if child.type == "string_content":
                parts.append(text(child))
            elif child.type == "interpolation":
                expr = child.child_by_field_name("expression") or (child.named_children[0] if child.named_children else None)
                shown = lift(interpolated, self.eval(expr, depth + 1))
                parts.append(shown if shown is not None else Hole(text(expr)))
            elif child.type == "string_start" and "b" in text(child).lower():
                return None
        return lift(_joined, *parts)

    def _format(self, template: str, call: Node, depth: int) -> Value:
        """``"blocks.{}.hook_{}".format(layer, site)``: plain ``{}``, ``{0}`` and ``{name}`` fields only (a
        format spec, conversion, or an item or attribute of an argument: unknown)."""
        positional, keywords = call_args(call)
        try:
            fields = list(string.Formatter().parse(template))
        except ValueError:
            return None
        parts: list = []
        auto = 0
        for literal, field_name, spec, conversion in fields:
            parts.append(literal)
            if field_name is None:
                continue
            if spec or conversion:
                return None
            if field_name == "":
                field_name, auto = str(auto), auto + 1
            arg = positional[int(field_name)] if field_name.isdigit() and int(field_name) < len(positional) \
                else keywords.get(field_name) if field_name.isidentifier() else None
            if arg is None:
                return None
            shown = lift(interpolated, self.eval(arg, depth + 1))
            parts.append(shown if shown is not None else Hole(text(arg)))
        return lift(_joined, *parts)

    def _call(self, node: Node, depth: int) -> Value:
        receiver, fname, receiver_node = call_name(node)
        if self.is_act_name(node):
            return self.act_name(node, depth)
        if fname == "format" and receiver_node is not None:  # `"blocks.{}.hook_z".format(layer)`, or a name holding the template
            templates = options_of(self.eval(receiver_node, depth + 1))  # (one of several: a parameter's call sites)
            if not templates or not all(isinstance(t, str) for t in templates):
                return None
            return one_of(self._format(t, node, depth) for t in templates)
        if fname == "str" and receiver is None:
            positional, _ = call_args(node)
            if len(positional) != 1:
                return None
            value = lift(lambda v: str(v) if is_int(v) else None, self.eval(positional[0], depth + 1))
            # str() of something unknown is still a string: a hole (`"blocks." + str(layer) + ".hook_z"`).
            return value if value is not None else Hole(text(positional[0]))
        called = self.function_called(node) if self.calls is not None else None
        return self._returned(node, called[1], called[0], depth) if called is not None else None

    def is_act_name(self, call: Node) -> bool:
        """Whether ``call`` is TransformerLens's ``get_act_name``: named so, and not a function of the workspace (a
        file's own ``def get_act_name(module_name, layer)`` means what it returns)."""
        return call_name(call)[1] in ACT_NAME_FUNCS and self.function_called(call) is None

    def function_called(self, call: Node) -> tuple[Evaluator, Node] | None:
        """The def a call runs and the evaluator of its file: a function of this file, one imported from a
        workspace module (``from utils import f``), or one reached through a module (``import utils as u; u.f()``)."""
        function = call.child_by_field_name("function")
        if function is None:
            return None
        if function.type == "identifier":
            if self.reads is not None:
                self.reads.add(text(function))
            d = self.scopes.lookup(text(function), call.start_byte)
            if d is not None and d.kind == "import" and (found := followed(d.imported, self.links)) is not None:
                other, d = found
                return (other.evaluator, d.node) if d.kind == "def" and d.node.type == "function_definition" else None
            return (self, d.node) if d is not None and d.kind == "def" and d.node.type == "function_definition" else None
        obj = function.child_by_field_name("object") if function.type == "attribute" else None
        if obj is None or obj.type != "identifier" or self.links is None:
            return None
        d = self.scopes.lookup(text(obj), call.start_byte)
        module = module_of(d.imported, self.links) if d is not None and d.kind == "import" else None
        defs = module.scopes.definitions(text(function.child_by_field_name("attribute"))) if module is not None else []
        if defs and defs[-1].kind == "def" and defs[-1].node.type == "function_definition":
            return module.evaluator, defs[-1].node
        return None

    def act_name_args(self, call: Node) -> tuple[str, object, object, bool] | None:
        """(name, layer, layer_type, layer given) of a ``get_act_name`` call; ``...`` for unknown values."""
        positional, keywords = call_args(call)
        args: dict[str, Node] = dict(zip(["name", "layer", "layer_type"], positional))
        args.update({k: v for k, v in keywords.items() if k in ("name", "layer", "layer_type")})
        name = self.eval(args.get("name"))
        if not isinstance(name, str):
            return None

        def literal(key: str) -> object:
            node = args.get(key)
            if node is None or node.type == "none":
                return None
            value = self.eval(node)
            return value if isinstance(value, (int, str)) else ...

        return name, literal("layer"), literal("layer_type"), "layer" in args

    def act_name(self, call: Node, depth: int = 0) -> Value:
        """The value of ``get_act_name(name, layer, layer_type)`` (a Pattern when the layer is unknown)."""
        positional, keywords = call_args(call)
        names = ["name", "layer", "layer_type"]
        args: dict[str, Node] = dict(zip(names, positional))
        args.update({k: v for k, v in keywords.items() if k in names})
        name = self.eval(args.get("name"), depth + 1)
        layer: Value = None
        if "layer" in args:
            layer = self.eval_or_hole(args["layer"], depth + 1)
        layer_type = self.eval(args.get("layer_type"), depth + 1) if "layer_type" in args else None
        if layer_type is None and "layer_type" in args and args["layer_type"].type != "none":
            return None  # an unknown layer type is not "no layer type"
        return lift(act_name_value, name, layer, layer_type)


# Assignment targets that unpack a sequence into names.
_UNPACKING = frozenset({"pattern_list", "tuple_pattern", "list_pattern"})

# Statements whose parts may or may not run: a binding inside one may not reach a read after it.
_CONDITIONAL = frozenset({"if_statement", "for_statement", "while_statement", "try_statement", "match_statement"})
_CLAUSE_HOLDERS = {"if_statement": ("block", "elif_clause", "else_clause"),
                   "try_statement": ("block", "except_clause", "else_clause", "finally_clause"),
                   "match_statement": ("block",)}
_COMPREHENDING = frozenset({"list_comprehension", "set_comprehension", "generator_expression"})
_MUTABLE = frozenset({"list", "set", "list_comprehension", "set_comprehension"})  # values changed in place by methods
# Methods of a list or set that put nothing in it.
_LIST_READS_AND_REMOVALS = frozenset({"remove", "pop", "clear", "discard", "sort", "reverse", "copy", "index", "count",
                                      "difference_update", "intersection_update"})
_SCOPE_EDGES = frozenset({"function_definition", "lambda", "class_definition", "module"})


# Decorators that call the function with the arguments it was called with.
_ARGUMENT_FREE_DECORATOR = re.compile(r"no_grad|inference_mode|enable_grad|cache|wraps|jaxtyped|typechecked|beartype")


def _written_at(d: Definition) -> int:
    """Where a binding is written (its target), for listing the values a name may hold in source order."""
    return d.target_start


def _joined(*values: Value) -> Value:
    """The string the parts of an f-string or ``str.format`` make: a literal when every part is known."""
    pattern = normalise(tuple(values))
    return pattern.literal() if pattern.literal() is not None else pattern


def _conditional_around(node: Node, offset: int) -> Node | None:
    """The innermost conditional statement holding ``node`` but not ``offset`` (None when the read is
    in the same branch, or the binding is not inside one)."""
    parent = node.parent
    while parent is not None and parent.type not in _SCOPE_EDGES:
        if parent.start_byte <= offset < parent.end_byte:
            return None
        if parent.type in _CONDITIONAL:
            return parent
        parent = parent.parent
    return None


def _clauses(compound: Node) -> list[Node]:
    """The branches of an ``if``/``try``/``match`` (the body, each ``elif``/``except``/``else``/case); a
    loop's body is its one branch."""
    if compound.type == "match_statement":
        body = compound.child_by_field_name("body")
        return [c for c in body.named_children if c.type == "case_clause"] if body is not None else []
    kinds = _CLAUSE_HOLDERS.get(compound.type, ("block",))
    return [c for c in compound.named_children if c.type in kinds]


# Methods that register a hook function on a name (the hook-ref collector reads the same ones).
HOOK_METHODS = frozenset({"add_hook", "add_perma_hook"})


def _used_as_value(name: Node) -> bool:
    """Whether this occurrence of a function's name hands the function on (not: calls it, defines or
    imports it, gives it to ``partial`` or registers it as a hook)."""
    parent = name.parent
    if parent is None:
        return False
    if parent.type in ("function_definition", "class_definition") and parent.child_by_field_name("name") == name:
        return False
    if parent.type == "call" and parent.child_by_field_name("function") == name:
        return False
    if parent.type in ("dotted_name", "aliased_import", "import_from_statement", "import_statement", "attribute"):
        return False  # an import, or `name.attr`
    if parent.type == "argument_list" and parent.parent is not None:
        method = call_name(parent.parent)[1]
        if method == "partial" and parent.named_children and parent.named_children[0] == name:
            return False
        if method in HOOK_METHODS:
            return False
    if parent.type == "keyword_argument" and parent.parent is not None and parent.parent.parent is not None \
            and call_name(parent.parent.parent)[1] in HOOK_METHODS:
        return False
    if parent.type in ("tuple", "parenthesized_expression") and len(parent.named_children) == 2 \
            and parent.named_children[1] == name:
        return False  # a `(hook name, fn)` pair of a hook list
    return True


# Methods that read a dict without changing it, and calls that only look at what they are given.
_READING_METHODS = frozenset({"get", "keys", "values", "items", "copy", "__getitem__", "__contains__"})
_LOOKING_CALLS = frozenset({"len", "print", "repr", "str", "list", "sorted"})


def _argument_of(use: Node) -> tuple[Node, str | None] | None:
    """The call ``use`` is an argument of, and the keyword it is passed by (None: by position); None if it is none."""
    parent, keyword = use.parent, None
    if parent is not None and parent.type == "keyword_argument" and parent.child_by_field_name("value") == use:
        keyword, parent = text(parent.child_by_field_name("name")), parent.parent
    if parent is None or parent.type != "argument_list" or parent.parent is None or parent.parent.type != "call":
        return None
    return parent.parent, keyword


def _read_only_use(name: Node) -> bool:
    """Whether this occurrence of a dict's name only reads it: ``d[k]`` (not assigned or deleted),
    ``d.get(k)``, ``k in d``, ``len(d)``, ``for k in d`` (a comprehension's too)."""
    parent = name.parent
    if parent is None:
        return False
    if parent.type == "subscript" and parent.child_by_field_name("value") == name:
        outer = parent.parent
        if outer is not None and outer.type in ("assignment", "augmented_assignment") and outer.child_by_field_name("left") == parent:
            return False
        return outer is None or outer.type not in ("delete_statement", "pattern_list", "tuple_pattern")
    if parent.type == "attribute" and parent.child_by_field_name("object") == name:
        return text(parent.child_by_field_name("attribute")) in _READING_METHODS \
            and parent.parent is not None and parent.parent.type == "call"
    if parent.type in ("comparison_operator", "dictionary_splat"):
        return True  # `"act_name" in cfg`, `{**cfg, "seed": 0}`
    if parent.type == "assignment" and parent.child_by_field_name("left") == name:
        return True  # `cfg = {...}` again: another binding, which the lookup follows
    if parent.type in ("for_statement", "for_in_clause") and parent.child_by_field_name("right") == name:
        return True  # `for k in cfg`, `[k for k in cfg]`
    if parent.type == "argument_list" and parent.parent is not None and parent.parent.type == "call":
        function = parent.parent.child_by_field_name("function")
        return function is not None and function.type == "identifier" and text(function) in _LOOKING_CALLS
    return False


def _offset_of(d: Definition) -> int:
    return d.offset


def returns_own_container(fn: Node, scopes: Scopes) -> bool:
    """Whether every ``return`` of ``fn`` (a function of ``scopes``' file) returns a dict or list it fills itself, or a
    name every binding of which in the function is one (``out = {}; out[k] = ...; return out``): its keys are its own."""
    returns = returns_of(fn)
    for r in returns:
        value = r.named_children[0] if r.named_children else None
        if value is not None and value.type == "identifier":
            defs = scopes.definitions(text(value), scopes.scope_of(value.start_byte))
            values = [d.node for d in defs if d.kind == "assign" and d.target.type == "identifier"]
            if not values or len(values) != len(defs) or not all(_built_container(v) for v in values):
                return False
        elif value is None or not _built_container(value):
            return False
    return bool(returns)


def _built_container(value: Node) -> bool:
    """A dict, list or set the function fills itself: a literal, ``dict()``, ``defaultdict(list)`` (not a copy,
    ``dict(cache)``, nor a comprehension, ``{k: v for k, v in cache.items() if ...}``: they keep a cache's names)."""
    if value.type in ("dictionary", "list", "set", "tuple"):
        return True
    if value.type != "call":
        return False
    positional, keywords = call_args(value)
    method = call_name(value)[1]
    return not keywords and (method in _EMPTY_CONTAINERS and not positional or method == "defaultdict" and len(positional) == 1)


def _iterated_cache(name: str, target: Node, iterable: Node) -> Node | None:
    """The name iterated for its keys where ``name`` is ``key`` of ``for key in cache``, ``cache.keys()`` or
    ``for key, act in cache.items()``."""
    iterated = _iterated_mapping(name, target, iterable)
    return iterated[0] if iterated is not None and iterated[1] == "key" else None


def _iterated_mapping(name: str, target: Node, iterable: Node) -> tuple[Node, str] | None:
    """The name a loop iterates as a mapping, and the side of it ``name`` takes ("key" or "value"): ``for k in m``,
    ``for k in m.keys()``, ``for v in m.values()``, ``for k, v in m.items()``."""
    mapping, method = iterable, None
    if iterable.type == "call":
        function, (positional, keywords) = iterable.child_by_field_name("function"), call_args(iterable)
        if function is None or function.type != "attribute" or positional or keywords:
            return None
        mapping, method = function.child_by_field_name("object"), text(function.child_by_field_name("attribute"))
    if mapping is None or mapping.type != "identifier" or method not in (None, "keys", "values", "items"):
        return None
    if method == "items":
        names = [text(c) for c in target.named_children] if target.type != "identifier" else []
        return (mapping, ("key", "value")[names.index(name)]) if len(names) == 2 and name in names else None
    if target.type != "identifier":
        return None
    return mapping, "value" if method == "values" else "key"


def _takes_self(fn: Node) -> bool:
    """A method whose first parameter the call does not pass (not a ``@staticmethod``)."""
    decorated = fn.parent if fn.parent is not None and fn.parent.type == "decorated_definition" else None
    return is_method(fn) and not (decorated is not None and any(
        text(d) == "@staticmethod" for d in decorated.named_children if d.type == "decorator"))


def returns_of(fn: Node) -> list[Node]:
    """The ``return`` statements of ``fn`` itself (not of functions nested in it)."""
    body = fn.child_by_field_name("body")
    return [r for r in descendants(body, "return_statement")
            if (owner := function_of(r)) is not None and owner.start_byte == fn.start_byte] if body is not None else []


def _called_through(call: Node, receiver: str) -> bool:
    """Whether ``call`` is ``receiver.something(...)``."""
    function = call.child_by_field_name("function")
    obj = function.child_by_field_name("object") if function is not None and function.type == "attribute" else None
    return obj is not None and obj.type == "identifier" and text(obj) == receiver
