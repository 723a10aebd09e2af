"""An analysis that reuses the previous version's facts (a document's parser keeps them) equals a
fresh analysis of the same text, after any edit."""

from __future__ import annotations

from pathlib import Path

from hypothesis import assume, example, given, settings, strategies as st

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.analysis.syntax import SyntaxParser
from lsp_server.knowledge.resolve import resolve_model_name

ROOT = Path(__file__).parent.parent.parent
TEXT = b"\n".join(p.read_bytes() for p in (
    ROOT / "examples" / "hooked_transformer" / "ioi_patching.py",
    ROOT / "tests" / "fixtures" / "keys" / "through_functions.py",
    ROOT / "tests" / "fixtures" / "keys" / "branches.py",
    ROOT / "tests" / "fixtures" / "keys" / "stores.py",
    ROOT / "tests" / "fixtures" / "keys" / "cache_iteration.py",
    ROOT / "tests" / "fixtures" / "keys" / "pytest_tests.py",
))
CONTEXT = AnalysisContext(tl_major=3, resolve_model=resolve_model_name)
# Keystrokes that change bindings, scopes and structure as well as plain text.
INSERTS = [b"", b"x", b"1", b"_", b"a", b"x", b"(", b"\n", b"forward_cache.update(a)\n", b"act_cache[k] = 1\n", b"    ", b"def f(cache):\n    ", b"cache = ", b"layer = 3\n", b"for layer in range(2):\n",
           b"'", b"# ", b"class C:\n", b"import utils\n", b"model.add_hook(", b"]", b"):"]


def facts(analysis) -> tuple:
    """What the features read of an analysis, by value."""
    def ref(r):
        model = (r.model.var, r.model.offset, r.model.stand_in, r.model.effective_spec) if r.model else None
        cache = (r.cache.var, r.cache.offset, r.cache.assumed, r.cache.remove_batch_dim) if r.cache else None
        return (r.start, r.end, r.context, r.template, r.layer, r.how, r.alternatives, r.match, r.error, r.literal,
                r.computed_at, r.short, tuple(ref(o) for o in r.options), r.deps, model, cache)
    scopes = analysis.scopes
    definitions = sorted((d.name, d.offset, d.kind, d.node.start_byte, d.node.end_byte, d.node.type,
                          d.target.start_byte, d.target.type) for d in scopes.all_definitions())
    return (tuple(ref(r) for r in analysis.refs),
            tuple((f.start, f.end, f.code, f.message) for f in analysis.findings),
            tuple(definitions),
            tuple((n.start_byte, n.end_byte) for n in scopes.functions),
            tuple((n.start_byte, n.end_byte) for n in scopes.classes + scopes.imports),
            tuple((m.var, m.offset, m.kind, m.effective_spec) for m in analysis.models.all_models),
            tuple(sorted(analysis.models.cache_names())))


@settings(max_examples=150, deadline=None)
# A quote typed into an import: the same statement text, with an error, is recovered otherwise later on.
@example([(290, 10, b"'"), (0, 0, b""), (873, 13, b"")])
# Typed into `hooks_for_freezing = []`: the hook list that registers `freeze`, appended to elsewhere.
@example([(TEXT.index(b"hooks_for_freezing = []"), 0, b"x")])
@given(st.lists(st.tuples(st.integers(0, len(TEXT)), st.integers(0, 30), st.sampled_from(INSERTS)), min_size=1, max_size=4))
def test_reusing_the_previous_version_equals_a_fresh_analysis(edits):
    parser = SyntaxParser()
    text = TEXT
    analyze(text, CONTEXT, parser)
    for at, delete, insert in edits:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + delete:]
        incremental = analyze(text, CONTEXT, parser)
        fresh = analyze(text, CONTEXT)
        # tree-sitter may recover from a syntax error otherwise when it re-parses than when it parses
        # afresh (a tree-sitter matter, not the analysis's): compare analyses of the same tree only.
        assume(str(incremental.parsed.root) == str(fresh.parsed.root))
        assert facts(incremental) == facts(fresh)


def test_statements_that_did_not_change_are_not_walked_again():
    from lsp_server.analysis.scopes import _StatementFacts

    parser = SyntaxParser()
    analyze(TEXT, CONTEXT, parser)
    edited = TEXT.replace(b"\nimport ", b"\nx = 1\nimport ", 1)  # one new statement near the top
    analyze(edited, CONTEXT, parser)
    memo = parser.memo["statements"]
    walked = [text for text, facts in memo.items() if isinstance(text, bytes) and not isinstance(facts, _StatementFacts)]
    assert walked == [b"x = 1"] and len(memo) > 50


def test_questions_about_statements_that_did_not_change_keep_their_answers():
    from lsp_server.analysis.scopes import Scopes

    asked = []

    def named_cache(d, source):
        asked.append(d.name)
        return "cache" in d.name

    parser = SyntaxParser()
    source = b"clean_cache = 1\ndef f(x):\n    run_cache = x\n    return run_cache\nother = 2\n"
    first = Scopes(parser.parse(source), memo=parser.memo.setdefault("statements", {}))
    assert [d.name for d in first.definitions_where("named cache?", named_cache)] == ["clean_cache", "run_cache"]
    asked.clear()
    edited = source.replace(b"other = 2", b"other_cache = 2")
    again = Scopes(parser.parse(edited), memo=parser.memo["statements"])
    found = again.definitions_where("named cache?", named_cache)
    assert [d.name for d in found] == ["clean_cache", "run_cache", "other_cache"]
    assert asked == ["other_cache"]  # only the edited statement was asked about again
    assert [d.offset for d in found] == [d.offset for d in again.all_definitions() if "cache" in d.name]
    assert all(d is again.lookup(d.name, d.offset + 1) for d in found[:1])  # this version's definitions
    # The statements with answers are updated from the previous version's where a few changed: one that
    # loses its answer drops out, one that gains it comes in in source order.
    for edited in (edited.replace(b"clean_cache", b"clean"), edited.replace(b"clean_cache = 1", b"first_cache = 1\nx = 3")):
        again = Scopes(parser.parse(edited), memo=parser.memo["statements"])
        fresh = Scopes(SyntaxParser().parse(edited))
        assert [(d.name, d.offset) for d in again.definitions_where("named cache?", named_cache)] == \
            [(d.name, d.offset) for d in fresh.definitions_where("named cache?", named_cache)]


def test_a_local_edit_resolves_again_only_the_keys_it_can_change(monkeypatch):
    """Typing in one line's string: the other subscripts' keys come from the previous version."""
    from lsp_server.analysis.hookrefs import HookRefCollector

    text = (ROOT / "tests" / "fixtures" / "keys" / "through_functions.py").read_bytes()
    parser = SyntaxParser()
    first = analyze(text, CONTEXT, parser)
    resolved = []
    original = HookRefCollector._subscript
    monkeypatch.setattr(HookRefCollector, "_subscript", lambda self, sub: (resolved.append(sub), original(self, sub))[1])
    at = text.index(b"# -> blocks.7") + 2  # typing in a comment
    edited = text[:at] + b"x" + text[at:]
    again = analyze(edited, CONTEXT, parser)
    resolved_again = len(resolved)
    assert facts(again) == facts(analyze(edited, CONTEXT))
    subscripts = len(resolved) - resolved_again  # a fresh analysis resolves every one
    assert subscripts > 30 and resolved_again < subscripts // 3


def test_enter_at_the_end_of_a_line_changes_no_word(monkeypatch):
    """Enter and the editor's indentation after `_, cache = model.run_with_cache("x")`, or a space at its end:
    the line holds a word that can change facts anywhere, but no word changed. Only the keys read from the
    lines the edit spans (the next one: the blank line's indentation matches its own) are resolved again."""
    from lsp_server.analysis.hookrefs import HookRefCollector

    text = (ROOT / "tests" / "fixtures" / "keys" / "through_functions.py").read_bytes()
    parser = SyntaxParser()
    analyze(text, CONTEXT, parser)
    resolved = []
    original = HookRefCollector._subscript
    monkeypatch.setattr(HookRefCollector, "_subscript", lambda self, sub: (resolved.append(sub), original(self, sub))[1])
    line = b'        _, cache = model.run_with_cache("x")\n        return cache[site]  # -> unknown'
    at = text.index(line) + line.index(b"\n")
    for edited in (text[:at] + b"\n        " + text[at:], text[:at] + b" " + text[at:]):
        del resolved[:]
        again = analyze(edited, CONTEXT, parser)
        resolved_again = len(resolved)
        assert facts(again) == facts(analyze(edited, CONTEXT))
        assert resolved_again <= 4 and len(resolved) - resolved_again > 40  # (the method's key and its callers')
        analyze(text, CONTEXT, parser)
    within_a_string = text.index(b'"x")\n        return cache[site]  # -> unknown') + 1
    edited = text[:within_a_string] + b" " + text[within_a_string:]  # run_with_cache("x ") is another prompt
    del resolved[:]
    again = analyze(edited, CONTEXT, parser)
    resolved_again = len(resolved)
    assert facts(again) == facts(analyze(edited, CONTEXT))
    assert resolved_again == len(resolved) - resolved_again  # a word that changes facts anywhere: all again


def test_a_line_split_in_a_function_is_an_edit_of_its_own_statement(monkeypatch):
    """Enter inside a call's brackets in a long function: the statement it splits changes shape, not the
    function; the function's other keys come from the previous version (they were all resolved again)."""
    from lsp_server.analysis.hookrefs import HookRefCollector

    text = (b'from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained("gpt2")\n'
            b'logits, cache = model.run_with_cache("The Eiffel Tower is in")\n\n\ndef report(layer):\n'
            + b"".join(b'    site_%d = cache["%s", layer]\n' % (i, site) for i, site in
                       enumerate([b"resid_pre", b"attn_out", b"mlp_out", b"resid_post", b"z", b"pattern"]))
            + b'    print("done", flush=True)\n    return site_0\n\n\nreport(3)\n')
    parser = SyntaxParser()
    analyze(text, CONTEXT, parser)
    resolved = []
    original = HookRefCollector._subscript
    monkeypatch.setattr(HookRefCollector, "_subscript", lambda self, sub: (resolved.append(sub), original(self, sub))[1])
    at = text.index(b'print("done", ') + len(b'print("done", ')
    edited = text[:at] + b"\n          " + text[at:]
    again = analyze(edited, CONTEXT, parser)
    resolved_again = len(resolved)
    assert facts(again) == facts(analyze(edited, CONTEXT))
    assert resolved_again == 0 and len(resolved) == 6


def test_what_a_key_depends_on_does_not_depend_on_what_was_resolved_first():
    """Whether `places` is handed to a function that changes it is found once per analysis: a fresh analysis
    finds it for the registration (registrations are resolved first); an incremental one reuses the
    registration and finds it for the key, which a space at the end of its function's `def` line makes
    resolve again. The names that finding read (`enumerate`) must count for both."""
    text = (b'from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained("gpt2")\n\n\n'
            b'def patch(tokens, clean_cache):\n'
            b'    places = [f"blocks.{layer}.mlp.hook_post" for layer in range(model.cfg.n_layers)]\n'
            b'    acts = [clean_cache[place] for place in places]\n\n'
            b'    def patch_hook(value, hook):\n        return value\n\n'
            b'    hooks = []\n    for layer, place in enumerate(places):\n        hooks.append((place, patch_hook))\n'
            b'    with model.hooks(fwd_hooks=hooks):\n        model(tokens)\n')
    parser = SyntaxParser()
    analyze(text, CONTEXT, parser)
    edited = text.replace(b"clean_cache):\n", b"clean_cache): \n")
    assert facts(analyze(edited, CONTEXT, parser)) == facts(analyze(edited, CONTEXT))


def test_a_parameter_depends_on_every_argument_of_its_call():
    """`unused,` -> `unused.` joins two arguments into one (`unused.site_name`): `site` is no longer passed,
    though the edit names neither it nor what was passed for it (random keystrokes found it)."""
    text = (b'from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained("gpt2")\n'
            b'logits, cache = model.run_with_cache("x")\n\n\ndef read(first, site):\n    return cache[site]\n\n\n'
            b'unused = 0\nsite_name = "blocks.1.hook_resid_post"\nread(\n    unused,\n    site_name)\n')
    parser = SyntaxParser()
    before = analyze(text, CONTEXT, parser)
    assert [r.template for r in before.refs] == ["blocks.{l}.hook_resid_post"]
    edited = text.replace(b"unused,", b"unused.")
    assert facts(analyze(edited, CONTEXT, parser)) == facts(analyze(edited, CONTEXT))


def test_registered_names_are_resolved_again_only_where_an_edit_can_change_them(monkeypatch):
    """The names of hook registrations (`fwd_hooks=[(name, fn)]`) come from the previous version unless the
    edit touches what they were read from: typing in a comment resolves none again; changing the layer a
    registered name is built from changes that name (and only names read from it are resolved again)."""
    from lsp_server.analysis.hookrefs import HookRefCollector

    text = b'''from transformer_lens import HookedTransformer, utils
model = HookedTransformer.from_pretrained("gpt2")
patched_layer = 3
def patch(act, hook):
    return act
# notes
model.run_with_hooks("a", fwd_hooks=[(utils.get_act_name("z", patched_layer), patch)])
model.run_with_hooks("b", fwd_hooks=[("blocks.1.hook_resid_pre", patch)])
model.add_hook("blocks.2.attn.hook_q", patch)
'''
    parser = SyntaxParser()
    analyze(text, CONTEXT, parser)
    resolved = []
    original = HookRefCollector._resolved_name_ref
    monkeypatch.setattr(HookRefCollector, "_resolved_name_ref",
                        lambda self, node, *rest: (resolved.append(node.text), original(self, node, *rest))[1])

    def names(analysis):
        return sorted(f"{r.template}@{r.layer}" for r in analysis.refs if r.context == "hook")

    commented = text.replace(b"# notes", b"# notes!")
    again = analyze(commented, CONTEXT, parser)
    assert resolved == [] and facts(again) == facts(analyze(commented, CONTEXT))
    moved = commented.replace(b"patched_layer = 3", b"patched_layer = 5")
    resolved.clear()
    again = analyze(moved, CONTEXT, parser)
    assert resolved == [b'utils.get_act_name("z", patched_layer)']
    assert "blocks.{l}.attn.hook_z@5" in names(again)
    assert facts(again) == facts(analyze(moved, CONTEXT))


def test_hook_name_depends_on_the_hook_list_it_was_registered_through():
    """`hook.name` in a hook function registered through a list built elsewhere: an edit of the list's
    binding changes it, though the edit is far from the registering call."""
    text = b'''from functools import partial
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, clean_cache = model.run_with_cache("a")


def freeze(act, hook, clean_cache):
    act[:] = clean_cache[hook.name]
    return act


hooks_for_freezing = []
hooks_for_freezing.append(("blocks.3.hook_mlp_out", partial(freeze, clean_cache=clean_cache)))
model.run_with_hooks("a", fwd_hooks=hooks_for_freezing)
'''
    parser = SyntaxParser()
    first = analyze(text, CONTEXT, parser)
    assert any(r.template == "blocks.{l}.hook_mlp_out" and r.layer == 3 for r in first.refs)
    edited = text.replace(b"hooks_for_freezing = []", b"hxooks_for_freezing = []")
    assert facts(analyze(edited, CONTEXT, parser)) == facts(analyze(edited, CONTEXT))


def test_hook_name_depends_on_what_its_registration_read():
    """`hook.name` in a hook function registered through a filter that lists names built elsewhere (and
    narrowed by an assertion): an edit of those lines changes it, though they name no registration."""
    text = b'''from functools import partial
from transformer_lens import HookedTransformer, utils
model = HookedTransformer.from_pretrained("gpt2")


def patch_input(act, hook, patched_cache):
    act[:] = patched_cache[hook.name]
    return act


def path_patch(toks, receiver_input, layers):
    assert receiver_input in ("q", "k")
    receiver_names = [utils.get_act_name(receiver_input, layer) for layer in layers]
    receiver_filter = lambda name: name in receiver_names
    _, patched_cache = model.run_with_cache(toks)
    model.run_with_hooks(toks, fwd_hooks=[(receiver_filter, partial(patch_input, patched_cache=patched_cache))])
'''
    parser = SyntaxParser()
    analyze(text, CONTEXT, parser)
    for old, new in ((b'("q", "k")', b'("q", "v")'), (b"get_act_name(receiver_input", b"get_act_name(\"z\"")):
        edited = text.replace(old, new)
        assert facts(analyze(edited, CONTEXT, parser)) == facts(analyze(edited, CONTEXT))
        analyze(text, CONTEXT, parser)


def test_a_statement_walked_with_a_syntax_error_lends_its_facts_to_no_later_version():
    """The same statement text parsed with an error in one version (tree-sitter's recovery depends on the
    text around it) and cleanly in the next: the next one is walked, not given the erroneous walk's
    definitions (found by random keystrokes on a public SAE benchmark file)."""
    first = b'''import torch


def fit(pca, model, num_batches):
    for batch_idx in tqdm(range(num_batches)):
        pca.update(batch_idx)
    return pca


if __name__ == "__main__":
    device = torch.device(
        "mps"
        if torch.backends.mps.is_available()
        else "cuda"
        if torch.cuda.is_available()
        else "cpu"
    )
    for layer in layers:
        pca = make(layer)
        encoded = pca.encode(layer)
'''
    second = first.replace(b"for batch_idx in tqdm", b"for batch_idx in_ tqdm")
    third = second.replace(b"torch.cuda.is_available()", b"torch.cuda.is_avail\nable()")
    parser = SyntaxParser()
    for text in (first, second):
        analyze(text, CONTEXT, parser)
    assert facts(analyze(third, CONTEXT, parser)) == facts(analyze(third, CONTEXT))


def test_a_key_read_through_a_parametrize_decorator_depends_on_the_decorator():
    """Editing a parametrize row or the fixture's model name, lines away from the subscripts, changes them
    (each edit keeps the length: the facts differ by what the refs say, not by where they are)."""
    text = (ROOT / "tests" / "fixtures" / "keys" / "pytest_tests.py").read_bytes()
    for old, new in ((b'"blocks.0.hook_mlp_out"]', b'"blocks.1.hook_mlp_out"]'), (b'("z", 0)', b'("z", 1)'),
                     (b'MODEL = "solu-1l"', b'MODEL = "solu-2l"')):
        parser = SyntaxParser()
        before = analyze(text, CONTEXT, parser)
        edited = text.replace(old, new, 1)
        after = analyze(edited, CONTEXT, parser)
        assert facts(after) == facts(analyze(edited, CONTEXT)) != facts(before)


def test_a_method_parameter_depends_on_every_use_of_the_method_name():
    """`self.site_acts(...)` are all of a method's calls until a line calls it on an instance: that edit,
    far from the method, makes its parameter unknown (as a fresh analysis says)."""
    text = (ROOT / "tests" / "fixtures" / "keys" / "through_functions.py").read_bytes()
    parser = SyntaxParser()
    before = analyze(text, CONTEXT, parser)
    edited = text.replace(b'Exposed().read("blocks.4.hook_resid_post")', b'Exposed().site_acts("blocks.4.hook_resid_post")')
    after = analyze(edited, CONTEXT, parser)
    at = edited.index(b"return cache[site]  # -> blocks.2.hook_resid_post") + len(b"return cache[")
    assert before.ref_at(text.index(b"return cache[site]  # -> blocks.2.hook_resid_post") + len(b"return cache[")) is not None
    assert after.ref_at(at) is None and facts(after) == facts(analyze(edited, CONTEXT))


def test_a_key_behind_a_loop_test_depends_on_the_test():
    """Editing the test a loop's reads sit behind (a line that names no cache) changes the key read there."""
    text = (ROOT / "tests" / "fixtures" / "keys" / "cache_iteration.py").read_bytes()
    parser = SyntaxParser()
    analyze(text, CONTEXT, parser)
    edited = text.replace(b'if "hook_mlp_out" not in key:', b'if "hook_attn_out" not in key:', 1)
    after = analyze(edited, CONTEXT, parser)
    assert facts(after) == facts(analyze(edited, CONTEXT))
    read = edited.index(b"cache[key]  # -> blocks.{layer}.hook_mlp_out") + len(b"cache[")
    assert after.ref_at(read).template == "blocks.{l}.hook_attn_out"


def test_every_read_of_a_cache_depends_on_what_the_cache_was_read_from():
    """A cache (or model) is worked out once per analysis; every read of it, not only the first, depends on the
    names it came from (the helper that made it), so that which read came first changes nothing."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
def get_activation(names):
    _, cache = model.run_with_cache("x", names_filter=names)
    return cache
fake_cache = get_activation(["blocks.0.hook_resid_pre"])
a = fake_cache["blocks.0.hook_resid_pre"]
b = fake_cache["blocks.0.hook_resid_pre"]
'''
    reads = [r for r in analyze(text, CONTEXT).refs if r.context == "cache"]
    assert len(reads) == 2 and all("get_activation" in r.deps for r in reads)


def test_kept_facts_that_no_longer_match_the_parse_are_not_used():
    """tree-sitter may parse the same text into other blocks than before (how it recovers from an error earlier in
    the file depends on the parse history; found by random keystrokes on public research code). Kept facts whose
    defs are not where they were are dropped and the statement walked again. Simulated: the kept facts of one text
    are filed under the text of a statement whose def ends elsewhere."""
    kept = b"class C:\n    def f(self):\n        a = 1\n        b = 2\n"
    other = b"class C:\n    def f(self):\n        a = 1\n    b = 2    \n"  # (the same length)
    parser = SyntaxParser()
    analyze(kept, CONTEXT, parser)
    memo = parser.memo["statements"]
    memo[other.rstrip()] = memo.pop(kept.rstrip())  # (a statement's text ends at its last character)
    again = analyze(other, CONTEXT, parser)
    assert facts(again) == facts(analyze(other, CONTEXT))


def test_a_key_read_through_a_helpers_cache_depends_on_the_helper():
    """Editing a helper's `return` (a line that names neither the subscript's cache nor its key) changes what the
    keys read from its cache are (found by random keystrokes on the eighth corpus)."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
def get_mean_cache(model):
    _, mean_cache = model.run_with_cache("x", names_filter=lambda name: "hook_z" in name)
    return mean_cache
m_cache = get_mean_cache(model)
for k in m_cache.keys():
    m_cache[k]
'''
    parser = SyntaxParser()
    before = analyze(text, CONTEXT, parser)
    edited = text.replace(b"    return mean_cache", b"    .urn mean_cache")
    after = analyze(edited, CONTEXT, parser)
    assert any(r.context == "cache" for r in before.refs)
    assert facts(after) == facts(analyze(edited, CONTEXT))


def _resolutions(monkeypatch, edits: list[tuple[bytes, bytes]], text: bytes | None = None) -> list[tuple[int, int]]:
    """(keys resolved incrementally, keys a fresh analysis resolves) after each edit of ``text`` (default: the
    keys fixture) in turn, checking that both analyses agree."""
    from lsp_server.analysis.hookrefs import HookRefCollector

    text = text or (ROOT / "tests" / "fixtures" / "keys" / "through_functions.py").read_bytes()
    parser = SyntaxParser()
    analyze(text, CONTEXT, parser)
    resolved = []
    original = HookRefCollector._subscript
    monkeypatch.setattr(HookRefCollector, "_subscript", lambda self, sub: (resolved.append(sub), original(self, sub))[1])
    counts = []
    for old, new in edits:
        assert text.count(old) == 1
        text = text.replace(old, new)
        start = len(resolved)
        again = analyze(text, CONTEXT, parser)
        middle = len(resolved)
        assert facts(again) == facts(analyze(text, CONTEXT))
        counts.append((middle - start, len(resolved) - middle))
    return counts


def test_an_edit_making_a_syntax_error_in_its_statement_re_resolves_only_what_that_statement_can_change(monkeypatch):
    """A ':' typed into a call is an error tree-sitter recovers from within the statement: the statement counts
    as edited (every name in it), the keys elsewhere are reused. Deleting it again likewise."""
    counts = _resolutions(monkeypatch, [(b"\nln_input(2)\n", b"\nln_input(2:)\n"), (b"\nln_input(2:)\n", b"\nln_input(2)\n")])
    for incremental, fresh in counts:
        assert fresh > 30 and 0 < incremental < fresh / 2


def test_an_edit_in_a_comment_reuses_every_key_whatever_words_it_holds(monkeypatch):
    """`cfg` in code can change every key (a model's configuration); in a comment it binds nothing. A comment
    after a key's code re-resolves that line's key only."""
    counts = _resolutions(monkeypatch, [(b"# Hook names followed", b"# Hook names of the cfg followed"),
                                        (b"name_of(7)]  # -> blocks", b"name_of(7)]  # cfg -> blocks")])
    # (all but `clean_caches[0]`, `cache.cache_dict[...]` and `run_with_cache(x)[1][...]`, which are never reused)
    assert counts[0][0] == 3 and counts[0][1] > 30
    assert counts[1][0] == counts[0][0] + 1  # and the key on its line


def test_an_edit_whose_syntax_error_swallows_the_next_statement_reuses_no_key(monkeypatch):
    """`ln_input(2) +` continues onto the next statement (`sae_cfg = {...}`, whose key is read below): the
    statement's bounds moved, so what the error changed is not known; every key is resolved again."""
    ((incremental, fresh),) = _resolutions(monkeypatch, [(b"\nln_input(2)\n", b"\nln_input(2) +\n")])
    assert incremental == fresh > 30


def test_a_dict_key_becomes_a_store_key_once_a_hook_function_fills_the_dict(monkeypatch):
    """`act_cache["blocks.0.hook_resid_pre"]` keys an empty dict that nothing fills: a dict key, without the
    activation's shape (resolved again after every edit, as a store's keys are: a write anywhere may change
    what the dict is); an edited line writing `act_cache[hook.name] = act` in a hook function makes it a store
    of activations, and the key an activation's."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
act_cache = {}
def save(act, hook):
    other[hook.name] = act
model.run_with_hooks("x", fwd_hooks=[("blocks.0.hook_resid_pre", save)])
resid = act_cache["blocks.0.hook_resid_pre"]
layer = 1
'''
    counts = _resolutions(monkeypatch, [(b"layer = 1", b"layer = 12"), (b"    other[hook", b"    act_cache[hook")], text)
    assert counts == [(1, 1), (2, 2)]  # (the write is a subscript too)
    after = analyze(text.replace(b"    other[hook", b"    act_cache[hook"), CONTEXT)
    read = text.index(b"resid =")
    assert [(r.context, r.template, r.layer) for r in analyze(text, CONTEXT).refs if r.start > read] == [
        ("key", "blocks.{l}.hook_resid_pre", 0)]
    assert [(r.context, r.template, r.layer) for r in after.refs if r.start > read] == [
        ("store", "blocks.{l}.hook_resid_pre", 0)]


def test_a_builtin_called_on_the_edited_line_changes_no_key_unless_the_file_binds_that_name(monkeypatch):
    """A key in a loop over `range(...)` reads `range`; the edited `print(list(range(3)))` calls it too, but a
    builtin's calls give no facts: nothing is resolved again. Where the file defines `range`, they do."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, cache = model.run_with_cache("x")
for layer in range(2):
    cache["resid_pre", layer]
print(list(range(3)))
'''
    edit = [(b"print(list(range(3)))", b"print(list(range(4)))")]
    assert _resolutions(monkeypatch, edit, text) == [(0, 1)]
    shadowed = text + b"def range(n):\n    return [3]\n"
    assert _resolutions(monkeypatch, edit, shadowed) == [(1, 1)]


def test_a_syntax_error_in_a_function_holding_a_model_reuses_keys_while_the_models_stay_the_same(monkeypatch):
    """`main` names a model and its `cfg`, words that can change keys anywhere: an error in it re-resolves only
    its own keys while the file's models come out the same; `x = 1 +` swallows the model's line, and every key
    is resolved again."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, cache = model.run_with_cache("x")
top = cache["resid_pre", 0]
def main():
    x = 1
    local = HookedTransformer.from_pretrained("gpt2")
    n = local.cfg.n_layers
    _, local_cache = local.run_with_cache("y")
    return local_cache["resid_post", 1]
late = cache["mlp_out", 2]
'''
    assert _resolutions(monkeypatch, [(b"    x = 1\n", b"    x = 1 t\n")], text) == [(1, 3)]
    assert _resolutions(monkeypatch, [(b"    x = 1\n", b"    x = 1 +\n")], text) == [(3, 3)]


def test_an_edit_naming_a_config_word_reuses_keys_while_the_models_stay_the_same(monkeypatch):
    """`name` and `n_layers` are words of a model's configuration: `print(hook.name, layer)` edited changes no
    model, and reuses every other key; `n_layers = 1` makes the model one layer deep, and `cache["resid_pre", 1]`
    is then out of range: every key is resolved again."""
    text = b'''from transformer_lens import HookedTransformer, HookedTransformerConfig
n_layers = 2
cfg = HookedTransformerConfig(n_layers=n_layers, d_model=64, n_ctx=32, d_head=16, act_fn="relu", d_vocab=100)
model = HookedTransformer(cfg)
_, cache = model.run_with_cache("x")
first = cache["resid_pre", 1]
def show(act, hook, layer=0):
    print(hook.name, layer)
model.run_with_hooks("x", fwd_hooks=[("blocks.0.hook_resid_pre", show)])
last = cache["resid_post", 0]
'''
    assert _resolutions(monkeypatch, [(b"print(hook.name, layer)", b"print(hook.name, layers)")], text) == [(0, 2)]
    assert _resolutions(monkeypatch, [(b"n_layers = 2", b"n_layers = 1")], text) == [(2, 2)]
    findings = analyze(text.replace(b"n_layers = 2", b"n_layers = 1"), CONTEXT).findings
    assert [f.code for f in findings] == ["layer-out-of-range"]


def test_a_key_from_a_cache_s_keys_depends_on_that_cache_s_run_and_filter(monkeypatch):
    """`act_name` is one of the names `clean_cache`'s run keeps: an edit of that run's `names_filter` argument, or
    of the filter's body, changes the key read from another cache (found by random keystrokes on the eighth
    corpus: the key kept its old names)."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
def name_filter(name: str) -> bool:
    return name.endswith("hook_z") or name.endswith("ln_final.hook_scale")
clean_logits, clean_cache = model.run_with_cache(
    "x",
    names_filter = name_filter,
)
_, neutral_cache = model.run_with_cache("y")
for act_name, act in clean_cache.items():
    neutral_cache[act_name]
'''
    counts = _resolutions(monkeypatch, [(b"names_filter = name_filter,", b"names_filter = name_fer,"),
                                        (b"names_filter = name_fer,", b"names_filter = name_filter,"),
                                        (b'endswith("hook_z")', b'endswith("hook_q")')], text)
    assert all(incremental == fresh for incremental, fresh in counts)


def test_an_edit_of_a_loop_header_or_of_lines_re_resolves_only_what_its_statement_can_change(monkeypatch):
    """`for layer in range(2):` -> `range(3)` changes what the loop binds: the keys read in the loop, and those
    reading `layer` after it, are resolved again; the others are reused. So with a line broken in two, or a
    blank line typed: the statements keep their bounds."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, cache = model.run_with_cache("x")
first = cache["resid_pre", 0]
for layer in range(2):
    cache["resid_post", layer]
last = cache["mlp_out", layer]
other = cache["attn_out", 3]
def patch(z, hook, heads=(1, 2)):
    for head in heads:
        z[:, :, head] = cache[hook.name][:, :, head]
model.run_with_hooks("x", fwd_hooks=[("blocks.0.attn.hook_z", patch)])
'''
    assert _resolutions(monkeypatch, [(b"in range(2):", b"in range(3):")], text) == [(2, 5)]
    assert _resolutions(monkeypatch, [(b"for head in heads:", b"for head in heads or heads:")], text) == [(1, 5)]
    assert _resolutions(monkeypatch, [(b"for layer in range(2):", b"for layer in (\n  range(2)):")], text) == [(2, 5)]
    assert _resolutions(monkeypatch, [(b"other = cache", b"\nother = cache")], text) == [(1, 5)]


def test_a_parameter_passed_a_helper_s_own_dict_depends_on_the_helper(monkeypatch):
    """`bundled_cache` holds what `bundle` returns, its own dict, so `evaluate`'s parameter is no cache; an edit of
    `bundle` that stops it returning a dict (`{}` -> `1}`) makes the parameter a cache again (found by random
    keystrokes on the ninth corpus)."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, fake_cache = model.run_with_cache("x")
def bundle(fake_cache):
    bundled = {}
    for k in fake_cache:
        bundled[k] = fake_cache[k]
    return bundled
def evaluate(bundled_cache):
    return bundled_cache["mlp.hook_post"]
bundled_cache = bundle(fake_cache)
evaluate(bundled_cache)
'''
    _resolutions(monkeypatch, [(b"    bundled = {}", b"    bundled = 1}")], text)


def test_an_unclosed_bracket_that_reshapes_the_statements_after_it_reuses_no_key(monkeypatch):
    """`line(diffs, xticks=labels)` -> `line(diffs, (ticks=labels)`: the edited statement keeps its bounds, but
    tree-sitter's recovery splits the statements after it otherwise, and the loop's key no longer resolves
    (found by random keystrokes on the ninth corpus): every key is resolved again."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, french_cache = model.run_with_cache("x")
plots.line(diffs, xticks=labels, title="French vs. English", xlabel="Component", ylabel="Mean Difference")
diffs = []
labels = []
for key in french_cache.keys():
    if 'hook_attn_out' not in key:
        continue
    english_acts = english_cache[key]
    3: mean_acts(english_data, 3),
'''
    ((incremental, fresh),) = _resolutions(monkeypatch, [(b"xticks=labels", b"(ticks=labels")], text)
    assert incremental == fresh


def test_a_trailing_dot_that_joins_the_next_statement_reuses_no_key(monkeypatch):
    """`clean_prob = torch.` is no syntax error to tree-sitter: it reads the statement on to the next line
    (`torch.hooks = []`), and `hooks` is no longer the list `patch` is registered through. The edit keeps every
    line's brackets and quotes, yet the statements around it split otherwise: every key is resolved again
    (found by retyping a line character by character on the tenth corpus)."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, clean_cache = model.run_with_cache("x")
def patch(activation, hook):
    return clean_cache[hook.name]
clean_prob = torc
# the hooks
hooks = []
hooks.append(("blocks.0.attn.hook_z", patch))
model.run_with_hooks("x", fwd_hooks=hooks)
'''
    ((incremental, fresh),) = _resolutions(monkeypatch, [(b"clean_prob = torc\n", b"clean_prob = torch.\n")], text)
    assert incremental == fresh


def test_a_statement_typed_into_a_comment_line_reuses_the_other_keys(monkeypatch):
    """`# %% sweep` -> `x# %% sweep`: a statement now stands where none did; the statements around keep their
    bounds, so every key is reused (the benchmark notebook's cell edit resolved all of them again while the
    check for moved statements wanted a statement on both sides)."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, cache = model.run_with_cache("x")
first = cache["resid_pre", 0]
# %% sweep
for layer in range(2):
    cache["resid_post", layer]
'''
    assert _resolutions(monkeypatch, [(b"# %% sweep", b"x# %% sweep")], text) == [(0, 2)]


def test_a_key_whose_cache_comes_from_another_model_than_before_is_resolved_again():
    """`lens_hooked = HookedModuleWrapper(lens)`: a cache of another module, with hook names of its own. An edit of that
    line (which names neither the subscripted cache nor its key) that makes it the file's model's again changes what
    the key means (found by random keystrokes on the twelfth corpus)."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
lens_hooked = HookedModuleWrapper(lens)
logits, cache = lens_hooked.run_with_cache(latents)
scale = cache['hook_scale']
'''
    parser = SyntaxParser()
    before = analyze(text, CONTEXT, parser)
    edited = text.replace(b"HookedModuleWrapper(lens)", b"hookedModuleWrapper(lens)")
    after = analyze(edited, CONTEXT, parser)
    assert before.findings == [] and [f.code for f in after.findings] == ["unknown-hook"]
    assert facts(after) == facts(analyze(edited, CONTEXT))


def test_a_dict_handed_to_a_function_that_reads_it_depends_on_that_function():
    """`train(config=CONFIG)` keeps `CONFIG["hook_point"]` known while `train` only reads its parameter: an edit there
    that makes it change the dict (`c.get` -> `c.pop`, naming neither the dict nor the key) resolves the key again."""
    text = b'''from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
CONFIG = {"hook_point": "blocks.3.hook_resid_post"}
def train(c):
    return c.get("lr")
train(c=CONFIG)
_, cache = model.run_with_cache("x")
acts = cache[CONFIG["hook_point"]]
'''
    parser = SyntaxParser()
    before = analyze(text, CONTEXT, parser)
    assert [r.template for r in before.refs] == ["blocks.{l}.hook_resid_post"]
    edited = text.replace(b"c.get", b"c.pop")
    after = analyze(edited, CONTEXT, parser)
    assert after.refs == [] and facts(after) == facts(analyze(edited, CONTEXT))
