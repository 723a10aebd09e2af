"""The findings of the lifetime checks: what each message says, where it points, and which fixes it offers."""

from __future__ import annotations

from ..findings import Finding, Fix, Related
from ..syntax import Node, text
from .doc import Doc
from .events import Event, Pending
from .fixes import Fixes, delete_argument
from .models import ModelKeys
from .syntax import enclosing_function_name, short, use_statement

SEVERITY_RANK = {"hint": 0, "information": 1, "warning": 2, "error": 3}

# By the kind of forward a leftover hook runs in (Event.what): how a message names that forward, and why
# the hook runs in it ({where}: the backends the rule holds for). Any other forward: a call of the model.
FORWARD_PHRASES: dict[str, tuple[str, str]] = {
    "run_with_cache": ("`{recv}.{what}`",
                       "`run_with_cache` does not remove hooks added with `add_hook` (in {where}), so that run is "
                       "modified by this hook and so are the activations it caches"),
    "run_with_hooks": ("`{recv}.{what}`",
                       "`run_with_hooks` only removes the hooks it was given (in {where}), so this hook runs in it too"),
    "patching": ("`{label}`",
                 "`{label}` runs a forward pass per patched position, and every one of them runs this hook too"),
    "hooks-context": ("the forward inside `with {recv}.hooks(...)`",
                      "`hooks()` only removes the hooks it was given (in {where}), so this hook runs inside it too"),
    "helper": ("`{recv}(...)` (a forward pass inside)",
               "`{recv}(...)` runs a forward pass on the model, and this hook with it"),
}
MODEL_CALL_PHRASES = ("`{what}`", "nothing removes it in between (in {where} only `reset_hooks()` does)")


class Report:
    """The findings so far, one per (code, start): the most severe one wins."""

    def __init__(self):
        self.findings: dict[tuple[str, int], Finding] = {}

    def emit(self, finding: Finding) -> None:
        k = (finding.code, finding.start)
        old = self.findings.get(k)
        if old is None or SEVERITY_RANK[finding.severity] > SEVERITY_RANK[old.severity]:
            self.findings[k] = finding


def bridge_level_finding(call: Node, recv: Node, positional: list[Node], keywords: dict, bad: list[str],
                         certain: bool) -> Finding:
    """``level=`` / ``prepend=`` (or more than four positional arguments) on ``TransformerBridge.add_hook``."""
    what = f"`{bad[0]}=`" if bad else f"{len(positional)} positional arguments"
    message = (f"`TransformerBridge.add_hook(name, hook_fn, dir, is_permanent)` has no `level` or `prepend`: {what} raises "
               f"TypeError. Hook levels are a HookedTransformer mechanism; on a bridge scope temporary hooks with "
               f"`with {text(recv)}.hooks(fwd_hooks=[...]):` or remove them with `{text(recv)}.reset_hooks()`.")
    fixes = ()
    if bad:
        edits = tuple(delete_argument(keywords[k].parent) for k in bad)
        fixes = (Fix(f"Remove {', '.join(f'`{k}=`' for k in bad)}", tuple(e for e in edits if e is not None)),)
    node = keywords[bad[0]].parent if bad else call
    return Finding(node.start_byte, node.end_byte, "stale-hook", "error" if certain else "warning", message,
                   fixes=fixes if fixes and fixes[0].edits else ())


def add_range(ev: Event) -> tuple[int, int]:
    """Where a finding about an added hook points: the call up to its arguments."""
    fn = ev.node.child_by_field_name("function")
    return ev.node.start_byte, (fn.end_byte if fn is not None else ev.node.end_byte)


class Messages:
    def __init__(self, doc: Doc, models: ModelKeys, fixes: Fixes):
        self.where = doc.where
        self.models = models
        self.fixes = fixes

    def _related(self, p: Pending, leak: bool = False) -> tuple[Related, ...]:
        out = [Related(*add_range(p.ev), f"hook on {_shown(p.ev.label)} added here")]
        if p.via is not None:
            out.append(Related(p.via.start_byte, p.via.end_byte, "the call that leaves it attached"))
        if p.first is not None and p.first.node != p.via:
            out.append(Related(p.first.node.start_byte, p.first.node.end_byte, "the forward it is meant for"))
        if leak and p.leak is not None:
            out.append(Related(p.leak.node.start_byte, p.leak.node.end_byte, "still attached during this forward"))
        return tuple(out)

    def _backend(self, ev: Event) -> str | None:
        return self.models.backend(ev.model_node)[0] if ev.model_node is not None else None

    def _phrases(self, forward: Event, backend: str | None = None) -> tuple[str, str]:
        """(how to name the forward, why a leftover hook runs in it)."""
        where = {"hooked": "HookedTransformer 2.x/3.x", "bridge": "TransformerBridge 4.x"}.get(
            backend or "", "every TransformerLens version")
        names, why = FORWARD_PHRASES.get(forward.what, MODEL_CALL_PHRASES)
        fields = {"recv": forward.recv, "what": forward.what, "label": forward.label, "where": where}
        return names.format(**fields), why.format(**fields)

    def leak(self, p: Pending, severity: str, removed_at: Node | None, records_only: bool = False) -> Finding:
        """A hook still attached during a forward after the one it is meant for. ``records_only``: the hook only
        records its activation, so that forward's results are unchanged and only the record is not."""
        ev, leak = p.ev, p.leak
        assert leak is not None and p.first is not None
        origin = f" (added inside `{enclosing_function_name(ev.node)}`)" if p.via is not None else ""
        if records_only:
            message = (f"Hook on {_shown(ev.label)}{origin} only records its activation, and it is still attached during "
                       f"{self._phrases(leak)[0]} ({self.where(leak.node)}): what it recorded from the forward at "
                       f"{self.where(p.first.node)} is replaced by (or added to) that forward's activations. That "
                       f"forward's results are unchanged. If the record should hold only the forward at "
                       f"{self.where(p.first.node)}, call `{p.recv}.reset_hooks()` after it.")
        elif severity == "hint":
            desc = self._phrases(leak)[0]
            message = (f"Hook on {_shown(ev.label)}{origin} stays attached from the forward at {self.where(p.first.node)} "
                       f"through {desc} ({self.where(leak.node)}; removed at {self.where(removed_at)}). "
                       f"If both passes should be hooked this is fine; otherwise call `{p.recv}.reset_hooks()` after "
                       f"{self.where(p.first.node)}.")
        else:
            desc, why = self._phrases(leak, self._backend(ev))
            message = (f"Hook on {_shown(ev.label)}{origin} is still attached during {desc} ({self.where(leak.node)}): "
                       f"{why}. It was meant for the forward at {self.where(p.first.node)}; "
                       f"remove it after that with `{p.recv}.reset_hooks()`, or scope it with `with {p.recv}.hooks(...)`.")
        return Finding(*add_range(ev), "stale-hook", severity, message, fixes=self.fixes.reset_after_use(p),
                       related=self._related(p, leak=True))

    def never_removed(self, p: Pending, records_only: bool = False) -> Finding:
        """A module-level hook that stays for the rest of the session. ``records_only``: the hook only records its
        activation, so later forwards' results are unchanged, but each one records over (or adds to) the record."""
        ev = p.ev
        assert p.first is not None
        origin = f" (inside `{enclosing_function_name(ev.node)}`)" if p.via is not None else ""
        effect = ("records its activation too, over what the forward there recorded (or on top of it: a list that "
                  "grows with every forward)" if records_only else "runs it too")
        message = (f"Hook on {_shown(ev.label)}{origin} is never removed: after the forward at {self.where(p.first.node)} it "
                   f"stays on `{p.recv}` for the rest of the session, so every later forward (another cell, a re-run "
                   f"cell, run_with_cache, patching) {effect}; `run_with_cache` and `run_with_hooks` do not remove it. "
                   f"Remove it with `{p.recv}.reset_hooks()` after {self.where(p.first.node)}, or scope it with "
                   f"`with {p.recv}.hooks(...)`.")
        return Finding(*add_range(ev), "stale-hook", "warning", message, fixes=self.fixes.reset_after_use(p),
                       related=self._related(p))

    def returned(self, p: Pending, fn_name: str) -> Finding:
        """A function that returns with a hook it used still on a model it did not create."""
        owner = "a parameter" if p.key[0] == "p" else "a global" if p.key[0] == "g" else "an attribute"
        message = (f"`{fn_name}` returns with the hook on {_shown(p.ev.label)} still attached to `{p.recv}` ({owner}: a model "
                   f"this function did not create). It was used by the forward at {self.where(p.first.node)}; "
                   f"every forward the caller runs afterwards runs it too. Remove it before returning with "
                   f"`{p.recv}.reset_hooks()`, or scope it with `with {p.recv}.hooks(...)`.")
        return Finding(*add_range(p.ev), "stale-hook", "hint", message,
                       fixes=self.fixes.reset_after_use(p), related=self._related(p))

    def accumulates(self, ev: Event, loop: Node, forwards: list[Event]) -> Finding:
        """``add_hook`` in a loop that runs a forward and never resets."""
        fn = f"`{text(ev.fn_node)}`" if ev.fn_node is not None else "the hook"
        adder = text(ev.node.child_by_field_name("function"))
        message = (f"`{adder}` runs on every iteration of the loop at {self.where(loop)} and nothing in the "
                   f"loop removes the hooks: the forward at {self.where(forwards[0].node)} runs one more copy of "
                   f"{short(fn, 50)} on {_shown(ev.label)} each iteration (quadratic cost; wrong results unless the hook is "
                   f"idempotent). Call `{ev.recv}.reset_hooks()` at the end of each iteration, or use `run_with_hooks` / "
                   f"`with {ev.recv}.hooks(...)`; if piling up is the point (cumulative ablation), add "
                   f"`# tlens: ignore[hook-accumulates]`.")
        fixes = (self.fixes.wrap(ev, forwards[0].node), self.fixes.reset_at_loop_end(ev.recv, loop, preferred=True))
        related = (Related(forwards[0].node.start_byte, forwards[0].node.end_byte, "forward pass in the same loop"),)
        return Finding(*add_range(ev), "hook-accumulates", "warning", message,
                       fixes=tuple(f for f in fixes if f is not None), related=related)

    def temp_in_loop(self, ev: Event, loop: Node) -> Finding:
        """``reset_hooks_end=False`` in a loop that never resets: the hooks pile up."""
        kw = ev.kw_node or ev.node
        if ev.method == "run_with_cache":
            detail = ("each iteration leaves its caching hooks attached, and every later forward runs all of them, "
                      "writing into every earlier cache (memory grows with each iteration, and old caches are overwritten)")
        else:
            detail = ("each iteration leaves its hooks attached, so they pile up: iteration k runs k copies of each hook")
        message = (f"`{ev.method}(..., reset_hooks_end=False)` in the loop at {self.where(loop)} with no reset in the "
                   f"loop: {detail}. Drop `reset_hooks_end=False`, or call `{ev.recv}.reset_hooks()` at the end of each "
                   f"iteration.")
        fixes = []
        drop = delete_argument(kw) if kw.type == "keyword_argument" else None
        if drop is not None and ev.method == "run_with_cache":
            fixes.append(Fix("Remove `reset_hooks_end=False`", (drop,), preferred=True))
        reset = self.fixes.reset_at_loop_end(ev.recv, loop, preferred=not fixes)
        if reset is not None:
            fixes.append(reset)
        return Finding(kw.start_byte, kw.end_byte, "reset-hooks-end-false", "warning", message, fixes=tuple(fixes),
                       related=(Related(loop.start_byte, loop.start_byte + 3, "the loop"),))

    def temp_leak(self, p: Pending) -> Finding:
        """Hooks left by ``reset_hooks_end=False`` still attached during a later forward."""
        ev, leak = p.ev, p.leak
        assert leak is not None
        kw = ev.kw_node or ev.node
        call = "with hooks(...)" if ev.method == "hooks" else f"{ev.method}(...)"
        backend = self._backend(ev)
        if backend == "bridge":
            later = "TransformerBridge keeps them until `reset_hooks()`"
        elif backend == "hooked":
            later = ("HookedTransformer removes them only at `reset_hooks()` or at the end of the next `run_with_*`/`hooks()` "
                     "with the default reset, after they have run there too")
        else:
            later = ("they stay until `reset_hooks()` (HookedTransformer also drops them after the next default-reset "
                     "`run_with_*`, once they have run in it)")
        message = (f"`{call}` with `reset_hooks_end=False` leaves its hooks on `{ev.recv}`, and they are still attached "
                   f"during {self._phrases(leak)[0]} ({self.where(leak.node)}): {later}. "
                   f"Call `{ev.recv}.reset_hooks()` once the "
                   f"hooks have done their job (after the backward pass, if that is what they are for).")
        fix = self.fixes.reset_before(p.recv, use_statement(p.anchor, leak.node))
        related = (Related(leak.node.start_byte, leak.node.end_byte, "runs the leftover hooks"),)
        return Finding(kw.start_byte, kw.end_byte, "reset-hooks-end-false", "warning", message,
                       fixes=(fix,) if fix is not None else (), related=related)


def _shown(label: str) -> str:
    """A hook name in backticks; a description that quotes code already ("every hook point the filter `...` accepts") as is."""
    return label if "`" in label else f"`{label}`"
