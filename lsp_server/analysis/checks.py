"""Name diagnostics: unknown hooks, layers out of range, gated hooks, removed APIs.

Calm by design: a finding is reported only when the model (or, for plain typos, every model)
makes the failure certain; anything the server cannot resolve stays silent.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re

from ..knowledge.act_names import GLOBAL_SHORT_NAMES, SHORT_NAMES, get_act_name
from ..knowledge.hookpoints import Catalog, HookPoint, union_templates
from ..knowledge.sae_hooks import SAE_POINTS, split_sae_name
from .findings import Edit, Finding, Fix, sentence
from .hook_filters import SAID, matching_layers
from .hookrefs import HookRef
from .migration import migrate_config, migrate_hooked_transformer
from .models import ModelInfo, is_bridge_code
from .syntax import TYPED_PARAMETERS, Node, Parsed, descendants, statement_of, text

_GATE_SETTERS = {
    "use_attn_result": "set_use_attn_result",
    "use_split_qkv_input": "set_use_split_qkv_input",
    "use_attn_in": "set_use_attn_in",
    "use_hook_mlp_in": "set_use_hook_mlp_in",
    "use_hook_tokens": None,  # a config flag only: there is no setter
}


def _may_carry_saes(model: ModelInfo | None) -> bool:
    """Whether SAE Lens may have attached SAEs to the model, adding hook names like `….hook_sae_error`: a
    HookedSAETransformer, or a model the code does not show (none known, a stand-in, a parameter not annotated
    as another class)."""
    if model is None or model.stand_in or "HookedSAETransformer" in text(model.node):
        return True
    return model.kind == "param" and model.node.type not in TYPED_PARAMETERS


def _pattern(template: str) -> re.Pattern:
    return re.compile(re.escape(template).replace(re.escape("{l}"), r"\d+").replace(re.escape("{e}"), r"\d+"))


class NameChecker:
    def __init__(self, parsed: Parsed, tl_major: int | None, flags_mentioned: set[str], forked: bool = False):
        """``forked``: the document imports the workspace's own copy of TransformerLens (a fork, or its own
        repository), whose models may have hook points the catalog does not know: no name is unknown."""
        self.parsed = parsed
        self.forked = forked
        self.tl_major = tl_major
        self.flags_mentioned = flags_mentioned  # gate flags the file switches on anywhere
        # TransformerBridge code: a bridge of an architecture we do not know (Mamba's
        # `blocks.0.mixer.conv1d.hook_in`, ...) may have any names, so without a known model none is judged.
        self.bridge_code = is_bridge_code(parsed.source)

    def catalog(self, model: ModelInfo | None) -> Catalog | None:
        return model.catalog(self.tl_major) if model is not None else None

    def check(self, refs: list[HookRef]) -> list[Finding]:
        out: list[Finding] = []
        # A name computed by `x = get_act_name(...)` is judged once, at that call, not at every use of x.
        judged_calls = {r.start for r in refs if r.context == "act_name"}
        for ref in refs:
            if ref.computed_at is not None and ref.computed_at in judged_calls or ref.context in ("store", "key"):
                continue  # judged at its get_act_name call; a dict's keys are the user's to choose
            finding = self._check(ref)
            if finding is not None and not (ref.context == "cache" and not ref.error and self._probed(ref)):
                out.append(finding)
        return out

    def _probed(self, ref: HookRef) -> bool:
        """``if key in cache: x = cache[key]`` (or ``if key not in cache: continue`` before the read), or the read
        in a ``try`` whose ``except`` names KeyError: the code asks the cache first, or expects the read to fail, so a name
        it lacks is a probe (research code tries several spellings in turn), not an error. So is one under
        ``with contextlib.suppress(KeyError):``."""
        key = self.parsed.root.descendant_for_byte_range(ref.start, ref.end)
        if key is not None and key.type == "subscript" and key.start_byte < ref.start:
            subscript = key  # `cache["result", 0]`: the ref spans the subscript's keys
        else:
            while key is not None and key.parent is not None and key.parent.type != "subscript":
                key = key.parent if key.parent.start_byte == ref.start and key.parent.end_byte == ref.end else None
            if key is None or key.parent is None:
                return False
            subscript = key.parent
        # The key as written, or as the literal hook name it reads (`cache["result", 0]` after a test of
        # `"blocks.0.attn.hook_result" in cache`).
        name = ref.name()
        written = (self.parsed.source[ref.start:ref.end].decode("utf-8", "replace"),
                   *((f'"{name}"', f"'{name}'") if name is not None else ()))
        cache = text(subscript.child_by_field_name("value"))
        node = subscript
        while node.parent is not None and node.type not in ("function_definition", "class_definition", "module"):
            parent = node.parent
            condition = None
            if parent.type in ("if_statement", "elif_clause") and node == parent.child_by_field_name("consequence"):
                condition = parent.child_by_field_name("condition")
            elif parent.type == "conditional_expression" and node == parent.named_children[0]:
                condition = parent.named_children[1]
            if condition is not None and _tests_membership(condition, written, cache):
                return True
            if parent.type == "try_statement" and node == parent.child_by_field_name("body") and _catches_key_error(parent):
                return True
            if parent.type == "with_statement" and node == parent.child_by_field_name("body") and _suppresses_key_error(parent):
                return True
            if parent.type in ("block", "module") and any(
                    _leaves_unless_present(before, written, cache) for before in _statements_before(node)):
                return True
            node = parent
        return False

    def _check(self, ref: HookRef) -> Finding | None:
        if ref.error:
            return Finding(ref.start, ref.end, "unknown-hook", "error", ref.error)
        if ref.template is None or ref.template.startswith("hook_sae_"):
            return None  # unresolved, or an SAE's own cache (`sae.run_with_cache`): not ours to judge
        if (sae := split_sae_name(ref.template)) is not None:
            # The SAE's own hooks exist while it is attached; the model hook under them must exist.
            found = self._check(dataclasses.replace(ref, template=sae[0], literal=None))
            if found is not None:
                found = dataclasses.replace(found, message=f"{found.message} (SAE Lens adds `{sae[1]}` under the "
                                                            "model hook its SAE is attached to.)")
            return found
        catalog = self.catalog(ref.model)
        if ref.match != "exact":
            return self._check_filter(ref, catalog)
        found = catalog.lookup(ref.template.replace("{l}", "0")) if catalog else None
        point = found[0] if found else None
        if point is None:
            return self._unknown(ref, catalog)
        if (f := self._layer(ref, catalog)) is not None:
            return f
        if point.gate and not getattr(catalog.spec, point.gate) and point.gate not in self.flags_mentioned \
                and not ref.model.stand_in:  # a stand-in's flags are its caller's: unknown
            return self._not_enabled(ref, point)
        if point.dead:
            return Finding(ref.start, ref.end, "unknown-hook", "warning",
                           sentence(f"'{_shown(ref)}' exists on {catalog.spec.label} but never fires: {point.dead}"))
        return None

    # -- unknown names

    def _unknown(self, ref: HookRef, catalog: Catalog | None) -> Finding | None:
        template = ref.template or ""
        if self.forked or _under_hook_point(template, catalog):
            return None
        if catalog is None:
            if self.bridge_code or template in union_templates() or not _looks_like_hook(template):
                return None
            candidates = tuple(sorted(union_templates()))
            where = "any TransformerLens model"
        else:
            candidates = tuple(catalog.templates())
            where = catalog.spec.label
        name = _shown(ref)
        message = f"'{name}' is not a hook point of {where}."
        if ref.pitfall:
            message = f"{ref.pitfall} ('{name}' is not a hook point of {where}.)"
        if ref.context == "cache" and ref.how and "get_act_name" in ref.how and "→" in ref.how:
            message = f"{ref.how}, which is not a hook point of {where}."
            short = template.removeprefix("hook_").removeprefix("blocks.{l}.hook_")
            if template.startswith("hook_") and any(c.endswith("." + template) for c in candidates):
                message += f" '{short}' is per layer: index it as cache[{short!r}, layer]."
            if template.endswith(("hook_scale", "hook_normalized")) and ".ln" not in template:
                message += " LayerNorm hooks need a layer type: cache['scale', layer, 'ln1'] (or 'ln2')."
        fixes: tuple[Fix, ...] = ()
        short = _short_suggestion(ref, candidates) if ref.short is not None else None
        suggestion = None if short else _suggest(template, candidates)
        if short is not None and ref.short is not None:
            written, expands_to = short
            message += f" Did you mean {written!r} ({expands_to})?"
            (start, end) = ref.short[1]
            fixes = (Fix(f"Replace with '{written}'", (Edit(start, end, written),), True),)
        if suggestion:
            shown = suggestion.replace("{l}", str(ref.layer)) if ref.layer is not None else suggestion
            message += f" Did you mean '{shown}'?"
            if ref.literal is not None and ref.context != "cache" or (ref.literal and ref.how is None):
                if "{l}" not in shown:
                    fixes = (Fix(f"Replace with '{shown}'", (Edit(ref.literal[0], ref.literal[1], shown),), True),)
        return Finding(ref.start, ref.end, "unknown-hook", "error", message, fixes)

    def _check_filter(self, ref: HookRef, catalog: Catalog | None) -> Finding | None:
        needle = ref.template or ""
        if catalog is None and self.bridge_code:
            return None
        templates = tuple(catalog.templates()) if catalog else tuple(sorted(union_templates()))
        n_layers = catalog.spec.n_layers if catalog else None
        # A filter may name one layer (`name.endswith(".11.hook_resid_post")`); with no model known,
        # any name containing the needle will do.
        if any(matching_layers(t, needle, ref.match, n_layers) or catalog is None and matching_layers(t, needle, "substring", None)
               for t in templates):
            return None
        if _may_carry_saes(ref.model) and any(matching_layers(f"{t}.{point}", needle, ref.match, n_layers)
                                              for t in templates for point in SAE_POINTS):
            return None  # `lambda name: "error" in name`: SAE Lens's `….hook_sae_error`, under an attached SAE
        where = catalog.spec.label if catalog else "any TransformerLens model"
        return Finding(ref.start, ref.end, "unknown-hook", "warning",
                       f"This filter matches no hook point of {where}: no hook name {SAID[ref.match]} {needle!r}.")

    # -- layers

    def _layer(self, ref: HookRef, catalog: Catalog | None) -> Finding | None:
        if ref.layer is None or catalog is None or catalog.spec.n_layers is None or "{l}" not in (ref.template or ""):
            return None
        n = catalog.spec.n_layers
        if 0 <= ref.layer < n:
            return None
        written = ref.written_layer if ref.written_layer is not None else ref.layer
        extra = ""
        if ref.context == "cache" and written < 0:
            extra = f" (the cache wraps a negative layer once: {written} + {n} = {ref.layer})"
        elif written < 0:
            extra = " (only cache[name, layer] wraps negative layers; hook names need the real index)"
        return Finding(ref.start, ref.end, "layer-out-of-range", "error",
                       f"Layer {written} is out of range for {catalog.spec.label}: it has {n} layers (0–{n - 1}){extra}.")

    # -- gated hooks

    def _not_enabled(self, ref: HookRef, point: HookPoint) -> Finding:
        gate = point.gate or ""
        model = ref.model
        backend = model.spec.backend if model else "hooked"
        consequence = {
            "cache": "the cache will not contain it (KeyError)",
            "hook": "add_hook raises; run_with_hooks never calls the hook"
            if backend == "hooked" else "TransformerBridge raises ValueError",
            "filter": "run_with_cache silently skips it",
        }.get(ref.context, "it never fires")
        setter = _GATE_SETTERS.get(gate)
        how_to = f"call {model.var if model else 'model'}.{setter}(True) first" if setter else f"set {gate}=True in the config"
        message = f"'{_shown(ref)}' only fires when {gate} is on: {consequence}; {how_to}."
        fixes: tuple[Fix, ...] = ()
        if setter and model is not None and model.kind != "param":
            fixes = (insert_after_statement(self.parsed.source, model.node, f"{model.var}.{setter}(True)",
                                            f"Insert {model.var}.{setter}(True) after the model is created"),)
        return Finding(ref.start, ref.end, "hook-not-enabled", "warning", message, fixes)


def _statements_before(statement: Node) -> list[Node]:
    """The statements of ``statement``'s block before it, nearest first (a few: guards sit just above)."""
    out, node = [], statement.prev_named_sibling
    while node is not None and len(out) < 8:
        out.append(node)
        node = node.prev_named_sibling
    return out


def _leaves_unless_present(statement: Node, key: tuple[str, ...], cache: str) -> bool:
    """``if key not in cache: continue`` (``return``, ``break``, ``raise``; the test may be one of an ``or``)."""
    if statement.type != "if_statement" or statement.child_by_field_name("alternative") is not None:
        return False
    body = statement.child_by_field_name("consequence")
    last = body.named_children[-1] if body is not None and body.named_children else None
    return last is not None and last.type in ("continue_statement", "return_statement", "break_statement",
                                              "raise_statement") and \
        _tests_membership(statement.child_by_field_name("condition"), key, cache, negated=True)


# What a missing cache key raises, named: a broader catch (`except Exception:`, a bare `except:`) guards a block
# against anything, and a typo'd name there would fail silently, so its reads are still judged.
_CATCHES_KEY_ERROR = re.compile(r"\b(KeyError|LookupError)\b")


def _catches_key_error(try_statement: Node) -> bool:
    """Whether a ``try`` has an ``except`` that names KeyError (or LookupError)."""
    for clause in try_statement.named_children:
        if clause.type == "except_clause":
            caught = [c for c in clause.named_children if c.type != "block"]
            if caught and _CATCHES_KEY_ERROR.search(text(caught[0])):
                return True
    return False


def _suppresses_key_error(with_statement: Node) -> bool:
    """Whether a ``with`` suppresses KeyError by name (``contextlib.suppress(KeyError)``)."""
    clause = next((c for c in with_statement.named_children if c.type == "with_clause"), None)
    return clause is not None and any(
        text(call.child_by_field_name("function")).rsplit(".", 1)[-1] == "suppress"
        and _CATCHES_KEY_ERROR.search(text(call.child_by_field_name("arguments"))) for call in descendants(clause, "call"))


def _tests_membership(condition: Node, key: tuple[str, ...], cache: str, negated: bool = False) -> bool:
    """Whether ``condition`` holds ``key in cache`` (or ``in cache.keys()``; ``key``: the ways it may be written), alone
    or in an ``and``; with ``negated``, whether it holds ``key not in cache``, alone or in an ``or``."""
    if condition.type == "parenthesized_expression" and condition.named_child_count == 1:
        return _tests_membership(condition.named_children[0], key, cache, negated)
    if condition.type == "boolean_operator" and text(condition.child_by_field_name("operator")) == ("or" if negated else "and"):
        return any(_tests_membership(condition.child_by_field_name(side), key, cache, negated) for side in ("left", "right"))
    if condition.type != "comparison_operator" or condition.named_child_count != 2 or \
            [text(c) for c in condition.children if not c.is_named] != ["not in" if negated else "in"]:
        return False
    left, right = condition.named_children
    return text(left) in key and text(right).replace(" ", "") in (cache, f"{cache}.keys()", f"{cache}.cache_dict")


def insert_after_statement(source: bytes, node: Node, code: str, title: str) -> Fix:
    """A fix that puts ``code`` on a new line after the statement holding ``node``, at its indentation."""
    stmt = statement_of(node)
    line_start = source.rfind(b"\n", 0, stmt.start_byte) + 1
    indent = source[line_start:stmt.start_byte].decode("utf-8", "replace")
    indent = indent if not indent.strip() else ""
    end = source.find(b"\n", stmt.end_byte)
    end = len(source) if end < 0 else end
    return Fix(title, (Edit(end, end, "\n" + indent + code),), True)


def _shown(ref: HookRef) -> str:
    name = ref.name()
    if name is not None:
        return name
    return (ref.template or "").replace("{l}", "{" + (ref.layer_expr or "layer") + "}")


# First components of the hook names of TransformerLens decoders (HookedTransformer, TransformerBridge).
_DECODER_ROOTS = frozenset({"blocks", "hook_embed", "hook_pos_embed", "hook_tokens", "ln_final", "embed", "pos_embed",
                            "unembed"})


def _under_hook_point(template: str, catalog: Catalog | None) -> bool:
    """``hook_embed.post``, ``blocks.{l}.hook_resid_pre.sae.hook_feature_acts``: a name under a real hook point,
    the hook of something a library attaches there (an SAE, a transcoder, a detaching wrapper) whose names are its
    own; not judged (SAE Lens's own, :func:`split_sae_name`, are)."""
    prefixes = [template[:i] for i, char in enumerate(template) if char == "." and i > 0]
    if catalog is None:
        return any(prefix in union_templates() for prefix in prefixes)
    return any(catalog.lookup(prefix.replace("{l}", "0")) is not None for prefix in prefixes)


def _looks_like_hook(template: str) -> bool:
    """A name in a TransformerLens decoder's naming scheme. Without a known model, other schemes
    (a custom HookedRootModule's ``layer2.hook_square``, T5's ``encoder_blocks.0...``) are not ours."""
    return template.split(".", 1)[0] in _DECODER_ROOTS


# Short names researchers write most: preferred when two suggestions are about as close.
_COMMON_SHORT = frozenset({"resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "pattern", "attn", "z", "q",
                           "k", "v", "result", "post", "pre", "scale", "embed", "pos_embed", "attn_scores"})


def _short_suggestion(ref: HookRef, candidates: tuple[str, ...]) -> tuple[str, str] | None:
    """(short name, the hook it gives) closest to the short name the user wrote (``"atqtn"`` ->
    ``"attn"``), among those that name a hook point of the model for this layer and layer type."""
    assert ref.short is not None
    layered = "{l}" in (ref.template or "")
    valid = _valid_short_names(candidates, layered, ref.short_layer_type)
    written = ref.short[0]
    scored = sorted(((difflib.SequenceMatcher(None, written, name).ratio() + 0.04 * (name in _COMMON_SHORT), name)
                     for name in valid), reverse=True)
    if scored and scored[0][0] >= 0.6:
        name = scored[0][1]
    else:  # not close as a short name: the closest full name, if a short name gives it
        full = _suggest(ref.template or "", candidates)
        name = next((n for n, template in valid.items() if template == full), None)
        if name is None:
            return None
    layer = str(ref.layer) if ref.layer is not None else "{" + (ref.layer_expr or "layer") + "}"
    return name, valid[name].replace("{l}", layer)


@functools.lru_cache(maxsize=256)
def _valid_short_names(candidates: tuple[str, ...], layered: bool, layer_type: str | None) -> dict[str, str]:
    """Short name -> the hook template it gives, for every short name that is a hook point here."""
    known = set(candidates)
    out = {}
    for name in dict.fromkeys(SHORT_NAMES if layered else GLOBAL_SHORT_NAMES):
        template = get_act_name(name, "{l}" if layered else None, layer_type)
        if template in known:
            out[name] = template
    return out


@functools.lru_cache(maxsize=4096)
def _suggest(template: str, candidates: tuple[str, ...]) -> str | None:
    """Closest known template (difflib is slow: memoised, since the same typo recurs per edit)."""
    close = difflib.get_close_matches(template, candidates, n=1, cutoff=0.75)
    if close:
        return close[0]
    # Same last component under another parent (e.g. 'blocks.{l}.hook_pattern' -> attn.hook_pattern).
    tail = template.rsplit(".", 1)[-1]
    same_tail = [c for c in candidates if c.endswith("." + tail) or c == tail]
    return same_tail[0] if len(same_tail) == 1 else None


# ------------------------------------------------------------------------- removed APIs (TL 4)

REMOVED_NAMES = {
    "HookedTransformer": "TransformerBridge",
    "HookedTransformerConfig": "TransformerBridgeConfig",
    "HookedEncoder": None,
    "HookedEncoderDecoder": None,
    "HookedAudioEncoder": None,
    "BertNextSentencePrediction": None,
    "loading_from_pretrained": None,
    "loading": None,
    "components": None,
    "train": "tools.training",
    "utils": "utilities",
}


def check_removed_api(imports: list[Node], source: bytes, tl_major: int | None) -> list[Finding]:
    """``removed-api`` for imports TL 4 removed, once per import statement, with the migration."""
    if tl_major is None or tl_major < 4:
        return []
    out: list[Finding] = []
    for imp in imports:
        if b"transformer_lens" not in source[imp.start_byte:imp.end_byte]:
            continue  # (most imports: torch, numpy, ...)
        module = text(imp.child_by_field_name("module_name"))
        if imp.type == "import_from_statement" and module == "transformer_lens":
            for name_node in imp.children_by_field_name("name"):
                ident = name_node.child_by_field_name("name") if name_node.type == "aliased_import" else name_node
                name = text(ident)
                if name in REMOVED_NAMES:
                    out.append(_removed_name(name, ident, name_node, source))
        elif imp.type == "import_from_statement" and module.startswith("transformer_lens.utils"):
            mod = imp.child_by_field_name("module_name")
            out.append(Finding(mod.start_byte, mod.end_byte, "removed-api", "error",
                               "transformer_lens.utils was removed in TransformerLens 4.0: use transformer_lens.utilities (same names).",
                               (Fix("Import from transformer_lens.utilities",
                                    (Edit(mod.start_byte, mod.end_byte, module.replace("transformer_lens.utils", "transformer_lens.utilities", 1)),), True),)))
        elif imp.type == "import_from_statement" and module.split(".")[:2] in _REMOVED_MODULE_PATHS:
            # `from transformer_lens.HookedTransformer import HookedTransformer` (as ACDC writes it)
            mod = imp.child_by_field_name("module_name")
            out.append(Finding(mod.start_byte, mod.end_byte, "removed-api", "error", _removed_module(module)))
        elif imp.type == "import_statement":
            for name_node in imp.children_by_field_name("name"):
                dotted = name_node.child_by_field_name("name") if name_node.type == "aliased_import" else name_node
                full = text(dotted)
                if full.split(".")[:2] in _REMOVED_MODULE_PATHS:
                    fixes: tuple[Fix, ...] = ()
                    if full == "transformer_lens.utils":
                        fixes = (Fix("Import transformer_lens.utilities",
                                     (Edit(dotted.start_byte, dotted.end_byte, "transformer_lens.utilities" + ("" if name_node.type == "aliased_import" else " as utils")),), True),)
                    out.append(Finding(dotted.start_byte, dotted.end_byte, "removed-api", "error",
                                       f"{full} was removed in TransformerLens 4.0 (ModuleNotFoundError)."
                                       + (" Use transformer_lens.utilities (same names)." if fixes else ""), fixes))
    return out


# Imports that older TransformerLens versions lack: (module, imported name or None) -> the first major
# version that has it (checked by importing each in TL 2.18, 3.9 and 4.3).
ADDED_IN = {
    ("transformer_lens.model_bridge", None): 3,
    ("transformer_lens.config", None): 3,
    ("transformer_lens.tools", None): 3,
    ("transformer_lens.tools.training", None): 4,
    ("transformer_lens", "TransformerBridgeConfig"): 3,
    ("transformer_lens", "TransformerBridge"): 4,  # in 3.x: from transformer_lens.model_bridge import TransformerBridge
}


def check_unavailable_api(imports: list[Node], tl_major: int | None, tl_label: str | None) -> list[Finding]:
    """``unavailable-api`` for imports the workspace's (older) TransformerLens does not have yet."""
    if tl_major is None or tl_major >= max(ADDED_IN.values()):
        return []
    out: list[Finding] = []
    for imp in imports:
        for node, module, name in _imported(imp):
            needed = max((v for (m, n), v in ADDED_IN.items()
                          if (name is None and n is None and (module == m or module.startswith(m + ".")))
                          or (name is not None and (m, n) == (module, name))), default=None)
            if needed is None or tl_major >= needed:
                continue
            what = f"{module}.{name}" if name and module == "transformer_lens" else module
            error = "ImportError" if name and module == "transformer_lens" else "ModuleNotFoundError"
            used = f"TransformerLens {tl_label}" if tl_label else f"TransformerLens {tl_major}.x"
            hint = (" In 3.x it is imported from transformer_lens.model_bridge." if what == "transformer_lens.TransformerBridge"
                    and tl_major == 3 else " HookedTransformer code runs on TransformerLens 2.x and 3.x.")
            out.append(Finding(node.start_byte, node.end_byte, "unavailable-api", "error",
                               f"{what} needs TransformerLens ≥ {needed}.0; importing it raises {error} on {used}. "
                               f"Install transformer-lens>={needed} where the code runs.{hint}"))
    return out


def _imported(imp: Node):
    """(node to flag, module, imported name or None) for each thing an import statement imports."""
    if imp.type == "import_from_statement":
        module_node = imp.child_by_field_name("module_name")
        module = text(module_node)
        names = imp.children_by_field_name("name")
        yield module_node, module, None
        for name_node in names:
            ident = name_node.child_by_field_name("name") if name_node.type == "aliased_import" else name_node
            yield ident, module, text(ident)
    elif imp.type == "import_statement":
        for name_node in imp.children_by_field_name("name"):
            dotted = name_node.child_by_field_name("name") if name_node.type == "aliased_import" else name_node
            yield dotted, text(dotted), None


# Modules TL 4 no longer has (checked by importing them in TL 4.3).
REMOVED_MODULES = ("utils", "HookedTransformer", "HookedTransformerConfig", "HookedEncoder", "HookedEncoderDecoder",
                    "loading_from_pretrained", "components", "past_key_value_caching", "train")
_REMOVED_MODULE_PATHS = [["transformer_lens", m] for m in REMOVED_MODULES]


def _removed_module(module: str) -> str:
    top = module.split(".")[1]
    hint = {"HookedTransformer": " Use TransformerBridge (from transformer_lens.model_bridge).",
            "HookedTransformerConfig": " Use TransformerBridgeConfig.",
            "train": " Training utilities live in transformer_lens.tools.training."}.get(top, "")
    return f"transformer_lens.{top} was removed in TransformerLens 4.0 (ModuleNotFoundError).{hint}"


def _removed_name(name: str, ident: Node, name_node: Node, source: bytes) -> Finding:
    start, end = ident.start_byte, ident.end_byte
    if name == "utils":
        alias = "" if name_node.type == "aliased_import" else " as utils"
        return Finding(start, end, "removed-api", "error",
                       "'utils' was removed in TransformerLens 4.0: use transformer_lens.utilities (same names).",
                       (Fix("Import utilities as utils", (Edit(start, end, "utilities" + alias),), True),))
    if name == "HookedTransformer":
        return Finding(start, end, "removed-api", "error",
                       "HookedTransformer was removed in TransformerLens 4.0: use TransformerBridge.boot_transformers(name), "
                       "then enable_compatibility_mode() for HookedTransformer-equivalent numerics.",
                       (migrate_hooked_transformer(ident, name_node, source),))
    if name == "HookedTransformerConfig":
        return Finding(start, end, "removed-api", "error",
                       "HookedTransformerConfig was removed in TransformerLens 4.0: build a TransformerBridgeConfig and "
                       "boot it with TransformerBridge.boot_native(cfg).",
                       (migrate_config(ident, source),))
    replacement = REMOVED_NAMES.get(name)
    hint = f" Use transformer_lens.{replacement}." if replacement else ""
    return Finding(start, end, "removed-api", "error", f"'{name}' was removed in TransformerLens 4.0.{hint}")
