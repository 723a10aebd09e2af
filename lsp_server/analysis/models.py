"""Which names hold a model or an activation cache, and which model a cache came from.

Models are recognised by how research code builds them: ``HookedTransformer.from_pretrained(name)``,
``HookedTransformer(cfg)`` with ``cfg = HookedTransformerConfig(...)``, ``HookedSAETransformer``,
``TransformerBridge.boot_transformers(name | hf_model=...)``, ``TransformerBridge.boot_native(cfg)``,
and function parameters named or annotated as models. Caches come from ``run_with_cache`` (any
tuple target), ``ActivationCache(...)`` and parameters named ``*cache*``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..knowledge.hookpoints import BRIDGE_PROFILES, Catalog, catalog_for
from ..knowledge.spec import GATE_FLAGS, ModelSpec, SYMBOLIC
from .imports import followed
from .pytest_params import fixture_values, pytest_calls
from .scopes import Definition, Scopes, function_of
from .syntax import TYPED_PARAMETERS, Node, call_args, call_name, text
from .saes import sae_hook_name
from .value_types import Items, Seq, Value
from .values import Evaluator, returns_of, returns_own_container

HOOKED_CLASSES = frozenset({"HookedTransformer", "HookedSAETransformer", "HookedEncoder", "HookedMamba"})
BRIDGE_CLASSES = frozenset({"TransformerBridge"})
MODEL_CLASSES = HOOKED_CLASSES | BRIDGE_CLASSES


def is_bridge_code(source: bytes) -> bool:
    """The file uses TransformerBridge (TL 3.x/4.x), whose models may have any hook names."""
    return b"TransformerBridge" in source or b"model_bridge" in source
PRETRAINED_METHODS = frozenset({"from_pretrained", "from_pretrained_no_processing"})
BRIDGE_METHODS = frozenset({"boot_transformers", "boot", "boot_native"})
# Methods that return the model itself, so `model = model.to(device)` keeps the binding.
SELF_RETURNING = frozenset({"to", "cuda", "cpu", "eval", "train", "half", "float", "bfloat16", "requires_grad_"})
CONFIG_CLASSES = frozenset({"HookedTransformerConfig", "TransformerBridgeConfig"})
FLAG_SETTERS = {f"set_{flag}": flag for flag in GATE_FLAGS}
# TransformerBridge.enable_compatibility_mode's parameters, in order (TL 3.9 and 4.3).
COMPAT_PARAMETERS = ("disable_warnings", "no_processing", "fold_ln", "center_writing_weights", "center_unembed",
                     "fold_value_biases", "refactor_factored_attn_matrices")

# HookedTransformerConfig fields the spec carries, with their names there.
_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelSpec)) - {
    "name", "source", "backend", "structure_known", "tokenizer", "architecture", "compat_mode", "mlp_hook_in"}

# Config fields that are plain numbers (what `model.cfg.<field>` arithmetic in hook names uses).
_CONFIG_INTS = frozenset({"n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx", "n_key_value_heads"})

# Bytes that any model-constructing call contains (a C-speed filter over thousands of assignments).
_CONSTRUCTOR_HINT = re.compile(rb"from_pretrained|boot_|boot\(|Hooked\w*\(|TransformerBridge\(")
# A parameter annotated with a model class names it (most annotated parameters are tensors).
_MODEL_CLASS_HINT = re.compile(b"|".join(re.escape(c.encode()) for c in sorted(MODEL_CLASSES)))

# `cache.remove_batch_dim()`: the ActivationCache method, which drops the batch axis in place.
_UNBATCHING = re.compile(rb"(?<![\w.])([A-Za-z_]\w*)\s*\.\s*remove_batch_dim\s*\(\s*\)")

# Resolves an official or hub model name to a spec (official table, then the local HF cache).
NameResolver = Callable[[str], "ModelSpec | None"]


# Runs that return (output, ActivationCache): the model's own, and SAE Lens's with SAEs attached.
CACHING_RUNS = frozenset({"run_with_cache", "run_with_cache_with_saes"})

@dataclass
class ModelInfo:
    """A variable that holds a model."""

    var: str
    offset: int
    node: Node  # the constructing call, or the parameter
    kind: str  # "pretrained" | "config" | "bridge" | "native" | "param" | "alias" | "import"
    spec: ModelSpec
    backend_known: bool = True
    enabled_flags: set[str] = field(default_factory=set)
    compat_mode: bool = False
    # enable_compatibility_mode()'s arguments as written (``{"no_processing": "True"}``).
    compat_options: dict[str, str] = field(default_factory=dict)
    # Standing in for a model the code does not name here (a parameter no call site binds, a cache
    # known only by its name): its dimensions serve hovers, but which flags it has set is not known.
    stand_in: bool = False
    # effective_spec, for the spec, flags and mode it was made for (asked for by every key and stacking call).
    _effective: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def effective_spec(self) -> ModelSpec:
        """The spec with every flag the file switches on (and compatibility mode) for this model."""
        made_for = (frozenset(self.enabled_flags), self.compat_mode)
        if self._effective is not None and self._effective[0] is self.spec and self._effective[1] == made_for:
            return self._effective[2]
        flags = {f: True for f in self.enabled_flags}
        if self.compat_mode:
            flags["compat_mode"] = True
        effective = self.spec.with_flags(**flags) if flags else self.spec
        self._effective = (self.spec, made_for, effective)
        return effective

    def catalog(self, tl_major: int | None) -> Catalog | None:
        """The model's hook catalog when its structure is known, else None (lenient checks only)."""
        if not self.spec.structure_known:
            return None
        if self.spec.backend == "bridge" and self.spec.architecture not in BRIDGE_PROFILES:
            return None  # an architecture whose bridge hooks were never verified against TL
        return catalog_for(self.effective_spec, tl_major or (4 if self.spec.backend == "bridge" else 2))


@dataclass
class CacheInfo:
    var: str
    offset: int
    model: ModelInfo | None
    call: Node | None  # run_with_cache(...) call, when that is where it came from
    remove_batch_dim: bool = False
    pos_slice: bool = False
    # Set when the model was inferred, not seen: what was assumed, for hovers ("… assumed to be a cache of model").
    assumed: str | None = None


class Models:
    """Model and cache bindings of one document."""

    def __init__(self, scopes: Scopes, evaluator: Evaluator, resolve: NameResolver, flag_calls: list[Node],
                 live_specs: Mapping[str, ModelSpec] | None = None):
        self.scopes = scopes
        self.evaluator = evaluator
        self.resolve = resolve
        self.live_specs = live_specs or {}  # module-level variable -> spec of the model a kernel holds
        # Keyed by definition node id: (the model, the names and code ranges it was read from).
        self._models: dict[int, tuple[ModelInfo | None, frozenset[str], tuple]] = {}
        self._caches: dict[int, tuple[CacheInfo | None, frozenset[str], tuple]] = {}  # (cache, what it was read from)
        # Most files never remove a batch axis: then no call site is read for it.
        self._unbatching_mentioned = b"remove_batch_dim" in scopes.parsed.source
        self._unbatching: dict[str, list[int]] | None = None  # name -> where `name.remove_batch_dim()` is called
        self.all_models: list[ModelInfo] = []
        self._collect_models()
        self._apply_flag_calls(flag_calls)

    # -- models

    def _collect_models(self) -> None:
        candidates = self.scopes.definitions_where("model?", _may_build_model)
        if self.live_specs:  # a variable the kernel holds a model in, however the code builds it
            chosen = set(map(id, candidates))
            candidates += [d for d in self.scopes.all_definitions()
                           if d.kind == "assign" and d.name in self.live_specs and id(d) not in chosen]
        for d in candidates:
            info = self.model_of_definition(d)
            if info is not None and info.kind != "alias":
                self.all_models.append(info)
        self.all_models.sort(key=lambda m: m.offset)

    def fingerprint(self) -> tuple:
        """The file's models by value, where they are bound: versions whose fingerprints match (offsets mapped
        through an edit) have the same models, configured the same way."""
        return tuple((m.var, m.offset, m.kind, m.spec, frozenset(m.enabled_flags), m.compat_mode,
                      tuple(sorted(m.compat_options.items())), m.stand_in, m.backend_known) for m in self.all_models)

    def cache_names(self) -> set[str]:
        """Names that may hold a cache somewhere (a cheap filter before resolving subscripts)."""
        return {d.name for d in self.scopes.definitions_where("cache?", _may_hold_cache)}

    def model_of_definition(self, d: Definition, depth: int = 0) -> ModelInfo | None:
        return self.evaluator.memoised(self._models, id(d), lambda: self._model_and_live(d, depth))

    def _model_and_live(self, d: Definition, depth: int) -> ModelInfo | None:
        info = self._model_from(d, depth)
        return self._live(d, info) if d.name in self.live_specs else info

    def _live(self, d: Definition, info: ModelInfo | None) -> ModelInfo | None:
        """A module-level model variable the kernel holds: the kernel's spec replaces the static one,
        unless the static dims contradict it (the kernel's model came from another definition)."""
        if d.kind != "assign" or not any(x is d for x in self.scopes.definitions(d.name)):
            return info
        live = self.live_specs[d.name]
        if info is None:  # built by code the analysis does not recognise (`model = load()`)
            return ModelInfo(d.name, d.offset, d.node, "live", live)
        static = info.spec
        if (info.backend_known and static.backend != live.backend) or any(
                getattr(static, k) is not None and getattr(static, k) != getattr(live, k)
                for k in ("n_layers", "d_model", "n_heads")):
            return info
        merged = dataclasses.replace(live, name=static.name or live.name, tokenizer=live.tokenizer or static.tokenizer)
        return dataclasses.replace(info, spec=merged, backend_known=True)

    def _model_from(self, d: Definition, depth: int) -> ModelInfo | None:
        if d.kind == "param":
            return self._model_param(d)
        if d.kind == "import" and depth <= 4 and (found := followed(d.imported, self.evaluator.links)) is not None:
            # `from setup import model`: the model the workspace module builds (fixes insert after the import).
            other, definition = found
            inner = other.models.model_of_definition(definition, depth + 1)
            return dataclasses.replace(inner, var=d.name, offset=d.offset, node=d.node, kind="import") if inner else None
        if d.kind != "assign" or d.node.type != "call" or depth > 4:
            if d.kind == "assign" and d.node.type == "identifier" and depth <= 4:
                inner = self.model_at(d.node, depth + 1)
                return dataclasses.replace(inner, var=d.name, offset=d.offset, kind="alias") if inner else None
            return None
        call = d.node
        receiver, method, receiver_node = call_name(call)
        # `HookedTransformer(cfg).eval()`, `...from_pretrained(name).to(device)`: the inner call builds it.
        while method in SELF_RETURNING and receiver_node is not None and receiver_node.type == "call":
            call = receiver_node
            receiver, method, receiver_node = call_name(call)
        last = (receiver or "").rsplit(".", 1)[-1]
        if method in PRETRAINED_METHODS and last in HOOKED_CLASSES:
            return self._sae_lens_class(receiver, self._pretrained(d, call, "hooked"))
        if method in BRIDGE_METHODS and last in BRIDGE_CLASSES:
            return self._bridge(d, call, method)
        if receiver is None and method in HOOKED_CLASSES:
            return self._sae_lens_class(method, self._from_config(d, call, "hooked"))
        if method in SELF_RETURNING and receiver_node is not None:
            inner = self.model_at(receiver_node, depth + 1)
            return dataclasses.replace(inner, var=d.name, offset=d.offset, kind="alias") if inner else None
        return None

    def _sae_lens_class(self, dotted: str, info: ModelInfo | None) -> ModelInfo | None:
        """``info`` with SAE Lens's extra hook points when ``dotted`` names SAE Lens's HookedSAETransformer
        (``from sae_lens import HookedSAETransformer``), not TransformerLens's own."""
        if info is None or not dotted.endswith("HookedSAETransformer"):
            return info
        d = self.scopes.lookup(dotted.split(".")[0], info.offset)
        if d is None or d.kind != "import" or d.imported is None or d.imported.module.split(".")[0] != "sae_lens":
            return info
        info.spec = info.spec.with_flags(mlp_hook_in=True)
        return info

    def _model_param(self, d: Definition) -> ModelInfo | None:
        if not _may_be_model_param(d, self.scopes.parsed.source):
            return None  # (decided without finding the node: most parameters are not models)
        typed = d.node_type in TYPED_PARAMETERS
        p = d.node
        if (fixture := self._fixture_model(d)) is not None:
            return fixture
        annotation = text(p.child_by_field_name("type")) if typed else ""
        ann_last = annotation.rsplit(".", 1)[-1].strip("'\" ")
        if ann_last in MODEL_CLASSES or (not annotation and (d.name == "model" or d.name.endswith("_model"))):
            backend = "bridge" if ann_last in BRIDGE_CLASSES else "hooked"
            return self._sae_lens_class(annotation.strip("'\" "), ModelInfo(
                d.name, d.offset, p, "param", dataclasses.replace(SYMBOLIC, backend=backend),
                backend_known=bool(ann_last in MODEL_CLASSES)))
        return None

    def _fixture_model(self, d: Definition) -> ModelInfo | None:
        """A test's ``model`` parameter where the ``@pytest.fixture`` function ``model`` returns or yields one
        model: that model (pytest passes what the fixture of the parameter's name makes). The fixture is looked
        for in this file, then in the ``conftest.py`` files of its folder and the folders above."""
        fn = function_of(d.node)
        if fn is None or fn.type != "function_definition" or not pytest_calls(fn):
            return None
        local = self.scopes.lookup(d.name, fn.start_byte)
        if local is not None and local.kind == "def" and local.node.start_byte != fn.start_byte:
            return self._fixture_of(local.node, d, self)
        for conftest in self.evaluator.links.conftests() if self.evaluator.links is not None else ():
            found = [x for x in conftest.scopes.definitions(d.name) if x.kind == "def"]
            if found:
                return self._fixture_of(found[-1].node, d, conftest.models)
        return None

    def _fixture_of(self, fixture: Node, d: Definition, models: "Models") -> ModelInfo | None:
        """The one model ``fixture`` (a function of ``models``' file) hands over, as the parameter ``d``."""
        found = [models.model_at(v) for v in fixture_values(fixture) or ()]
        if not found or None in found or len({id(m) for m in found}) != 1:
            return None
        if models is self:
            return dataclasses.replace(found[0], var=d.name, offset=d.offset, kind="alias")
        # Another file's model: fixes insert at the parameter, as for an imported model.
        return dataclasses.replace(found[0], var=d.name, offset=d.offset, node=d.node, kind="import")

    def _pretrained(self, d: Definition, call: Node, backend: str) -> ModelInfo:
        positional, keywords = call_args(call)
        name_node = positional[0] if positional else keywords.get("model_name")
        name = self.evaluator.eval(name_node)
        spec = None
        if isinstance(name, str):
            spec = self.resolve(name)
            if spec is None:
                spec = dataclasses.replace(SYMBOLIC, name=name, source=f"'{name}' is not in the official table or the local Hugging Face cache")
        spec = dataclasses.replace(spec or SYMBOLIC, backend=backend)  # type: ignore[arg-type]
        info = ModelInfo(d.name, d.offset, call, "pretrained", spec)
        info.enabled_flags |= self._flag_kwargs(keywords)
        return info

    def _bridge(self, d: Definition, call: Node, method: str) -> ModelInfo:
        positional, keywords = call_args(call)
        if method == "boot_native":
            cfg_node = positional[0] if positional else keywords.get("config")
            spec = self._spec_from_config_node(cfg_node) or SYMBOLIC
            spec = dataclasses.replace(spec, backend="bridge", architecture=spec.architecture or "native")
            return ModelInfo(d.name, d.offset, call, "native", spec)
        spec = None
        if "hf_model" in keywords:
            spec = self._spec_from_hf_model(keywords["hf_model"])
        if spec is None:
            name = self.evaluator.eval(positional[0] if positional else keywords.get("model_name"))
            if isinstance(name, str):
                spec = self.resolve(name) or dataclasses.replace(
                    SYMBOLIC, name=name, source=f"'{name}' is not in the official table or the local Hugging Face cache")
        spec = dataclasses.replace(spec or SYMBOLIC, backend="bridge")
        return ModelInfo(d.name, d.offset, call, "bridge", spec)

    def _from_config(self, d: Definition, call: Node, backend: str) -> ModelInfo | None:
        positional, keywords = call_args(call)
        cfg_node = positional[0] if positional else keywords.get("cfg")
        spec = self._spec_from_config_node(cfg_node)
        if spec is None:
            spec = SYMBOLIC
        return ModelInfo(d.name, d.offset, call, "config", dataclasses.replace(spec, backend=backend))  # type: ignore[arg-type]

    def _spec_from_config_node(self, node: Node | None, depth: int = 0) -> ModelSpec | None:
        """A spec from ``HookedTransformerConfig(...)`` / ``TransformerBridgeConfig(...)`` / a dict literal."""
        if node is None or depth > 3:
            return None
        if node.type == "identifier":
            d = self.scopes.lookup(text(node), node.start_byte)
            return self._spec_from_config_node(d.node, depth + 1) if d and d.kind == "assign" else None
        kwargs = self._literal_kwargs(node, depth)
        if kwargs is None:
            return None
        line = node.start_point[0] + 1
        return spec_from_tl_config(kwargs, source=f"config in this file (line {line})")

    def _literal_kwargs(self, node: Node, depth: int) -> dict | None:
        """Literal keyword values of a config call or dict, following ``**cfg_dict`` one step."""
        if node.type == "dictionary":
            out = {}
            for pair in node.named_children:
                if pair.type == "pair":
                    key = self.evaluator.eval(pair.child_by_field_name("key"))
                    if isinstance(key, str):
                        out[key] = self.evaluator.eval(pair.child_by_field_name("value"))
            return out
        if node.type != "call":
            return None
        _, fname, _ = call_name(node)
        if fname not in CONFIG_CLASSES and fname != "dict":
            return None
        out: dict = {}
        args = node.child_by_field_name("arguments")
        for child in args.named_children if args is not None else ():
            if child.type == "keyword_argument":
                out[text(child.child_by_field_name("name"))] = self.evaluator.eval(child.child_by_field_name("value"))
            elif child.type == "dictionary_splat" and child.named_children:
                inner = child.named_children[0]
                if inner.type == "identifier":
                    d = self.scopes.lookup(text(inner), inner.start_byte)
                    inner = d.node if d and d.kind == "assign" else inner
                nested = self._literal_kwargs(inner, depth + 1)
                if nested:
                    out.update(nested)
        return out

    def _spec_from_hf_model(self, node: Node) -> ModelSpec | None:
        """``hf_model=GPT2LMHeadModel(GPT2Config(...))``: dims from the HF config literal."""
        from ..knowledge import hf_config  # local import: only needed for this rarer form

        if node.type == "identifier":
            d = self.scopes.lookup(text(node), node.start_byte)
            if d is None or d.kind != "assign":
                return None
            node = d.node
        while node.type == "call":
            _, fname, receiver = call_name(node)
            if fname in ("eval", "to") and receiver is not None:
                node = receiver  # `GPT2LMHeadModel(...).eval()`
                continue
            positional, keywords = call_args(node)
            cfg = positional[0] if positional else keywords.get("config")
            if cfg is None:
                return None
            if cfg.type == "identifier":
                d = self.scopes.lookup(text(cfg), cfg.start_byte)
                cfg = d.node if d and d.kind == "assign" else cfg
            if cfg.type != "call":
                return None
            _, cfg_class, _ = call_name(cfg)
            _, kwargs = call_args(cfg)
            values = {k: self.evaluator.eval(v) for k, v in kwargs.items()}
            return hf_config.spec_from_config_class(cfg_class or "", values, fname or "",
                                                    source=f"config in this file (line {cfg.start_point[0] + 1})")
        return None

    @staticmethod
    def _flag_kwargs(keywords: dict[str, Node]) -> set[str]:
        return {k for k, v in keywords.items() if k in GATE_FLAGS and text(v) == "True"}

    def _apply_flag_calls(self, flag_calls: list[Node]) -> None:
        """``model.set_use_attn_result(True)`` anywhere enables the flag for that model."""
        for call in flag_calls:
            receiver, method, receiver_node = call_name(call)
            if receiver_node is None:
                continue
            model = self.model_at(receiver_node)
            if model is None:
                continue
            if method == "enable_compatibility_mode":
                model.compat_mode = True
                positional, keywords = call_args(call)
                model.compat_options.update({name: text(v) for name, v in zip(COMPAT_PARAMETERS, positional)})
                model.compat_options.update({name: text(v) for name, v in keywords.items()})
                continue
            flag = FLAG_SETTERS.get(method or "")
            positional, keywords = call_args(call)
            value = positional[0] if positional else keywords.get(flag or "")
            if flag and (value is None or text(value) != "False"):
                model.enabled_flags.add(flag)
                for other in self.all_models:
                    if other.var == model.var and other.node == model.node:
                        other.enabled_flags.add(flag)

    def model_at(self, node: Node, depth: int = 0) -> ModelInfo | None:
        """The model an expression (a name, or ``self.model``-style attribute) refers to."""
        if node.type == "identifier":
            d = self.scopes.lookup(text(node), node.start_byte)
            if d is None:
                return None
            info = self.model_of_definition(d, depth)
            if info is not None and info.kind == "alias":
                # share flags with the original binding
                for m in self.all_models:
                    if m.node == info.node:
                        return m
            return info
        return None

    def attribute_value(self, node: Node, depth: int) -> Value:
        """`model.cfg.n_layers` once the model is known; `sae.cfg.hook_name` of an SAE loaded by id (evaluated
        ``depth`` deep)."""
        value = self.config_value(node)
        return value if value is not None else sae_hook_name(node, self.scopes, self.evaluator, depth)

    def config_value(self, node: Node) -> int | None:
        """``model.cfg.n_layers``, ``cfg.d_model`` (``cfg = model.cfg`` or a config built in the file):
        the number when the model's configuration is known, else None."""
        if node.type != "attribute":
            return None
        field = text(node.child_by_field_name("attribute"))
        if field not in _CONFIG_INTS:
            return None
        spec = self._config_spec(node.child_by_field_name("object"))
        value = getattr(spec, field, None) if spec is not None else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _config_spec(self, node: Node | None, depth: int = 0) -> ModelSpec | None:
        """The spec behind ``model.cfg``, or a name bound to it or to a config call."""
        if node is None or depth > 3:
            return None
        if node.type == "attribute" and text(node.child_by_field_name("attribute")) == "cfg":
            base = node.child_by_field_name("object")
            model = self.model_at(base) if base is not None else None
            return model.effective_spec if model is not None and model.spec.structure_known else None
        if node.type == "identifier":
            d = self.scopes.lookup(text(node), node.start_byte)
            if d is None or d.kind != "assign" or d.target.type != "identifier":
                return None
            if d.node.type == "attribute":
                return self._config_spec(d.node, depth + 1)
            return self._spec_from_config_node(d.node)
        return None

    def sole_model(self) -> ModelInfo | None:
        """The file's only constructed model (used when a parameter's model cannot be known)."""
        built = [m for m in self.all_models if m.kind != "param"]
        distinct = {(m.spec.name, m.spec.n_layers, m.spec.backend) for m in built}
        return built[-1] if built and len(distinct) == 1 else None

    # -- caches

    def cache_at(self, node: Node) -> CacheInfo | None:
        """The cache a name refers to, if it holds one."""
        if node.type != "identifier":
            return None
        return self.cache_named(text(node), node.start_byte)

    def cache_named(self, name: str, offset: int) -> CacheInfo | None:
        """The cache ``name`` holds at ``offset``, if it holds one."""
        d = self.scopes.lookup(name, offset)
        if d is None:
            return None
        info = self.evaluator.memoised(self._caches, id(d), lambda: self._cache_from(d))
        if info is not None and not info.remove_batch_dim and self._unbatching_mentioned and self._unbatched_before(d, offset):
            return dataclasses.replace(info, remove_batch_dim=True)
        return info

    def _unbatched_before(self, d: Definition, offset: int) -> bool:
        """Whether ``cache.remove_batch_dim()`` is called on this binding before ``offset``, in a block that
        holds ``offset`` (so that every path to the read ran it)."""
        if self._unbatching is None:  # every `<name>.remove_batch_dim()` (rare: found by the method's name first)
            source, self._unbatching, at = self.scopes.parsed.source, {}, 0
            while (at := source.find(b"remove_batch_dim", at + 1)) >= 0:
                line_start = source.rfind(b"\n", 0, at) + 1
                if (m := _UNBATCHING.search(source, line_start, at + 32)) is not None and m.end(1) <= at:
                    self._unbatching.setdefault(m.group(1).decode(), []).append(m.start(1))
        for at in self._unbatching.get(d.name, ()):
            if not d.offset <= at < offset or self.scopes.lookup(d.name, at) is not d:
                continue
            node = self.scopes.parsed.root.descendant_for_byte_range(at, at)
            while node is not None and node.type != "expression_statement":
                node = node.parent
            block = node.parent if node is not None else None
            if block is not None and block.start_byte <= offset < block.end_byte and node.end_byte <= offset:
                return True
        return False

    def _cache_from(self, d: Definition) -> CacheInfo | None:
        if d.kind == "param":
            if "cache" not in d.name.lower():
                return None
            return CacheInfo(d.name, d.offset, None, None, remove_batch_dim=self._passed_unbatched(d))
        if d.kind != "assign":
            return None
        value = d.node
        if value.type == "call":
            receiver, method, receiver_node = call_name(value)
            if method in CACHING_RUNS:
                # `logits, cache = ...` -> the cache is the last element; a bare target holds the tuple.
                if d.target.type == "identifier" and "return_cache_object" not in text(value):
                    return None
                if d.target.type != "identifier":
                    names = [text(c) for c in d.target.named_children]
                    if not names or names[-1] != d.name:
                        return None
                model = self.model_at(receiver_node) if receiver_node is not None else None
                _, keywords = call_args(value)
                return CacheInfo(d.name, d.offset, model, value,
                                 remove_batch_dim=text(keywords.get("remove_batch_dim")) == "True",
                                 pos_slice="pos_slice" in keywords and text(keywords["pos_slice"]) != "None")
            if method == "ActivationCache" or (receiver or "").endswith("ActivationCache"):
                positional, keywords = call_args(value)
                model_node = positional[1] if len(positional) > 1 else keywords.get("model")
                model = self.model_at(model_node) if model_node is not None else None
                return CacheInfo(d.name, d.offset, model, value)
            if "cache" in d.name.lower() and d.target.type == "identifier":
                return self._cache_from_helper(d, value)
        if value.type == "identifier":
            return self.cache_at(value)
        return None


    def _passed_unbatched(self, param: Definition) -> bool:
        """Whether every call site in this file passes the parameter a cache made with ``remove_batch_dim=True``
        (its tensors then have no batch axis)."""
        caches = self.passed_caches(param) if self._unbatching_mentioned else None
        return bool(caches) and all(c is not None and c.remove_batch_dim for c in caches)

    def passed_caches(self, param: Definition) -> list[CacheInfo | None] | None:
        """The cache each call site in this file passes the parameter (None for an argument that holds no
        cache, or a call site in another file); None when the function's call sites are not known. (A cycle
        of helpers passing a cache on ends at :meth:`cache_named`'s guard.)"""
        fn = function_of(param.node)
        passed = self.evaluator.passed(fn, param.name) if fn is not None else None
        if not passed:
            return None
        return [self.cache_at(p.argument) if p.evaluator is self.evaluator and p.argument is not None else None
                for p in passed]

    def _cache_from_helper(self, d: Definition, call: Node) -> CacheInfo | None:
        """``clean_cache = run_and_cache(model, prompts)``: a cache from the user's own function, of the
        model passed to it (else the file's only model), with what was assumed."""
        fname = text(call.child_by_field_name("function"))
        called = self.evaluator.function_called(call)
        if called is not None and called[0] is self.evaluator:  # what the helper returns decides: any edit of it counts
            self.evaluator.note_reads(frozenset(), ((called[1].start_byte, called[1].end_byte),))
        if called is not None and returns_own_container(called[1], called[0].scopes):
            return None  # `bundled_cache = bundle(cache)`: a dict the helper fills under keys of its own
        returned = self.returned_cache(called[1]) if called is not None and called[0] is self.evaluator else None
        unbatched = returned is not None and returned.remove_batch_dim  # the helper's run said so
        positional, keywords = call_args(call)
        for arg in [*positional, *keywords.values()]:
            model = self.model_at(arg) if arg.type == "identifier" else None
            if model is not None:
                return CacheInfo(d.name, d.offset, model, call, remove_batch_dim=unbatched, assumed=(
                    f"`{d.name}` comes from `{fname}(…)`: assumed to be a cache of `{text(arg)}`, the model passed to it"))
        sole = self.sole_model()
        if sole is None or (call_name(call)[1] not in self.scopes.function_defs and called is None):
            return None
        return CacheInfo(d.name, d.offset, sole, call, remove_batch_dim=unbatched, assumed=(
            f"`{d.name}` comes from `{fname}(…)`: assumed to be a cache of `{sole.var}`, the file's model"))

    def returned_cache(self, fn: Node) -> CacheInfo | None:
        """The cache of a caching run that a function of this file returns (``return cache``), when every
        ``return`` returns that one name."""
        self.evaluator.note_reads(frozenset(), ((fn.start_byte, fn.end_byte),))  # any edit of the helper counts
        returns = returns_of(fn)
        values = [r.named_children[0] if r.named_children else None for r in returns]
        if not values or any(v is None or v.type != "identifier" for v in values) or len({text(v) for v in values}) != 1:
            return None
        inner = self.cache_at(values[0])
        run = inner.call if inner is not None else None
        return inner if run is not None and run.type == "call" and call_name(run)[1] in CACHING_RUNS else None


def spec_from_tl_config(kwargs: dict, source: str) -> ModelSpec:
    """A spec from ``HookedTransformerConfig`` / ``TransformerBridgeConfig`` keyword values."""
    fields = {k: v for k, v in kwargs.items() if k in _CONFIG_FIELDS and not isinstance(v, (Seq, Items))}
    fields = {k: v for k, v in fields.items() if v is not None or k == "normalization_type"}
    clean: dict = {}
    for k, v in fields.items():
        default = getattr(SYMBOLIC, k)
        if isinstance(default, bool) and not isinstance(v, bool):
            continue
        if k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx", "n_key_value_heads",
                 "rotary_dim", "num_experts", "experts_per_token") and not (isinstance(v, int) and not isinstance(v, bool)):
            continue
        clean[k] = v
    if clean.get("n_heads", -1) == -1 and clean.get("d_model") and clean.get("d_head"):
        clean["n_heads"] = clean["d_model"] // clean["d_head"]
    if clean.get("d_vocab") == -1:
        del clean["d_vocab"]
    if "d_mlp" not in clean and clean.get("d_model") and not clean.get("attn_only"):
        clean["d_mlp"] = 4 * clean["d_model"]
    return dataclasses.replace(SYMBOLIC, source=source, structure_known=True, **clean)


def _may_build_model(d: Definition, source: bytes) -> bool:
    """A parameter that may hold a model, or an assignment from a call that looks like it builds one (read from
    the text only)."""
    if d.kind == "param":
        return _may_be_model_param(d, source)
    return d.kind == "assign" and d.node_type == "call" and d.target_type == "identifier" \
        and _CONSTRUCTOR_HINT.search(d.node_bytes(source)) is not None


def _may_be_model_param(d: Definition, source: bytes) -> bool:
    """A parameter named as a model (``model``, ``base_model``), or annotated with what may be a model's class."""
    if d.node_type in TYPED_PARAMETERS:
        return _MODEL_CLASS_HINT.search(d.node_bytes(source)) is not None
    return d.name == "model" or d.name.endswith("_model")


def _may_hold_cache(d: Definition, source: bytes) -> bool:
    """A name that may hold a cache (read from the text only)."""
    if d.kind == "param":
        return "cache" in d.name.lower()
    if d.kind != "assign" or d.node_type not in ("call", "identifier"):
        return False
    value = d.node_bytes(source)
    if b"run_with_cache" in value and _first_of_several(d.target, d.name):
        return False  # `logits, cache = model.run_with_cache(x)`: the logits
    return b"run_with_cache" in value or b"ActivationCache" in value or d.node_type == "identifier"


def _first_of_several(target: Node, name: str) -> bool:
    """Whether ``name`` is the first of several names a tuple target binds (``logits`` in ``logits, cache = ...``)."""
    if target.type not in ("pattern_list", "tuple_pattern"):
        return False
    names = target.named_children
    return len(names) > 1 and names[0].type == "identifier" and text(names[0]) == name
