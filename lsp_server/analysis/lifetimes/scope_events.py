"""Step 1, per scope: the events of one scope (the module or a function) in execution order. Besides its
hook events: forwards and resets of models, calls of helpers defined here (with what they do), and
calls that hand a model to code we cannot follow (barriers)."""

from __future__ import annotations

import bisect
import re
import weakref
from collections.abc import Callable

from ..scopes import MODULE
from ..syntax import Node, call_args, call_name, text
from .calls import CallSites, called_name, effects_at
from .doc import Doc
from .events import ANY_MODEL, RULES, Event, Summary
from .hook_events import HookEvents
from .models import ModelKeys
from .syntax import in_lambda, outer_loop_start

FORWARD_METHODS = frozenset({"forward", "run_with_cache", "run_with_hooks", "generate"})
RESET_METHODS = frozenset({"reset_hooks", "remove_all_hook_fns"})
PATCHING = re.compile(r"^(get_act_patch_\w+|generic_activation_patch)$")
# Calls that take a model argument and certainly do not touch its hooks.
NEUTRAL_CALLS = frozenset({
    "print", "len", "isinstance", "type", "id", "repr", "str", "getattr", "hasattr", "setattr", "vars", "dir",
    "display", "partial", "deepcopy", "copy", "ActivationCache", "info", "debug", "warning", "append", "format",
})


class ScopeEvents:
    def __init__(self, doc: Doc, models: ModelKeys, hooks: HookEvents, calls: CallSites,
                 summary_of: Callable[[tuple], Summary | None]):
        self.doc = doc
        self.src = doc.src
        self.root = doc.root
        self.models = models
        self.hooks = hooks
        self.calls = calls
        # What calling a function does (None while it is being summarised): a method of the summaries
        # that own this, held weakly (no reference cycle).
        self._summary_of = weakref.WeakMethod(summary_of)
        self._cache: dict = {}
        self._wanted: set | None = None
        self._patterns: dict = {}

    def of(self, scope) -> list[Event]:
        if scope in self._cache:
            return self._cache[scope]
        events = list(self.hooks.by_scope.get(scope, ()))  # add / temp
        lo = 0 if scope == MODULE else scope[0]
        hi = len(self.src) if scope == MODULE else scope[1]
        # Before the first hook (or the outermost loop around it), or the first call of a helper that may
        # leave one attached, nothing is attached: skip that part. Functions without hooks are summarised whole.
        starts = [outer_loop_start(e.node) for e in events]
        entry = lo
        if starts:
            starts += [c.start_byte for c in self.calls.leaky() if lo <= c.start_byte < hi and self.doc.scope_of(c) == scope]
            lo = min(starts)
        events += self._method_events(scope, lo, hi)
        if scope != MODULE and lo > entry:  # a reset before the function's first hook still resets its callers' hooks
            events += [e for e in self._method_events(scope, entry, lo) if e.kind == "reset"]
        known = {e.node.start_byte for e in events}
        events += self._plain_call_events(scope, known, lo, hi)
        events += self._hookpoint_removals(scope, lo, hi)
        events += self._method_resets(scope, lo, hi)
        for ev in events:
            if ev.kind == "forward" and ev.what not in ("patching",):
                for start, end, key in self.hooks.contexts:
                    if key == ev.key and start < ev.node.start_byte < end:
                        ev.what = "hooks-context"
        events.sort(key=lambda e: (e.pos, RULES[e.kind].rank))
        self._cache[scope] = events
        return events

    def _method_events(self, scope, lo: int, hi: int) -> list[Event]:
        """Forwards and resets of the scope's own method calls in [lo, hi)."""
        out: list[Event] = []
        relevant = self.hooks.relevant
        i = bisect.bisect_left(relevant, lo, key=lambda r: r[0])
        for start, call, method, recv in relevant[i:]:
            if start >= hi:
                break
            if method in ("add_hook", "add_perma_hook", "hooks", "backward"):
                continue
            if self.doc.scope_of(call) != scope or in_lambda(call):
                continue
            if PATCHING.match(method):
                ev = self._patching_forward(call, method)
                if ev is not None:
                    out.append(ev)
                continue
            if recv is None:
                continue
            key = self.models.key(recv)
            if not self.models.is_model(key, recv):
                continue
            if method in RESET_METHODS:
                out.append(Event("reset", call, start, key, text(recv)))
            elif method in FORWARD_METHODS:
                what = method if method in ("run_with_cache", "run_with_hooks") else f"{text(recv)}.{method}(...)"
                out.append(Event("forward", call, start, key, text(recv), what=what, model_node=recv))
        return out

    def _patching_forward(self, call: Node, label: str) -> Event | None:
        """``get_act_patch_*(model, ...)``: a forward pass per patched position."""
        positional, keywords = call_args(call)
        model = positional[0] if positional else keywords.get("model")
        key = self.models.key(model)
        if model is None or not self.models.is_model(key, model):
            return None
        return Event("forward", call, call.start_byte, key, text(model), what="patching", label=label)

    def _hookpoint_removals(self, scope, lo: int, hi: int) -> list[Event]:
        """``hp.remove_hooks(...)`` on a HookPoint we cannot tie to a model: a reset of any of them."""
        out = []
        pos = self.src.find(b".remove_hooks(", lo, hi)
        while pos >= 0:
            node = self.root.descendant_for_byte_range(pos + 1, pos + 13)
            call = node.parent.parent if node is not None and node.parent is not None else None
            if call is not None and call.type == "call" and self.doc.scope_of(call) == scope and not in_lambda(call):
                out.append(Event("reset", call, call.start_byte, ANY_MODEL, ""))
            pos = self.src.find(b".remove_hooks(", pos + 1, hi)
        return out

    def _method_resets(self, scope, lo: int, hi: int) -> list[Event]:
        """``self.cleanup()`` where that method of the same class resets ``self.<model>``: a reset of it."""
        fn = self.doc.fn_node(scope)
        cls = fn.parent.parent if fn is not None and fn.parent is not None else None
        if cls is not None and cls.type == "decorated_definition":
            cls = cls.parent.parent if cls.parent is not None else None
        if cls is None or cls.type != "class_definition" or b"self." not in self.src[lo:hi]:
            return []
        out = []
        for m in re.finditer(rb"(?<![\w.])self\.(\w+)\s*\(", self.src[lo:hi]):
            for method in self.doc.scopes.function_defs.get(m.group(1).decode(), ()):
                if not (cls.start_byte <= method.start_byte < cls.end_byte):
                    continue
                body = self.src[method.start_byte:method.end_byte]
                for recv in set(re.findall(rb"([\w.]+)\.(?:reset_hooks|remove_all_hook_fns)\s*\(", body)):
                    node = self.root.descendant_for_byte_range(lo + m.start(), lo + m.end(1))
                    call = node.parent if node is not None and node.parent is not None and node.parent.type == "call" else None
                    if call is not None and self.doc.scope_of(call) == scope:
                        out.append(Event("reset", call, call.start_byte, ("a", recv.decode()), recv.decode()))
        return out

    def _plain_entries(self, scope, lo: int, hi: int) -> list[tuple[str, Node, Node]]:
        """In the scope's text from ``lo``: calls of models, helpers and patching functions ("call"), and
        calls that take a model as an argument ("arg": code we may not be able to follow)."""
        model_names, attr_keys = self.models.names()
        if self._wanted is None:
            self._wanted = {n.encode() for n in model_names | set(self.doc.scopes.function_defs)}
        entries: list[tuple[str, Node, Node]] = []
        for call in self.calls.in_range(lo, hi):
            name = called_name(self.src, call)
            if name in self._wanted or name.startswith(b"get_act_patch_") or name == b"generic_activation_patch":
                entries.append(("call", call, call.child_by_field_name("function")))
        region = self.src[lo:hi]
        for attr in attr_keys:  # `self.model(...)`
            if attr.encode() not in region:
                continue
            for m in self._pattern(rb"(?<![\w.])%s\s*\(", attr).finditer(region):
                callee = self.root.descendant_for_byte_range(lo + m.start(), lo + m.start() + len(attr))
                call = callee.parent if callee is not None else None
                if call is not None and call.type == "call" and call.child_by_field_name("function") == callee:
                    entries.append(("call", call, callee))
        for name in model_names | attr_keys:
            if name.encode() not in region:
                continue
            for m in self._pattern(rb"\b%s\b", name).finditer(region):
                start = lo + m.start()
                if start > 0 and self.src[start - 1:start] == b".":
                    continue
                arg = self.root.descendant_for_byte_range(start, start + len(name))
                if arg is None or arg.start_byte != start or arg.end_byte != start + len(name):
                    continue
                parent = arg.parent
                if parent is not None and parent.type == "keyword_argument" and parent.child_by_field_name("value") == arg:
                    parent = parent.parent
                call = parent.parent if parent is not None and parent.type == "argument_list" else None
                if call is not None and call.type == "call":
                    entries.append(("arg", parent.parent, arg))
        return [e for e in entries if self.doc.scope_of(e[1]) == scope and not in_lambda(e[1])]

    def _pattern(self, template: bytes, name: str) -> re.Pattern:
        key = (template, name)
        if key not in self._patterns:
            self._patterns[key] = re.compile(template % re.escape(name.encode()))
        return self._patterns[key]

    def _plain_call_events(self, scope, known: set, lo: int, hi: int) -> list[Event]:
        entries = self._plain_entries(scope, lo, hi)
        out: list[Event] = []
        for kind, call, node in entries:
            if kind == "call" and call.start_byte not in known:
                ev = self._plain_call(call, node)
                if ev is not None:
                    known.add(call.start_byte)
                    out.append(ev)
        for kind, call, arg in entries:
            if kind != "arg" or call.start_byte in known:
                continue
            _, fname, _ = call_name(call)
            if fname in NEUTRAL_CALLS:
                continue
            key = self.models.key(arg)
            if key is None or not self.models.is_model(key, arg):
                continue
            known.add(call.start_byte)
            out.append(Event("barrier", call, call.start_byte, key, text(arg)))
        return out

    def _plain_call(self, call: Node, ident: Node) -> Event | None:
        name = text(ident)
        if PATCHING.match(name):  # `from transformer_lens.patching import get_act_patch_resid_pre`
            return self._patching_forward(call, name)
        if ident.type == "attribute":
            key = ("a", name)
            if not self.models.is_model(key, ident):
                return None
            return Event("forward", call, call.start_byte, key, name, what=f"{name}(...)", model_node=ident)
        d = self.doc.scopes.lookup(name, ident.start_byte)
        key = self.models.key_of_definition(d, name)
        if self.models.is_model(key, ident):
            return Event("forward", call, call.start_byte, key, name, what=f"{name}(...)", model_node=ident)
        if d is None or d.kind != "def":
            return None
        summary = self._summary_of()((d.node.start_byte, d.node.end_byte))
        if summary is None:
            return None
        effects = effects_at(summary, d.node, call, self.models.key)
        if not (effects.forwards or effects.resets or effects.leaks):
            return None
        return Event("call", call, call.start_byte, None, name, what="helper", callee=d.node, effects=effects)
