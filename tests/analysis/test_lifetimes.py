"""Hook-lifetime and hook-signature diagnostics: fixtures, edge cases, quick fixes, and real TransformerLens.

The fixture tests compare every finding of the four codes with the ``# expect:`` markers in
tests/fixtures/lifetimes/ (lines without a marker must stay clean). The runtime tests execute small
programs on a tiny real model (TL 4.x bridge here; TL 2.x HookedTransformer with ``TLENS_HT_PYTHON``)
to show that what a diagnostic claims happens, and that its quick fix stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.analysis.findings import Fix

from .lifetimes_precision import CODES, fixtures, run_fixture, table


def found(src: str, tl_major: int | None = 2) -> set[tuple[int, str, str]]:
    a = analyze(textwrap.dedent(src), AnalysisContext(tl_major=tl_major))
    return {(a.lines.line_of(f.start) + 1, f.code, f.severity) for f in a.findings if f.code in CODES}


def only(src: str, tl_major: int | None = 2):
    a = analyze(textwrap.dedent(src), AnalysisContext(tl_major=tl_major))
    (f,) = [f for f in a.findings if f.code in CODES]
    return a, f


def apply(text: str, fix: Fix) -> str:
    data = text.encode()
    for e in sorted(fix.edits, key=lambda e: e.start, reverse=True):
        data = data[:e.start] + e.new_text.encode() + data[e.end:]
    return data.decode()


def _original_offset(fix: Fix, offset: int) -> int:
    """Where an offset of the fixed text was in the original (edits shift what follows them)."""
    shift = 0
    for e in sorted(fix.edits, key=lambda e: e.start):
        new_end = e.start + shift + len(e.new_text.encode())
        if offset + 0 >= new_end:
            shift += len(e.new_text.encode()) - (e.end - e.start)
        elif offset >= e.start + shift:
            return e.start
    return offset - shift


HT = "from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained('gpt2')\n"

# ----------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.name)
def test_fixture_findings_match_markers(path):
    outcome, _ = run_fixture(path)
    assert not outcome.unexpected, f"findings without a marker: {sorted(outcome.unexpected)}"
    assert not outcome.missing, f"marked but not found: {sorted(outcome.missing)}"
    assert not outcome.wrong_severity, f"wrong severity: {sorted(outcome.wrong_severity)}"


def test_precision_table(capsys):
    outcomes = [run_fixture(p)[0] for p in fixtures()]
    report = table(outcomes)
    with capsys.disabled():
        print("\nhook-lifetime precision over tests/fixtures/lifetimes/\n" + report)
    assert sum(len(o.expected) for o in outcomes) >= 15  # the fixtures exercise every code
    assert {e[1] for o in outcomes for e in o.expected} == set(CODES)


def _fix_cases():
    for path in fixtures():
        _, a = run_fixture(path)
        for f in a.findings:
            if f.code in CODES:
                for i, fix in enumerate(f.fixes):
                    yield pytest.param(path, f.start, f.code, i, id=f"{path.stem}:{a.lines.line_of(f.start) + 1}:{f.code}:{i}")


@pytest.mark.parametrize("path,start,code,index", list(_fix_cases()))
def test_every_quick_fix_resolves_its_finding(path, start, code, index):
    """Applying a fix removes that finding, adds no other, and leaves code that parses."""
    outcome, a = run_fixture(path)
    (finding,) = [f for f in a.findings if f.start == start and f.code == code]
    text = path.read_text()
    fixed = apply(text, finding.fixes[index])
    b = analyze(fixed, AnalysisContext(tl_major=a.context.tl_major))
    assert not b.parsed.root.has_error, fixed
    rank = {"hint": 0, "warning": 1, "error": 2}
    line = a.lines.line_of(start)
    after = {(a.lines.line_of(_original_offset(finding.fixes[index], f.start)), f.code, f.severity)
             for f in b.findings if f.code in CODES}
    before = {(a.lines.line_of(f.start), f.code, f.severity) for f in a.findings if f.code in CODES}
    assert (line, code, finding.severity) not in after, finding.fixes[index].title
    # Nothing new, except a milder finding in the same place (removing the bridge's `level=` fixes the
    # TypeError and leaves an ordinary add_hook, which may then leak like any other).
    for new in after - before:
        assert (new[0], new[1]) == (line, code) and rank[new[2]] < rank[finding.severity], (finding.fixes[index].title, new)
    assert len(after) == len(before) - (0 if (line, code) in {(l, c) for l, c, _ in after} else 1)


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.name)
def test_half_typed_fixtures_never_raise(path):
    """Every 4th line-prefix of a fixture (half-typed code) analyses without an exception, in both modes."""
    lines = path.read_text().split("\n")
    for k in range(1, len(lines), 4):
        prefix = "\n".join(lines[:k]) + "\nmodel.add_hook(utils.get_act_name('z', 0), lambda z, h"
        for notebook in (False, True):
            analyze(prefix, AnalysisContext(tl_major=2), notebook=notebook)


# ----------------------------------------------------------------------------- stale-hook


def test_add_forward_reset_is_clean():
    assert found(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\nmodel('a')\nmodel.reset_hooks()\nmodel('b')\n") == set()


def test_leak_into_second_plain_forward_without_reset_is_a_warning():
    assert found(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\nmodel('a')\nmodel('b')\n") == {
        (3, "stale-hook", "warning")}


def test_two_plain_forwards_then_reset_is_a_hint_unless_the_second_is_named_clean():
    src = HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\na = model('a')\nb = model('b')\nmodel.reset_hooks()\n"
    assert found(src) == {(3, "stale-hook", "hint")}
    assert found(src.replace("b = model", "clean_logits = model")) == {(3, "stale-hook", "warning")}


def test_leak_into_run_with_cache_is_a_warning_even_with_a_later_reset():
    a, f = only(HT + "model.add_hook('blocks.3.attn.hook_z', lambda z, hook: z * 0)\nmodel('a')\n"
                     "# run_with_cache removes the hooks\n_, cache = model.run_with_cache('b')\nmodel.reset_hooks()\n")
    assert f.severity == "warning" and "blocks.3.attn.hook_z" in f.message and "line 6" in f.message
    assert "does not remove hooks added with `add_hook`" in f.message and "HookedTransformer 2.x/3.x" in f.message
    assert [a.lines.line_of(r.start) + 1 for r in f.related] == [3, 4, 6]


@pytest.mark.parametrize("hook,records", [
    ("lambda x, hook: acts.append(x.detach())", True),
    ("lambda x, hook: store.update({hook.name: x})", True),
    ("lambda x, hook: store.__setitem__(hook.name, x.cpu())", True),
    ("lambda x, hook: x", False),  # the returned value replaces the activation
    ("lambda x, hook: x.clone()", False),
    ("lambda x, hook: x.zero_()", False),
    ("lambda x, hook: acts.append(x) or x", False),
    ("record", True),
    ("partial(record_at, 3)", True),  # partial binds the position in front of the activation
    ("clamp_in_place", False),
    ("write_through_view", False),
    ("add_in_place", False),
    ("hand_to_helper", False),  # the helper may write into it
    ("relu_in_place", False),
    ("returns_it", False),
    ("returns_none", True),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_hook_that_only_records_its_activation_leaves_later_forwards_unchanged(hook, records):
    """A later forward with a recording hook still attached gives the results it would without it: information
    that says what the record holds now (a bug when the record should hold only the first forward), not a
    warning that the forward is modified."""
    src = HT + textwrap.dedent("""\
        from functools import partial
        acts, store = [], {}

        def record(x, hook):
            total = 0.0
            total += x.sum()
            store[hook.name] = (x.detach(), total)
            print(x.shape, hook.name)

        def record_at(pos, x, hook):
            acts.append(x[:, pos])

        def clamp_in_place(x, hook):
            x[:, 0] = 0.0

        def write_through_view(x, hook):
            acts.append(x)
            last = x[:, -1]
            last *= 2

        def add_in_place(x, hook):
            x += 1

        def hand_to_helper(x, hook):
            ablate(x)

        def relu_in_place(x, hook):
            torch.nn.functional.relu(x, inplace=True)

        def returns_it(x, hook):
            acts.append(x)
            return x

        def returns_none(x, hook):
            def inner(y):
                return y * 2
            acts.append(x.sum())
            return None

        """) + f"model.add_hook('blocks.0.hook_resid_pre', {hook})\nfirst = model('a')\nsecond = model('b')\n"
    a, f = only(src)
    assert f.severity == ("information" if records else "warning"), f.message
    assert ("only records its activation" in f.message) == records, f.message
    assert not records or "results are unchanged" in f.message and "reset_hooks()" in f.message


def test_a_recording_hook_kept_across_two_forwards_and_then_reset_is_a_hint():
    src = HT + ("acts = []\nmodel.add_hook('blocks.0.hook_resid_pre', lambda x, hook: acts.append(x))\n"
                "a = model('a')\nb = model('b')\nmodel.reset_hooks()\n")
    _, f = only(src)
    assert f.severity == "hint" and "only records its activation" in f.message


def test_hook_added_before_a_loop_is_meant_for_every_iteration():
    assert found(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\nfor t in ['a', 'b']:\n"
                      "    model(t)\n    model(t + 'c')\nmodel.reset_hooks()\n") == set()


def test_never_removed_at_module_level_is_a_warning_but_not_in_a_function_with_a_local_model():
    assert found(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\nmodel('a')\n") == {(3, "stale-hook", "warning")}
    assert found(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\n") == set()  # never used: nothing to say
    assert found("""
        from transformer_lens import HookedTransformer
        def run():
            m = HookedTransformer.from_pretrained('gpt2')
            m.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)
            return m('a')
        run()
    """) == set()


def test_a_hook_on_a_model_the_module_deletes_goes_with_it():
    """Seen in real code: a script that boosts an MLP, generates, and ends with `del model; torch.cuda.empty_cache()`."""
    added = HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\nmodel('a')\n"
    assert found(added + "del model\n") == set()
    assert found(added + "del cache, model  # free memory\n") == set()
    # Deleted only on some runs, another name, or words in a string: the hook may stay.
    assert found(added + "if low_memory:\n    del model\n") == {(3, "stale-hook", "warning")}
    assert found(added + "del model_b\n") == {(3, "stale-hook", "warning")}
    assert found(added + 's = """\ndel model\n"""\n') == {(3, "stale-hook", "warning")}


def test_a_recording_hook_never_removed_says_later_forwards_record_too():
    _, f = only(HT + "acts = []\nmodel.add_hook('blocks.0.hook_resid_pre', lambda x, hook: acts.append(x))\nmodel('a')\n")
    assert (f.code, f.severity) == ("stale-hook", "warning")
    assert "records its activation too" in f.message and "runs it too" not in f.message
    _, f = only(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x * 0)\nmodel('a')\n")
    assert "runs it too" in f.message and "records" not in f.message


def test_permanent_and_handle_managed_hooks_are_deliberate():
    assert found(HT + "model.add_perma_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\nmodel('a')\nmodel('b')\n") == set()
    assert found(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x, is_permanent=True)\nmodel('a')\nmodel('b')\n") == set()
    assert found(HT + "h = model.blocks[0].hook_resid_pre.add_hook(lambda x, hook: x)\nmodel('a')\nmodel('b')\n") == set()


def test_level_on_hooked_is_untracked_and_on_bridge_a_type_error():
    assert found(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x, level=1)\nmodel('a')\nmodel('b')\n") == set()
    a, f = only("from transformer_lens.model_bridge import TransformerBridge\nb = TransformerBridge.boot_transformers('gpt2')\n"
                "b.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x, prepend=True)\n", tl_major=4)
    assert (f.code, f.severity) == ("stale-hook", "error") and "`prepend=`" in f.message
    assert apply(a.source.decode(), f.fixes[0]).splitlines()[2] == "b.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)"


def test_exclusive_branches_returns_and_rebinding_stop_the_flow():
    assert found(HT + """
if True:
    model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)
    model('a')
else:
    model('b')
model.reset_hooks()
""") == set()
    assert found(HT + """
model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)
model('a')
model = HookedTransformer.from_pretrained('gpt2')
model('b')
""") == set()
    assert found(HT + """
model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)
model('a')
model = model.to('cpu')
model('b')
""") == {(4, "stale-hook", "warning")}  # .to() returns the same model, hooks and all


def test_model_handed_to_unknown_code_ends_tracking():
    assert found(HT + "from lib import evaluate\nmodel.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\nmodel('a')\n"
                      "evaluate(model, 'x')\nmodel('b')\nmodel.reset_hooks()\n") == set()
    assert found(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\nmodel('a')\n"
                      "print(model)\nmodel('b')\n") == {(3, "stale-hook", "warning")}


def test_helper_that_forwards_counts_as_a_forward_and_one_that_resets_as_a_reset():
    src = HT + """
def logits_of(model, text):
    return model(text)
def cleanup(model):
    model.reset_hooks()
model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)
logits_of(model, 'a')
cleanup(model)
logits_of(model, 'b')
"""
    assert found(src) == set()
    assert found(src.replace("cleanup(model)\n", "")) == {(8, "stale-hook", "warning")}


def test_hooks_context_does_not_remove_add_hook_hooks():
    a, f = only(HT + "model.add_hook('blocks.0.hook_resid_pre', lambda x, hook: x)\nmodel('a')\n"
                     "with model.hooks(fwd_hooks=[]):\n    model('b')\nmodel.reset_hooks()\n")
    assert f.severity == "warning" and "`hooks()` only removes the hooks it was given" in f.message


def test_function_returning_with_hook_on_parameter():
    src = """
        def ablated_loss(model, tokens):
            model.add_hook('blocks.0.hook_mlp_out', lambda x, hook: x * 0)
            return model(tokens, return_type='loss')
    """
    a, f = only(src)
    assert f.severity == "hint" and "returns with the hook" in f.message and "a parameter" in f.message
    # Called, and the caller resets: nothing to say; the caller runs another forward: a warning.
    assert found(HT + textwrap.dedent(src) + "ablated_loss(model, 'a')\nmodel.reset_hooks()\nmodel('b')\n") == set()
    assert found(HT + textwrap.dedent(src) + "ablated_loss(model, 'a')\nmodel('b')\nmodel.reset_hooks()\n") == {
        (5, "stale-hook", "warning")}


def test_experiment_class_that_resets_in_its_own_methods_is_not_flagged():
    cls = """
        class Experiment:
            def __init__(self, model):
                self.model = model
            def measure(self, tokens):
                self.model.add_hook('blocks.0.hook_resid_pre', self.hook)
                return self.model(tokens)
            def hook(self, x, hook):
                return x
"""
    assert found(cls + "            def clear(self):\n                self.model.reset_hooks()\n") == set()
    assert found(cls) == {(6, "stale-hook", "hint")}
    # A method that resets through another method of the class, between two forwards and in a loop.
    helper = "            def clear(self):\n                self.model.reset_hooks()\n"
    two = cls.replace("return self.model(tokens)", "a = self.model(tokens)\n                self.clear()\n                return self.model(tokens)")
    assert found(two + helper) == set()
    assert found(two.replace("self.clear()", "print(1)") + helper) == {(6, "stale-hook", "warning")}
    loop = cls.replace("                self.model.add_hook('blocks.0.hook_resid_pre', self.hook)\n                return self.model(tokens)",
                       "                for t in tokens:\n                    self.model.add_hook('blocks.0.hook_resid_pre', self.hook)\n"
                       "                    self.model(t)\n                    self.clear()\n")
    assert found(loop + helper) == set()
    assert found(loop.replace("self.clear()", "print(t)") + helper) == {(7, "hook-accumulates", "warning")}


# ----------------------------------------------------------------------------- loops


def test_add_hook_in_loop_with_forward_accumulates_unless_reset_or_conditional():
    loop = HT + "for layer in range(12):\n    model.add_hook(f'blocks.{layer}.hook_resid_pre', lambda x, hook: x)\n    model('a')\n"
    a, f = only(loop)
    assert f.code == "hook-accumulates" and "blocks.{layer}.hook_resid_pre" in f.message
    assert found(loop + "    model.reset_hooks()\n") == set()
    reset = "model.reset_hooks()\n"
    assert found(loop.replace("    model.add_hook", "    if layer == 0:\n        model.add_hook") + reset) == set()
    assert found(loop + "    break\n" + reset) == set()
    many = HT + "for layer in range(12):\n    model.add_hook(f'blocks.{layer}.hook_resid_pre', lambda x, hook: x)\nmodel('a')\nmodel.reset_hooks()\n"
    assert found(many) == set()


def test_cumulative_ablation_can_be_suppressed_on_the_add_line():
    loop = HT + "for layer in range(12):\n    model.add_hook(f'blocks.{layer}.hook_resid_pre', lambda x, hook: x)\n    model('a')\n"
    a, f = only(loop)
    assert "tlens: ignore[hook-accumulates]" in f.message
    assert found(loop.replace("lambda x, hook: x)", "lambda x, hook: x)  # tlens: ignore[hook-accumulates]")) == set()


def test_nested_loop_forward_in_outer_loop_accumulates():
    src = HT + """
for layer in range(12):
    for head in range(12):
        model.add_hook(f'blocks.{layer}.attn.hook_z', lambda z, hook: z)
    model('a')
"""
    assert found(src) == {(6, "hook-accumulates", "warning")}


def test_run_with_cache_reset_false_in_loop_and_leak():
    src = HT + "for t in ['a', 'b']:\n    _, c = model.run_with_cache(t, reset_hooks_end=False)\n"
    a, f = only(src)
    assert f.code == "reset-hooks-end-false" and a.source[f.start:f.end] == b"reset_hooks_end=False"
    assert found(src + "    model.reset_hooks()\n") == set()
    leak = HT + "_, c = model.run_with_cache('a', reset_hooks_end=False)\nmodel('b')\n"
    assert found(leak) == {(3, "reset-hooks-end-false", "warning")}
    assert found(HT + "_, c = model.run_with_cache('a', reset_hooks_end=False)\nmodel.reset_hooks()\nmodel('b')\n") == set()


def test_attribution_patching_with_explicit_reset_is_clean():
    assert found(HT + """
with model.hooks(fwd_hooks=[], bwd_hooks=[('blocks.0.hook_resid_pre', lambda g, hook: None)], reset_hooks_end=False):
    loss = model('a', return_type='loss')
    loss.backward()
model.reset_hooks()
model('b')
""") == set()
    assert found(HT + """
with model.hooks([], [('blocks.0.hook_resid_pre', lambda g, hook: None)], False):
    model('a', return_type='loss').backward()
model('b')
""") == {(4, "reset-hooks-end-false", "warning")}


def test_bridge_leak_message_says_the_bridge_keeps_the_hooks():
    a, f = only("from transformer_lens.model_bridge import TransformerBridge\nb = TransformerBridge.boot_transformers('gpt2')\n"
                "b.run_with_hooks('a', fwd_hooks=[('blocks.0.hook_resid_pre', lambda x, hook: x)], reset_hooks_end=False)\n"
                "b('c')\n", tl_major=4)
    assert f.code == "reset-hooks-end-false" and "TransformerBridge keeps them until `reset_hooks()`" in f.message


# ----------------------------------------------------------------------------- hook-signature


@pytest.mark.parametrize("fn,ok", [
    ("def f(x, hook): return x", True),
    ("def f(x, *, hook): return x", True),
    ("def f(x, **kwargs): return x", True),
    ("def f(x, hook=None, scale=2.0): return x", True),
    ("def f(x, h): return x", False),
    ("def f(x): return x", False),
    ("def f(x, /, hook): return x", True),
    ("def f(x, hook, /): return x", False),
    ("def f(x, hook, head): return x", False),
    ("def f(*args, **kwargs): return args[0]", True),
])
def test_hook_signatures(fn, ok):
    src = HT + fn + "\nmodel.run_with_hooks('a', fwd_hooks=[('blocks.0.hook_resid_pre', f)])\n"
    assert (found(src) == set()) == ok


@pytest.mark.parametrize("hook,ok", [
    ("partial(f, head=1)", True),
    ("partial(f, 1)", False),  # activation -> x=1, then the activation fills `hook` and hook= comes again
    ("partial(f, hook=None, head=1)", True),  # the call's hook= overrides partial's
    ("partial(partial(f, head=1))", True),
    ("partial(g, hook=None)", False),  # partial can't give g a `hook` parameter: the call's hook= is unexpected
])
def test_partial_binding(hook, ok):
    src = HT + ("from functools import partial\ndef f(x, hook, head): return x\ndef g(x, h): return x\n"
                f"model.add_hook('blocks.0.hook_resid_pre', {hook})\nmodel('a')\nmodel.reset_hooks()\n")
    assert ({c for _, c, _ in found(src)} == set()) == ok


@pytest.mark.parametrize("elsewhere,checked", [
    ("", True),
    ("# `self.fn = g` would keep another\n", True),  # a comment writes nothing
    ("s = Steer()\ns.fn = g\n", False),  # set from outside: either may run
    ("class Other:\n    def __init__(self):\n        self.fn = g\n", False),  # writes are told apart by name alone
])
def test_a_hook_function_a_class_holds_in_an_attribute_set_once(elsewhere, checked):
    src = HT + ("def f(x, h): return x\ndef g(x, hook): return x\n"
                "class Steer:\n    def __init__(self):\n        self.fn = f\n"
                "    def run(self):\n        model.run_with_hooks('a', fwd_hooks=[('blocks.0.hook_resid_pre', self.fn)])\n") + elsewhere
    assert ({c for _, c, _ in found(src)} == {"hook-signature"}) == checked


def test_unresolvable_hook_functions_are_left_alone():
    assert found(HT + "import mylib\nmodel.run_with_hooks('a', fwd_hooks=[('blocks.0.hook_resid_pre', mylib.f)])\n") == set()
    assert found(HT + "def deco(f): return f\n@deco\ndef f(x, h): return x\n"
                      "model.run_with_hooks('a', fwd_hooks=[('blocks.0.hook_resid_pre', f)])\n") == set()
    assert found(HT + "def f(x, h): return x\ndef f(x, hook): return x\n"
                      "model.run_with_hooks('a', fwd_hooks=[('blocks.0.hook_resid_pre', f)])\n") == set()
    # Not a TransformerLens model: some other library's add_hook(name, fn).
    assert found("trainer = Trainer()\ndef f(x, h): return x\ntrainer.add_hook('on_step', f)\n") == set()


def test_rename_fix_renames_uses_but_not_attributes_or_keywords():
    src = HT + "def f(x, h):\n    print(h.name, dict(h=1), x.h)\n    return x\nmodel.run_with_hooks('a', fwd_hooks=[('blocks.0.hook_resid_pre', f)])\n"
    a, f = only(src)
    fixed = apply(a.source.decode(), f.fixes[0])
    assert "def f(x, hook):\n    print(hook.name, dict(h=1), x.h)" in fixed
    assert found(fixed) == set()


def test_add_parameter_fix_for_single_parameter_lambda():
    a, f = only(HT + "model.run_with_hooks('a', fwd_hooks=[('blocks.0.hook_resid_pre', lambda x: x * 2)])\n")
    fixed = apply(a.source.decode(), f.fixes[0])
    assert "lambda x, hook: x * 2" in fixed and found(fixed) == set()


# ----------------------------------------------------------------------------- real TransformerLens

_PROBE = r'''
import json, sys, io, contextlib
import torch
kind = sys.argv[1]
if kind == "bridge":
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.config import TransformerBridgeConfig
    model = TransformerBridge.boot_native(TransformerBridgeConfig(n_layers=2, d_model=24, n_heads=4, d_head=6, d_mlp=40,
                                                                  d_vocab=300, n_ctx=32, act_fn="gelu", seed=0))
else:
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    model = HookedTransformer(HookedTransformerConfig(n_layers=2, d_model=24, n_heads=4, d_head=6, d_mlp=40, d_vocab=300,
                                                      n_ctx=32, act_fn="gelu", seed=0))
model.eval()
tokens = torch.randint(0, 300, (1, 5))

def attached():
    points = {id(hp): hp for hp in model.hook_dict.values()}.values()
    return sum(len(hp.fwd_hooks) + len(hp.bwd_hooks) for hp in points)

out = []
for program in json.loads(sys.stdin.read()):
    model.reset_hooks(including_permanent=True)
    ns = {"model": model, "tokens": tokens, "torch": torch, "attached": attached, "OBS": {}}
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            exec(program, ns)
        ns["OBS"]["error"] = None
    except Exception as e:
        ns["OBS"]["error"] = f"{type(e).__name__}: {e}"
    out.append(ns["OBS"])
print(json.dumps(out))
'''

# (name, program, code the analysis must report, observation before the fix, observation after the fix)
_PROGRAMS = [
    ("stale-into-run_with_cache", """
calls = []
def ablate(x, hook):
    calls.append(hook.name)
model.add_hook("blocks.0.hook_resid_pre", ablate)
model(tokens)
before = len(calls)
_, cache = model.run_with_cache(tokens)
OBS["fired_in_run_with_cache"] = len(calls) - before
""", "stale-hook", {"fired_in_run_with_cache": 1}, {"fired_in_run_with_cache": 0}),
    ("recorder-leak", """
other = (tokens + 1) % 300
reference = model(other)
stored = {}
def record(x, hook):
    stored["resid"] = x.detach().clone()
model.add_hook("blocks.0.hook_resid_pre", record)
model(tokens)
first_record = stored["resid"]
later = model(other)
OBS["record_replaced"] = not torch.equal(stored["resid"], first_record)
OBS["results_unchanged"] = bool(torch.allclose(later, reference))
""", "stale-hook", {"record_replaced": True, "results_unchanged": True},
     {"record_replaced": False, "results_unchanged": True}),
    ("accumulates", """
calls = []
def ablate(x, hook):
    calls.append(1)
for i in range(3):
    model.add_hook("blocks.0.hook_resid_pre", ablate)
    model(tokens)
OBS["calls"] = len(calls)
""", "hook-accumulates", {"calls": 6}, {"calls": 3}),
    ("caching-hooks-pile-up", """
for i in range(3):
    _, cache = model.run_with_cache(tokens, names_filter="blocks.0.hook_resid_pre", reset_hooks_end=False)
OBS["piled_up"] = attached() >= 3
""", "reset-hooks-end-false", {"piled_up": True}, {"piled_up": False}),
    ("run_with_hooks-leak", """
calls = []
def f(x, hook):
    calls.append(1)
model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_resid_pre", f)], reset_hooks_end=False)
model(tokens)
OBS["calls"] = len(calls)
""", "reset-hooks-end-false", {"calls": 2}, {"calls": 1}),
    ("signature", """
def f(x, h):
    return x
try:
    model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_resid_pre", f)])
    OBS["type_error"] = False
except TypeError as e:
    OBS["type_error"] = "unexpected keyword argument 'hook'" in str(e)
""", "hook-signature", {"type_error": True}, {"type_error": False}),
    ("partial-positional", """
from functools import partial
def f(x, hook, scale):
    return x * scale
try:
    model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_resid_pre", partial(f, 2.0))])
    OBS["type_error"] = False
except TypeError as e:
    OBS["type_error"] = "multiple values for argument 'hook'" in str(e)
""", "hook-signature", {"type_error": True}, None),
    ("attribution-done-right", """
grads = []
def save(g, hook):
    grads.append(g.shape)
with model.hooks(bwd_hooks=[("blocks.0.hook_resid_pre", save)], reset_hooks_end=False):
    model(tokens).sum().backward()
model.reset_hooks()
OBS["grads"] = len(grads)
OBS["attached_after"] = attached()
""", None, {"grads": 1, "attached_after": 0}, None),
]


def _header(kind: str) -> str:
    if kind == "bridge":
        return ("from transformer_lens.model_bridge import TransformerBridge\nfrom transformer_lens.config import TransformerBridgeConfig\n"
                "model = TransformerBridge.boot_native(TransformerBridgeConfig(n_layers=2, d_model=24, n_heads=4, d_head=6, d_mlp=40, d_vocab=300, n_ctx=32))\n")
    return ("from transformer_lens import HookedTransformer, HookedTransformerConfig\n"
            "model = HookedTransformer(HookedTransformerConfig(n_layers=2, d_model=24, n_heads=4, d_head=6, d_mlp=40, d_vocab=300, n_ctx=32))\n")


def _run_probe(python: str, kind: str, programs: list[str]) -> list[dict]:
    proc = subprocess.run([python, "-c", _PROBE, kind], input=json.dumps(programs), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_against_tl(python: str, kind: str, tl_major: int) -> None:
    programs, fixed_programs, expectations = [], [], []
    for name, body, code, before, after in _PROGRAMS:
        static = _header(kind) + textwrap.dedent(body)
        a = analyze(static, AnalysisContext(tl_major=tl_major))
        relevant = [f for f in a.findings if f.code in CODES]
        if code is None:
            assert relevant == [], (name, [f.message for f in relevant])
        else:
            assert [f.code for f in relevant] == [code], (name, [(f.code, f.message) for f in relevant])
        programs.append(textwrap.dedent(body))
        if after is not None:
            # Apply the first quick fix to the program (offsets shifted past the static header).
            fix = relevant[0].fixes[0]
            fixed = apply(static, fix)
            assert not [f for f in analyze(fixed, AnalysisContext(tl_major=tl_major)).findings if f.code in CODES], (name, fixed)
            fixed_programs.append(fixed[len(_header(kind)):])
        expectations.append((name, before, after))
    results = _run_probe(python, kind, programs + fixed_programs)
    observed, observed_fixed = results[:len(programs)], results[len(programs):]
    fixed_iter = iter(observed_fixed)
    for (name, before, after), obs in zip(expectations, observed):
        assert obs.pop("error") is None or name == "signature", (name, obs)
        assert {k: obs[k] for k in before} == before, (name, obs)
        if after is not None:
            fixed_obs = next(fixed_iter)
            assert fixed_obs.pop("error") is None, (name, fixed_obs)
            assert {k: fixed_obs[k] for k in after} == after, (name, fixed_obs)


@pytest.mark.slow
def test_diagnostics_and_fixes_hold_on_transformer_bridge():
    pytest.importorskip("transformer_lens.model_bridge")
    _check_against_tl(sys.executable, "bridge", 4)


@pytest.mark.slow
@pytest.mark.ht
def test_diagnostics_and_fixes_hold_on_hooked_transformer():
    python = os.environ.get("TLENS_HT_PYTHON")
    if not python:
        pytest.skip("TLENS_HT_PYTHON is not set (a Python with TransformerLens 2.x, e.g. /work/main/.venv-ht/bin/python)")
    _check_against_tl(python, "hooked", 2)
