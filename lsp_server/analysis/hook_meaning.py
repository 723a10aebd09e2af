"""``hook-meaning``: names that read another tensor on this file's TransformerBridge than on HookedTransformer.

``knowledge/hook_meaning.py`` says where that happens; this module decides whether a name the code uses is
one of those places. The model must be a bridge this file boots with ``boot_transformers``, of an
architecture a row was measured on, prepared (raw, compatibility mode, compatibility mode without
processing) the way the row covers, on a TransformerLens version the row holds for. Anything unknown
stays silent: a wrong warning costs more than a missed one. Layout rows report only where the code
indexes or reshapes the value; the unprocessed-weights row once per file, on the boot call, with a
quick fix that inserts ``enable_compatibility_mode()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..knowledge.hook_meaning import COMPAT, RAW, UNPROCESSED, MeaningRow, Mode, describe, replacement, rows_for
from ..knowledge.hookpoints import BRIDGE_PROFILES, catalog_for
from .checks import insert_after_statement
from .findings import Edit, Finding, Fix, Related
from .hookrefs import HookRef
from .models import ModelInfo
from .scopes import parameter_names
from .syntax import Node, call_name, descendants, text

if TYPE_CHECKING:  # pragma: no cover
    from .document import Analysis

# Methods that reshape a tensor as if it had a given layout.
_RESHAPES = frozenset({"reshape", "view", "flatten", "unflatten", "unsqueeze", "permute", "transpose"})
_CONTEXTS = frozenset({"cache", "hook", "act_name"})


@dataclass(frozen=True)
class Meaning:
    """A row that holds for one hook reference, with what the message needs."""

    row: MeaningRow
    name: str
    architecture: str
    mode: Mode
    model: ModelInfo

    def describe(self) -> str:
        return describe(self.row, self.name, self.architecture, self.mode, self.model.var)

    def hover_line(self) -> str:
        """The finding in one line, with the measured condition."""
        return f"⚠ {self.describe().rstrip('.')} (measured: {self.row.measured})."


def bridge_mode(model: ModelInfo) -> Mode | None:
    """How the file prepares the bridge; None when enable_compatibility_mode's arguments are not literals."""
    if not model.compat_mode:
        return RAW
    options = {k: v for k, v in model.compat_options.items() if k in ("no_processing", "fold_ln")}
    if any(v not in ("True", "False") for v in options.values()):
        return None
    return UNPROCESSED if options.get("no_processing") == "True" or options.get("fold_ln") == "False" else COMPAT


def meanings(analysis: Analysis, ref: HookRef) -> list[Meaning]:
    """The rows that hold where ``ref`` names a hook (layout rows only where the code indexes the value)."""
    model = ref.model
    if (ref.template is None or ref.match != "exact" or ref.context not in _CONTEXTS or model is None
            or model.kind != "bridge" or model.spec.backend != "bridge"):
        return []
    mode = bridge_mode(model)
    version = analysis.context.tl_version or (f"{analysis.context.tl_major}.x" if analysis.context.tl_major else None)
    rows = rows_for(ref.template, model.spec.architecture, mode, version) if mode else []
    if not rows or not _fires(analysis, ref) or (mode == RAW and _compat_elsewhere(analysis)):
        return []
    name = ref.name() or ref.template.replace("{l}", "{" + (ref.layer_expr or "layer") + "}")
    return [Meaning(row, name, model.spec.architecture or "", mode, model) for row in rows  # type: ignore[arg-type]
            if row.trigger != "indexing" or _indexed(analysis, ref)]


def _compat_elsewhere(analysis: Analysis) -> bool:
    """The file calls enable_compatibility_mode() on something that is not a model it boots (``m`` in
    ``def prepare(m): m.enable_compatibility_mode()``): its bridges may be in compatibility mode."""
    for call in analysis.calls_of("enable_compatibility_mode"):
        receiver_node = call_name(call)[2]
        model = analysis.models.model_at(receiver_node) if receiver_node is not None else None
        if model is None or model.kind != "bridge":
            return True
    return False


def _fires(analysis: Analysis, ref: HookRef) -> bool:
    """False for names other diagnostics own: not a hook of the model, gated off, or never firing."""
    model = ref.model
    assert model is not None and ref.template is not None
    if model.spec.architecture not in BRIDGE_PROFILES or not model.spec.structure_known:
        return True  # a measured architecture the catalog does not describe: the row's names exist there
    found = catalog_for(model.effective_spec, analysis.context.tl_major or 4).lookup(ref.template.replace("{l}", "0"))
    if found is None:
        return False
    point = found[0]
    gated_off = point.gate and not getattr(model.effective_spec, point.gate) and point.gate not in analysis.flags_mentioned
    return not (gated_off or point.dead)


def check_hook_meaning(analysis: Analysis) -> list[Finding]:
    out: list[Finding] = []
    boot: tuple[HookRef, Meaning] | None = None
    # A name computed by `x = get_act_name(...)` is judged once, at that call (as the name checks do).
    judged_calls = {r.start for r in analysis.refs if r.context == "act_name"}
    for ref in analysis.refs:
        if ref.computed_at is not None and ref.computed_at in judged_calls:
            continue
        found = meanings(analysis, ref)
        per_name = [m for m in found if m.row.trigger != "boot"]
        if per_name:
            out.append(_finding(analysis, ref, per_name))
        if boot is None:
            boot = next(((ref, m) for m in found if m.row.trigger == "boot"), None)
    if boot is not None:
        out.append(_boot_finding(analysis, *boot))
    return out


def _finding(analysis: Analysis, ref: HookRef, found: list[Meaning]) -> Finding:
    severity = "warning" if any(m.row.severity == "warning" for m in found) else "hint"
    fixes = []
    for m in found:
        new = replacement(m.row, m.name)
        literal = ref.literal
        if new and literal and analysis.source[literal[0]:literal[1]].decode("utf-8", "replace") == m.name:
            fixes.append(Fix(f"Replace with '{new}'", (Edit(literal[0], literal[1], new),)))
    return Finding(ref.start, ref.end, "hook-meaning", severity, " ".join(m.describe() for m in found), tuple(fixes))


def _boot_finding(analysis: Analysis, ref: HookRef, meaning: Meaning) -> Finding:
    """Once per file, on the boot_transformers call: the bridge is raw, and the file reads processed values."""
    model = meaning.model
    call = model.node
    function = call.child_by_field_name("function") or call
    fix = insert_after_statement(analysis.source, call, f"{model.var}.enable_compatibility_mode()",
                                 f"Insert {model.var}.enable_compatibility_mode() after boot_transformers")
    message = f"`{model.var}` is booted without enable_compatibility_mode(). {meaning.describe()}"
    return Finding(function.start_byte, function.end_byte, "hook-meaning", meaning.row.severity, message, (fix,),
                   (Related(ref.start, ref.end, f"`{meaning.name}` is read here"),))


# ------------------------------------------------------------------ indexing written for another layout


def _indexed(analysis: Analysis, ref: HookRef) -> bool:
    """The code indexes or reshapes the value as a tensor with HookedTransformer's layout would be."""
    if ref.context == "cache":
        node = analysis.parsed.root.descendant_for_byte_range(ref.start, ref.end)
        while node is not None and not (node.type == "subscript" and node.start_byte < ref.start):
            node = node.parent
        return node is not None and _layout_use(analysis, node)
    if ref.context == "hook" and analysis.registrations is not None:
        for start, names in analysis.registrations.registrations.items():
            if any(template == ref.template for template, _, _ in names):
                fn = analysis.parsed.root.descendant_for_byte_range(start, start)
                while fn is not None and fn.type not in ("function_definition", "lambda"):
                    fn = fn.parent
                params = parameter_names(fn) if fn is not None else []
                if params and _name_used_with_layout(analysis, params[0][0], fn):
                    return True
    return False


def _layout_use(analysis: Analysis, value: Node) -> bool:
    """``value[:, -1]`` or ``value.reshape(...)``; or, for ``x = value``, any such use of ``x``."""
    if _indexes(value):
        return True
    parent = value.parent
    if parent is not None and parent.type == "assignment" and parent.child_by_field_name("right") == value:
        target = parent.child_by_field_name("left")
        if target is not None and target.type == "identifier":
            scope = analysis.scopes.function_at(value.start_byte) or analysis.parsed.root
            return _name_used_with_layout(analysis, text(target), scope, after=parent.end_byte)
    return False


def _name_used_with_layout(analysis: Analysis, name: str, scope: Node, after: int = 0) -> bool:
    return any(text(ident) == name and ident.start_byte >= after and _indexes(ident)
               for ident in descendants(scope, "identifier"))


def _indexes(value: Node) -> bool:
    parent = value.parent
    if parent is None:
        return False
    if parent.type == "subscript" and parent.child_by_field_name("value") == value:
        index = parent.children_by_field_name("subscript")
        return len(index) >= 2 and index[0].type != "ellipsis"
    if parent.type == "attribute" and parent.child_by_field_name("object") == value:
        return text(parent.child_by_field_name("attribute")) in _RESHAPES
    return False
