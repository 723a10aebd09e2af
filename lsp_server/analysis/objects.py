"""Attributes of the file's own objects: ``self.hook_name`` set in ``__init__``, ``node.activation_name``
of ``node = Node("z", 9)`` through a ``@property``, class-level constants.

Research code wraps hook names in small classes (path-patching nodes, experiment configs). An
attribute is known when its class sets it in one place: ``__init__`` (with the constructor call's
arguments bound: every call of the class for ``self.x`` inside a method, the one call for an instance
built by ``C(...)``), a ``@property`` that returns it, or the class body. Set anywhere else (also on an
instance after it is built, ``node.hook_name = ...``, here or in a file that imports this one), or the
instance not built by a visible call: unknown.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Iterator, NamedTuple

from .imports import followed
from .scopes import default_of, function_of, parameter_names, starts_name
from .syntax import Node, descendants, text
from .value_types import Value, one_of

if TYPE_CHECKING:
    from .values import Evaluator


def class_of(fn: Node) -> Node | None:
    """The class a def is a method of."""
    parent = fn.parent
    while parent is not None and parent.type in ("block", "decorated_definition"):
        parent = parent.parent
    return parent if parent is not None and parent.type == "class_definition" else None


def methods(cls: Node) -> dict[str, list[Node]]:
    """The class's defs by name (decorated ones included)."""
    out: dict[str, list[Node]] = {}
    body = cls.child_by_field_name("body")
    for stmt in body.named_children if body is not None else ():
        fn = stmt.child_by_field_name("definition") if stmt.type == "decorated_definition" else stmt
        if fn is not None and fn.type == "function_definition":
            out.setdefault(text(fn.child_by_field_name("name")), []).append(fn)
    return out


def _is_property(fn: Node) -> bool:
    parent = fn.parent
    return parent is not None and parent.type == "decorated_definition" and any(
        text(d).strip() in ("@property", "@functools.cached_property", "@cached_property") for d in parent.named_children
        if d.type == "decorator")


def _self_name(fn: Node) -> str | None:
    params = parameter_names(fn)
    return params[0][0] if params else None


def _self_assignments(cls: Node) -> dict[str, list[tuple[Node, Node]]]:
    """attr -> (method, assigned value) for each ``self.attr = value`` in the class's methods."""
    out: dict[str, list[tuple[Node, Node]]] = {}
    for defs in methods(cls).values():
        for fn in defs:
            me = _self_name(fn)
            for assignment in descendants(fn, "assignment"):
                left, right = assignment.child_by_field_name("left"), assignment.child_by_field_name("right")
                obj = left.child_by_field_name("object") if left is not None and left.type == "attribute" else None
                if obj is not None and right is not None and text(obj) == me:
                    out.setdefault(text(left.child_by_field_name("attribute")), []).append((fn, right))
    return out


def enclosing_class(node: Node) -> Node | None:
    """The class whose method (or a function nested in one) holds ``node``."""
    method = _method_holding(node)
    return class_of(method) if method is not None else None


def _method_holding(node: Node) -> Node | None:
    owner = function_of(node)
    while owner is not None and class_of(owner) is None:
        owner = function_of(owner)
    return owner


def self_attribute_value(node: Node, source: bytes) -> Node | None:
    """What ``self.<attr>``, read in a method, holds: the value of the one ``self.<attr> = value`` in its class's
    methods, when that is the only write of ``<attr>`` on any object in the file's ``source`` (another write,
    augmented, on another instance or through ``setattr``, makes it unknown)."""
    obj, attr = node.child_by_field_name("object"), node.child_by_field_name("attribute")
    method = _method_holding(node)
    if obj is None or attr is None or method is None or obj.type != "identifier" or text(obj) != _self_name(method):
        return None
    assigned = _self_assignments(class_of(method)).get(text(attr), [])
    root = method
    while root.parent is not None:
        root = root.parent
    writes = [w for w in attribute_writes(source, text(attr)) if not _in_prose(root, w.start)]
    return assigned[0][1] if len(assigned) == 1 and len(writes) == 1 else None


def _in_prose(root: Node, offset: int) -> bool:
    """Whether ``offset`` lies in a comment or in a string's text."""
    node = root.descendant_for_byte_range(offset, offset + 1)
    return node is not None and (node.type in ("comment", "string_content") or
                                 node.parent is not None and node.parent.type == "string_content")


class AttributeWrite(NamedTuple):
    start: int  # where the write starts: its receiver (or the ``)``/``]`` ending it), or ``setattr``
    receiver: bytes | None  # the receiver's name, when it is a plain name


# What stands before ``.attr = ``: a name (group 1) or the end of a call or subscript.
_RECEIVER_BEFORE = re.compile(rb"(?:([A-Za-z_]\w*)|[)\]])\s*\.\s*\Z")


@lru_cache(maxsize=256)
def _write_patterns(attr: str) -> tuple[re.Pattern, re.Pattern]:
    """``attr = ``/``+=``/``: T =`` (its receiver checked apart) and ``setattr(..., "attr"``; both start with a
    literal, so that ``re`` finds them without trying a match at every name of the text."""
    name = re.escape(attr.encode())
    return (re.compile(name + rb"(?:\s*:\s*[\w\[\], .]+?)?\s*(?:[-+*/%|&@^]|//|\*\*|>>|<<)?=(?!=)"),
            re.compile(rb"setattr\s*\([^)]*['\"]" + name + rb"['\"]"))


def attribute_writes(source: bytes, attr: str) -> Iterator[AttributeWrite]:
    """Each write of the attribute ``attr`` of an object or a module: ``<name>.attr = ``, ``+=``, ``: T =`` (none
    after a ``)`` or ``]`` has a receiver name), and ``setattr(..., "attr", ...)``."""
    assignment, setattr_call = _write_patterns(attr)
    for m in assignment.finditer(source):
        at = before = m.start()
        while before > 0 and source[before - 1] in b" \t\r\n":
            before -= 1
        if source[before - 1:before] != b".":
            continue  # `attr = ...` itself, the most common by far: no receiver
        window = source[max(0, at - 256):at]
        before = _RECEIVER_BEFORE.search(window)
        if before is not None:
            yield AttributeWrite(at - len(window) + before.start(), before.group(1))
    for m in setattr_call.finditer(source):
        yield AttributeWrite(m.start(), None)


def _class_constant(cls: Node, attr: str) -> Node | None:
    body = cls.child_by_field_name("body")
    for stmt in body.named_children if body is not None else ():
        expr = stmt.named_child(0) if stmt.type == "expression_statement" else None
        if expr is not None and expr.type == "assignment" and text(expr.child_by_field_name("left")) == attr:
            return expr.child_by_field_name("right")
    return None


class ObjectAttributes:
    """The part of :class:`~.values.Evaluator` that reads attributes of the file's own classes."""

    def object_attribute(self: Evaluator, node: Node, depth: int) -> Value:
        obj, attr_node = node.child_by_field_name("object"), node.child_by_field_name("attribute")
        if obj is None or attr_node is None or obj.type != "identifier":
            return None
        attr = text(attr_node)
        d = self.scopes.lookup(text(obj), obj.start_byte)
        if d is None:
            return None
        if d.kind == "param":  # `self` inside a method: whichever instance it is
            fn = d.node.parent.parent if d.node.parent is not None else None
            cls = class_of(fn) if fn is not None and fn.type == "function_definition" else None
            if cls is None or _self_name(fn) != text(obj):
                return None
            init = self._class_facts(cls)[0].get("__init__")
            if not init or any(start == init[0].start_byte for start, _ in self._bindings):
                return self._attribute_of(cls, attr, None, depth)  # no constructor, or this instance's is bound
            # Each construction separately: `Node("z", 9)` and `Node("mlp_out", 4)` never make ("z", 4).
            sites = self.call_sites(init[0])
            if not sites or any(through_partial for _, _, through_partial in sites):
                return self._attribute_of(cls, attr, None, depth)
            return one_of(self._attribute_of(cls, attr, call, depth, caller) for caller, call, _ in sites)
        if d.kind == "assign" and d.target.type == "identifier" and d.node.type == "call":  # `node = Node("z", 9)`
            callee = d.node.child_by_field_name("function")
            cd = self.scopes.lookup(text(callee), callee.start_byte) if callee is not None and callee.type == "identifier" else None
            if cd is not None and cd.kind == "class":
                return self._attribute_of(cd.node, attr, d.node, depth)
            if cd is not None and cd.kind == "import" and (found := followed(cd.imported, self.links)) is not None:
                other, definition = found  # `from graph import Node`
                if definition.kind == "class":
                    return other.evaluator._attribute_of(definition.node, attr, d.node, depth, self)
        return None

    def _attribute_of(self: Evaluator, cls: Node, attr: str, construction: Node | None, depth: int,
                      caller: Evaluator | None = None) -> Value:
        """``attr`` of an instance of ``cls``, a class of this file (built by ``construction``, when that call is
        known, in ``caller``'s file: this one unless given). Asked again while it is being worked out (a method
        building another instance from this one's attributes, `Node(layer=self.layer, ...)`), it is unknown at
        once: the cycle would end unknown anyway, at the depth bound, after a walk exponential in that depth."""
        key = ("attribute", cls.start_byte, attr, construction.start_byte if construction is not None else None, id(caller))
        if key in self._following:
            return None
        self._following.add(key)
        try:
            return self._attribute_from(cls, attr, construction, depth, caller)
        finally:
            self._following.discard(key)

    def _attribute_from(self: Evaluator, cls: Node, attr: str, construction: Node | None, depth: int,
                        caller: Evaluator | None) -> Value:
        if self._set_from_outside(cls, attr, caller):
            return None  # `node.hook_name = ...` after construction: not what `__init__` set
        own, assignments = self._class_facts(cls)
        assigned = assignments.get(attr, [])
        getter = [fn for fn in own.get(attr, []) if _is_property(fn)]
        if getter and not assigned:
            return self._with_instance(cls, construction, caller or self, depth,
                                       lambda: self._returns(getter[0], {}, depth + 1))
        if len(assigned) == 1 and text(assigned[0][0].child_by_field_name("name")) == "__init__":
            return self._with_instance(cls, construction, caller or self, depth,
                                       lambda: self.eval(assigned[0][1], depth + 1))
        constant = _class_constant(cls, attr) if not assigned and not own.get(attr) else None
        return self.eval(constant, depth + 1) if constant is not None else None

    def _set_from_outside(self: Evaluator, cls: Node, attr: str, caller: Evaluator | None = None) -> bool:
        """Whether ``attr`` is assigned other than as ``self.attr = ...`` in ``cls``'s own methods: on an
        instance or the class (``node.hook_name = ...``, ``setattr(node, "hook_name", ...)``), in a subclass,
        here, in the file that built the instance (``caller``) or in a workspace file that imports this one.
        A regex scan, erring towards "assigned"."""
        key = (cls.start_byte, attr)
        if key not in self._outside_sets:
            source = self.scopes.parsed.source
            mine = [(fn.start_byte, fn.end_byte, _self_name(fn)) for defs in self._class_facts(cls)[0].values() for fn in defs]
            here = any(not (w.receiver is not None and starts_name(source, w.start)  # `self.attr = ` in its methods
                            and any(start <= w.start < end and w.receiver == me.encode() for start, end, me in mine if me))
                       for w in attribute_writes(source, attr))
            importers = self.links.importers() if self.links is not None else []
            self._outside_sets[key] = here or any(other.evaluator.writes_attribute(attr) for other in importers)
        if self._outside_sets[key]:
            return True
        builders = [c for c in (caller, *self._instance_callers) if c is not None and c is not self]
        return any(c.writes_attribute(attr) for c in builders)

    def writes_attribute(self: Evaluator, attr: str) -> bool:
        """Whether this file writes ``attr`` of some object or module anywhere (:func:`attribute_writes`;
        found once per name: importers and the files that build instances ask too)."""
        if attr not in self._attribute_writes:
            self._attribute_writes[attr] = next(attribute_writes(self.scopes.parsed.source, attr), None) is not None
        return self._attribute_writes[attr]

    def _class_facts(self: Evaluator, cls: Node) -> tuple[dict[str, list[Node]], dict[str, list[tuple[Node, Node]]]]:
        """The class's defs by name and its ``self.x = ...`` by ``x`` (found once per class: every read asks)."""
        facts = self._classes.get(cls.start_byte)
        if facts is None:
            facts = self._classes[cls.start_byte] = (methods(cls), _self_assignments(cls))
        return facts

    def _with_instance(self: Evaluator, cls: Node, construction: Node | None, caller: Evaluator, depth: int,
                       evaluate) -> Value:
        """``evaluate()`` with ``__init__``'s parameters bound to the construction's arguments (evaluated in the
        caller's file, one level deeper: `site = Site(site.head)` in a notebook reads itself; defaults in this one),
        when the construction is known."""
        init = self._class_facts(cls)[0].get("__init__")
        if construction is None or not init:
            return evaluate()
        bound = caller.bind(init[0], construction)
        if bound is None:
            return None
        values = {name: caller.eval(arg, depth + 1) for name, arg in bound.items()}
        for name, _ in parameter_names(init[0])[1:]:
            if name not in values and (default := default_of(init[0], name)) is not None:
                values[name] = self.eval(default, depth + 1)
        self._bindings.append((init[0].start_byte, values))
        self._instance_callers.append(caller)  # its file may set the instance's attributes too
        try:
            return evaluate()
        finally:
            self._bindings.pop()
            self._instance_callers.pop()

