"""Recognise activation-patching experiments: model, clean and corrupted inputs, and a metric.

Two shapes cover research code:
- a ``transformer_lens.patching`` call: ``get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)``;
- a hand-written loop that runs ``model.run_with_hooks(corrupted, fwd_hooks=[(name, patch_fn)])``
  with a hook reading a clean cache, and scores the logits with a metric function.

The clean input is found through the clean cache (``_, clean_cache = model.run_with_cache(clean_tokens)``).
Pure: returns expressions as source text, to be evaluated in the user's kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from .document import Analysis
from .scopes import parameters
from .syntax import Node, call_args, call_name, descendants, statement_of, text

_PATCHING_KINDS = {
    "get_act_patch_resid_pre": "resid_pre",
    "get_act_patch_resid_mid": "resid_mid",
    "get_act_patch_attn_out": "attn_out",
    "get_act_patch_mlp_out": "mlp_out",
    "get_act_patch_attn_head_out_all_pos": "heads",
    "get_act_patch_attn_head_out_by_pos": "heads_by_pos",
    "get_act_patch_block_every": "block",
}
_HOOK_KINDS = {"resid_pre": "resid_pre", "resid_mid": "resid_mid", "resid_post": "resid_post",
               "attn_out": "attn_out", "mlp_out": "mlp_out", "z": "heads"}


@dataclass(frozen=True)
class Experiment:
    """A patching experiment found in the text (expressions are source snippets)."""

    start: int  # byte range of the experiment statement (the call, or the outermost loop)
    end: int
    model: str
    clean: str
    corrupted: str
    metric: str
    kind: str  # the sweep that matches what the code patches
    description: str  # one line for code lenses and messages
    positions: str | None = None  # a position labelling (label -> position per pair) the loop walks

    @property
    def line_offset(self) -> int:
        return self.start


def find_experiments(analysis: Analysis) -> list[Experiment]:
    """Every experiment in the document, in source order (memoised on the analysis)."""
    if analysis.experiments_memo is None:
        analysis.experiments_memo = _find_experiments(analysis)
    return analysis.experiments_memo


def _find_experiments(analysis: Analysis) -> list[Experiment]:
    out: list[Experiment] = []
    for call in analysis.method_calls:
        _, method, _ = call_name(call)
        if method and method.startswith("get_act_patch_"):
            exp = _library_call(analysis, call, method)
        elif method == "run_with_hooks":
            exp = _hand_loop(analysis, call)
        else:
            exp = None
        if exp is not None and not any(e.start == exp.start for e in out):
            out.append(exp)
    return sorted(out, key=lambda e: e.start)


def experiment_at(analysis: Analysis, offset: int) -> Experiment | None:
    for exp in find_experiments(analysis):
        if exp.start <= offset <= exp.end:
            return exp
    return None


def setup_statements(analysis: Analysis, exp: Experiment) -> list[Node]:
    """Top-level statements above the experiment, without other experiments' loops: what a fresh
    kernel runs before the sweep."""
    others = [e for e in find_experiments(analysis) if e.start != exp.start]
    out: list[Node] = []
    for stmt in analysis.parsed.root.named_children:
        if stmt.start_byte >= exp.start:
            break
        if stmt.type == "comment" or any(o.start <= stmt.start_byte and stmt.end_byte <= o.end for o in others):
            continue  # another experiment: not needed to run this one
        if stmt.type in ("for_statement", "while_statement") and _runs_forwards(analysis, stmt):
            continue
        out.append(stmt)
    return out


# ------------------------------------------------------------------------------------------


def _library_call(analysis: Analysis, call: Node, method: str) -> Experiment | None:
    positional, keywords = call_args(call)
    names = ["model", "corrupted_tokens", "clean_cache", "patching_metric"]
    args = dict(zip(names, positional))
    args.update({k: v for k, v in keywords.items() if k in names})
    if len(args) < 4:
        return None
    found = _clean_input(analysis, args["clean_cache"])
    if found is None:
        return None
    clean, note = found
    stmt = statement_of(call)
    kind = _PATCHING_KINDS.get(method, "resid_pre")
    metric = text(args["patching_metric"])
    return Experiment(stmt.start_byte, stmt.end_byte, text(args["model"]), clean, text(args["corrupted_tokens"]),
                      metric, kind, f"{method}(…, metric={metric})" + (f"; {note}" if note else ""))


def _hand_loop(analysis: Analysis, call: Node) -> Experiment | None:
    """``for layer…: for pos…: logits = model.run_with_hooks(corrupted, fwd_hooks=[(…, hook)]); metric(logits)``."""
    loop = _outermost_loop(call)
    if loop is None:
        return None
    receiver_node = call.child_by_field_name("function").child_by_field_name("object")
    positional, keywords = call_args(call)
    corrupted = positional[0] if positional else keywords.get("input")
    hooks = keywords.get("fwd_hooks")
    if receiver_node is None or corrupted is None or hooks is None:
        return None
    clean_cache = _cache_used_by_hooks(analysis, hooks)
    found = _clean_input(analysis, clean_cache) if clean_cache is not None else None
    metric = _metric_applied(analysis, call, loop)
    if found is None or metric is None:
        return None
    clean, note = found
    kind = _kind_from_hook_names(analysis, hooks)
    positions = _position_labelling(call, loop)
    if positions:
        note = f"positions aligned by the labels of `{positions}`" + (f"; {note}" if note else "")
    return Experiment(loop.start_byte, loop.end_byte, text(receiver_node), clean, text(corrupted), metric, kind,
                      f"patching loop over {text(loop.child_by_field_name('left'))} (metric={metric})"
                      + (f"; {note}" if note else ""), positions)


def _position_labelling(call: Node, loop: Node) -> str | None:
    """The dict of label -> positions a patching loop walks (``for label, pos in word_idx.items()``,
    as IOI datasets give them): the sweep then patches each pair at its own labelled position."""
    node = call.parent
    while node is not None and node.start_byte >= loop.start_byte:
        if node.type == "for_statement":
            right = node.child_by_field_name("right")
            if right is not None and right.type == "call" and text(right.child_by_field_name("function")) == "enumerate":
                right = next(iter(call_args(right)[0]), None)  # for j, (label, pos) in enumerate(d.items())
            if right is not None and right.type == "call":
                fn = right.child_by_field_name("function")
                attr = fn.child_by_field_name("attribute") if fn is not None and fn.type == "attribute" else None
                obj = fn.child_by_field_name("object") if attr is not None else None
                if attr is not None and text(attr) in ("items", "keys") and obj is not None \
                        and obj.type in ("identifier", "attribute"):
                    return text(obj)
        node = node.parent
    return None


def _clean_input(analysis: Analysis, cache_node: Node) -> tuple[str, str | None] | None:
    """The input a clean cache was computed from, and how it was found when not seen directly:
    ``_, clean_cache = model.run_with_cache(clean_tokens)``, or ``clean_cache = run_and_cache(model,
    clean_tokens)`` through a function (of this file, or assumed for one defined elsewhere)."""
    if cache_node.type != "identifier":
        return None
    d = analysis.scopes.lookup(text(cache_node), cache_node.start_byte)
    if d is None or d.kind != "assign" or d.node.type != "call":
        return None
    _, method, _ = call_name(d.node)
    if method == "run_with_cache":
        positional, keywords = call_args(d.node)
        arg = positional[0] if positional else keywords.get("input")
        return (text(arg), None) if arg is not None else None
    found = _input_through_helper(analysis, d.node)
    if found is None:
        return None
    fname = text(d.node.child_by_field_name("function"))
    if fname in analysis.scopes.function_defs:
        return found, f"clean input `{found}`, passed to {fname}(…)"
    return found, f"clean input assumed to be `{found}`, the argument of {fname}(…) that is not the model"


def _input_through_helper(analysis: Analysis, call: Node) -> str | None:
    """``run_and_cache(model, prompts)`` where the function runs ``model.run_with_cache(<parameter>)``:
    the argument the caller passes for that parameter. For a function defined elsewhere, its one
    argument that is not a model (an assumption the experiment's description states)."""
    fn = call.child_by_field_name("function")
    defs = analysis.scopes.function_defs.get(text(fn)) if fn is not None and fn.type == "identifier" else None
    definition = defs[-1] if defs else None
    if definition is None:
        return _only_input_argument(analysis, call)
    inner = next((c for c in descendants(definition, "call") if call_name(c)[1] == "run_with_cache"), None)
    if inner is None:
        return None
    inner_positional, inner_keywords = call_args(inner)
    arg = inner_positional[0] if inner_positional else inner_keywords.get("input")
    if arg is None or arg.type != "identifier":
        return None
    names = [text(name) for name, _ in parameters(definition)]
    if text(arg) not in names:
        return text(arg)  # a module-level input the function reads
    positional, keywords = call_args(call)
    index = names.index(text(arg))
    passed = keywords.get(text(arg)) or (positional[index] if index < len(positional) else None)
    return text(passed) if passed is not None else None


def _only_input_argument(analysis: Analysis, call: Node) -> str | None:
    positional, _ = call_args(call)
    inputs = [a for a in positional if not (a.type == "identifier" and analysis.models.model_at(a) is not None)]
    if len(inputs) != 1 or len(inputs) == len(positional):
        return None  # no model among the arguments: not a cache-making helper we can read
    return text(inputs[0])


def _cache_used_by_hooks(analysis: Analysis, hooks: Node) -> Node | None:
    """The clean cache a patching hook reads: a ``partial(fn, clean_cache=...)`` argument, or a
    cache subscripted inside the hook function."""
    values = [hooks]
    for ident in descendants(hooks, "identifier"):  # `hook_fn = partial(...)` assigned before the call
        d = analysis.scopes.lookup(text(ident), ident.start_byte)
        if d is not None and d.kind == "assign":
            values.append(d.node)
    for value_node in values:
        for call in descendants(value_node, "call"):
            _, fname, _ = call_name(call)
            if fname == "partial":
                _, keywords = call_args(call)
                for key, value in keywords.items():
                    if "cache" in key and value.type == "identifier":
                        return value
    registrations = analysis.registrations
    for node in descendants(hooks, "identifier"):
        fn = registrations.hook_function(node) if registrations is not None else None
        if fn is None:
            continue
        for sub in descendants(fn, "subscript"):
            value = sub.child_by_field_name("value")
            if value is not None and value.type == "identifier":
                d = analysis.scopes.lookup(text(value), value.start_byte)
                if d is not None and d.kind == "assign" and analysis.models.cache_at(value) is not None:
                    return value
    return None


def _metric_applied(analysis: Analysis, call: Node, loop: Node) -> str | None:
    """The function applied to the patched logits inside the loop."""
    stmt = statement_of(call)
    target = None
    assign = call.parent
    if assign is not None and assign.type == "assignment":
        left = assign.child_by_field_name("left")
        target = text(left) if left is not None and left.type == "identifier" else None
    for c in descendants(loop, "call"):
        if c == call:
            continue
        positional, _ = call_args(c)
        fn = c.child_by_field_name("function")
        if fn is None or fn.type != "identifier" or not positional:
            continue
        first = positional[0]
        if first == call or (target is not None and text(first) == target and first.start_byte > stmt.start_byte):
            name = text(fn)
            if name in analysis.scopes.function_defs or "metric" in name or "logit" in name:
                return name
    return None


def _kind_from_hook_names(analysis: Analysis, hooks: Node) -> str:
    for ref in analysis.refs:
        if hooks.start_byte <= ref.start < hooks.end_byte and ref.template:
            short = ref.template.rsplit("hook_", 1)[-1]
            if short in _HOOK_KINDS:
                return _HOOK_KINDS[short]
    return "resid_pre"


def _runs_forwards(analysis: Analysis, stmt: Node) -> bool:
    for call in analysis.method_calls:
        if stmt.start_byte <= call.start_byte < stmt.end_byte:
            _, method, _ = call_name(call)
            if method in ("run_with_hooks", "run_with_cache", "generate") or (method or "").startswith("get_act_patch_"):
                return True
    return False


def _outermost_loop(node: Node) -> Node | None:
    loop = None
    parent = node.parent
    while parent is not None and parent.type not in ("function_definition", "module"):
        if parent.type == "for_statement":
            loop = parent
        parent = parent.parent
    return loop
