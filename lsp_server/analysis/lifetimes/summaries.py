"""Step 2: what each function does to the models it can reach (forwards, resets, hooks still attached when
it returns), one level deep: a scope's events need the summaries of the helpers it calls, and a summary
is what following the hooks through the helper's own events finds."""

from __future__ import annotations

from collections.abc import Callable

from ..findings import Finding
from ..scopes import MODULE
from ..syntax import Node, text
from .calls import CallSites
from .doc import Doc
from .events import Summary
from .flow import Flow
from .hook_events import HookEvents
from .messages import Messages
from .models import ModelKeys
from .scope_events import RESET_METHODS, ScopeEvents


class Summaries:
    def __init__(self, doc: Doc, models: ModelKeys, hooks: HookEvents, messages: Messages,
                 emit: Callable[[Finding], None]):
        self.doc = doc
        self.hooks = hooks
        self.messages = messages
        self._emit = emit
        self.calls = CallSites(doc)
        self.events = ScopeEvents(doc, models, hooks, self.calls, self.summary)
        self.flow = Flow(doc, messages, emit)
        self._done: dict = {}
        self._reset_calls: list | None = None

    def follow_hooks(self) -> None:
        """Every scope that adds a hook, then one level up: the scopes that call a function which returns
        with hooks still attached."""
        for scope in list(self.hooks.by_scope):
            self.summary(scope)
        for scope, summary in list(self._done.items()):
            fn = self.doc.fn_node(scope) if summary is not None and summary.leaks else None
            if fn is not None and fn.type == "function_definition":
                for caller in self.calls.callers(text(fn.child_by_field_name("name")), fn):
                    self.summary(caller)

    def summary(self, scope) -> Summary | None:
        if scope in self._done:
            return self._done[scope]  # None while being computed: recursion stops here
        self._done[scope] = None
        summary = self.flow.follow(scope, self.events.of(scope))
        if scope != MODULE:
            self._hint_returned(scope, summary)
        self._done[scope] = summary
        return summary

    def _hint_returned(self, scope, summary: Summary) -> None:
        """A function that used a hook on a model it did not create and returns with it still attached."""
        fn = self.doc.fn_node(scope)
        if fn is None or fn.type != "function_definition":
            return
        name = text(fn.child_by_field_name("name"))
        if self.calls.callers(name, fn):
            return  # the callers' flows decide (a warning where a caller's later forward runs it)
        for p in summary.leaks:
            if p.first is None:
                continue  # a setup function: the caller is meant to run the hooks
            if p.key[0] == "a" and self._class_resets(fn, p.recv):
                continue  # an experiment class that manages its hooks in its own methods
            self._emit(self.messages.returned(p, name))

    def _class_resets(self, fn: Node, recv: str) -> bool:
        cls = fn.parent
        while cls is not None and cls.type != "class_definition":
            cls = cls.parent
        if cls is None:
            return False
        if self._reset_calls is None:
            self._reset_calls = [(start, text(r)) for start, _, method, r in self.hooks.relevant
                                 if method in RESET_METHODS and r is not None]
        return any(r == recv and cls.start_byte <= start < cls.end_byte for start, r in self._reset_calls)
