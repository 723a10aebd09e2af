"""Calls of functions defined in this file: where each is called, which may leave hooks attached, and what
a call does in its caller's terms (the callee's summary with parameters mapped to the call's arguments)."""

from __future__ import annotations

import bisect
from collections.abc import Callable

from ..syntax import Node, call_args, text
from .doc import Doc
from .events import ANY_MODEL, Key, Summary


def called_name(src: bytes, call: Node) -> bytes:
    start = call.start_byte
    return src[start:src.find(b"(", start)].rstrip()


class CallSites:
    def __init__(self, doc: Doc):
        self.doc = doc
        self.ident_calls: list[Node] = doc.a.ident_calls  # every `name(...)` call, in text order
        self._starts: list[int] | None = None
        self._by_name: dict | None = None
        self._callers: dict = {}
        self._leaky: list[Node] | None = None

    def in_range(self, lo: int, hi: int) -> list[Node]:
        """``name(...)`` calls starting in [lo, hi)."""
        if self._starts is None:
            self._starts = [c.start_byte for c in self.ident_calls]
        i, j = bisect.bisect_left(self._starts, lo), bisect.bisect_left(self._starts, hi)
        return self.ident_calls[i:j]

    def named(self, name: bytes) -> list[Node]:
        if self._by_name is None:
            self._by_name = {}
            for call in self.ident_calls:
                self._by_name.setdefault(called_name(self.doc.src, call), []).append(call)
        return self._by_name.get(name, [])

    def callers(self, name: str, fn: Node) -> list:
        """Scopes that call the function ``fn`` by its name."""
        k = (name, fn.start_byte)
        if k not in self._callers:
            scopes = []
            for call in self.named(name.encode()):
                d = self.doc.scopes.lookup(name, call.start_byte)
                if d is not None and d.node == fn and self.doc.scope_of(call) not in scopes:
                    scopes.append(self.doc.scope_of(call))
            self._callers[k] = scopes
        return self._callers[k]

    def leaky(self) -> list[Node]:
        """Calls of functions defined here whose text adds hooks that might outlive them."""
        if self._leaky is None:
            src, names = self.doc.src, set()
            for pattern in (b"add_hook", b"reset_hooks_end", b".hooks("):
                pos = src.find(pattern)
                while pos >= 0:
                    fn = self.doc.fn_node(self.doc.scopes.scope_of(pos))
                    if fn is not None:
                        names.add(text(fn.child_by_field_name("name")).encode())
                    pos = src.find(pattern, pos + 1)
            self._leaky = sorted((c for n in names for c in self.named(n)), key=lambda c: c.start_byte)
        return self._leaky


def effects_at(summary: Summary, fn: Node, call: Node, key_of: Callable[[Node], Key | None]) -> Summary:
    """The callee's effects on the caller's models (parameters mapped to the call's arguments)."""
    positional, keywords = call_args(call)
    params = fn.child_by_field_name("parameters")
    index: dict[int, tuple[int, str]] = {}
    if params is not None:
        i = 0
        for p in params.named_children:
            node = p if p.type == "identifier" else p.child_by_field_name("name")
            node = node or (p.named_children[0] if p.named_children else p)
            if p.type in ("list_splat_pattern", "dictionary_splat_pattern", "keyword_separator", "positional_separator"):
                i = 10_000  # after *args: keyword-only
                continue
            index[node.start_byte] = (i, text(node))
            i += 1

    def mapped(key: Key) -> tuple[Key, str] | None:
        if key == ANY_MODEL:
            return key, ""
        if key[0] == "g":
            return key, key[1]
        if key[0] == "p" and key[1] in index:
            i, name = index[key[1]]
            arg = keywords.get(name) if name in keywords else (positional[i] if i < len(positional) else None)
            k = key_of(arg) if arg is not None and arg.type in ("identifier", "attribute") else None
            return (k, text(arg)) if k is not None else None
        return None

    out = Summary()
    for k in summary.forwards:
        m = mapped(k)
        if m:
            out.forwards.add(m[0])
    for k in summary.resets:
        m = mapped(k)
        if m:
            out.resets.add(m[0])
    for p in summary.leaks:
        m = mapped(p.key)
        if m:
            out.leaks.append((p, m[0], m[1]))
    return out
