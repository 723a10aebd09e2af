"""Every place a document names a hook point, resolved to a name template and a layer.

Forms: cache subscripts (``cache["pattern", 5]``, ``cache["scale", l, "ln1"]``, ``cache["embed"]``,
full names, f-strings, ``get_act_name(...)``, variables, ``hook.name``), hook registrations
(``add_hook(name, fn)``, ``fwd_hooks=[(name, fn)]``, ``hooks(...)``), ``names_filter=`` (strings,
lists, lambdas using ``==``, ``in``, ``endswith``/``startswith``) and bare ``get_act_name`` calls.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from ..knowledge.act_names import CacheKeyError, act_name_pitfall, cache_key_name, get_act_name
from ..knowledge.hookpoints import split_layer, union_templates
from .activation_stores import ActivationStores
from .hook_filters import selected
from .models import CACHING_RUNS, MODEL_CLASSES, CacheInfo, ModelInfo, Models
from .objects import self_attribute_value
from .reuse import NameResolution, NoRefs, Reuse
from .saes import sae_point_of
from .scopes import Scopes, function_of, parameter_names, starts_name
from .syntax import (TYPED_PARAMETERS, HookPointPath, Node, call_args, call_name, descendants, dotted, hook_point_path,
                     string_content_range, text)
from .value_types import Hole, Items, OneOf, Pattern, Seq, Value, is_int as _is_int, item_options, normalise, one_of, options_of
from .values import HOOK_METHODS, Evaluator, returns_of, returns_own_container

HOOK_LIST_METHODS = frozenset({"run_with_hooks", "hooks"})
# Words that register hook functions: typing one anywhere may change what ``hook.name`` is.
REGISTRATION_WORDS = HOOK_METHODS | HOOK_LIST_METHODS | {"fwd_hooks", "bwd_hooks"}
FILTER_METHODS = frozenset({"run_with_cache", "add_caching_hooks", "get_caching_hooks"})
_MODEL_CLASSES = ("HookedTransformer", "HookedSAETransformer", "TransformerBridge", "HookedEncoder")
MAX_APPENDS = 16  # appends to one hook list read; more are not read (their functions stay unknown)
_LAYER_HOLE = re.compile(r"^blocks\.\x00\.")
_CONTAINER_LITERALS = frozenset({"dictionary", "dictionary_comprehension", "list", "list_comprehension", "set",
                                 "set_comprehension", "tuple"})
_CONTAINER_CALLS = frozenset({"dict", "defaultdict", "OrderedDict", "list", "Counter"})


@dataclass
class HookRef:
    """One hook name written in the document."""

    start: int  # byte range to highlight (the key expression or the string)
    end: int
    # "cache" | "hook" | "filter" | "act_name" | "hook_dict" | "store" (a dict hooks fill) | "key" (a hook name keying
    # another dict: `mean_cache[hook.name]`, values of the code's own); a store's and a key's are never judged.
    context: str
    # The hook name with "{l}" for a layer the server cannot compute, or None if unresolvable.
    template: str | None
    layer: int | None = None  # concrete layer index when known (after the cache's negative wrap)
    layer_expr: str | None = None  # the layer as written when it is not a literal
    written_layer: int | None = None  # the literal layer as written (before wrapping)
    how: str | None = None  # how the name was computed, for the hover ("get_act_name('resid_post', 5)")
    model: ModelInfo | None = None
    cache: CacheInfo | None = None
    literal: tuple[int, int] | None = None  # content range of the string literal a fix may replace
    # For filters: "exact" | "suffix" | "prefix" | "substring"; the matched text is in `template`.
    match: str = "exact"
    error: str | None = None  # the key raises before any lookup (e.g. a str layer)
    alternatives: tuple[str, ...] = field(default=())  # hook.name: every name the hook fn is registered on
    pitfall: str | None = None  # a known get_act_name trap behind this name (what it really returns)
    # Start of the get_act_name call this name was computed by, when that call is elsewhere (via a variable).
    computed_at: int | None = None
    # The short name get_act_name expanded (``"pattern"`` in ``cache["pattern", 3]``), with the content
    # range of its string literal: a typo there is suggested and fixed in that form.
    short: tuple[str, tuple[int, int]] | None = None
    short_layer_type: str | None = None
    # A name with several possible values (a loop over a literal list, a parameter with several call
    # sites): one resolved ref per value, and `template` None. Never checked: any one may be meant.
    options: tuple["HookRef", ...] = field(default=())
    # Names the ref was computed from (variables, functions whose call sites bind its parameters, the
    # cache and model): an edit that mentions none of them, elsewhere, leaves it unchanged.
    deps: frozenset[str] = field(default=frozenset())
    # ...and the byte ranges of the code it was computed from (merged): an edit inside none of them either
    # leaves it unchanged.
    spans: tuple[tuple[int, int], ...] = field(default=())
    # An SAE hook under an SAE whose own hook is unknown (`template` None): (that hook as written, SAE suffix).
    sae_point: tuple[str, str] | None = None

    def name(self) -> str | None:
        """The concrete hook name, when the layer is known (or the hook is global)."""
        if self.template is None:
            return None
        if "{l}" not in self.template:
            return self.template
        return self.template.replace("{l}", str(self.layer)) if self.layer is not None else None


def _plain_cache_name(sub: Node) -> Node | None:
    """The name ``cache[...]`` subscripts, when it is a plain name of one cache (not ``caches[i]``)."""
    value_node = sub.child_by_field_name("value")
    if value_node is None or value_node.type != "identifier" or text(value_node).lower().endswith("caches"):
        return None
    return value_node


def _merged(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Byte ranges, overlapping ones joined, in order."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)


# Annotations that say nothing about which class a parameter holds (a model may be passed as any of them).
_UNDECIDED_ANNOTATIONS = frozenset({"Any", "Module", "Optional", "Union", "Callable", "Type"})


def _names_another_class(annotation: Node | None) -> bool:
    """Whether a parameter's annotation names a class, none of them a TransformerLens model
    (``HookedProxyLM``, ``Optional["SAE"]``; not ``nn.Module`` or ``Any``, which a model may be passed as)."""
    words = set(re.findall(r"[A-Za-z_]\w*", text(annotation))) if annotation is not None else set()
    return not words & MODEL_CLASSES and any(w[:1].isupper() and w not in _UNDECIDED_ANNOTATIONS for w in words)


def _stand_in(model: ModelInfo) -> ModelInfo:
    return model if model.stand_in else dataclasses.replace(model, stand_in=True)


def _with_layer_hole(template: str) -> list:
    """``blocks.{l}.hook_z`` as Pattern parts, the layer a hole."""
    before, _, after = template.partition("{l}")
    return [before, Hole("layer"), after]


def _template_of(value: Value) -> tuple[str | None, int | None, str | None]:
    """(template, literal layer, layer expression) for a computed hook-name value."""
    if isinstance(value, str):
        template, layer = split_layer(value)
        return (template if layer is not None else value), layer, None
    if isinstance(value, Pattern):
        parts = value.parts
        if (len(parts) >= 3 and parts[0] == "blocks." and isinstance(parts[1], Hole)
                and all(isinstance(p, str) for p in parts[2:]) and str(parts[2]).startswith(".")):
            return "blocks.{l}" + "".join(parts[2:]), None, parts[1].expr  # type: ignore[arg-type]
    return None, None, None


class HookRefCollector:
    """Finds and resolves the hook names in one document."""

    def __init__(self, scopes: Scopes, evaluator: Evaluator, models: Models, tl_major: int | None = None,
                 scan: Callable[[re.Pattern], list[tuple[int, int]]] | None = None):
        """``scan``: group-1 spans of a pattern in the document (see :class:`ActivationStores`)."""
        self.scopes = scopes
        self.tl_major = tl_major  # which catalog a filter selects hook points from
        self.ev = evaluator
        self.models = models
        self.refs: list[HookRef] = []
        # Hook function definition/lambda start byte -> names it is registered on.
        self.registrations: dict[int, list[tuple[str, int | None, str | None]]] = {}
        # Every registration site: (call node, name value node, fn node, model).
        self.registration_sites: list[tuple[Node, Node | None, Node | None, ModelInfo | None]] = []
        # The hook-list variables those sites were read through (`hooks = []; hooks.append(...)`).
        self.registration_lists: set[str] = set()
        # Names and code ranges the registrations were resolved from (hook.name refs depend on them).
        self.registration_reads: set[str] = set()
        self.registration_spans: list[tuple[int, int]] = []
        # Hook functions also registered on a name or filter not known here (their hook.name is unknown).
        self.unknown_registrations: set[int] = set()
        self._paired: set[int] = set()  # hook-list pairs already resolved
        self._filters_seen: set[tuple[int, int]] = set()  # (filter function start, model id) whose refs are added
        # Each cache subscript's refs, by its byte range (what the next version may reuse).
        self.by_subscript: dict[tuple[int, int], tuple[HookRef, ...]] = {}
        # What each registered name resolved to, by its byte range and use (the next version may reuse it too).
        self.by_name: dict[tuple[int, int, str], NameResolution] = {}
        self._reuse: Reuse | None = None
        self._stand_in_made: tuple[ModelInfo | None] | None = None  # (the file's only model standing in,), once asked
        self.stores = ActivationStores(scopes, scan)  # dicts hook functions fill under hook.name
        evaluator.cache_keys = self.cache_keys

    # -- entry points

    def collect(self, method_calls: list[Node], ident_calls: list[Node], subscripts: list[Node],
                reuse: Reuse | None = None) -> list[HookRef]:
        """Every hook reference; ``reuse``: the previous version's refs of subscripts and registered names an edit
        spared."""
        self._reuse = reuse
        act_name_calls = []
        for call in method_calls:
            _, method, receiver = call_name(call)
            if method in HOOK_METHODS:
                self._recording(self._add_hook, call, receiver, registering=True)
            elif method in HOOK_LIST_METHODS:
                self._recording(self._hook_lists, call, receiver, registering=True)
            if method in FILTER_METHODS or method == "run_with_hooks":
                self._recording(self._names_filter, call, receiver)
            if method == "get_act_name" and self.ev.is_act_name(call):
                act_name_calls.append(call)
        act_name_calls += [c for c in ident_calls if text(c.child_by_field_name("function")) == "get_act_name"
                           and self.ev.is_act_name(c)]
        for sub in subscripts:  # already only names that may hold a cache
            first, at = len(self.refs), (sub.start_byte, sub.end_byte)
            reused = self._reused(sub, reuse) if reuse is not None else None
            if isinstance(reused, NoRefs):
                self.by_subscript[at] = reused
                continue
            if reused is not None:
                self.refs += reused
            else:
                reads, spans = self._recording(self._subscript, sub)
            if len(self.refs) > first:
                self.by_subscript[at] = tuple(self.refs[first:])
            elif reused is None and (none := self._no_refs(sub, reads, spans)) is not None:
                self.by_subscript[at] = none
        # A get_act_name call that is not already part of a key or registration gets its own ref.
        covered = sorted((r.start, r.end) for r in self.refs)
        starts = [s for s, _ in covered]
        for call in act_name_calls:
            i = bisect.bisect_right(starts, call.start_byte) - 1
            if any(covered[j][1] >= call.end_byte for j in range(max(i - 2, 0), i + 1)):
                continue
            self._recording(self._act_name_call, call)
        self.refs.sort(key=lambda r: (r.start, r.end))
        return self.refs

    def _reused(self, sub: Node, reuse: Reuse) -> list[HookRef] | NoRefs | None:
        """The previous version's refs of ``cache[...]`` (a plain cache name), or that it had none, if the edit
        spared them."""
        value_node = _plain_cache_name(sub)
        if value_node is None:
            return None
        cache = self.models.cache_at(value_node)
        return reuse.refs(sub.start_byte, sub.end_byte, cache, self.cache_model(cache))

    def _no_refs(self, sub: Node, reads: frozenset[str], spans: tuple) -> NoRefs | None:
        """What the next version needs to know that ``cache[...]`` (a plain cache name) has no refs."""
        value_node = _plain_cache_name(sub)
        if value_node is None:
            return None
        cache = self.models.cache_at(value_node)
        model = self.cache_model(cache)
        owners = {model.var if model else "", cache.var if cache else "", text(value_node)}
        return NoRefs(text(value_node), frozenset(reads | owners), spans, cache, model)

    def _recording(self, process, *args, registering: bool = False) -> tuple[frozenset[str], tuple]:
        """Run one site's resolution, noting on each ref it adds the names its value was read from; for a
        registration, also what every ``hook.name`` depends on (the names a filter lists, an assertion).
        Returns those names and code ranges."""
        first = len(self.refs)
        _, reads, spans = self.ev.recorded(lambda: process(*args))
        merged = _merged(spans)
        if registering:
            self.registration_reads |= reads
            self.registration_spans += merged
        for ref in self.refs[first:]:
            owners = {ref.model.var if ref.model else "", ref.cache.var if ref.cache else ""}
            ref.deps = frozenset(reads | owners)
            ref.spans = merged
        return reads, merged

    # -- registrations

    def _model_for(self, receiver: Node | None) -> ModelInfo | None:
        """The model a call's receiver holds; for one the code does not say (a parameter), the file's only
        model, as a stand-in; none for a :meth:`foreign_receiver`, which has hook names of its own."""
        if receiver is None:
            return None
        if self.foreign_receiver(receiver):
            return None
        model = self.models.model_at(receiver)
        if model is None or model.kind == "param" and not model.spec.structure_known:
            sole = self._sole_stand_in()
            if sole is not None and (model is None or not model.backend_known or model.spec.backend == sole.spec.backend):
                return sole
        return model

    def foreign_receiver(self, receiver: Node | None, depth: int = 0) -> bool:
        """A name bound here to an instance of a class that is not a TransformerLens model (``sae = SAE(cfg)``,
        ``model = ReluOutputModel(cfg)``, or a ``deepcopy`` of one): a HookedRootModule with hook names of
        its own, never the file's model; also a parameter annotated with such a class (``lm: HookedProxyLM``)."""
        if receiver is None or receiver.type != "identifier" or depth > 3 or self.models.model_at(receiver) is not None:
            return False
        d = self.scopes.lookup(text(receiver), receiver.start_byte)
        if d is not None and d.kind == "param" and d.node_type in TYPED_PARAMETERS:
            return _names_another_class(d.node.child_by_field_name("type"))
        if d is None or d.kind != "assign" or d.target.type != "identifier" or d.node.type != "call":
            return False
        function = d.node.child_by_field_name("function")
        if function is not None and function.type == "identifier" and text(function)[:1].isupper():
            return not self._model_subclass(function)
        positional, _ = call_args(d.node)
        return call_name(d.node)[1] in ("deepcopy", "copy") and len(positional) == 1 \
            and self.foreign_receiver(positional[0], depth + 1)

    def _model_subclass(self, name: Node) -> bool:
        """Whether ``name`` is a class of this file that extends a TransformerLens model
        (``class AtPTransformer(HookedTransformer)``): its instances are models."""
        d = self.scopes.lookup(text(name), name.start_byte)
        bases = d.node.child_by_field_name("superclasses") if d is not None and d.kind == "class" else None
        return bases is not None and any(m in text(bases) for m in _MODEL_CLASSES)

    def _sole_stand_in(self) -> ModelInfo | None:
        """The file's only model, standing in (one object for every key: the next version compares it once)."""
        if self._stand_in_made is None:
            sole = self.models.sole_model()
            self._stand_in_made = (_stand_in(sole) if sole is not None else None,)
        return self._stand_in_made[0]

    def _add_hook(self, call: Node, receiver: Node | None) -> None:
        positional, keywords = call_args(call)
        path = hook_point_path(receiver) if receiver is not None else None
        if path is not None:  # `model.blocks[0].attn.hook_z.add_hook(fn)`: HookPoint.add_hook(hook, dir)
            self._hook_point_registration(call, path, positional[0] if positional else keywords.get("hook"))
            return
        if receiver is not None and receiver.type == "attribute" and not dotted(receiver):
            return  # (`models[0].blocks.add_hook`, `get_model().add_hook`: not a model we can name)
        name_node = positional[0] if positional else keywords.get("name")
        fn_node = positional[1] if len(positional) > 1 else keywords.get("hook")
        model = self._model_for(receiver)
        if (iterated := self._unpacked_pairs(name_node, fn_node)) is not None:
            self._hook_list(call, iterated, model, depth=0)  # `for name, fn in hooks: model.add_hook(name, fn)`
            return
        self.registration_sites.append((call, name_node, fn_node, model))
        if name_node is None:
            return
        if (filter_fn := self._filter_variable(name_node)) is not None:
            name_node = filter_fn
        if name_node.type == "lambda":
            self._filter_registration(name_node, fn_node, model)
            return
        self._register(fn_node, self._name_ref(name_node, "hook", model))

    def _filter_variable(self, node: Node) -> Node | None:
        """The lambda a name holds (``z_filter = lambda name: name.endswith("z")``; ``add_hook(z_filter, fn)``).
        Its name is read like a hook list's (a line holding a lambda is never a local edit, so an edit of
        the filter is seen)."""
        if node.type != "identifier":
            return None
        d = self.scopes.lookup(text(node), node.start_byte)
        if d is None or d.kind != "assign" or d.target.type != "identifier" or d.node.type != "lambda":
            return None
        self.registration_lists.add(text(node))
        return d.node

    def _unpacked_pairs(self, name_node: Node | None, fn_node: Node | None) -> Node | None:
        """The hook list iterated by ``for name, fn in hooks`` when ``name`` and ``fn`` are its two loop variables."""
        if name_node is None or fn_node is None or name_node.type != "identifier" or fn_node.type != "identifier":
            return None
        d_name = self.scopes.lookup(text(name_node), name_node.start_byte)
        d_fn = self.scopes.lookup(text(fn_node), fn_node.start_byte)
        if d_name is None or d_fn is None or d_name.kind != "for" or d_fn.kind != "for" or d_name.target is not d_fn.target \
                and d_name.target.start_byte != d_fn.target.start_byte:
            return None
        names = [text(c) for c in d_name.target.named_children]
        return d_name.node if names == [d_name.name, d_fn.name] else None

    def _hook_lists(self, call: Node, receiver: Node | None) -> None:
        _, keywords = call_args(call)
        positional = call_args(call)[0]
        model = self._model_for(receiver)
        _, method, _ = call_name(call)
        lists = [keywords.get("fwd_hooks"), keywords.get("bwd_hooks")]
        if method == "hooks" and positional:
            lists[0] = lists[0] or positional[0]
        for node in lists:
            if node is not None:
                self._hook_list(call, node, model, depth=0)

    def _hook_list(self, call: Node, node: Node, model: ModelInfo | None, depth: int) -> None:
        if depth > 3:
            return
        if node.type == "identifier":
            self.registration_lists.add(text(node))
            d = self.scopes.lookup(text(node), node.start_byte)
            if d is not None and d.kind == "assign" and d.target.type == "identifier":
                self._hook_list(call, d.node, model, depth + 1)
                if d.node.type == "list":  # `hooks = []; hooks.append((name, fn))`: the pairs appended to it
                    for method, added in self._appended(d):
                        if method == "append":
                            self._hook_pairs(call, [added], model)
                        else:
                            self._hook_list(call, added, model, depth + 1)
            return
        if node.type in ("list", "tuple"):
            elements = node.named_children
        elif node.type in ("list_comprehension", "generator_expression"):
            body = node.child_by_field_name("body")
            elements = [body] if body is not None else []
        elif node.type in ("binary_operator", "parenthesized_expression"):  # fwd_hooks=hooks_a + hooks_b + ...
            for child in node.named_children:  # (the expression's own parts: no step of the bound)
                self._hook_list(call, child, model, depth)
            return
        else:
            return
        self._hook_pairs(call, elements, model)

    def _hook_pairs(self, call: Node, elements: list[Node], model: ModelInfo | None) -> None:
        """Each ``(name, fn)`` pair of a hook list: ``fn`` is registered on ``name``."""
        for element in elements:
            if element.type in ("tuple", "parenthesized_expression") and element.named_child_count >= 2:
                name_node, fn_node = element.named_children[0], element.named_children[1]
                self.registration_sites.append((call, name_node, fn_node, model))
                if element.start_byte in self._paired:
                    continue  # a list passed to several calls: its names are resolved once
                self._paired.add(element.start_byte)
                if (filter_fn := self._filter_variable(name_node)) is not None:
                    name_node = filter_fn
                if name_node.type == "lambda":
                    self._filter_registration(name_node, fn_node, model)
                    continue
                self._register(fn_node, self._name_ref(name_node, "hook", model))

    def _appended(self, d) -> list[tuple[str, Node]]:
        """(method, argument) of each ``x.append(item)`` / ``x.extend(items)`` on the list ``d`` binds (bounded)."""
        source = self.scopes.parsed.source
        out: list[tuple[str, Node]] = []
        for m in re.finditer(rb"%s\s*\.\s*(append|extend)\s*\(" % re.escape(d.name.encode()), source):
            if not starts_name(source, m.start()):
                continue
            node = self.scopes.parsed.root.descendant_for_byte_range(m.start(), m.start() + len(d.name))
            call = node.parent.parent if node is not None and node.parent is not None else None
            if call is None or call.type != "call" or call_name(call)[2] != node:
                continue
            if self.scopes.lookup(d.name, node.start_byte) is not d:
                continue  # another binding of the name
            positional, _ = call_args(call)
            if len(positional) == 1:
                out.append((m.group(1).decode(), positional[0]))
            if len(out) >= MAX_APPENDS:
                break
        return out

    def _register(self, fn_node: Node | None, ref: HookRef | None) -> None:
        options = (ref.options or (ref,)) if ref is not None else ()
        if ref is None or any(o.template is None for o in options):
            self._register_unknown(fn_node)
            return
        self._register_names(fn_node, [(o.template, o.layer, o.layer_expr) for o in options])

    def _register_unknown(self, fn_node: Node | None) -> None:
        """``fn`` is also registered on a name not known here: its ``hook.name`` is unknown."""
        for target in self.hook_functions(fn_node):
            self.unknown_registrations.add(target.start_byte)

    def _filter_registration(self, filter_fn: Node, fn_node: Node | None, model: ModelInfo | None) -> None:
        """``add_hook(lambda name: name.endswith("z"), fn)``: ``fn`` runs on every hook point the filter
        selects; otherwise its ``hook.name`` stays unknown."""
        chosen = self._filter_selection(filter_fn, model)
        if chosen is not None:
            self._register_names(fn_node, [(t, layer, None) for t, layer in chosen])
        else:
            self._register_unknown(fn_node)

    def _filter_selection(self, filter_fn: Node, model: ModelInfo | None) -> list[tuple[str, int | None]] | None:
        """(template, layer or None for every layer) of each hook point a filter function selects, when it
        is one test (``==``, ``in``, ``endswith``/``startswith``) and the selection is small and exact."""
        refs = self._filter_refs(filter_fn, model)
        tests = _filter_tests(filter_fn)
        # Each test must be one the refs read (an unread one may select more than the refs say).
        if not refs or tests is None or any(not any(t.start_byte <= r.start < t.end_byte for r in refs) for t in tests):
            return None
        exact = [(o.template, o.layer) for r in refs if r.match == "exact" for o in (r.options or (r,))]
        needles = [(r.template, r.match) for r in refs if r.match != "exact"]
        if any(t is None for t, _ in exact) or any(n is None for n, _ in needles):
            return None
        if needles:
            catalog = model.catalog(self.tl_major) if model is not None else None
            templates = catalog.templates() if catalog is not None else sorted(union_templates())
            chosen = selected(needles, templates, catalog.spec.n_layers if catalog is not None else None)
            if chosen is None:
                return None
            exact += chosen
        return exact

    def _filter_refs(self, filter_fn: Node, model: ModelInfo | None) -> list[HookRef]:
        """The refs of the names a filter function tests, added once however often it is registered."""
        first = len(self.refs)
        self._filter_lambda(filter_fn, model)
        refs = self.refs[first:]
        key = (filter_fn.start_byte, id(model))
        if key in self._filters_seen:
            del self.refs[first:]
        self._filters_seen.add(key)
        return refs

    def cache_keys(self, node: Node, tests: list[list[tuple[str, str]]] | None = None) -> Value:
        """The hook names the cache ``node`` holds, when its ``run_with_cache`` call selects them with a
        ``names_filter`` read exactly (a filter function or a list of names); a layer the filter takes
        every one of is a hole. Unknown (None) without a filter: every hook point, too many to list; with
        ``tests`` (what a loop's guards let through, see :mod:`.loop_guards`), the model's hook points that pass
        every one."""
        cache = self.models.cache_at(node)
        call = cache.call if cache is not None else None
        if call is None or call.type != "call":
            return None
        # What the keys are read from: the cache's name, and its run (the filter it passes).
        self.ev.note_reads({text(node)}, ((call.start_byte, call.end_byte),))
        if tests is not None:
            return self._passing_keys(cache, tests)
        if call_name(call)[1] not in CACHING_RUNS:  # `m_cache = get_mean_cache(model, "hook_z")`: the helper's run
            called = self.ev.function_called(call)
            returned = self.models.returned_cache(called[1]) if called is not None and called[0] is self.ev else None
            run = returned.call if returned is not None else None
            return self.ev.under_call(call, called[1], lambda: self._run_keys(run, cache)) if run is not None else None
        return self._run_keys(call, cache)

    def _passing_keys(self, cache: CacheInfo, tests: list[list[tuple[str, str]]]) -> Value:
        """The hook points of a run that caches every one (no ``names_filter``) whose names pass every test."""
        if call_name(cache.call)[1] not in CACHING_RUNS or "names_filter" in call_args(cache.call)[1]:
            return None
        model = self.cache_model(cache)
        catalog = model.catalog(self.tl_major) if model is not None else None
        if catalog is None:
            return None
        # What fires in this configuration: a gated hook point that is off is never among the cache's names.
        templates = [p.template for p in catalog.firing()]
        chosen: dict[str, int | None] | None = None  # template -> its one layer, or None for every layer
        for needles in tests:
            passing = selected(needles, templates, catalog.spec.n_layers, limit=len(templates))
            if passing is None:
                return None
            found = dict(passing)
            chosen = found if chosen is None else {
                t: layer if layer is not None else found[t] for t, layer in chosen.items()
                if t in found and (layer is None or found[t] is None or found[t] == layer)}
        if not chosen or len(chosen) > 8:
            return None
        return one_of(t if "{l}" not in t else t.replace("{l}", str(layer)) if layer is not None
                      else normalise(tuple(_with_layer_hole(t))) for t, layer in chosen.items())

    def _run_keys(self, call: Node, cache: CacheInfo) -> Value:
        """The names a caching run's ``names_filter`` selects (see :meth:`cache_keys`)."""
        names_filter = call_args(call)[1].get("names_filter")
        if names_filter is not None and names_filter.type == "identifier":
            name = text(names_filter)
            d = self.scopes.lookup(name, names_filter.start_byte)
            names_filter = d.node if d is not None and (d.kind == "def" or d.kind == "assign" and d.target.type == "identifier") else None
            if names_filter is not None:  # `names_filter=name_filter`: what that filter selects decides
                self.ev.note_reads({name}, ((names_filter.start_byte, names_filter.end_byte),))
        if names_filter is None:
            return None
        if names_filter.type not in ("lambda", "function_definition"):
            return one_of([self.ev.eval(names_filter)] if names_filter.type == "string" else
                          [self.ev.eval(e) for e in names_filter.named_children] if names_filter.type in ("list", "tuple") else [None])
        saved = self.refs, set(self._filters_seen)
        self.refs = []  # the filter's own refs are collected where it is written, not here
        try:
            chosen = self._filter_selection(names_filter, self.cache_model(cache))
        finally:
            self.refs, self._filters_seen = saved
        if chosen is None:
            return None
        return one_of(t if "{l}" not in t else t.replace("{l}", str(layer)) if layer is not None
                      else normalise(tuple(_with_layer_hole(t))) for t, layer in chosen)

    def _register_names(self, fn_node: Node | None, names: list[tuple[str, int | None, str | None]]) -> None:
        for target in self.hook_functions(fn_node):
            self.registrations.setdefault(target.start_byte, []).extend(names)

    def hook_function(self, node: Node | None) -> Node | None:
        """The def or lambda a hook argument calls, when it is one (see :meth:`hook_functions`)."""
        found = self.hook_functions(node)
        return found[0] if len(found) == 1 else None

    def hook_functions(self, node: Node | None, depth: int = 0) -> list[Node]:
        """The defs or lambdas a hook argument may call: through names, ``functools.partial`` and
        ``a if cond else b`` (each branch)."""
        if node is None or depth > 4:
            return []
        if node.type in ("lambda", "function_definition"):
            return [node]
        if node.type == "parenthesized_expression" and node.named_child_count == 1:
            return self.hook_functions(node.named_children[0], depth)  # (brackets add no depth)
        if node.type == "identifier":
            d = self.scopes.lookup(text(node), node.start_byte)
            if d is not None and d.kind == "def":
                return [d.node]
            if d is not None and d.kind == "assign" and d.target.type == "identifier":
                return self.hook_functions(d.node, depth + 1)
            if d is not None and d.kind == "param":
                return self._passed_functions(d.name, d.node, depth + 1)
            return []
        if node.type == "conditional_expression" and node.named_child_count == 3:
            consequence, _, alternative = node.named_children
            return self.hook_functions(consequence, depth + 1) + self.hook_functions(alternative, depth + 1)
        if node.type == "call" and call_name(node)[1] == "partial":
            positional, _ = call_args(node)
            return self.hook_functions(positional[0], depth + 1) if positional else []
        if node.type == "attribute":  # `self.hook_fn`, set once in the class
            if self.ev.reads is not None:  # (an edit that sets it again elsewhere names it)
                self.ev.reads.add(text(node.child_by_field_name("attribute")))
            return self.hook_functions(self_attribute_value(node, self.scopes.parsed.source), depth + 1)
        if node.type == "call":  # `hook_fn = make_patching_hook(...)`: the hook functions a factory of this file returns
            called = self.ev.function_called(node)
            return self._returned_functions(called[1], depth + 1) if called is not None and called[0] is self.ev else []
        return []

    def _passed_functions(self, name: str, param: Node, depth: int) -> list[Node]:
        """The hook functions this file's callers pass for a parameter of a function that registers it
        (``def run(z_hook): model.run_with_hooks(x, fwd_hooks=[(name, z_hook)])`` and ``run(partial(patch, ...))``)."""
        fn = function_of(param)
        if fn is None or fn.type != "function_definition" or depth > 4:
            return []
        found: list[Node] = []
        for p in self.ev.passed(fn, name, defaults=True) or ():
            if p.evaluator is self.ev:  # (a hook function of another file is not followed)
                found += [f for f in self.hook_functions(p.argument, depth) if f not in found]
        return found

    def _returned_functions(self, fn: Node, depth: int) -> list[Node]:
        """The defs or lambdas ``fn`` returns (``def make(...): def hook(...): ...; return hook``)."""
        if self.ev.read_spans is not None:  # what the factory returns decides: any edit of it counts
            self.ev.read_spans.append((fn.start_byte, fn.end_byte))
        returns = returns_of(fn)
        found: list[Node] = []
        for r in returns:
            functions = self.hook_functions(r.named_children[0], depth) if r.named_children else []
            if not functions:
                return []  # a return that is not a hook function: not a factory
            found += functions
        return found

    # -- filters

    def _names_filter(self, call: Node, receiver: Node | None) -> None:
        _, keywords = call_args(call)
        node = keywords.get("names_filter")
        if node is None:
            return
        model = self._model_for(receiver)
        if node.type == "identifier":
            d = self.scopes.lookup(text(node), node.start_byte)
            if d is not None and d.kind == "assign" and d.target.type == "identifier":
                node = d.node
            elif d is not None and d.kind == "def":
                self._filter_refs(d.node, model)
                return
        if node.type in ("lambda", "function_definition"):
            self._filter_refs(node, model)
        elif node.type in ("list", "tuple"):
            for element in node.named_children:
                self._name_ref(element, "filter", model)
        elif node.type in ("list_comprehension", "generator_expression"):
            body = node.child_by_field_name("body")
            if body is not None:
                self._name_ref(body, "filter", model)
        else:
            self._name_ref(node, "filter", model)

    def _filter_lambda(self, fn: Node, model: ModelInfo | None) -> None:
        """Strings a filter function compares the hook name with: ``==``, ``in``, ``endswith``..."""
        params = parameter_names(fn)  # `name`, `name: str` and `name="x"` alike
        if not params:
            return
        param = params[0][0]
        body = fn.child_by_field_name("body")
        if body is None:
            return
        for node in descendants(body, "comparison_operator", "call"):
            if node.type == "call":
                obj, method, obj_node = call_name(node)
                if obj == param and method in ("endswith", "startswith"):
                    positional, _ = call_args(node)
                    for arg in positional[:1]:
                        values = arg.named_children if arg.type == "tuple" else [arg]
                        for v in values:
                            self._filter_string(v, "suffix" if method == "endswith" else "prefix", model)
                continue
            operands = [c for c in node.named_children]
            ops = [text(c) for c in node.children if not c.is_named]
            if len(operands) != 2:
                continue
            left, right = operands
            if "==" in ops or "!=" in ops:
                other = right if text(left) == param else left if text(right) == param else None
                if other is not None:
                    self._name_ref(other, "filter", model)
            elif "in" in ops and text(right) == param:
                self._filter_string(left, "substring", model)
            elif "in" in ops and text(left) == param and right.type in ("list", "tuple", "set"):
                for element in right.named_children:
                    self._name_ref(element, "filter", model)
            elif "in" in ops and text(left) == param and right.type in ("identifier", "list_comprehension",
                                                                          "set_comprehension", "generator_expression"):
                self._listed_names(right, model)

    def _listed_names(self, node: Node, model: ModelInfo | None) -> None:
        """``lambda name: name in names``, ``names`` a list of known names or a comprehension without a
        condition (``[get_act_name(site, l) for l in layers]``, also written in the test): one filter ref, at
        ``names``, listing each element (a comprehension's for every value of its variables)."""
        listed = self.ev.eval(node)
        value = one_of(item_options(listed)) if isinstance(listed, (Seq, Items)) else None
        if isinstance(value, OneOf):
            self._one_of_ref(node, "filter", value, model, None)
        elif value is not None and not isinstance(value, (Seq, Items)):
            self._one_of_ref(node, "filter", OneOf((value,)), model, None)

    def _filter_string(self, node: Node, match: str, model: ModelInfo | None) -> None:
        """A string the filter tests names with: a literal, or a name with one known value (``h in name``
        for ``h in [hook_name]``, a parameter its callers all give the same string)."""
        value = self.ev.eval(node)
        if isinstance(value, str) and (node.type == "string" or node.type == "identifier" and value):
            self.refs.append(HookRef(node.start_byte, node.end_byte, "filter", value, model=model,
                                     literal=string_content_range(node) if node.type == "string" else None, match=match))

    # -- names

    def _name_ref(self, node: Node, context: str, model: ModelInfo | None) -> HookRef | None:
        """The ref of a name a registration or a filter is given, resolved, or the previous version's when an
        edit spared it (``hook.name`` aside: what it means depends on every registration)."""
        if node.type == "attribute" and node.text.endswith(b".name"):
            return self._resolved_name_ref(node, context, model)
        at = (node.start_byte, node.end_byte, context)
        kept = self._reuse.name(*at, model) if self._reuse is not None else None
        if kept is not None:
            ref = kept.ref
            self.ev.note_reads(kept.deps, kept.spans)  # the registration's own record, as if resolved
            if ref is not None:
                self.refs.append(ref)
        else:
            ref, reads, spans = self.ev.recorded(lambda: self._resolved_name_ref(node, context, model))
            self.ev.note_reads(reads, spans)
            kept = NameResolution(ref, reads, _merged(spans), model)
        self.by_name[at] = kept
        return ref  # type: ignore[return-value]

    def _resolved_name_ref(self, node: Node, context: str, model: ModelInfo | None) -> HookRef | None:
        value = self.ev.eval(node)
        if value is None and node.type == "attribute" and text(node).endswith(".name"):
            return self._hook_dot_name(node, context, model)
        if isinstance(value, OneOf):
            return self._one_of_ref(node, context, value, model, None)
        if value is None or isinstance(value, (Seq, Items)):
            return None
        template, layer, layer_expr = _template_of(value)
        if template is None:
            return None
        ref = HookRef(node.start_byte, node.end_byte, context, template, layer=layer, written_layer=layer,
                      layer_expr=layer_expr, model=model, how=_how(node, value),
                      literal=string_content_range(node) if node.type == "string" else None,
                      pitfall=self._pitfall(node), computed_at=self._computed_at(node))
        if node.type == "call" and self.ev.is_act_name(node):
            ref.short, ref.short_layer_type = self._act_name_short(node)
        self.refs.append(ref)
        return ref

    def _act_name_short(self, call: Node) -> tuple[tuple[str, tuple[int, int]] | None, str | None]:
        """The literal short name of a ``get_act_name(name, layer, layer_type)`` call, and its layer type."""
        positional, keywords = call_args(call)
        name_node = positional[0] if positional else keywords.get("name")
        if name_node is None or name_node.type != "string":
            return None, None
        name = self.ev.eval(name_node)
        if not _is_short_name(name):
            return None, None
        type_node = positional[2] if len(positional) > 2 else keywords.get("layer_type")
        layer_type = self.ev.eval(type_node) if type_node is not None else None
        return (name, string_content_range(name_node)), layer_type if isinstance(layer_type, str) else None

    def _computed_at(self, node: Node) -> int | None:
        if node.type != "identifier":
            return None
        d = self.scopes.lookup(text(node), node.start_byte)
        return d.node.start_byte if d is not None and d.kind == "assign" and d.node.type == "call" else None

    def _pitfall(self, node: Node) -> str | None:
        """The known trap when ``node`` is a ``get_act_name(...)`` call (directly or through a name)."""
        if node.type == "identifier":
            d = self.scopes.lookup(text(node), node.start_byte)
            node = d.node if d is not None and d.kind == "assign" and d.target.type == "identifier" else node
        if node.type != "call" or not self.ev.is_act_name(node):
            return None
        args = self.ev.act_name_args(node)
        return act_name_pitfall(*args) if args else None

    def _hook_point_registration(self, call: Node, path: HookPointPath, fn_node: Node | None) -> None:
        """``model.blocks[layer].attn.hook_z.add_hook(fn)``: ``fn`` runs on that hook point, at each layer ``layer``
        may be (at every layer when that is not known, as for ``f"blocks.{layer}.attn.hook_z"``)."""
        model = self._model_for(path.model)
        self.registration_sites.append((call, path.key, fn_node, model))
        if path.key is not None:  # `model.hook_dict[name].add_hook(fn)`
            self._register(fn_node, self._name_ref(path.key, "hook", model))
            return
        if path.layer is None:
            self._register_names(fn_node, [_template_of(path.label)])
            return
        rest = path.label[len("blocks.{" + text(path.layer) + "}"):]  # `.attn.hook_z`
        self._register_names(fn_node, [
            _template_of(f"blocks.{layer}{rest}") if _is_int(layer) else ("blocks.{l}" + rest, None, text(path.layer))
            for layer in options_of(self.ev.eval(path.layer))])

    def _act_name_call(self, call: Node) -> None:
        value = self.ev.act_name(call)
        template, layer, layer_expr = _template_of(value)
        if template is None:
            return
        short, layer_type = self._act_name_short(call)
        self.refs.append(HookRef(call.start_byte, call.end_byte, "act_name", template, layer=layer,
                                 written_layer=layer, layer_expr=layer_expr, how=text(call),
                                 model=self.models.sole_model(), pitfall=self._pitfall(call), short=short,
                                 short_layer_type=layer_type))

    def _hook_dot_name(self, node: Node, context: str, model: ModelInfo | None) -> HookRef | None:
        """``hook.name`` inside a hook function: the names that function is registered on."""
        fn = self.scopes.function_at(node.start_byte)
        if fn is not None and self.ev.reads is not None:  # registered wherever its name is passed
            self.ev.reads.add(text(fn.child_by_field_name("name")) if fn.type == "function_definition" else "lambda")
            # ...by calls that an edit of their arguments, or a registration typed elsewhere, changes,
            # through hook lists built elsewhere (`hooks = []` ... `hooks.append((name, fn))`).
            self.ev.reads.update(REGISTRATION_WORDS | self.registration_lists | self.registration_reads)
            self.ev.read_spans += self.registration_spans
            self.ev.read_spans += [(call.start_byte, call.end_byte) for call, *_ in self.registration_sites]
            self.ev.read_spans += [(min(name.start_byte, fn.start_byte), max(name.end_byte, fn.end_byte))
                                   for _, name, fn, _ in self.registration_sites if name is not None and fn is not None]
        names = self.registrations.get(fn.start_byte, []) if fn is not None and fn.start_byte not in self.unknown_registrations else []
        if not names:
            return None
        templates = sorted({t for t, _, _ in names})
        layers = {l for _, l, _ in names}
        # One hook point at one layer, or at every layer; else each (`blocks.1.…`, `blocks.7.…`: one of them).
        template = templates[0] if len(templates) == 1 and (len(layers) == 1 or None in layers) else None
        how = "hook.name: the hook point this function is registered on"
        ref = HookRef(node.start_byte, node.end_byte, context, template,
                      layer=next(iter(layers)) if len(layers) == 1 else None,
                      layer_expr=next((e for _, _, e in names if e), None) if len(layers) != 1 or None in layers else None,
                      how=how, model=model, alternatives=tuple(templates))
        if template is None:  # registered on several hook points: each, with its layer and shape
            ref.options = tuple(HookRef(node.start_byte, node.end_byte, context, t, layer=l,
                                        layer_expr=None if l is not None else e or ref.layer_expr or "l", how=how, model=model)
                                for t, l, e in dict.fromkeys(names))  # in registration order
            ref.how = "hook.name: one of the hook points this function is registered on"
        self.refs.append(ref)
        return ref

    def _one_of_ref(self, node: Node, context: str, value: OneOf, model: ModelInfo | None,
                    cache: CacheInfo | None) -> HookRef | None:
        """One ref listing every possible name, if each resolves (else none: an unknown part is unknown)."""
        options = []
        for option in value.options:
            if context == "cache" and _is_short_name(option):
                option = cache_key_name(option)  # cache["embed"] -> hook_embed, as for a single key
            template, layer, layer_expr = _template_of(option)
            if template is None:
                return None
            options.append(HookRef(node.start_byte, node.end_byte, context, template, layer=layer, written_layer=layer,
                                   layer_expr=layer_expr, model=model, cache=cache))
        return self._add_options(node.start_byte, node.end_byte, context, options, model, cache, _how_options(node, value))

    def _add_options(self, start: int, end: int, context: str, options: list[HookRef], model: ModelInfo | None,
                     cache: CacheInfo | None, how: str | None) -> HookRef:
        if len({(o.template, o.layer, o.layer_expr) for o in options}) == 1:
            ref = options[0]
            ref.how = how
        else:
            ref = HookRef(start, end, context, None, model=model, cache=cache, how=how, options=tuple(options))
        self.refs.append(ref)
        return ref

    # -- cache subscripts

    def _plain_container(self, name: Node) -> bool:
        """A name that only sounds like a cache: in the scope it is bound in (its own, or the enclosing
        function's or module's for a closure) it is (also) bound to a dict or list (``cache = {}``,
        ``dict()``, ``defaultdict(...)``), an instance of a class of this file or another
        non-TransformerLens class (``metric_cache = MetricCache(...)``), or a parameter annotated as a
        dict of something other than tensors (``cached_data: Optional[dict]``), or a parameter or name
        annotated as a tensor or array (``cached_means: Float[Tensor, "layer d_model"]``); or where it is read, it
        holds what a library that makes no caches returned (``cache = pickle.load(f)``, ``torch.stack(...)``)."""
        word = text(name)
        reaching = self.scopes.lookup(word, name.start_byte)
        if reaching is not None and reaching.kind == "assign" and reaching.target.type == "identifier" \
                and _from_foreign_library(reaching.node, self.scopes):
            return True
        scope = self.scopes.scope_of(name.start_byte)
        if not self.scopes.definitions(word, scope) and reaching is not None and reaching.kind != "import":
            scope = self.scopes.scope_of(reaching.target.start_byte)  # a closure's free name: where it is bound
        for d in self.scopes.definitions(word, scope):
            if d.kind == "assign" and d.target.type == "identifier" and self._container(d.node, self.scopes):
                return True
            if _annotated_bare_dict(d):  # `clean_cache: Dict`: what its callers pass decides
                return not self._passed_caches(d)
            if _annotated_not_a_cache(d):
                return True
            if d.kind == "param" and self._passed_containers(d):
                return True
        return False

    def _container(self, value: Node, scopes: Scopes) -> bool:
        """Whether ``value`` makes a dict or list (see ``_is_container``); what a helper of this file returns counts,
        so any edit of the helper does."""
        receiver, callee, _ = call_name(value) if value.type == "call" else (None, None, None)
        if callee and receiver is None and scopes is self.scopes and self.ev.read_spans is not None:
            self.ev.read_spans += [(fn.start_byte, fn.end_byte) for fn in scopes.function_defs.get(callee, ())]
        return _is_container(value, scopes)

    def _passed_caches(self, param) -> bool:
        """Whether every call site in this file passes the parameter a name holding a caching run's cache
        (``clean_logits, clean_cache = model.run_with_cache(x)``; ``f(clean_cache)``)."""
        caches = self.models.passed_caches(param)
        return bool(caches) and all(c is not None and c.call is not None for c in caches)

    def _passed_containers(self, param) -> bool:
        """Whether every call site (at most a few, all known) passes the parameter a dict or list
        (``hook(..., clean_cache=clean_cache)`` where ``clean_cache = defaultdict(list)``)."""
        fn = function_of(param.node)
        passed = self.ev.passed(fn, param.name) if fn is not None else None
        if not passed:
            return False
        for caller, _, arg in passed:
            if arg is not None and arg.type == "identifier":
                d = caller.scopes.lookup(text(arg), arg.start_byte)
                arg = d.node if d is not None and d.kind == "assign" and d.target.type == "identifier" else None
            if arg is None or not (self._container(arg, caller.scopes) or _from_foreign_library(arg, caller.scopes)):
                return False
        return True

    def _subscript(self, sub: Node) -> None:
        value_node = sub.child_by_field_name("value")
        if value_node is None:
            return
        if value_node.type == "attribute":  # `cache.cache_dict[name]`: the cache's own dict, full names only
            owner, attr = value_node.child_by_field_name("object"), value_node.child_by_field_name("attribute")
            cache = self.models.cache_at(owner) if owner is not None and text(attr) == "cache_dict" else None
            if cache is not None:
                self._keys(sub, cache, cache.model or self._sole_stand_in(), full_names_only=True)
            return
        if value_node.type == "subscript":  # `model.run_with_cache(x)[1][name]`: the returned cache, subscripted
            call, index = value_node.child_by_field_name("value"), value_node.child_by_field_name("subscript")
            if call is not None and call.type == "call" and call_name(call)[1] == "run_with_cache" and text(index) in ("1", "-1"):
                self._keys(sub, None, self._model_for(call_name(call)[2]))
            return
        if value_node.type != "identifier":
            return
        if self.ev.reads is not None:
            self.ev.reads.add(text(value_node))
        if text(value_node).lower().endswith("caches"):  # a list or dict of caches: its items are subscripted
            outer = sub.parent
            if outer is not None and outer.type == "subscript" and outer.child_by_field_name("value") == sub:
                self._keys(outer, None, self._sole_stand_in())
            return
        cache = self.models.cache_at(value_node)
        guessed = cache is None or (cache.model is None and cache.call is None)  # by its name (a parameter)
        if guessed:
            named_cache = "cache" in text(value_node).lower()
            container = named_cache and self._plain_container(value_node)
            if not named_cache or container:
                if self.stores.is_store(value_node):
                    self._dict_key(sub, "store")
                elif container:
                    self._dict_key(sub, "key")  # `mean_cache[hook.name]`: the key is a hook name, the value the code's own
                return
        self._keys(sub, cache, self.cache_model(cache))

    def _store_names(self, store: Node) -> set[tuple[str, int | None]] | None:
        """(template, layer or None for every layer) of every name the hook functions writing the store are registered on;
        None when one of them is registered on a name not known here."""
        names: set[tuple[str, int | None]] = set()
        for key in self.stores.write_keys(store):
            fn = self.scopes.function_at(key.start_byte)
            if fn is None or fn.start_byte in self.unknown_registrations or fn.start_byte not in self.registrations:
                return None
            names.update((t, layer) for t, layer, _ in self.registrations[fn.start_byte])
        return names

    def _dict_key(self, sub: Node, context: str) -> None:
        """A key of an activation store (``context`` "store": a dict a hook function fills under ``hook.name``), or
        of another dict ("key"): a full hook name, or ``hook.name`` itself. No short names: a dict does not expand
        them as a cache does; and for another dict, only names of hook points (its keys are the user's own)."""
        keys = sub.children_by_field_name("subscript")
        if len(keys) != 1 or keys[0].type in ("slice", "tuple"):
            return
        key, model = keys[0], self._sole_stand_in()
        if key.type == "attribute" and text(key).endswith(".name") and self.ev.eval(key) is None:
            self._hook_dot_name(key, context, model)
            return
        value = self.ev.eval(key)
        if value is None or isinstance(value, (int, Seq, Items)) or not self._full_name(key):
            return
        if context == "key" and not all(t in union_templates() for t, _, _ in map(_template_of, options_of(value))):
            return  # `results_cache["blocks.0.probe"]`: the user's own name
        if isinstance(value, OneOf):
            self._one_of_ref(key, context, value, model, None)
            return
        written = self._store_names(sub.child_by_field_name("value")) if context == "store" else None
        if written is not None and not all(any(t == wt and (layer is None or wl is None or layer == wl) for wt, wl in written)
                                           for t, layer, _ in map(_template_of, options_of(value))):
            return  # not a name the hooks that fill the dict run on: a KeyError, or filled where we cannot see
        template, layer, layer_expr = _template_of(value)
        if template is not None:
            self.refs.append(HookRef(key.start_byte, key.end_byte, context, template, layer=layer, written_layer=layer,
                                     layer_expr=layer_expr, how=_how(key, value), model=model,
                                     literal=string_content_range(key) if key.type == "string" else None))

    def cache_model(self, cache: CacheInfo | None) -> ModelInfo | None:
        """The model whose hook names a cache holds: its own; none for ``x.run_with_cache(...)`` on a
        :meth:`foreign_receiver`; else the file's only model, standing in."""
        if cache is not None and cache.model is not None:
            return cache.model
        if cache is not None and cache.call is not None and call_name(cache.call)[1] in CACHING_RUNS \
                and self.foreign_receiver(call_name(cache.call)[2]):
            return None
        return self._sole_stand_in()

    def _keys(self, sub: Node, cache: CacheInfo | None, model: ModelInfo | None, full_names_only: bool = False) -> None:
        keys = [c for c in sub.children_by_field_name("subscript")]
        if not keys:
            return
        if len(keys) == 1 and keys[0].type != "tuple":
            if full_names_only and not self._full_name(keys[0]):
                return  # cache_dict has no short names (a KeyError, but not a hook name either)
            self._cache_key_single(sub, keys[0], cache, model)
        elif not full_names_only:
            elements = keys if len(keys) > 1 else keys[0].named_children
            self._cache_key_tuple(sub, elements, cache, model)

    def _named_only(self, d, cache: CacheInfo | None) -> bool:
        """Whether a subscripted value (``d``: the definition of its name, if it is one) is judged a cache by its name
        only: no caching run makes it, and no caller passes it one."""
        if cache is not None and (cache.call is not None or cache.model is not None):
            return False
        passed = self.models.passed_caches(d) if d is not None and d.kind == "param" else None
        return not any(c is not None and c.call is not None for c in passed or ())

    def _full_name(self, key: Node) -> bool:
        """Whether every value of ``key`` is written as a full hook name (``blocks.…``, ``hook_…``)."""
        for v in options_of(self.ev.eval(key)):
            first = v if isinstance(v, str) else v.parts[0] if isinstance(v, Pattern) else None
            if not isinstance(first, str) or _is_short_name(first):
                return False
        return True

    def _cache_key_single(self, sub: Node, key: Node, cache: CacheInfo | None, model: ModelInfo | None) -> None:
        if key.type == "slice":
            return
        value = self.ev.eval(key)
        if value is None and key.type == "attribute" and text(key).endswith(".name"):
            ref = self._hook_dot_name(key, "cache", model)
            if ref is not None:
                ref.cache = cache
            return
        if isinstance(value, OneOf):
            self._one_of_ref(key, "cache", value, model, cache)
            return
        if isinstance(value, (int, Seq, Items)) or value is None:
            return
        short, layer_type = None, None
        if key.type == "call" and self.ev.is_act_name(key):
            short, layer_type = self._act_name_short(key)
        if _is_short_name(value):
            # ActivationCache looks up non-names through get_act_name: cache["embed"] -> hook_embed
            subscripted = sub.child_by_field_name("value")
            d = self.scopes.lookup(text(subscripted), subscripted.start_byte) if subscripted.type == "identifier" else None
            if (not _may_mean_a_hook(value) or d is not None and _annotated_mapping(d)) and self._named_only(d, cache):
                # `cache_row["logit_diff"]`: a dict named like a cache, with keys of its own; `acts_cache["resid_pre"]`
                # with `acts_cache: Dict[str, Tensor]`: a dict, unless a caller passes a cache
                return
            looked_up = cache_key_name(value)
            how = f"cache[{value!r}] → get_act_name({value!r}) = '{looked_up}'"
            if key.type == "string":
                short = (value, string_content_range(key))
            value = looked_up
        else:
            how = _how(key, value)
        template, layer, layer_expr = _template_of(value)
        if template is None:
            if (point := sae_point_of(value)) is not None:  # `f"{sae.cfg.hook_name}.hook_sae_acts_post"`
                self.refs.append(HookRef(key.start_byte, key.end_byte, "cache", None, how=how, model=model, cache=cache,
                                         sae_point=point))
            return
        self.refs.append(HookRef(key.start_byte, key.end_byte, "cache", template, layer=layer, written_layer=layer,
                                 layer_expr=layer_expr, how=how, model=model, cache=cache,
                                 literal=string_content_range(key) if key.type == "string" else None,
                                 pitfall=self._pitfall(key), computed_at=self._computed_at(key), short=short,
                                 short_layer_type=layer_type))

    def _cache_key_tuple(self, sub: Node, elements: list[Node], cache: CacheInfo | None, model: ModelInfo | None) -> None:
        if not elements or len(elements) > 3:
            return
        name = self.ev.eval(elements[0])
        if not all(isinstance(n, str) for n in options_of(name)):
            return
        layer_value = self.ev.eval_or_hole(elements[1]) if len(elements) > 1 else None
        layers = [l if l is None or isinstance(l, (Hole, str)) or _is_int(l) else Hole(text(elements[1]))  # computed some
                  for l in options_of(layer_value)]                                                     # other way: unknown
        layer_type = self.ev.eval(elements[2]) if len(elements) > 2 else None
        if layer_type is None and len(elements) > 2 and elements[2].type != "none":
            return  # an unknown layer type ("ln1"? "ln2"?) is not "no layer type"
        if layer_type is not None and not isinstance(layer_type, str):
            return
        if not isinstance(name, OneOf) and len(layers) == 1:
            self.refs.append(self._tuple_ref(elements, name, layers[0], layer_type, cache, model))  # type: ignore[arg-type]
            return
        rows = self.ev.loop_rows(elements[:2]) if len(elements) > 1 else None
        pairs = [(n, l) for n, l in rows] if rows else [(n, l) for n in options_of(name) for l in layers]
        if not all(isinstance(n, str) and (l is None or isinstance(l, (Hole, str)) or _is_int(l)) for n, l in pairs):
            return
        options = [self._tuple_ref(elements, n, l, layer_type, cache, model) for n, l in pairs]  # type: ignore[arg-type]
        if all(o.template is not None and o.error is None for o in options):
            self._add_options(elements[0].start_byte, elements[-1].end_byte, "cache", options, model, cache,
                              f"cache[{', '.join(text(e) for e in elements)}]: " + (
                                  "one of " + ", ".join(f"({n!r}, {l!r})" for n, l in pairs) if rows
                                  else _listed(options_of(name), layers)))

    def _tuple_ref(self, elements: list[Node], name: str, layer_value: Value, layer_type: str | None,
                   cache: CacheInfo | None, model: ModelInfo | None) -> HookRef:
        """The ref of ``cache[name, layer, layer_type]`` for one value of each part."""
        n_layers = model.spec.n_layers if model else None
        written = layer_value if _is_int(layer_value) else None
        args = ", ".join(text(e) for e in elements)
        start, end = elements[0].start_byte, elements[-1].end_byte
        literal = string_content_range(elements[0]) if elements[0].type == "string" else None
        ref = HookRef(start, end, "cache", None, model=model, cache=cache, written_layer=written, literal=literal,  # type: ignore[arg-type]
                      short=(name, literal) if literal is not None and "." not in name else None,
                      short_layer_type=layer_type)
        if isinstance(layer_value, Hole):
            full = get_act_name(name, "\x00", layer_type)
            ref.template = _LAYER_HOLE.sub("blocks.{l}.", full) if _LAYER_HOLE.match(full) else full
            ref.layer_expr = layer_value.expr
            ref.how = f"cache[{args}] → get_act_name({name!r}, {layer_value.expr}" + (f", {layer_type!r})" if layer_type else ")")
            return ref
        try:
            full = cache_key_name(name, layer_value, layer_type, n_layers=n_layers)  # type: ignore[arg-type]
        except CacheKeyError as e:
            ref.error = str(e)
            return ref
        template, layer, _ = _template_of(full)
        ref.template, ref.layer = template, layer
        ref.how = f"cache[{args}] → '{full}'"
        if written is not None and written < 0:
            ref.how += f" (negative layers wrap once: {written} + n_layers)" if n_layers else ""
        return ref


@lru_cache(maxsize=1024)
def _may_mean_a_hook(short: str) -> bool:
    """Whether a short cache key may be meant as a hook name: some hook of some model holds it (``resid`` in
    ``hook_resid_pre``), unlike ``logit_diff`` or ``clean_cache``."""
    return any(short in t.rsplit(".", 1)[-1] for t in union_templates())


def _is_short_name(value: object) -> bool:
    """``"embed"``, ``"pattern"``: what ``get_act_name`` expands, not a full hook name (``blocks.…``, ``hook_…``)."""
    return isinstance(value, str) and "." not in value and not value.startswith("hook_")


# Libraries whose functions return tensors, arrays, dicts or files' contents, never an ActivationCache.
_FOREIGN_LIBRARIES = frozenset({"pickle", "json", "torch", "numpy", "einops", "pandas", "joblib", "safetensors"})


def _from_foreign_library(value: Node, scopes: Scopes) -> bool:
    """``pickle.load(f)``, ``t.stack(...)``, ``np.load(...)``: a call into a library that makes no caches
    (the call's root name is an import of one of :data:`_FOREIGN_LIBRARIES`)."""
    if value.type != "call":
        return False
    root = value.child_by_field_name("function")
    while root is not None and root.type == "attribute":
        root = root.child_by_field_name("object")
    if root is None or root.type != "identifier":
        return False
    d = scopes.lookup(text(root), value.start_byte)
    imported = d.imported if d is not None and d.kind == "import" else None
    return imported is not None and imported.module.split(".")[0] in _FOREIGN_LIBRARIES


def _annotation(d, assignments: bool = False) -> str:
    """What a parameter's annotation says, lowercased (``""``: none); ``assignments``: an annotated assignment's
    too (``x: T = ...``)."""
    if d.kind == "param":
        annotation = d.node.child_by_field_name("type")
    elif assignments and d.kind == "assign" and d.target.type == "identifier" and d.target.parent is not None \
            and d.target.parent.type == "assignment":
        annotation = d.target.parent.child_by_field_name("type")
    else:
        annotation = None
    return text(annotation).lower() if annotation is not None else ""


def _annotated_bare_dict(d) -> bool:
    """A parameter annotated ``dict`` or ``Dict`` and nothing more: an ActivationCache as often as a dict."""
    return _annotation(d).rsplit(".", 1)[-1] == "dict"


def _annotated_mapping(d) -> bool:
    """A parameter annotated as a dict or mapping (``Dict[str, Tensor]``, ``Mapping[str, torch.Tensor]``), not as an
    ActivationCache: a dict of activations by full hook name, maybe, which looks a short name up as written."""
    written = _annotation(d)
    return ("dict" in written or "mapping" in written) and "activationcache" not in written


def _annotated_not_a_cache(d) -> bool:
    """A parameter annotated as a dict of something other than tensors, or a parameter or annotated
    assignment typed as a tensor or array (``cached_means: Float[Tensor, "layer d_model"]``, ``x: np.ndarray``):
    indexed by layer or position, never by hook name."""
    written = _annotation(d, assignments=True)  # dict[str, Tensor] may well be keyed by hook names
    if "dict" in written or "cache" in written:
        return d.kind == "param" and "dict" in written and "tensor" not in written and "activationcache" not in written
    return "tensor" in written or "ndarray" in written or "array" in written


def _is_container(value: Node, scopes: Scopes) -> bool:
    if value.type in _CONTAINER_LITERALS:
        return True
    if value.type != "call":
        return False
    receiver, callee, _ = call_name(value)
    callee = callee or ""
    if callee in _CONTAINER_CALLS:
        return True
    helpers = scopes.function_defs.get(callee, []) if receiver is None else []
    if helpers and all(returns_own_container(fn, scopes) for fn in helpers):
        return True  # `bundled = bundle(fake_cache)` where `def bundle(...): out = {}; ...; return out`
    own_class = any(text(c.child_by_field_name("name")) == callee for c in scopes.classes)
    return (own_class or callee[:1].isupper()) and callee != "ActivationCache"


def _listed(names: tuple[Value, ...], layers: list[Value]) -> str:
    shown_layers = [l.expr if isinstance(l, Hole) else repr(l) for l in layers]
    return (f"name one of {', '.join(repr(n) for n in names)}" if len(names) > 1 else f"name {names[0]!r}") + (
        f"; layer one of {', '.join(shown_layers)}" if len(layers) > 1 else "")


def _how_options(node: Node, value: OneOf) -> str:
    shown = ", ".join(repr(o) if isinstance(o, str) else "…" for o in value.options[:8])
    more = f" and {len(value.options) - 8} more" if len(value.options) > 8 else ""
    return f"{text(node)}: one of {shown}{more}"


def _how(node: Node, value: Value) -> str | None:
    if node.type == "string":
        return None
    shown = value if isinstance(value, str) else "".join(p if isinstance(p, str) else "{" + p.expr + "}" for p in value.parts) if isinstance(value, Pattern) else None
    return f"{text(node)} = '{shown}'" if shown else None


def _filter_tests(filter_fn: Node) -> list[Node] | None:
    """The tests a filter function's result is the union of: its expression (a lambda's body, or a def's
    one ``return``) when that is one test (a call, ``==`` or ``in``) or tests joined by ``or``; else None."""
    body = filter_fn.child_by_field_name("body")
    if body is not None and body.type == "block":
        statements = [c for c in body.named_children if c.type != "comment"]
        if statements and statements[0].type == "expression_statement" and statements[0].named_children \
                and statements[0].named_children[0].type == "string":
            statements = statements[1:]  # a docstring
        if len(statements) != 1 or statements[0].type != "return_statement" or not statements[0].named_children:
            return None
        body = statements[0].named_children[0]
    tests: list[Node] = []
    pending = [body] if body is not None else []
    while pending:
        node = pending.pop()
        while node.type == "parenthesized_expression" and node.named_child_count == 1:
            node = node.named_children[0]
        if node.type == "boolean_operator" and text(node.child_by_field_name("operator")) == "or":
            pending += [node.child_by_field_name("left"), node.child_by_field_name("right")]
        elif node.type == "call" or node.type == "comparison_operator" \
                and {text(c) for c in node.children if not c.is_named} <= {"==", "in"}:
            tests.append(node)
        else:
            return None
    return tests or None
