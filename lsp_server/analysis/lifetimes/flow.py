"""Step 3: follow each attached hook through the events of its scope, in execution order.

A hook is meant for the first statement after it that runs a forward pass on its model; a forward after
that statement, before anything removes it, is a leak. A hook added in a loop that also runs a forward
and never resets piles up. What a scope's walk finds out (forwards, resets, hooks still attached at its
end) is its summary.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

from ..findings import Finding
from ..hook_effects import records_only
from ..scopes import MODULE
from ..syntax import Node, statement_of, text
from .doc import Doc
from .events import ANY_MODEL, RULES, Event, Key, Pending, Summary
from .messages import Messages
from .syntax import assigned_names, deleted_at_top, enclosing_loops, reaches, runs_once, use_statement

# Forwards people expect to start from a clean model: a leak into one of them is never deliberate-looking.
SURPRISING = frozenset({"run_with_cache", "run_with_hooks", "patching", "hooks-context"})
# A forward whose statement names its result as the unhooked run (`clean_logits = model(tokens)`).
CLEAN_RUN = re.compile(r"(?i)clean|orig|baseline|unablated|unpatched|unsteered|reference")


# How an event of these kinds attaches hooks to follow from there on (by method name: a dict of bound
# methods would make each Flow a reference cycle, kept with its analysis until the cycle collector runs).
_ATTACHES = {"add": "_added", "temp": "_left_by_temp", "call": "_left_by_helper"}


class Flow:
    def __init__(self, doc: Doc, messages: Messages, emit: Callable[[Finding], None]):
        self.scopes = doc.scopes
        self.messages = messages
        self._emit = emit

    def follow(self, scope, events: list[Event]) -> Summary:
        """Walk the scope's events; report what leaks, and return what the scope does to its callers' models."""
        summary = Summary()
        pending: list[Pending] = []
        for ev in events:
            rule = RULES[ev.kind]
            for k in rule.removes(ev):
                summary.resets.add(k)
                self._reset(pending, k, ev.node if rule.certain else None, scope)
            for k in rule.forwards(ev):
                summary.forwards.add(k)
                self._forward(pending, ev, k)
            attach = _ATTACHES.get(ev.kind)
            if attach is not None:
                pending += getattr(self, attach)(ev, events)
        for p in pending:
            self._finish(p, scope, None, summary)
        return summary

    def _added(self, ev: Event, events: list[Event]) -> list[Pending]:
        if self._accumulates(ev, events):
            return []
        return [Pending(ev, ev.key, ev.node, ev.recv)]

    def _left_by_temp(self, ev: Event, events: list[Event]) -> list[Pending]:
        if self._temp_in_loop(ev, events):
            return []
        return [Pending(ev, ev.key, ev.node, ev.recv, use=statement_of(ev.node), first=ev)]

    def _left_by_helper(self, ev: Event, events: list[Event]) -> list[Pending]:
        out = []
        for inner, k, recv in ev.effects.leaks:
            p = Pending(inner.ev, k, ev.node, recv, via=ev.node)
            if inner.first is not None:
                p.use, p.first = statement_of(ev.node), ev
            out.append(p)
        return out

    def _forward(self, pending: list[Pending], ev: Event, key: Key) -> None:
        for p in list(pending):
            if p.key != key or p.leak is not None or ev.node == p.anchor:
                continue
            if not reaches(p.anchor, ev.node):
                continue
            if p.use is None:
                p.use, p.first = use_statement(p.anchor, ev.node), ev
                continue
            if p.use.start_byte <= ev.node.start_byte < p.use.end_byte:
                continue  # part of the statement the hook is meant for
            if self._rebound(p, p.use.end_byte, ev.node.start_byte):
                pending.remove(p)
                continue
            p.leak = ev

    def _reset(self, pending: list[Pending], key: Key, removed_at: Node | None, scope) -> None:
        """Stop following the hooks on ``key``; ``removed_at``: where they are certainly removed, if they are."""
        for p in list(pending):
            if p.key == key or key == ANY_MODEL:
                pending.remove(p)
                if p.leak is not None:
                    self._finish(p, scope, removed_at, None)

    def _rebound(self, p: Pending, start: int, end: int) -> bool:
        """The model name is bound to something else between ``start`` and ``end``, or (a module's name) deleted:
        the hooks go with the model."""
        key = p.key
        if key[0] not in ("g", "l", "p"):
            return False
        name = key[-1]
        if key[0] == "g" and deleted_at_top(self.scopes.parsed.root, self.scopes.parsed.source, name, start, end):
            return True
        scope = MODULE if key[0] == "g" else key[1] if key[0] == "l" else self.scopes.scope_of(key[1])
        for d in self.scopes.definitions(name, scope):
            if start <= d.offset <= end and d.kind != "param":
                value = text(d.node) if d.kind == "assign" else ""
                if not value.startswith(name + "."):  # `model = model.to(device)` keeps the model
                    return True
        return False

    def _finish(self, p: Pending, scope, removed_at: Node | None, summary: Summary | None) -> None:
        """Decide what a hook that is no longer followed amounts to."""
        if p.ev.kind == "temp":
            if p.leak is not None:
                self._emit(self.messages.temp_leak(p))
            return
        if p.leak is not None:
            # Kept across two forwards and then reset: deliberate, unless the later pass is one people expect
            # to start clean, or the hook came out of a helper the caller never saw add it.
            deliberate = (removed_at is not None and p.leak.what not in SURPRISING and p.via is None
                          and not CLEAN_RUN.search(assigned_names(use_statement(p.anchor, p.leak.node))))
            # A hook that only records leaves the later forward's results as they would be; only the record
            # changes (which may be the point, as in a loop that caches each step, or a bug, as in a difference
            # counted twice).
            records = records_only(self.scopes, p.ev.fn_node)
            severity = "hint" if deliberate else "information" if records else "warning"
            self._emit(self.messages.leak(p, severity, removed_at, records))
            return
        if summary is None:
            return
        end = self.scopes.parsed.root.end_byte if scope == MODULE else scope[1]
        if p.first is not None and scope == MODULE:
            if not self._rebound(p, p.use.end_byte, end):
                self._emit(self.messages.never_removed(p, records_only(self.scopes, p.ev.fn_node)))
            return
        if scope != MODULE and p.via is None and p.key[0] != "l":
            summary.leaks.append(p)

    # ------------------------------------------------------------------ loops

    def _in_loop(self, events: list[Event], loop: Node, key: Key) -> tuple[list[Event], list[Event]]:
        """(forward events, reset-or-unknown events) on ``key`` inside ``loop``."""
        lo = bisect.bisect_left(events, loop.start_byte, key=lambda e: e.pos)
        hi = bisect.bisect_right(events, loop.end_byte, key=lambda e: e.pos)
        forwards, resets = [], []
        for e in events[lo:hi]:
            rule = RULES[e.kind]
            if key in rule.forwards(e):
                forwards.append(e)
            removed = rule.removes(e)
            if key in removed or ANY_MODEL in removed:
                resets.append(e)
        return forwards, resets

    def _accumulates(self, ev: Event, events: list[Event]) -> bool:
        """``add_hook`` inside a loop that also runs a forward and never resets: report and stop following it."""
        for loop, conditional in enclosing_loops(ev.node):
            forwards, resets = self._in_loop(events, loop, ev.key)
            if not forwards:
                continue
            if conditional or resets or runs_once(loop):
                return False
            self._emit(self.messages.accumulates(ev, loop, forwards))
            return True
        return False

    def _temp_in_loop(self, ev: Event, events: list[Event]) -> bool:
        loops = enclosing_loops(ev.node)
        if not loops:
            return False
        loop, conditional = loops[0]
        forwards, resets = self._in_loop(events, loop, ev.key)
        if conditional or resets or runs_once(loop) or not forwards:
            return False
        self._emit(self.messages.temp_in_loop(ev, loop))
        return True
