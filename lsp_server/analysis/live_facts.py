"""What a live Jupyter kernel holds, as the analysis sees it, and the checks and notes it enables.

The server (``lsp_server.live``) asks the kernel for its models, caches and attached hooks and hands
the answer to :func:`~.document.analyze` as ``AnalysisContext.live`` (a :class:`LiveFacts`). Pure
data and pure functions: no torch, no kernel, no protocol. Only *module-level* names of the document
are matched with kernel variables (a function parameter named ``cache`` is not the notebook's).

* ``live-hooks``: hooks still attached to a kernel model the document uses (they fire on every
  later forward, ``run_with_cache`` and patching run).
* ``not-cached``: a cache key the document reads that the kernel's cache of that name lacks
  (a ``names_filter`` dropped it), only when the kernel's key list is complete.
* :func:`live_cache_note`: the live shape/dtype/device for a cache-key hover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from ..knowledge.hookpoints import catalog_for
from ..knowledge.spec import ModelSpec
from .findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    from .document import Analysis
    from .hookrefs import HookRef

MAX_LISTED_HOOKS = 4  # hooks named in a live-hooks message; the rest are counted


@dataclass(frozen=True)
class LiveTensor:
    """Metadata of one cached tensor (``shape`` None: the value is not a tensor)."""

    shape: tuple[int, ...] | None
    dtype: str
    device: str | None

    def describe(self) -> str:
        if self.shape is None:
            return f"a {self.dtype}, not a tensor"
        return f"`[{', '.join(map(str, self.shape))}]` {self.dtype} {self.device}"


@dataclass(frozen=True)
class LiveCache:
    var: str
    model: str | None  # the kernel variable of the model that made it, when still bound
    keys: Mapping[str, LiveTensor]
    n_keys: int
    complete: bool  # False: the key list was truncated (too many keys, size cap, time budget)


@dataclass(frozen=True)
class LiveHook:
    hook: str  # hook point name as users write it
    fn: str  # the hook function's name
    permanent: bool
    direction: str  # "fwd" | "bwd"

    def describe(self) -> str:
        extra = [x for x in (self.direction if self.direction != "fwd" else "", "permanent" if self.permanent else "") if x]
        return f"{self.hook} ({', '.join([self.fn] + extra)})"


@dataclass(frozen=True)
class LiveModel:
    var: str
    cls: str
    tl_version: str | None
    spec: ModelSpec
    hooks: tuple[LiveHook, ...] = ()
    hooks_total: int = 0
    hook_templates: frozenset[str] | None = None  # every hook name, layers as "{l}"


@dataclass(frozen=True)
class LiveFacts:
    """One introspection answer, reduced to what the analysis uses."""

    models: Mapping[str, LiveModel] = field(default_factory=dict)
    caches: Mapping[str, LiveCache] = field(default_factory=dict)

    @property
    def specs(self) -> dict[str, ModelSpec]:
        return {var: m.spec for var, m in self.models.items()}


# ------------------------------------------------------------------------------ helpers


def _module_level(analysis: Analysis, name: str, offset: int) -> bool:
    """True when ``name``'s definition at ``offset`` is a module-level one (a kernel global)."""
    return any(d.offset == offset for d in analysis.scopes.definitions(name))


def _live_cache_of(analysis: Analysis, ref: HookRef) -> LiveCache | None:
    live = analysis.context.live
    info = ref.cache
    if live is None or info is None or info.var not in live.caches:
        return None
    return live.caches[info.var] if _module_level(analysis, info.var, info.offset) else None


def _template_re(template: str) -> re.Pattern:
    return re.compile(re.escape(template).replace(re.escape("{l}"), r"(\d+)") + "$")


def _lookup(cache: LiveCache, ref: HookRef) -> tuple[str | None, LiveTensor | None]:
    """(key, tensor) the reference reads: the exact key, or for an unknown layer the first layer's."""
    name = ref.name()
    if name is not None:
        return name, cache.keys.get(name)
    pattern = _template_re(ref.template or "")
    for key, tensor in cache.keys.items():
        if pattern.match(key):
            return key, tensor
    return None, None


def live_tensor_of(analysis: Analysis, ref: HookRef) -> tuple[LiveCache, str, LiveTensor] | None:
    """(kernel cache, key, tensor) a cache-key reference reads in the live kernel, when it holds one."""
    if ref.template is None or ref.match != "exact" or ref.error:
        return None
    cache = _live_cache_of(analysis, ref)
    key, tensor = _lookup(cache, ref) if cache is not None else (None, None)
    return (cache, key, tensor) if cache is not None and key is not None and tensor is not None else None


# ------------------------------------------------------------------------------ hover


def live_cache_note(analysis: Analysis, ref: HookRef, static_shape: tuple[str, ...]) -> str:
    """`` · live: `[1, 4, 5, 5]` float32 cpu`` for a cache key the kernel's cache holds ("" otherwise).

    ``static_shape`` is the concrete static shape (symbols where unknown); a live shape that
    disagrees with one of its numbers, or has another rank, is marked.
    """
    if ref.template is None or ref.match != "exact" or ref.error:
        return ""
    cache = _live_cache_of(analysis, ref)
    if cache is None:
        return ""
    key, tensor = _lookup(cache, ref)
    if tensor is None:
        if cache.complete:
            return f" · live: not in the kernel's `{cache.var}`"
        return ""
    note = f" · live: {tensor.describe()}"
    if key != ref.name():
        note += f" (`{key}`)"
    if tensor.shape is not None and _disagrees(tensor.shape, static_shape):
        note += " ⚠ differs from the static shape"
    return note


def _disagrees(live: tuple[int, ...], static: tuple[str, ...]) -> bool:
    if len(live) != len(static):
        return True
    return any(s.isdigit() and int(s) != n for n, s in zip(live, static))


# ------------------------------------------------------------------------------ checks


def check_live(analysis: Analysis) -> list[Finding]:
    """``live-hooks`` and ``not-cached`` findings (none without a live kernel)."""
    live = analysis.context.live
    if live is None:
        return []
    return _live_hooks(analysis, live) + _not_cached(analysis, live)


def _live_hooks(analysis: Analysis, live: LiveFacts) -> list[Finding]:
    out = []
    for model in live.models.values():
        if not model.hooks_total:
            continue
        anchor = _anchor(analysis, model.var)
        if anchor is None:
            continue  # the document does not use this model
        listed = [h.describe() for h in model.hooks[:MAX_LISTED_HOOKS]]
        more = model.hooks_total - len(listed)
        n = model.hooks_total
        permanent = sum(h.permanent for h in model.hooks)
        message = (f"{n} hook{'s' if n != 1 else ''} still attached to {model.var} in the kernel: "
                   + ", ".join(listed) + (f", … {more} more" if more > 0 else "")
                   + ". They fire on every later forward, run_with_cache and patching run. "
                   + "'Reset hooks in kernel' runs reset_hooks(including_permanent=False)"
                   + ("; permanent hooks stay." if permanent else "."))
        severity = "information" if permanent == n else "warning"
        out.append(Finding(anchor[0], anchor[1], "live-hooks", severity, message))
    return out


def _anchor(analysis: Analysis, var: str) -> tuple[int, int] | None:
    """The model's module-level definition (the last one), else its first use as a global name."""
    defs = [d for d in analysis.scopes.definitions(var) if d.kind == "assign"]
    if defs:
        target = defs[-1].target
        ident = _identifier_in(target, var)
        node = ident if ident is not None else target
        return node.start_byte, node.end_byte
    source, root = analysis.source, analysis.parsed.root
    for m in re.finditer(rb"(?<![\w.])%s(?!\w)" % re.escape(var.encode()), source):
        node = root.descendant_for_byte_range(m.start(), m.end())
        if node is None or node.type != "identifier":
            continue  # in a string or a comment
        d = analysis.scopes.lookup(var, m.start())
        if d is None or _module_level(analysis, var, d.offset):
            return m.start(), m.end()
    return None


def _identifier_in(node, name: str):
    if node.type == "identifier":
        return node if node.text == name.encode() else None
    for child in node.named_children:
        found = _identifier_in(child, name)
        if found is not None:
            return found
    return None


def _not_cached(analysis: Analysis, live: LiveFacts) -> list[Finding]:
    out = []
    for ref in analysis.refs:
        if ref.context != "cache" or ref.template is None or ref.match != "exact" or ref.error:
            continue
        cache = _live_cache_of(analysis, ref)
        if cache is None or not cache.complete:
            continue
        key, _ = _lookup(cache, ref)
        if key is not None and key in cache.keys:
            continue
        model = live.models.get(cache.model or "")
        if model is not None and model.hook_templates is not None and ref.template not in model.hook_templates:
            continue  # not a hook point of the model at all: unknown-hook says so
        n_layers = model.spec.n_layers if model is not None else None
        if ref.layer is not None and n_layers is not None and not 0 <= ref.layer < n_layers:
            continue  # layer-out-of-range says so
        point = _point(analysis, ref, model)
        if point is not None and point.dead:
            continue  # never fires for this model: the hover says so
        gate = point.gate if point is not None else None
        if gate and ref.model is not None and not getattr(ref.model.effective_spec, gate):
            continue  # hook-not-enabled says so
        shown = ref.name() or (ref.template or "").replace("{l}", "{" + (ref.layer_expr or "l") + "}") + " (no layer)"
        if gate and model is not None and not getattr(model.spec, gate):
            why = (f"{gate} was off in the kernel when it was cached, so reading it raises KeyError. "
                   f"Run run_with_cache again now that model.set_{gate}(True) is in the code.")
        else:
            why = ("the run_with_cache that made it left it out (names_filter?), so reading it raises KeyError. "
                   "Add it to the names_filter and run that cell again.")
        out.append(Finding(ref.start, ref.end, "not-cached", "warning",
                           f"{shown} is not in the kernel's {cache.var} ({cache.n_keys} keys): {why}"))
    return out


def _point(analysis: Analysis, ref: HookRef, model: LiveModel | None):
    """The catalog's hook point for the reference, for the model that made the cache."""
    spec = model.spec if model is not None else (ref.model.effective_spec if ref.model is not None else None)
    if spec is None or not spec.structure_known or ref.template is None:
        return None
    tl_major = analysis.context.tl_major or (4 if spec.backend == "bridge" else 2)
    return catalog_for(spec, tl_major).get(ref.template)
