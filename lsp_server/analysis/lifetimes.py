"""Hook lifetimes: stale hooks, hooks piling up in loops, leaked reset_hooks_end=False hooks.

What TransformerLens does (measured on 2.18, 3.9 and 4.3; shared knowledge §3): a hook added with
``model.add_hook`` or ``HookPoint.add_hook`` stays until ``reset_hooks()`` / ``remove_all_hook_fns()``;
``run_with_cache``, ``run_with_hooks`` and ``hooks()`` never remove it. Hooks that ``run_with_hooks`` /
``run_with_cache`` / ``hooks()`` add with ``reset_hooks_end=False`` stay too (HookedTransformer drops them
after the next default-reset ``run_with_*`` has run them; TransformerBridge keeps them until a reset).

How we follow a program: per scope (the module, each function), the hook events and forward passes in
source order, which is execution order for scripts, ``# %%`` files and notebooks (cells arrive
concatenated). A hook is *meant* for the first statement after it that runs a forward pass (a loop
statement counts as one); a forward after that statement, with no reset in between, is a leak. Calls of
functions defined in this file count by what they do (forward, reset, leave hooks attached), one level
deep. Anything we cannot follow ends tracking silently: a model passed to code we cannot see, a name
rebound to another model, mutually exclusive branches, a ``return`` between the hook and the forward.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from .findings import Edit, Finding, Fix, Related
from .hook_signatures import HookSite, check_hook_signatures
from .lifetime_syntax import (
    LOOPS, SCOPE_BOUNDARIES, assigned_names, delete_argument, dotted, gives_hooks, hookpoint_of, in_lambda,
    insert_after, insert_at_block_end, insert_before, line_end, literal, permanent, reaches, runs_once, short,
    use_statement,
)
from .models import is_bridge_code
from .scopes import MODULE, Scopes
from .syntax import Node, call_args, call_name, statement_of, text

RELEVANT_METHODS = frozenset({"add_hook", "add_perma_hook", "reset_hooks", "remove_all_hook_fns", "run_with_cache",
                              "run_with_hooks", "hooks", "forward", "generate", "backward"})
RELEVANT_BYTES = frozenset(m.encode() for m in RELEVANT_METHODS)
FORWARD_METHODS = frozenset({"forward", "run_with_cache", "run_with_hooks", "generate"})
RESET_METHODS = frozenset({"reset_hooks", "remove_all_hook_fns"})
# Methods only TransformerLens models have: their receiver is a model.
EVIDENCE_METHODS = frozenset({"add_perma_hook", "run_with_cache", "run_with_hooks", "hooks", "reset_hooks",
                              "remove_all_hook_fns"})
PATCHING = re.compile(r"^(get_act_patch_\w+|generic_activation_patch)$")
# Forwards people expect to start from a clean model: a leak into one of them is never deliberate-looking.
SURPRISING = frozenset({"run_with_cache", "run_with_hooks", "patching", "hooks-context"})
# Calls that take a model argument and certainly do not touch its hooks.
NEUTRAL_CALLS = frozenset({
    "print", "len", "isinstance", "type", "id", "repr", "str", "getattr", "hasattr", "setattr", "vars", "dir",
    "display", "partial", "deepcopy", "copy", "ActivationCache", "info", "debug", "warning", "append", "format",
})
# A forward whose statement names its result as the unhooked run (`clean_logits = model(tokens)`).
CLEAN_RUN = re.compile(r"(?i)clean|orig|baseline|unablated|unpatched|unsteered|reference")
SEVERITY_RANK = {"hint": 0, "information": 1, "warning": 2, "error": 3}

Key = tuple
# A reset whose model we cannot tell (`hp.remove_hooks()` on some HookPoint): it may remove any hook.
ANY_MODEL: Key = ("*",)


@dataclass(eq=False)
class Event:
    kind: str  # "add" | "temp" | "forward" | "reset" | "barrier" | "call"
    node: Node  # the call; for a `with model.hooks(...)` temp: the with statement
    pos: int  # ordering position in the scope
    key: Key | None
    recv: str = ""  # the model expression as written
    what: str = ""  # forward: "model(...)", "run_with_cache", "patching", "helper", "hooks-context"
    model_node: Node | None = None  # the model expression (its backend is looked up only for messages)
    # add: hook point label, name/fn expressions, direction; temp: method and the keyword node
    label: str = ""
    name_text: str | None = None
    fn_node: Node | None = None
    direction: str = "fwd"
    method: str = ""
    kw_node: Node | None = None
    extra: tuple = ()  # add: arguments besides name and function (dir, is_permanent, ...)
    callee: Node | None = None  # call: the def it runs
    effects: "Summary | None" = None  # call: the callee's summary with keys mapped to this call's arguments


@dataclass(eq=False)
class Pending:
    """A hook that is attached and being followed through the rest of its scope."""

    ev: Event  # the add / temp event (possibly inside a helper)
    key: Key
    anchor: Node  # where it became attached, in the current scope (the add, or the helper call)
    recv: str  # the model expression in the current scope
    use: Node | None = None  # the statement holding the forwards it is meant for
    first: Event | None = None
    leak: Event | None = None
    via: Node | None = None  # helper call that left it attached


@dataclass
class Summary:
    """What calling a function does to the models it can reach (keys of the function's scope)."""

    forwards: set = field(default_factory=set)
    resets: set = field(default_factory=set)
    leaks: list = field(default_factory=list)  # Pending hooks still attached on return (non-local models)


def check_hook_lifetimes(analysis) -> list[Finding]:
    """All lifetime and hook-signature findings of one document."""
    return _Lifetimes(analysis).run()


class _Lifetimes:
    def __init__(self, analysis):
        self.a = analysis
        self.scopes: Scopes = analysis.scopes
        self.src: bytes = analysis.parsed.source
        # Written for HookedTransformer: an unresolved model is one (removed-api flags a TL 4 workspace).
        self._hooked_code = b"HookedTransformer" in self.src and not is_bridge_code(self.src)
        self.root: Node = analysis.parsed.root
        self.line_of = analysis.lines.line_of
        # Notebook cells arrive joined into one text (analyze(..., notebook=True)): its line numbers mean nothing to the user.
        self._notebook = bool(getattr(analysis.scopes, "late_module_lookups", False))
        self.findings: dict[tuple[str, int], Finding] = {}
        self.tl_keys: set = set()
        self.method_events: dict = {}  # scope -> [Event]
        self.hook_sites: list[HookSite] = []
        self.backwards: list[int] = []
        self.contexts: list[tuple[int, int, Key]] = []  # `with model.hooks(...)` bodies
        self._summaries: dict = {}
        self._events_cache: dict = {}
        self._model_cache: dict = {}
        self._call_sites: dict = {}
        self._model_names: tuple | None = None
        self._relevant: list[tuple] = []  # (start, call, method, receiver) of the method calls that matter
        self._evidence: list[Node] = []  # receivers of methods only TL models have
        self._evidence_text: set[str] | None = None
        self._evidence_keys: set | None = None
        self._ident_starts: list[int] | None = None
        self._leaky: list[Node] | None = None
        self._calls_by_name: dict | None = None
        self._wanted: set | None = None
        self._reset_calls: list | None = None
        self._patterns: dict = {}

    # ------------------------------------------------------------------ driver

    def run(self) -> list[Finding]:
        # Without add_hook or reset_hooks_end=False nothing can stay attached: only hook functions to check.
        flow = b"add_hook" in self.src or b"reset_hooks_end" in self.src or b".hooks(" in self.src
        if not flow:
            if b"add_perma_hook" in self.src:
                for call in self.a.method_calls:
                    _, method, recv = call_name(call)
                    if method == "add_perma_hook":
                        self._classify_add(call, method, recv)
            self._add_list_sites()
            return check_hook_signatures(self.scopes, self.hook_sites, self._where) if self.hook_sites else []
        # Hook events are classified now; forwards and resets only inside the scopes we end up following.
        src = self.src
        for call in self.a.method_calls:
            fn = call.child_by_field_name("function")
            attr = fn.child_by_field_name("attribute") if fn is not None else None
            if attr is None:
                continue
            raw = src[attr.start_byte:attr.end_byte]
            if raw in RELEVANT_BYTES or raw.startswith(b"get_act_patch_") or raw == b"generic_activation_patch":
                method, recv = raw.decode(), fn.child_by_field_name("object")
                self._relevant.append((call.start_byte, call, method, recv))
                if method in EVIDENCE_METHODS and recv is not None:
                    self._evidence.append(recv)
        for _, call, method, recv in self._relevant:
            self._classify_hook_event(call, method, recv)
        self._add_list_sites()
        for scope in [s for s, evs in self.method_events.items() if any(e.kind in ("add", "temp") for e in evs)]:
            self._summary(scope)
        # One level up: the scopes that call a function which returns with hooks still attached.
        for scope, summary in list(self._summaries.items()):
            fn = self._fn_node(scope) if summary is not None and summary.leaks else None
            if fn is not None and fn.type == "function_definition":
                for caller in self._callers(text(fn.child_by_field_name("name")), fn):
                    self._summary(caller)
        out = list(self.findings.values())
        if self.hook_sites:
            out += check_hook_signatures(self.scopes, self.hook_sites, self._where)
        return out

    def _emit(self, finding: Finding) -> None:
        k = (finding.code, finding.start)
        old = self.findings.get(k)
        if old is None or SEVERITY_RANK[finding.severity] > SEVERITY_RANK[old.severity]:
            self.findings[k] = finding

    # ------------------------------------------------------------------ models

    def _key(self, node: Node | None) -> Key | None:
        """Identity of a model expression: a name (per binding scope), a parameter, or a dotted attribute."""
        if node is None:
            return None
        if node.type == "identifier":
            name = text(node)
            return self._key_of_definition(self.scopes.lookup(name, node.start_byte), name)
        if node.type == "attribute" and dotted(node):
            return ("a", text(node))
        return None

    def _key_of_definition(self, d, name: str) -> Key:
        if d is None:
            return ("g", name)
        if d.kind == "param":
            return ("p", d.node.start_byte, name)
        scope = self.scopes.scope_of(d.target.start_byte)
        return ("g", name) if scope == MODULE else ("l", scope, name)

    def _is_model(self, key: Key | None, node: Node) -> bool:
        """A model built the way models are built, or the receiver of a method only TL models have."""
        if key is None:
            return False
        if key in self.tl_keys:
            return True
        if key not in self._model_cache:
            found = node.type == "identifier" and self.a.models.model_at(node) is not None
            if not found and text(node) in self._evidence_texts():
                if self._evidence_keys is None:
                    self._evidence_keys = {self._key(r) for r in self._evidence}
                found = key in self._evidence_keys
            self._model_cache[key] = found
        return self._model_cache[key]

    def _evidence_texts(self) -> set[str]:
        if self._evidence_text is None:
            self._evidence_text = {text(r) for r in self._evidence}
        return self._evidence_text

    def _backend(self, node: Node) -> tuple[str | None, bool]:
        """(backend, certain) of the model an expression holds."""
        info = self.a.models.model_at(node) if node.type == "identifier" else None
        if info is not None and info.backend_known:
            return info.spec.backend, info.kind != "param" or info.spec.backend == "bridge"
        if self._hooked_code:
            return "hooked", False
        major = self.a.context.tl_major
        if major is not None:
            return ("bridge" if major >= 4 else "hooked"), False
        return None, False

    # ------------------------------------------------------------------ classification

    def _scope_of(self, node: Node) -> tuple:
        return self.scopes.scope_of(node.start_byte)

    def _add_event(self, scope, ev: Event) -> None:
        if not in_lambda(ev.node):
            self.method_events.setdefault(scope, []).append(ev)

    def _classify_hook_event(self, call: Node, method: str, recv: Node | None) -> None:
        """add_hook / reset_hooks_end=False / hooks(): the events that start a lifetime (plus backward calls)."""
        if method in ("add_hook", "add_perma_hook"):
            self._classify_add(call, method, recv)
        elif method == "backward":
            self.backwards.append(call.start_byte)
        elif method in ("run_with_cache", "run_with_hooks", "hooks") and recv is not None:
            if method != "hooks" and b"reset_hooks_end" not in self.src[call.start_byte:call.end_byte]:
                return
            key = self._key(recv)
            if not self._is_model(key, recv):
                return
            scope = self._scope_of(call)
            if method == "hooks":
                self._hooks_context(call, key, recv, scope)
                return
            _, keywords = call_args(call)
            kw = keywords.get("reset_hooks_end")
            if kw is not None and text(kw) == "False" and (method == "run_with_cache" or gives_hooks(keywords)):
                self._add_event(scope, Event("temp", call, call.end_byte, key, text(recv), model_node=recv,
                                             method=method, kw_node=kw.parent))

    def _method_events(self, scope, lo: int, hi: int) -> list[Event]:
        """Forwards and resets of the scope's own method calls in [lo, hi)."""
        out: list[Event] = []
        i = bisect.bisect_left(self._relevant, lo, key=lambda r: r[0])
        for start, call, method, recv in self._relevant[i:]:
            if start >= hi:
                break
            if method in ("add_hook", "add_perma_hook", "hooks", "backward") or self._scope_of(call) != scope or in_lambda(call):
                continue
            if PATCHING.match(method):
                ev = self._patching_call(call)
                if ev is not None:
                    out.append(ev)
                continue
            if recv is None:
                continue
            key = self._key(recv)
            if not self._is_model(key, recv):
                continue
            if method in RESET_METHODS:
                out.append(Event("reset", call, start, key, text(recv)))
            elif method in FORWARD_METHODS:
                what = method if method in ("run_with_cache", "run_with_hooks") else f"{text(recv)}.{method}(...)"
                out.append(Event("forward", call, start, key, text(recv), what=what, model_node=recv))
        return out

    def _hooks_context(self, call: Node, key: Key, recv: Node, scope) -> None:
        parent = call.parent
        if parent is not None and parent.type == "as_pattern":
            parent = parent.parent
        if parent is None or parent.type != "with_item":
            return
        stmt = parent.parent.parent if parent.parent is not None and parent.parent.type == "with_clause" else parent.parent
        if stmt is None or stmt.type != "with_statement":
            return
        self.contexts.append((stmt.start_byte, stmt.end_byte, key))
        positional, keywords = call_args(call)
        kw = keywords.get("reset_hooks_end")
        kw_node = kw.parent if kw is not None else None
        if kw is None and len(positional) > 2:
            kw = kw_node = positional[2]
        given = dict(keywords)
        for name, node in zip(("fwd_hooks", "bwd_hooks"), positional[:2]):
            given.setdefault(name, node)
        if kw is not None and text(kw) == "False" and gives_hooks(given):
            self._add_event(scope, Event("temp", stmt, stmt.end_byte - 1, key, text(recv), model_node=recv,
                                         method="hooks", kw_node=kw_node))

    def _patching_call(self, call: Node) -> Event | None:
        positional, keywords = call_args(call)
        model = positional[0] if positional else keywords.get("model")
        key = self._key(model)
        if model is None or not self._is_model(key, model):
            return None
        _, method, _ = call_name(call)
        return Event("forward", call, call.start_byte, key, text(model), what="patching", label=method or "")

    def _classify_add(self, call: Node, method: str, recv: Node | None) -> None:
        if recv is None:
            return
        positional, keywords = call_args(call)
        hookpoint = hookpoint_of(recv)
        if hookpoint is not None:
            model_node, label, name_text = hookpoint
            key = self._key(model_node)
            if key is None:
                return
            self.tl_keys.add(key)
            fn_node = positional[0] if positional else keywords.get("hook")
            extra = positional[1:] + [v for k, v in keywords.items() if k != "hook"]
            direction = literal(positional[1] if len(positional) > 1 else keywords.get("dir")) or "fwd"
            perma = permanent(positional[2] if len(positional) > 2 else keywords.get("is_permanent"))
            level = positional[3] if len(positional) > 3 else keywords.get("level")
            model_text = text(model_node)
        else:
            key = self._key(recv)
            name_node = positional[0] if positional else keywords.get("name")
            fn_node = positional[1] if len(positional) > 1 else keywords.get("hook")
            if key is None or not (self._is_model(key, recv) or self._tl_name(name_node, recv)):
                return
            self.tl_keys.add(key)
            model_node, model_text = recv, text(recv)
            label = self._label(name_node)
            name_text = self._source(name_node) if name_node is not None else None
            extra = positional[2:] + [v for k, v in keywords.items() if k not in ("name", "hook")]
            direction = literal(positional[2] if len(positional) > 2 else keywords.get("dir")) or "fwd"
            perma = permanent(positional[3] if len(positional) > 3 else keywords.get("is_permanent"))
            level = positional[4] if len(positional) > 4 else keywords.get("level")
        if fn_node is not None:
            self.hook_sites.append(HookSite(fn_node, f"{model_text}.{method}" if hookpoint is None else "HookPoint.add_hook"))
        if hookpoint is None and self._bridge_level_error(call, recv, positional, keywords):
            return
        if method == "add_perma_hook" or perma is not False or level is not None:
            return  # permanent hooks are deliberate; a level or an unknown is_permanent: lifetime not ours to guess
        stmt = call.parent
        if stmt is None or stmt.type != "expression_statement":
            return  # the handle is kept (`h = hp.add_hook(...)`): the author manages it
        if hookpoint is not None and self.src.rfind(b".remove_hooks(") > call.end_byte:
            return  # HookPoint.remove_hooks later on: removal we do not track per hook point
        self._add_event(self._scope_of(call), Event(
            "add", call, call.start_byte, key, model_text, model_node=model_node, label=label, name_text=name_text,
            fn_node=fn_node, direction=direction if direction in ("fwd", "bwd") else "fwd", method=method,
            extra=tuple(extra)))

    def _tl_name(self, name_node: Node | None, recv: Node) -> bool:
        """A hook name only TransformerLens uses (``blocks.3.attn.hook_z``, get_act_name(...), an f-string of one)."""
        if name_node is None:
            return False
        if name_node.type == "lambda":  # a names filter, on something called like a model
            return "model" in text(recv).rsplit(".", 1)[-1].lower()
        value = self.a.evaluator.eval(name_node)
        parts = [value] if isinstance(value, str) else [p for p in getattr(value, "parts", ()) if isinstance(p, str)]
        return any("hook_" in p or p.startswith("blocks.") for p in parts)

    def _label(self, name_node: Node | None) -> str:
        if name_node is None:
            return "?"
        if name_node.type == "lambda":
            return f"every hook point the filter `{short(text(name_node))}` accepts"
        ref = self.a.ref_at(name_node.start_byte)
        if ref is not None and ref.template is not None and ref.start == name_node.start_byte:
            name = ref.name() or (ref.template.replace("{l}", "{" + ref.layer_expr + "}") if ref.layer_expr else ref.template)
            return name
        return short(text(name_node))

    def _bridge_level_error(self, call: Node, recv: Node, positional: list[Node], keywords: dict) -> bool:
        """``level=`` / ``prepend=`` on ``TransformerBridge.add_hook``: TypeError (it has neither)."""
        bad = [k for k in ("level", "prepend") if k in keywords]
        if not bad and len(positional) <= 4:
            return False
        backend, certain = self._backend(recv)
        if backend != "bridge":
            return False
        what = f"`{bad[0]}=`" if bad else f"{len(positional)} positional arguments"
        message = (f"`TransformerBridge.add_hook(name, hook_fn, dir, is_permanent)` has no `level` or `prepend`: {what} raises "
                   f"TypeError. Hook levels are a HookedTransformer mechanism; on a bridge scope temporary hooks with "
                   f"`with {text(recv)}.hooks(fwd_hooks=[...]):` or remove them with `{text(recv)}.reset_hooks()`.")
        fixes = ()
        if bad:
            edits = tuple(delete_argument(keywords[k].parent) for k in bad)
            fixes = (Fix(f"Remove {', '.join(f'`{k}=`' for k in bad)}", tuple(e for e in edits if e is not None)),)
        node = keywords[bad[0]].parent if bad else call
        self._emit(Finding(node.start_byte, node.end_byte, "stale-hook", "error" if certain else "warning", message,
                           fixes=fixes if fixes and fixes[0].edits else ()))
        return True

    def _add_list_sites(self) -> None:
        """Hook functions handed over in ``fwd_hooks=[(name, fn)]`` lists (resolved by the hook-name pass)."""
        collector = self.a.registrations
        if collector is None:
            return
        for call, _name, fn_node, _model in collector.registration_sites:
            _, method, recv = call_name(call)
            if method in ("run_with_hooks", "hooks") and fn_node is not None:
                self.hook_sites.append(HookSite(fn_node, method))

    def _source(self, node: Node) -> str:
        return self.a.source[node.start_byte:node.end_byte].decode("utf-8", "replace")

    # ------------------------------------------------------------------ events of a scope

    def _fn_node(self, scope) -> Node | None:
        if scope == MODULE:
            return None
        n = self.root.descendant_for_byte_range(scope[0], scope[0])
        while n is not None and not (n.type == "function_definition" and n.start_byte == scope[0] and n.end_byte == scope[1]):
            n = n.parent
        return n

    def _events(self, scope) -> list[Event]:
        if scope in self._events_cache:
            return self._events_cache[scope]
        events = list(self.method_events.get(scope, ()))  # add / temp
        lo = 0 if scope == MODULE else scope[0]
        hi = len(self.src) if scope == MODULE else scope[1]
        # Before the first hook (or the outermost loop around it), or the first call of a helper that may
        # leave one attached, nothing is attached: skip that part. Functions without hooks are summarised whole.
        starts = [self._outer_loop_start(e.node) for e in events if e.kind in ("add", "temp")]
        if starts:
            starts += [c.start_byte for c in self._leaky_calls() if lo <= c.start_byte < hi and self._scope_of(c) == scope]
            lo = min(starts)
        events += self._method_events(scope, lo, hi)
        known = {e.node.start_byte for e in events}
        events += self._plain_call_events(scope, known, lo, hi)
        events += self._hookpoint_removals(scope, lo, hi)
        events += self._method_resets(scope, lo, hi)
        for ev in events:
            if ev.kind == "forward" and ev.what not in ("patching",):
                for start, end, key in self.contexts:
                    if key == ev.key and start < ev.node.start_byte < end:
                        ev.what = "hooks-context"
        order = {"barrier": 0, "reset": 1, "forward": 2, "call": 2, "add": 3, "temp": 4}
        events.sort(key=lambda e: (e.pos, order[e.kind]))
        self._events_cache[scope] = events
        return events

    def _hookpoint_removals(self, scope, lo: int, hi: int) -> list[Event]:
        """``hp.remove_hooks(...)`` on a HookPoint we cannot tie to a model: a reset of any of them."""
        out = []
        pos = self.src.find(b".remove_hooks(", lo, hi)
        while pos >= 0:
            node = self.root.descendant_for_byte_range(pos + 1, pos + 13)
            call = node.parent.parent if node is not None and node.parent is not None else None
            if call is not None and call.type == "call" and self._scope_of(call) == scope and not in_lambda(call):
                out.append(Event("reset", call, call.start_byte, ANY_MODEL, ""))
            pos = self.src.find(b".remove_hooks(", pos + 1, hi)
        return out

    def _method_resets(self, scope, lo: int, hi: int) -> list[Event]:
        """``self.cleanup()`` where that method of the same class resets ``self.<model>``: a reset of it."""
        fn = self._fn_node(scope)
        cls = fn.parent.parent if fn is not None and fn.parent is not None else None
        if cls is not None and cls.type == "decorated_definition":
            cls = cls.parent.parent if cls.parent is not None else None
        if cls is None or cls.type != "class_definition" or b"self." not in self.src[lo:hi]:
            return []
        out = []
        for m in re.finditer(rb"(?<![\w.])self\.(\w+)\s*\(", self.src[lo:hi]):
            for method in self.scopes.function_defs.get(m.group(1).decode(), ()):
                if not (cls.start_byte <= method.start_byte < cls.end_byte):
                    continue
                body = self.src[method.start_byte:method.end_byte]
                for recv in set(re.findall(rb"([\w.]+)\.(?:reset_hooks|remove_all_hook_fns)\s*\(", body)):
                    node = self.root.descendant_for_byte_range(lo + m.start(), lo + m.end(1))
                    call = node.parent if node is not None and node.parent is not None and node.parent.type == "call" else None
                    if call is not None and self._scope_of(call) == scope:
                        out.append(Event("reset", call, call.start_byte, ("a", recv.decode()), recv.decode()))
        return out

    def _names(self) -> tuple[set, set]:
        """(names that may hold a model, dotted attributes that hold one)."""
        if self._model_names is None:
            dotted = {t for t in self._evidence_texts() if "." in t}
            plain = {t for t in self._evidence_texts() if t.isidentifier()}
            self._model_names = ({k[-1] for k in self.tl_keys if k[0] != "a"} | {m.var for m in self.a.models.all_models} | plain,
                                 {k[1] for k in self.tl_keys if k[0] == "a"} | dotted)
        return self._model_names

    def _ident_calls_in(self, lo: int, hi: int) -> list[Node]:
        """``name(...)`` calls starting in [lo, hi) (the analysis found them all, in text order)."""
        if self._ident_starts is None:
            self._ident_starts = [c.start_byte for c in self.a.ident_calls]
        i, j = bisect.bisect_left(self._ident_starts, lo), bisect.bisect_left(self._ident_starts, hi)
        return self.a.ident_calls[i:j]

    def _called_name(self, call: Node) -> bytes:
        start = call.start_byte
        return self.src[start:self.src.find(b"(", start)].rstrip()

    def _plain_entries(self, scope, lo: int, hi: int) -> list[tuple[str, Node, Node]]:
        """In the scope's text from ``lo``: calls of models, helpers and patching functions ("call"), and
        calls that take a model as an argument ("arg": code we may not be able to follow)."""
        model_names, attr_keys = self._names()
        if self._wanted is None:
            self._wanted = {n.encode() for n in model_names | set(self.scopes.function_defs)}
        entries: list[tuple[str, Node, Node]] = []
        for call in self._ident_calls_in(lo, hi):
            name = self._called_name(call)
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
        return [e for e in entries if self._scope_of(e[1]) == scope and not in_lambda(e[1])]

    def _pattern(self, template: bytes, name: str) -> re.Pattern:
        key = (template, name)
        if key not in self._patterns:
            self._patterns[key] = re.compile(template % re.escape(name.encode()))
        return self._patterns[key]

    def _leaky_calls(self) -> list[Node]:
        """Calls of functions defined here whose text adds hooks that might outlive them."""
        if self._leaky is None:
            names = set()
            for pattern in (b"add_hook", b"reset_hooks_end", b".hooks("):
                pos = self.src.find(pattern)
                while pos >= 0:
                    fn = self._fn_node(self.scopes.scope_of(pos))
                    if fn is not None:
                        names.add(text(fn.child_by_field_name("name")).encode())
                    pos = self.src.find(pattern, pos + 1)
            by_name = self._calls_by_name_index() if names else {}
            self._leaky = sorted((c for n in names for c in by_name.get(n, ())), key=lambda c: c.start_byte)
        return self._leaky

    def _outer_loop_start(self, node: Node) -> int:
        loops = self._loops(node)
        return loops[-1][0].start_byte if loops else node.start_byte

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
            key = self._key(arg)
            if key is None or not self._is_model(key, arg):
                continue
            known.add(call.start_byte)
            out.append(Event("barrier", call, call.start_byte, key, text(arg)))
        return out

    def _plain_call(self, call: Node, ident: Node) -> Event | None:
        name = text(ident)
        if PATCHING.match(name):  # `from transformer_lens.patching import get_act_patch_resid_pre`
            positional, keywords = call_args(call)
            model = positional[0] if positional else keywords.get("model")
            key = self._key(model)
            if model is None or not self._is_model(key, model):
                return None
            return Event("forward", call, call.start_byte, key, text(model), what="patching", label=name)
        if ident.type == "attribute":
            key = ("a", name)
            if not self._is_model(key, ident):
                return None
            return Event("forward", call, call.start_byte, key, name, what=f"{name}(...)", model_node=ident)
        d = self.scopes.lookup(name, ident.start_byte)
        key = self._key_of_definition(d, name)
        if self._is_model(key, ident):
            return Event("forward", call, call.start_byte, key, name, what=f"{name}(...)", model_node=ident)
        if d is None or d.kind != "def":
            return None
        summary = self._summary((d.node.start_byte, d.node.end_byte))
        if summary is None:
            return None
        effects = self._map_summary(summary, d.node, call)
        if not (effects.forwards or effects.resets or effects.leaks):
            return None
        return Event("call", call, call.start_byte, None, name, what="helper", callee=d.node, effects=effects)

    def _map_summary(self, summary: Summary, fn: Node, call: Node) -> Summary:
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
                k = self._key(arg) if arg is not None and arg.type in ("identifier", "attribute") else None
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

    # ------------------------------------------------------------------ flow

    def _summary(self, scope) -> Summary | None:
        if scope in self._summaries:
            return self._summaries[scope]  # None while being computed: recursion stops here
        self._summaries[scope] = None
        summary = Summary()
        events = self._events(scope)
        pending: list[Pending] = []
        for ev in events:
            if ev.kind == "forward":
                summary.forwards.add(ev.key)
                self._forward(pending, ev, ev.key)
            elif ev.kind in ("reset", "barrier"):
                summary.resets.add(ev.key)
                self._reset(pending, ev, scope)
            elif ev.kind == "call":
                eff = ev.effects
                for k in eff.resets:
                    summary.resets.add(k)
                    self._reset(pending, Event("reset", ev.node, ev.pos, k), scope)
                for k in eff.forwards:
                    summary.forwards.add(k)
                    self._forward(pending, ev, k)
                for inner, k, recv in eff.leaks:
                    p = Pending(inner.ev, k, ev.node, recv, via=ev.node)
                    if inner.first is not None:
                        p.use, p.first = statement_of(ev.node), ev
                    pending.append(p)
            elif ev.kind == "add":
                if not self._accumulates(ev, events, scope):
                    pending.append(Pending(ev, ev.key, ev.node, ev.recv))
            elif ev.kind == "temp":
                if not self._temp_in_loop(ev, events, scope):
                    p = Pending(ev, ev.key, ev.node, ev.recv, use=statement_of(ev.node), first=ev)
                    pending.append(p)
        for p in pending:
            self._finish(p, scope, None, summary)
        if scope != MODULE:
            self._hint_returned(scope, summary)
        self._summaries[scope] = summary
        return summary

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

    def _reset(self, pending: list[Pending], ev: Event, scope) -> None:
        for p in list(pending):
            if p.key == ev.key or ev.key == ANY_MODEL:
                pending.remove(p)
                if p.leak is not None:
                    self._finish(p, scope, ev if ev.kind == "reset" else None, None)

    def _rebound(self, p: Pending, start: int, end: int) -> bool:
        """The model name is bound to something else between ``start`` and ``end``."""
        key = p.key
        if key[0] not in ("g", "l", "p"):
            return False
        name = key[-1]
        scope = MODULE if key[0] == "g" else key[1] if key[0] == "l" else self.scopes.scope_of(key[1])
        for d in self.scopes.definitions(name, scope):
            if start <= d.offset <= end and d.kind != "param":
                value = text(d.node) if d.kind == "assign" else ""
                if not value.startswith(name + "."):  # `model = model.to(device)` keeps the model
                    return True
        return False

    def _finish(self, p: Pending, scope, reset: Event | None, summary: Summary | None) -> None:
        """Decide what a hook that is no longer followed amounts to."""
        if p.ev.kind == "temp":
            if p.leak is not None:
                self._emit(self._temp_leak_finding(p))
            return
        if p.leak is not None:
            # Kept across two forwards and then reset: deliberate, unless the later pass is one people expect
            # to start clean, or the hook came out of a helper the caller never saw add it.
            deliberate = (reset is not None and p.leak.what not in SURPRISING and p.via is None
                          and not CLEAN_RUN.search(assigned_names(use_statement(p.anchor, p.leak.node))))
            severity = "hint" if deliberate else "warning"
            self._emit(self._leak_finding(p, severity, reset))
            return
        if summary is None:
            return
        end = self.scopes.parsed.root.end_byte if scope == MODULE else scope[1]
        if p.first is not None and scope == MODULE:
            if not self._rebound(p, p.use.end_byte, end):
                self._emit(self._never_removed_finding(p))
            return
        if scope != MODULE and p.via is None and p.key[0] != "l":
            summary.leaks.append(p)

    # ------------------------------------------------------------------ loops

    def _loops(self, node: Node) -> list[tuple[Node, bool]]:
        """Enclosing loops in the node's scope, innermost first, each with "an `if` lies between"."""
        out, conditional = [], False
        n = node.parent
        while n is not None and n.type not in SCOPE_BOUNDARIES:
            if n.type in ("if_statement", "conditional_expression", "elif_clause", "else_clause"):
                conditional = True
            if n.type in LOOPS:
                out.append((n, conditional))
            n = n.parent
        return out

    def _in_loop(self, events: list[Event], loop: Node, key: Key):
        """(forward events, reset-or-unknown events) on ``key`` inside ``loop``."""
        lo = bisect.bisect_left(events, loop.start_byte, key=lambda e: e.pos)
        hi = bisect.bisect_right(events, loop.end_byte, key=lambda e: e.pos)
        forwards, resets = [], []
        for e in events[lo:hi]:
            if e.kind == "forward" and e.key == key:
                forwards.append(e)
            elif e.kind in ("reset", "barrier") and (e.key == key or e.key == ANY_MODEL):
                resets.append(e)
            elif e.kind == "call":
                if key in e.effects.forwards:
                    forwards.append(e)
                if key in e.effects.resets or ANY_MODEL in e.effects.resets:
                    resets.append(e)
        return forwards, resets

    def _accumulates(self, ev: Event, events: list[Event], scope) -> bool:
        """``add_hook`` inside a loop that also runs a forward and never resets: report and stop following it."""
        for loop, conditional in self._loops(ev.node):
            forwards, resets = self._in_loop(events, loop, ev.key)
            if not forwards:
                continue
            if conditional or resets or runs_once(loop):
                return False
            self._emit(self._accumulate_finding(ev, loop, forwards))
            return True
        return False

    def _temp_in_loop(self, ev: Event, events: list[Event], scope) -> bool:
        loops = self._loops(ev.node)
        if not loops:
            return False
        loop, conditional = loops[0]
        forwards, resets = self._in_loop(events, loop, ev.key)
        if conditional or resets or runs_once(loop) or not forwards:
            return False
        self._emit(self._temp_loop_finding(ev, loop))
        return True

    # ------------------------------------------------------------------ helpers left with hooks

    def _hint_returned(self, scope, summary: Summary) -> None:
        """A function that used a hook on a model it did not create and returns with it still attached."""
        fn = self._fn_node(scope)
        if fn is None or fn.type != "function_definition":
            return
        name = text(fn.child_by_field_name("name"))
        if self._callers(name, fn):
            return  # the callers' flows decide (a warning where a caller's later forward runs it)
        for p in summary.leaks:
            if p.first is None:
                continue  # a setup function: the caller is meant to run the hooks
            if p.key[0] == "a" and self._class_resets(fn, p.recv):
                continue  # an experiment class that manages its hooks in its own methods
            owner = "a parameter" if p.key[0] == "p" else "a global" if p.key[0] == "g" else "an attribute"
            message = (f"`{name}` returns with the hook on `{p.ev.label}` still attached to `{p.recv}` ({owner}: a model "
                       f"this function did not create). It was used by the forward at {self._where(p.first.node)}; "
                       f"every forward the caller runs afterwards runs it too. Remove it before returning with "
                       f"`{p.recv}.reset_hooks()`, or scope it with `with {p.recv}.hooks(...)`.")
            self._emit(Finding(*self._add_range(p.ev), "stale-hook", "hint", message,
                               fixes=self._reset_fixes(p), related=self._related(p)))

    def _callers(self, name: str, fn: Node) -> list:
        """Scopes that call the function ``fn`` by its name."""
        k = (name, fn.start_byte)
        if k not in self._call_sites:
            scopes = []
            for call in self._calls_by_name_index().get(name.encode(), ()):
                d = self.scopes.lookup(name, call.start_byte)
                if d is not None and d.node == fn and self._scope_of(call) not in scopes:
                    scopes.append(self._scope_of(call))
            self._call_sites[k] = scopes
        return self._call_sites[k]

    def _calls_by_name_index(self) -> dict:
        if self._calls_by_name is None:
            self._calls_by_name = {}
            for call in self.a.ident_calls:
                self._calls_by_name.setdefault(self._called_name(call), []).append(call)
        return self._calls_by_name

    def _class_resets(self, fn: Node, recv: str) -> bool:
        cls = fn.parent
        while cls is not None and cls.type != "class_definition":
            cls = cls.parent
        if cls is None:
            return False
        if self._reset_calls is None:
            self._reset_calls = [(start, text(r)) for start, _, method, r in self._relevant
                                 if method in RESET_METHODS and r is not None]
        return any(r == recv and cls.start_byte <= start < cls.end_byte for start, r in self._reset_calls)

    # ------------------------------------------------------------------ findings

    def _line(self, node: Node) -> int:
        return self.line_of(node.start_byte) + 1

    def _where(self, node: Node) -> str:
        """``line 31`` in a file; in a notebook (cells joined into one text) the statement itself."""
        if not self._notebook:
            return f"line {self._line(node)}"
        stmt = node if node.parent is not None and node.parent.type in ("block", "module") else statement_of(node)
        first = self.src[stmt.start_byte:stmt.end_byte].split(b"\n", 1)[0].decode("utf-8", "replace")
        return f"`{short(first, 60)}`"

    def _add_range(self, ev: Event) -> tuple[int, int]:
        fn = ev.node.child_by_field_name("function")
        return ev.node.start_byte, (fn.end_byte if fn is not None else ev.node.end_byte)

    def _related(self, p: Pending, leak: bool = False) -> tuple[Related, ...]:
        out = [Related(*self._add_range(p.ev), f"hook on `{p.ev.label}` added here")]
        if p.via is not None:
            out.append(Related(p.via.start_byte, p.via.end_byte, "the call that leaves it attached"))
        if p.first is not None and p.first.node != p.via:
            out.append(Related(p.first.node.start_byte, p.first.node.end_byte, "the forward it is meant for"))
        if leak and p.leak is not None:
            out.append(Related(p.leak.node.start_byte, p.leak.node.end_byte, "still attached during this forward"))
        return tuple(out)

    def _ev_backend(self, ev: Event) -> str | None:
        return self._backend(ev.model_node)[0] if ev.model_node is not None else None

    def _backend_phrase(self, backend: str | None) -> str:
        return {"hooked": "HookedTransformer 2.x/3.x", "bridge": "TransformerBridge 4.x"}.get(
            backend or "", "every TransformerLens version")

    def _why(self, leak: Event, backend: str | None) -> str:
        where = self._backend_phrase(backend)
        if leak.what == "run_with_cache":
            return (f"`run_with_cache` does not remove hooks added with `add_hook` (in {where}), so that run is "
                    f"modified by this hook and so are the activations it caches")
        if leak.what == "run_with_hooks":
            return f"`run_with_hooks` only removes the hooks it was given (in {where}), so this hook runs in it too"
        if leak.what == "patching":
            return f"`{leak.label}` runs a forward pass per patched position, and every one of them runs this hook too"
        if leak.what == "hooks-context":
            return f"`hooks()` only removes the hooks it was given (in {where}), so this hook runs inside it too"
        if leak.what == "helper":
            return f"`{leak.recv}(...)` runs a forward pass on the model, and this hook with it"
        return f"nothing removes it in between (in {where} only `reset_hooks()` does)"

    def _leak_finding(self, p: Pending, severity: str, reset: Event | None) -> Finding:
        ev, leak = p.ev, p.leak
        assert leak is not None and p.first is not None
        desc = self._forward_desc(leak)
        origin = f" (added inside `{self._fn_name_of(ev.node)}`)" if p.via is not None else ""
        if severity == "hint":
            message = (f"Hook on `{ev.label}`{origin} stays attached from the forward at {self._where(p.first.node)} "
                       f"through {desc} ({self._where(leak.node)}; removed at {self._where(reset.node)}). "
                       f"If both passes should be hooked this is fine; otherwise call `{p.recv}.reset_hooks()` after "
                       f"{self._where(p.first.node)}.")
        else:
            message = (f"Hook on `{ev.label}`{origin} is still attached during {desc} ({self._where(leak.node)}): "
                       f"{self._why(leak, self._ev_backend(ev))}. It was meant for the forward at {self._where(p.first.node)}; "
                       f"remove it after that with `{p.recv}.reset_hooks()`, or scope it with `with {p.recv}.hooks(...)`.")
        return Finding(*self._add_range(ev), "stale-hook", severity, message, fixes=self._reset_fixes(p),
                       related=self._related(p, leak=True))

    def _never_removed_finding(self, p: Pending) -> Finding:
        ev = p.ev
        assert p.first is not None
        origin = f" (inside `{self._fn_name_of(ev.node)}`)" if p.via is not None else ""
        message = (f"Hook on `{ev.label}`{origin} is never removed: after the forward at {self._where(p.first.node)} it "
                   f"stays on `{p.recv}` for the rest of the session, so every later forward (another cell, a re-run "
                   f"cell, run_with_cache, patching) runs it too; `run_with_cache` and `run_with_hooks` do not remove it. "
                   f"Remove it with `{p.recv}.reset_hooks()` after {self._where(p.first.node)}, or scope it with "
                   f"`with {p.recv}.hooks(...)`.")
        return Finding(*self._add_range(ev), "stale-hook", "warning", message, fixes=self._reset_fixes(p),
                       related=self._related(p))

    def _accumulate_finding(self, ev: Event, loop: Node, forwards: list[Event]) -> Finding:
        fn = f"`{text(ev.fn_node)}`" if ev.fn_node is not None else "the hook"
        adder = text(ev.node.child_by_field_name("function"))
        message = (f"`{adder}` runs on every iteration of the loop at {self._where(loop)} and nothing in the "
                   f"loop removes the hooks: the forward at {self._where(forwards[0].node)} runs one more copy of "
                   f"{short(fn, 50)} on `{ev.label}` each iteration (quadratic cost; wrong results unless the hook is "
                   f"idempotent). Call `{ev.recv}.reset_hooks()` at the end of each iteration, or use `run_with_hooks` / "
                   f"`with {ev.recv}.hooks(...)`; if piling up is the point (cumulative ablation), add "
                   f"`# tlens: ignore[hook-accumulates]`.")
        fixes = []
        body = loop.child_by_field_name("body")
        edit = insert_at_block_end(self.a.source, body, f"{ev.recv}.reset_hooks()") if body is not None else None
        if edit is not None:
            fixes.append(Fix(f"Insert `{ev.recv}.reset_hooks()` at the end of the loop body", (edit,), preferred=True))
        wrap = self._wrap_fix(ev, forwards[0].node)
        if wrap is not None:
            fixes.insert(0, wrap)
        related = (Related(forwards[0].node.start_byte, forwards[0].node.end_byte, "forward pass in the same loop"),)
        return Finding(*self._add_range(ev), "hook-accumulates", "warning", message, fixes=tuple(fixes), related=related)

    def _temp_loop_finding(self, ev: Event, loop: Node) -> Finding:
        kw = ev.kw_node or ev.node
        if ev.method == "run_with_cache":
            detail = ("each iteration leaves its caching hooks attached, and every later forward runs all of them, "
                      "writing into every earlier cache (memory grows with each iteration, and old caches are overwritten)")
        else:
            detail = ("each iteration leaves its hooks attached, so they pile up: iteration k runs k copies of each hook")
        message = (f"`{ev.method}(..., reset_hooks_end=False)` in the loop at {self._where(loop)} with no reset in the "
                   f"loop: {detail}. Drop `reset_hooks_end=False`, or call `{ev.recv}.reset_hooks()` at the end of each "
                   f"iteration.")
        fixes = []
        body = loop.child_by_field_name("body")
        drop = delete_argument(kw) if kw.type == "keyword_argument" else None
        if drop is not None and ev.method == "run_with_cache":
            fixes.append(Fix("Remove `reset_hooks_end=False`", (drop,), preferred=True))
        edit = insert_at_block_end(self.a.source, body, f"{ev.recv}.reset_hooks()") if body is not None else None
        if edit is not None:
            fixes.append(Fix(f"Insert `{ev.recv}.reset_hooks()` at the end of the loop body", (edit,), preferred=not fixes))
        return Finding(kw.start_byte, kw.end_byte, "reset-hooks-end-false", "warning", message, fixes=tuple(fixes),
                       related=(Related(loop.start_byte, loop.start_byte + 3, "the loop"),))

    def _temp_leak_finding(self, p: Pending) -> Finding:
        ev, leak = p.ev, p.leak
        assert leak is not None
        kw = ev.kw_node or ev.node
        call = "with hooks(...)" if ev.method == "hooks" else f"{ev.method}(...)"
        backend = self._ev_backend(ev)
        if backend == "bridge":
            later = "TransformerBridge keeps them until `reset_hooks()`"
        elif backend == "hooked":
            later = ("HookedTransformer removes them only at `reset_hooks()` or at the end of the next `run_with_*`/`hooks()` "
                     "with the default reset, after they have run there too")
        else:
            later = ("they stay until `reset_hooks()` (HookedTransformer also drops them after the next default-reset "
                     "`run_with_*`, once they have run in it)")
        message = (f"`{call}` with `reset_hooks_end=False` leaves its hooks on `{ev.recv}`, and they are still attached "
                   f"during {self._forward_desc(leak)} ({self._where(leak.node)}): {later}. "
                   f"Call `{ev.recv}.reset_hooks()` once the "
                   f"hooks have done their job (after the backward pass, if that is what they are for).")
        fixes = []
        stmt = use_statement(p.anchor, leak.node)
        edit = insert_before(self.a.source, stmt, f"{p.recv}.reset_hooks()")
        if edit is not None:
            fixes.append(Fix(f"Insert `{p.recv}.reset_hooks()` before {self._where(stmt)}", (edit,), preferred=True))
        related = (Related(leak.node.start_byte, leak.node.end_byte, "runs the leftover hooks"),)
        return Finding(kw.start_byte, kw.end_byte, "reset-hooks-end-false", "warning", message, fixes=tuple(fixes),
                       related=related)

    def _forward_desc(self, ev: Event) -> str:
        if ev.what in ("run_with_cache", "run_with_hooks"):
            return f"`{ev.recv}.{ev.what}`"
        if ev.what == "patching":
            return f"`{ev.label}`"
        if ev.what == "hooks-context":
            return f"the forward inside `with {ev.recv}.hooks(...)`"
        if ev.what == "helper":
            return f"`{ev.recv}(...)` (a forward pass inside)"
        return f"`{ev.what}`"

    def _fn_name_of(self, node: Node) -> str:
        n = node.parent
        while n is not None and n.type != "function_definition":
            n = n.parent
        return text(n.child_by_field_name("name")) if n is not None else "?"

    # ------------------------------------------------------------------ fixes

    def _reset_fixes(self, p: Pending) -> tuple[Fix, ...]:
        fixes: list[Fix] = []
        if p.use is None:
            return ()
        wrap = self._wrap_fix(p.ev, p.first.node) if p.via is None and p.first is not None else None
        if wrap is not None:
            fixes.append(wrap)
        anchor = p.use
        # Backward hooks need the graph's backward pass: reset after it, not right after the forward.
        nxt = anchor.next_named_sibling
        while p.ev.direction == "bwd" and nxt is not None:
            if any(nxt.start_byte <= b < nxt.end_byte for b in self.backwards):
                anchor = nxt
                break
            nxt = nxt.next_named_sibling
        edit = insert_after(self.a.source, anchor, f"{p.recv}.reset_hooks()")
        if edit is not None:
            fixes.append(Fix(f"Insert `{p.recv}.reset_hooks()` after {self._where(anchor)}", (edit,),
                             preferred=not fixes))
        return tuple(fixes)

    def _wrap_fix(self, ev: Event, forward: Node) -> Fix | None:
        """Replace the add_hook statement by ``with model.hooks(...):`` around the statements up to the forward."""
        if ev.name_text is None or ev.fn_node is None or self._notebook:
            return None  # in a notebook the statements may sit in different cells: one edit cannot span them
        if any(literal(n) not in ("fwd", "bwd") for n in ev.extra):
            return None  # is_permanent / level / prepend: not expressible in hooks()
        add_stmt = ev.node.parent
        if add_stmt is None or add_stmt.type != "expression_statement":
            return None
        use = use_statement(add_stmt, forward)
        if use is None or use.parent != add_stmt.parent or use.start_byte < add_stmt.end_byte:
            return None
        src = self.a.source
        start = src.rfind(b"\n", 0, add_stmt.start_byte) + 1
        indent = src[start:add_stmt.start_byte]
        if indent.strip():
            return None
        end = line_end(src, use.end_byte)
        body_start = line_end(src, add_stmt.end_byte)
        trailing = src[add_stmt.end_byte:body_start].strip()
        region = src[body_start + 1:end] if body_start < end else b""
        if b'"""' in region or b"'''" in region or (trailing and not trailing.startswith(b"#")):
            return None
        unit = "\t" if indent.startswith(b"\t") else "    "
        lines = region.decode("utf-8", "replace").split("\n")
        body = "\n".join(unit + line if line.strip() else line for line in lines)
        kw = "bwd_hooks" if ev.direction == "bwd" else "fwd_hooks"
        fn_text = self._source(ev.fn_node)
        header = f"{indent.decode()}with {ev.recv}.hooks({kw}=[({ev.name_text}, {fn_text})]):"
        if trailing:
            header += "  " + trailing.decode("utf-8", "replace")
        return Fix(f"Scope the hook with `with {ev.recv}.hooks(...)` around the forward at {self._where(forward)}",
                   (Edit(start, end, header + "\n" + body),), preferred=True)
