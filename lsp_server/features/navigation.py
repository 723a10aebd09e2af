"""Go to definition, find references and document symbols for hook names (protocol-free).

Definition: where the installed TransformerLens defines the hook point (see knowledge.hook_sources).
References: every place an analysis names the same hook point — cache reads, hook registrations,
filters that select it, ``get_act_name`` calls — where a name with an unknown layer
(``blocks.{l}.attn.hook_z``) matches every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..analysis.document import Analysis
from ..analysis.experiments import find_experiments
from ..analysis.hookrefs import HookRef
from ..analysis.syntax import Node, text
from ..analysis.values import Evaluator
from ..knowledge.hook_sources import SourceLocation, hook_definition

_FILTER_TESTS = {"suffix": str.endswith, "prefix": str.startswith, "substring": str.__contains__}


def hook_names_at(analysis: Analysis, offset: int) -> list[HookRef]:
    """The hook names the reference at ``offset`` may mean (one, or each of a "one of")."""
    ref = analysis.ref_at(offset)
    if ref is None or ref.match != "exact":
        return []
    names = list(ref.options) if ref.options else [ref]
    return [r for r in names if r.template is not None]


def definition(analysis: Analysis, offset: int, package: Path | None) -> list[SourceLocation]:
    if package is None:
        return []
    out = []
    for ref in hook_names_at(analysis, offset):
        bridge = ref.model.spec.backend == "bridge" if ref.model is not None else (analysis.context.tl_major or 2) >= 4
        # The package may lack the code's backend (TL 4 has no HookedTransformer): then the one it has.
        location = hook_definition(ref.template, package, bridge) or hook_definition(ref.template, package, not bridge)  # type: ignore[arg-type]
        if location is not None and location not in out:
            out.append(location)
    return out


def helper_definitions(analysis: Analysis, offset: int, max_hops: int = 4) -> list[tuple[Evaluator, Node]]:
    """(evaluator of its file, def) of the workspace function that builds the hook name at ``offset``:
    ``cache[name_of(3)]``, also through variables (``name = h.name_of(3)`` ... ``cache[name]``)."""
    ref = analysis.ref_at(offset)
    node = analysis.parsed.root.descendant_for_byte_range(ref.start, ref.end) if ref is not None else None
    for _ in range(max_hops):
        if node is None:
            return []
        if node.type == "call":
            found = analysis.evaluator.function_called(node)
            return [found] if found is not None else []
        if node.type != "identifier":
            return []
        d = analysis.scopes.lookup(text(node), node.start_byte)
        node = d.node if d is not None and d.kind == "assign" and d.target.type == "identifier" else None
    return []


def references(analysis: Analysis, targets: list[HookRef]) -> list[tuple[int, int]]:
    """Byte ranges in ``analysis`` of every reference to one of ``targets``."""
    return [(ref.start, ref.end) for ref in analysis.refs if any(_same_point(ref, t) for t in targets)]


def _same_point(ref: HookRef, target: HookRef) -> bool:
    if ref.options:
        return any(_same_point(option, target) for option in ref.options)
    if ref.template is None:
        return False
    if ref.match != "exact":  # a filter selects it
        name = target.name() or (target.template or "").replace("{l}", "0")
        return _FILTER_TESTS[ref.match](name, ref.template)
    if ref.template != target.template:
        return False
    return ref.layer is None or target.layer is None or ref.layer == target.layer


@dataclass(frozen=True)
class Symbol:
    name: str
    detail: str
    kind: str  # "experiment" | "hook function"
    start: int  # the whole statement or definition
    end: int
    name_start: int  # what the editor selects
    name_end: int


def document_symbols(analysis: Analysis) -> list[Symbol]:
    """The file's patching experiments and the functions it registers as hooks, in source order."""
    out = [Symbol(f"Patch sweep: {e.description}", e.kind, "experiment", e.start, e.end, e.start, e.end)
           for e in find_experiments(analysis)]
    collector = analysis.registrations
    for fn_start, names in (collector.registrations.items() if collector is not None else ()):
        fn = analysis.parsed.root.descendant_for_byte_range(fn_start, fn_start)
        while fn is not None and fn.start_byte == fn_start and fn.type not in ("function_definition", "lambda"):
            fn = fn.parent
        if fn is None or fn.type != "function_definition":
            continue  # lambdas have no name to list
        name = fn.child_by_field_name("name")
        hooks = sorted({t.replace("{l}", str(layer)) if layer is not None else t for t, layer, _ in names})
        out.append(Symbol(text(name), "hook on " + ", ".join(hooks), "hook function", fn.start_byte, fn.end_byte,
                          name.start_byte, name.end_byte))
    return sorted(out, key=lambda s: s.start)
