"""Dicts a hook function fills with activations under ``hook.name`` (activation stores).

Research code often caches by hand::

    forward_cache = {}
    def save(act, hook):
        forward_cache[hook.name] = act.detach()
    model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_resid_post", save)])
    forward_cache["blocks.0.hook_resid_post"]

Such a dict is no ActivationCache (no short names, no ``cache["resid_post", 0]``), but its keys are hook
names, so a read with a full hook name can hover with that hook point and its shape. A dict counts as a
store only when it starts empty and every item assignment to it, anywhere in the file, is keyed by
``<something>.name`` and stores the hook function's activation as it is (``act``, ``act.detach()``,
``.clone()``, ``.cpu()``, ``.to(...)``: the shape the hover shows), and nothing else fills it (no
``update``/``setdefault``). Nothing here raises a diagnostic: the dict may hold things the analysis does
not see.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator

from .scopes import Definition, Scopes, function_of, parameter_names, starts_name
from .syntax import Node, call_name, text

# `name[<x>.name] = ...` (also `+=`): the only writes a store may have. A first cheap scan of the source.
_WRITE_UNDER_HOOK_NAME = re.compile(rb"(?<![\w.])([A-Za-z_]\w*)\s*\[\s*[A-Za-z_]\w*\.name\s*\]\s*(?:[-+*/]?=)(?!=)")
_EMPTY_DICT_CALLS = frozenset({"dict", "defaultdict", "OrderedDict"})
_FILLING_METHODS = frozenset({"update", "setdefault", "fromkeys", "__setitem__"})
# Methods that keep a tensor's shape: `act.detach().cpu()` is still the activation as the hook saw it.
_SHAPE_KEEPING = frozenset({"detach", "clone", "cpu", "cuda", "to", "float", "half", "double", "bfloat16", "contiguous"})


class ActivationStores:
    """Which names of one document are activation stores (found lazily, once per binding)."""

    def __init__(self, scopes: Scopes, scan: Callable[[re.Pattern], list[tuple[int, int]]] | None = None):
        """``scan``: group-1 spans of a pattern in the document (a parser's incremental scan: after a
        keystroke only the edited lines are scanned again); default: a scan of the whole text."""
        self.scopes = scopes
        source = scopes.parsed.source
        self._scan = scan or (lambda pattern: [m.span(1) for m in pattern.finditer(source)])
        self._candidates: frozenset[str] | None = None
        self._known: dict[tuple[str, int], bool] = {}  # (name, binding offset) -> a store
        self._writes: dict[tuple[str, int], list[Node]] = {}  # (name, binding offset) -> its `<x>.name` write keys

    def is_store(self, name: Node) -> bool:
        """Whether the dict ``name`` refers to here is an activation store (see the module docstring)."""
        word = text(name)
        if self._candidates is None:
            source = self.scopes.parsed.source
            self._candidates = frozenset(source[start:end].decode() for start, end in self._scan(_WRITE_UNDER_HOOK_NAME))
        if word not in self._candidates:
            return False
        binding = self._binding(name)
        if binding is None:
            return False
        key = (word, binding.offset)
        if key not in self._known:
            self._known[key] = _starts_empty(binding.node) and self._only_hook_name_writes(word, binding)
        return self._known[key]

    def write_keys(self, name: Node) -> list[Node]:
        """The ``<x>.name`` keys the store ``name`` is written under (after :meth:`is_store` said it is one)."""
        binding = self._binding(name)
        return self._writes.get((text(name), binding.offset), []) if binding is not None else []

    def _binding(self, name: Node) -> Definition | None:
        """The one binding of ``name`` that reaches here (in its scope, or an enclosing one for a closure)."""
        d = self.scopes.lookup(text(name), name.start_byte)
        if d is None or d.kind != "assign" or d.target.type != "identifier":
            return None
        same = [x for x in self.scopes.definitions(d.name, self.scopes.scope_of(d.target.start_byte)) if x.kind != "import"]
        return d if len(same) == 1 else None  # rebound elsewhere: which dict is read is not clear

    def _only_hook_name_writes(self, word: str, binding: Definition) -> bool:
        """Every item assignment to the dict ``binding`` makes is keyed by ``<x>.name``, at least one is, and
        no method fills it otherwise."""
        writes: list[Node] = []
        for node in self._uses(word):
            if node.type == "call":
                receiver, method, _ = call_name(node)
                if receiver == word and method in _FILLING_METHODS and self._same(node, word, binding):
                    return False
                continue
            value = node.child_by_field_name("value")
            if value is None or value.type != "identifier" or text(value) != word or not _assigned(node):
                continue
            if not self._same(node, word, binding):
                continue
            keys = node.children_by_field_name("subscript")
            if len(keys) != 1 or keys[0].type != "attribute" or text(keys[0].child_by_field_name("attribute")) != "name" \
                    or node.parent.type != "assignment" or not _the_activation(node.parent.child_by_field_name("right"), node):
                return False
            writes.append(keys[0])
        self._writes[(word, binding.offset)] = writes
        return bool(writes)

    def _uses(self, word: str) -> Iterator[Node]:
        """Each ``word[...]`` subscript and ``word.method(...)`` call, in source order (found from the text: a walk
        of the whole tree costs tens of milliseconds on a long notebook)."""
        root, source = self.scopes.parsed.root, self.scopes.parsed.source
        for m in re.finditer(re.escape(word.encode()) + rb"\s*[\[.]", source):
            start, end = m.start(), m.start() + len(word)
            if not starts_name(source, start):
                continue
            ident = root.descendant_for_byte_range(start, end)
            if ident is None or ident.type != "identifier" or ident.start_byte != start or ident.end_byte != end:
                continue  # a longer name, in a string or a comment
            parent = ident.parent
            if parent is not None and parent.type == "subscript" and parent.child_by_field_name("value") == ident:
                yield parent
            elif parent is not None and parent.type == "attribute" and parent.child_by_field_name("object") == ident \
                    and parent.parent is not None and parent.parent.type == "call" \
                    and parent.parent.child_by_field_name("function") == parent:
                yield parent.parent

    def _same(self, node: Node, word: str, binding: Definition) -> bool:
        d = self.scopes.lookup(word, node.start_byte)
        return d is not None and d.offset == binding.offset and d.kind == binding.kind


def _starts_empty(value: Node) -> bool:
    """``{}``, ``dict()``, ``defaultdict(list)``, ``OrderedDict()``: a dict with nothing in it yet."""
    if value.type == "dictionary":
        return value.named_child_count == 0
    if value.type != "call" or call_name(value)[1] not in _EMPTY_DICT_CALLS:
        return False
    args = value.child_by_field_name("arguments")
    items = [c for c in args.named_children if c.type != "comment"] if args is not None else []
    return not items if call_name(value)[1] != "defaultdict" else len(items) <= 1 and all(c.type != "keyword_argument" for c in items)


def _assigned(sub: Node) -> bool:
    """Whether the subscript is the target of an assignment (``d[k] = v``, ``d[k] += v``)."""
    parent = sub.parent
    return parent is not None and parent.type in ("assignment", "augmented_assignment") \
        and parent.child_by_field_name("left") == sub


def _the_activation(value: Node | None, at: Node) -> bool:
    """Whether ``value`` is the activation of the hook function ``at`` is in (its first parameter), as it
    is or through methods that keep its shape."""
    fn = function_of(at)
    params = parameter_names(fn) if fn is not None else []
    while value is not None and value.type == "call":
        function = value.child_by_field_name("function")
        if function is None or function.type != "attribute" or text(function.child_by_field_name("attribute")) not in _SHAPE_KEEPING:
            return False
        value = function.child_by_field_name("object")
    return value is not None and value.type == "identifier" and bool(params) and text(value) == params[0][0]
