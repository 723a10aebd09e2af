"""Step 1: the method calls that matter, and among them the events that start a hook's lifetime: ``add_hook``
(on a model or a HookPoint), ``run_with_*`` / ``hooks()`` given ``reset_hooks_end=False``; plus the hook
functions whose signatures are checked, the backward calls, and the bodies of ``with model.hooks(...)``."""

from __future__ import annotations

from collections.abc import Callable

from ..findings import Finding
from ..hook_signatures import HookSite
from ..syntax import Node, call_args, call_name, hook_point_path, text
from .doc import Doc
from .events import Event, Key
from .messages import bridge_level_finding
from .models import ModelKeys
from .syntax import gives_hooks, in_lambda, literal, permanent, short

RELEVANT_METHODS = frozenset({"add_hook", "add_perma_hook", "reset_hooks", "remove_all_hook_fns", "run_with_cache",
                              "run_with_hooks", "hooks", "forward", "generate", "backward"})
RELEVANT_BYTES = frozenset(m.encode() for m in RELEVANT_METHODS)
# Methods only TransformerLens models have: their receiver is a model.
EVIDENCE_METHODS = frozenset({"add_perma_hook", "run_with_cache", "run_with_hooks", "hooks", "reset_hooks",
                              "remove_all_hook_fns"})


class HookEvents:
    def __init__(self, doc: Doc, models: ModelKeys, emit: Callable[[Finding], None]):
        self.doc = doc
        self.a = doc.a
        self.src = doc.src
        self.models = models
        self._emit = emit
        self.by_scope: dict = {}  # scope -> [Event]: the add / temp events in it
        self.hook_sites: list[HookSite] = []
        self.backwards: list[int] = []
        self.contexts: list[tuple[int, int, Key]] = []  # `with model.hooks(...)` bodies
        self.relevant: list[tuple] = []  # (start, call, method, receiver) of the method calls that matter

    def collect_permanent(self) -> None:
        """Without add_hook or reset_hooks_end=False nothing can stay attached: only hook functions to check."""
        if b"add_perma_hook" in self.src:
            for call in self.a.method_calls:
                _, method, recv = call_name(call)
                if method == "add_perma_hook":
                    self._classify_add(call, method, recv)
        self._add_list_sites()

    def collect(self) -> None:
        """Hook events are classified now; forwards and resets only inside the scopes we end up following."""
        src = self.src
        for call in self.a.method_calls:
            fn = call.child_by_field_name("function")
            attr = fn.child_by_field_name("attribute") if fn is not None else None
            if attr is None:
                continue
            raw = src[attr.start_byte:attr.end_byte]
            if raw in RELEVANT_BYTES or raw.startswith(b"get_act_patch_") or raw == b"generic_activation_patch":
                method, recv = raw.decode(), fn.child_by_field_name("object")
                self.relevant.append((call.start_byte, call, method, recv))
                if method in EVIDENCE_METHODS and recv is not None:
                    self.models.evidence.append(recv)
        for _, call, method, recv in self.relevant:
            self._classify(call, method, recv)
        self._add_list_sites()

    def _add_event(self, scope, ev: Event) -> None:
        if not in_lambda(ev.node):
            self.by_scope.setdefault(scope, []).append(ev)

    def _classify(self, call: Node, method: str, recv: Node | None) -> None:
        """add_hook / reset_hooks_end=False / hooks(): the events that start a lifetime (plus backward calls)."""
        if method in ("add_hook", "add_perma_hook"):
            self._classify_add(call, method, recv)
        elif method == "backward":
            self.backwards.append(call.start_byte)
        elif method in ("run_with_cache", "run_with_hooks", "hooks") and recv is not None:
            if method != "hooks" and b"reset_hooks_end" not in self.src[call.start_byte:call.end_byte]:
                return
            key = self.models.key(recv)
            if not self.models.is_model(key, recv):
                return
            scope = self.doc.scope_of(call)
            if method == "hooks":
                self._hooks_context(call, key, recv, scope)
                return
            _, keywords = call_args(call)
            kw = keywords.get("reset_hooks_end")
            if kw is not None and text(kw) == "False" and (method == "run_with_cache" or gives_hooks(keywords)):
                self._add_event(scope, Event("temp", call, call.end_byte, key, text(recv), model_node=recv,
                                             method=method, kw_node=kw.parent))

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

    def _classify_add(self, call: Node, method: str, recv: Node | None) -> None:
        if recv is None:
            return
        positional, keywords = call_args(call)
        hookpoint = hook_point_path(recv)
        if hookpoint is not None:
            model_node, label, name_text = hookpoint.model, hookpoint.label, hookpoint.name_text
            key = self.models.key(model_node)
            if key is None:
                return
            self.models.tl_keys.add(key)
            fn_node = positional[0] if positional else keywords.get("hook")
            extra = positional[1:] + [v for k, v in keywords.items() if k != "hook"]
            direction = literal(positional[1] if len(positional) > 1 else keywords.get("dir")) or "fwd"
            perma = permanent(positional[2] if len(positional) > 2 else keywords.get("is_permanent"))
            level = positional[3] if len(positional) > 3 else keywords.get("level")
            model_text = text(model_node)
        else:
            key = self.models.key(recv)
            name_node = positional[0] if positional else keywords.get("name")
            fn_node = positional[1] if len(positional) > 1 else keywords.get("hook")
            if key is None or not (self.models.is_model(key, recv) or self._tl_name(name_node, recv)):
                return
            self.models.tl_keys.add(key)
            model_node, model_text = recv, text(recv)
            label = self._label(name_node)
            name_text = self.doc.source(name_node) if name_node is not None else None
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
        self._add_event(self.doc.scope_of(call), Event(
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
        backend, certain = self.models.backend(recv)
        if backend != "bridge":
            return False
        self._emit(bridge_level_finding(call, recv, positional, keywords, bad, certain))
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
