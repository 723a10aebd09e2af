"""Analyse one document: parse, bind names, resolve hook names, check them.

:func:`analyze` is the single entry point the server and the CLI use. It is pure (text and a
context in, an :class:`Analysis` out) and never imports torch or the language-server stack.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from ..knowledge.spec import GATE_FLAGS, ModelSpec
from .cache_stacks import SIGNATURES as _STACKING_SIGNATURES
from .cache_stacks import check_stacking_calls
from .checks import NameChecker, check_removed_api, check_unavailable_api
from .findings import Finding, apply_suppressions
from .hook_meaning import check_hook_meaning
from .hookrefs import FILTER_METHODS, HOOK_LIST_METHODS, HOOK_METHODS, HookRef, HookRefCollector
from .imports import ModuleLinks
from .lifetimes import check_hook_lifetimes
from .live_facts import LiveFacts, check_live
from .tokens import check_tokens
from .models import ModelInfo, Models, NameResolver
from .reuse import KeyResolutions, Reuse
from .scopes import Scopes
from .source import LineIndex
from .syntax import Node, Parsed, SyntaxParser, call_name
from .syntax import text as node_text
from .values import Evaluator

# Calls the analysis looks at, by method name (everything else is skipped in C).
METHODS = (
    "run_with_cache", "run_with_hooks", "add_hook", "add_perma_hook", "hooks", "reset_hooks",
    "remove_all_hook_fns", "set_use_attn_result", "set_use_split_qkv_input", "set_use_attn_in",
    "set_use_hook_mlp_in", "enable_compatibility_mode", "to_single_token", "to_tokens", "to_str_tokens",
    "get_token_position", "generate", "get_act_name", "add_caching_hooks", "forward", "backward",
    *_STACKING_SIGNATURES,
)
# ``functools.partial(fn, ...)`` binds parameters of ``fn`` as ``partial(fn, ...)`` does.
METHODS += ("partial",)
FLAG_METHODS = frozenset({"set_use_attn_result", "set_use_split_qkv_input", "set_use_attn_in",
                          "set_use_hook_mlp_in", "enable_compatibility_mode"})

# The calls whose hook references the collector follows.
COLLECTED_METHODS = HOOK_METHODS | HOOK_LIST_METHODS | FILTER_METHODS | {"get_act_name"}

# Calls and subscripts are found with C-speed regexes and verified on the tree: a tree-sitter
# query costs ~8 ms per pattern on 5,000 lines, the regexes plus node checks ~3 ms in all.
_METHOD_CALL = re.compile(
    rb"\.\s*(%s|get_act_patch_\w+|generic_activation_patch)\s*\(" % b"|".join(m.encode() for m in METHODS))
_NAME_CALL = re.compile(rb"(?<![\w.])([A-Za-z_]\w*)\s*\(")
_NAME_SUBSCRIPT = re.compile(rb"(?<![\w.])([A-Za-z_]\w*)\s*\[")
_CACHE_DICT_SUBSCRIPT = re.compile(rb"\.\s*(cache_dict)\s*\[")
# A gate flag switched on (group 1), found by the parser's incremental scan: only the edited lines are scanned again.
_FLAG_ON = re.compile(rb"(%s)\s*[=(]\s*True" % b"|".join(flag.encode() for flag in GATE_FLAGS))


def _find(parsed: Parsed, parser: SyntaxParser, pattern: re.Pattern, wanted: str, field: str,
          via_attribute: bool = False, names: Callable[[bytes], bool] | None = None,
          by_name: dict[str, list[Node]] | None = None) -> list[Node]:
    """Nodes of type ``wanted`` whose ``field`` is the identifier each regex match points at
    (only for matched names ``names`` accepts, when given: most calls and subscripts are irrelevant);
    ``by_name``: filled with the same nodes by that identifier."""
    root, source, out = parsed.root, parsed.source, []
    for start, end in parser.scan(pattern, source):
        if names is not None and not names(source[start:end]):
            continue
        ident = root.descendant_for_byte_range(start, end)
        if ident is None or ident.type != "identifier":
            continue  # inside a string or comment
        node = ident.parent
        if via_attribute:
            if node is None or node.type != "attribute" or node.child_by_field_name("attribute") != ident:
                continue
            ident, node = node, node.parent
        if node is not None and node.type == wanted and node.child_by_field_name(field) == ident:
            out.append(node)
            if by_name is not None:
                by_name.setdefault(source[start:end].decode(), []).append(node)
    return out


@dataclass(frozen=True)
class AnalysisContext:
    """What the analysis may know beyond the text."""

    # Major version of the TransformerLens the workspace uses (None: unknown -> no version checks).
    tl_major: int | None = None
    # That version and where it was read, for messages ("2.18.0, from the setting tlens.transformerLensVersion").
    tl_label: str | None = None
    # The version itself ("4.3.0", or "4.x" for a declared major): rows of knowledge hold for version ranges.
    tl_version: str | None = None
    # Official name / hub id / local path -> spec. The default knows nothing (symbolic dims).
    resolve_model: NameResolver = lambda name: None
    # Spec -> tokenizer (``knowledge.tokenizers.tokenizer_for``); None: no token diagnostics.
    tokenizer_for: Callable[[ModelSpec], Any] | None = None
    # What an attached Jupyter kernel holds (lsp_server.live); None: static knowledge only.
    live: LiveFacts | None = None
    # The workspace modules the document imports and the files importing it; None: the file alone.
    links: ModuleLinks | None = None


@dataclass
class Analysis:
    """Everything the features need about one version of one document."""

    source: bytes
    parsed: Parsed
    lines: LineIndex
    scopes: Scopes
    models: Models
    evaluator: Evaluator
    refs: list[HookRef]
    findings: list[Finding]
    context: AnalysisContext
    method_calls: list[Node] = field(default_factory=list)
    calls_by_method: dict[str, list[Node]] = field(default_factory=dict)  # the same calls, by method name
    ident_calls: list[Node] = field(default_factory=list)
    registrations: HookRefCollector | None = None
    flags_mentioned: set[str] = field(default_factory=set)  # gate flags the text switches on anywhere
    _ref_starts: list[int] = field(default_factory=list)
    _finding_starts: list[int] | None = field(default=None, repr=False)
    # Patching experiments, found on first use (hovers, code lenses and code actions ask often).
    experiments_memo: list | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._ref_starts = [r.start for r in self.refs]

    def finding_starts(self) -> list[int]:
        """Where each finding starts (they are sorted by start), for bisecting."""
        if self._finding_starts is None or len(self._finding_starts) != len(self.findings):
            self._finding_starts = [f.start for f in self.findings]
        return self._finding_starts

    def ref_at(self, offset: int) -> HookRef | None:
        """The innermost hook reference containing ``offset``."""
        i = bisect.bisect_right(self._ref_starts, offset)
        containing = [r for r in self.refs[max(i - 8, 0):i] if r.start <= offset <= r.end]
        return min(containing, key=lambda r: r.end - r.start, default=None)

    def calls_of(self, *methods: str) -> list[Node]:
        """The calls of these methods (``x.method(...)``), in source order."""
        return calls_of(self.calls_by_method, methods)

    def model_at(self, node: Node) -> ModelInfo | None:
        return self.models.model_at(node)

    def default_spec(self) -> ModelSpec | None:
        sole = self.models.sole_model()
        return sole.effective_spec if sole else None


def analyze(text: str | bytes, context: AnalysisContext | None = None, parser: SyntaxParser | None = None,
            extra_checks: list[Callable[["Analysis"], list[Finding]]] | None = None, notebook: bool = False) -> Analysis:
    """Analyse a document. Pass the document's :class:`SyntaxParser` to re-parse incrementally.

    ``notebook``: the text is a notebook's code cells joined in order. Cells may have run in any
    order, so a module-level name used before its definition still resolves to that definition.
    """
    context = context or AnalysisContext()
    source = text.encode("utf-8") if isinstance(text, str) else text
    parser = parser or SyntaxParser()
    parsed = parser.parse(source)
    calls_by_method: dict[str, list[Node]] = {}
    method_calls = _find(parsed, parser, _METHOD_CALL, "call", "function", via_attribute=True, by_name=calls_by_method)
    scopes = Scopes(parsed, late_module_lookups=notebook, memo=parser.memo.setdefault("statements", {}))
    evaluator = Evaluator(scopes)
    evaluator.links = context.links
    flag_calls = calls_of(calls_by_method, FLAG_METHODS)
    models = Models(scopes, evaluator, context.resolve_model, flag_calls, context.live.specs if context.live else None)
    evaluator.attribute = models.attribute_value
    # Plain-name calls that matter: models, functions of this file, patching and hook-name helpers.
    callees = {n.encode() for n in scopes.function_defs} | {m.var.encode() for m in models.all_models} | {
        node_text(c.child_by_field_name("name")).encode() for c in scopes.classes if c.child_by_field_name("name") is not None} | {
        r.text for c in method_calls if (r := c.child_by_field_name("function").child_by_field_name("object")).type == "identifier"
    } | {b"get_act_name", b"partial", b"generic_activation_patch"}
    workspace_imports = scopes.workspace_import_definitions() if context.links is not None else []
    callees |= {d.name.encode() for d in workspace_imports if d.imported.attr is not None}
    ident_calls = _find(parsed, parser, _NAME_CALL, "call", "function",
                        names=lambda n: n in callees or n.startswith(b"get_act_patch_"))
    modules = {d.name for d in workspace_imports if d.imported.attr is None}
    if modules:  # `import helpers as h; h.name_of(3)`
        ident_calls += _find(parsed, parser, _module_call(frozenset(modules)), "call", "function", via_attribute=True)
    # Calls that bind the file's function parameters: `fn(...)`, `partial(fn, ...)`, `functools.partial(fn, ...)`.
    evaluator.calls = ident_calls + calls_by_method.get("partial", [])
    cache_names = {n.encode() for n in models.cache_names()}
    subscripts = _find(parsed, parser, _NAME_SUBSCRIPT, "subscript", "value",
                       names=lambda n: n in cache_names or b"cache" in n.lower())
    subscripts += _find(parsed, parser, _CACHE_DICT_SUBSCRIPT, "subscript", "value", via_attribute=True)
    subscripts += [_returned_cache_subscript(c) for c in calls_by_method.get("run_with_cache", ())
                   if _returned_cache_subscript(c) is not None]
    collector = HookRefCollector(scopes, evaluator, models, context.tl_major, lambda pattern: parser.scan(pattern, source))
    fingerprint = models.fingerprint()
    reuse = Reuse.between(parser.memo.get("keys"), source, context, scopes, fingerprint)
    if reuse is not None and context.links is not None:
        context.links.inherit(reuse.previous.context.links)  # what the reused resolutions were read from
    refs = collector.collect(calls_of(calls_by_method, COLLECTED_METHODS), ident_calls, subscripts, reuse)
    parser.memo["keys"] = KeyResolutions(source, context, collector.by_subscript, scopes, fingerprint, collector.by_name)

    flags = _flags_mentioned(source, parser.scan(_FLAG_ON, source))
    forked = context.links is not None and context.links.library_copy("transformer_lens") is not None
    checker = NameChecker(parsed, context.tl_major, flags, forked)
    findings = checker.check(refs)
    findings += [dataclasses.replace(f, message=f"{f.message} (The code targets TransformerLens {context.tl_label}.)")
                 if context.tl_label else f for f in check_removed_api(scopes.imports, parsed.source, context.tl_major)]
    findings += check_unavailable_api(scopes.imports, context.tl_major, context.tl_label)
    analysis = Analysis(source, parsed, LineIndex(source), scopes, models, evaluator, refs, [], context,
                        method_calls, calls_by_method, ident_calls, collector, flags)
    for check in (check_hook_lifetimes, check_tokens, check_live, check_stacking_calls, check_hook_meaning,
                  *(extra_checks or ())):
        findings += check(analysis)
    findings.sort(key=lambda f: (f.start, f.end, f.code))
    analysis.findings = apply_suppressions(findings, source)
    return analysis


def calls_of(calls_by_method: dict[str, list[Node]], methods) -> list[Node]:
    """The calls of ``methods`` (names) in source order, from calls grouped by method name."""
    found = [calls_by_method[m] for m in methods if m in calls_by_method]
    if len(found) == 1:
        return found[0]
    return sorted((c for calls in found for c in calls), key=lambda c: c.start_byte)


def forget_resolutions(parser: SyntaxParser) -> None:
    """Make the next analysis with ``parser`` resolve every hook name afresh (another file it reads may
    have changed in a way its own links cannot see); what its statements bind is kept (syntax only)."""
    parser.memo.pop("keys", None)


@lru_cache(maxsize=64)  # one compiled pattern per set of names: the parser keeps a scan per pattern
def _module_call(modules: frozenset[str]) -> re.Pattern:
    """``module.function(`` for the given module names (the function name is the group)."""
    return re.compile(rb"(?<![\w.])(?:%s)\s*\.\s*([A-Za-z_]\w*)\s*\(" % b"|".join(re.escape(m.encode()) for m in sorted(modules)))


def _returned_cache_subscript(call: Node) -> Node | None:
    """``model.run_with_cache(x)[1][name]``: the subscript of the cache the call returns."""
    item = call.parent
    outer = item.parent if item is not None and item.type == "subscript" and item.child_by_field_name("value") == call else None
    return outer if outer is not None and outer.type == "subscript" and outer.child_by_field_name("value") == item else None


def _flags_mentioned(source: bytes, spans: list[tuple[int, int]]) -> set[str]:
    """Gate flags switched on anywhere in the text (``use_attn_result=True``, ``set_use_attn_result(True)``), from
    the spans of :data:`_FLAG_ON`'s matches: those that begin a name (after ``.`` too) or follow one's ``set_``."""
    out = set()
    for start, end in spans:
        at = start - 4 if source[start - 4:start] == b"set_" else start
        before = source[at - 1:at]
        if not (before.isalnum() or before == b"_"):
            out.add(source[start:end].decode())
    return out
