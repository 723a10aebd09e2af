"""Stacking calls on a cache (accumulated_resid, decompose_resid, ...): hover and the calls that raise.

The rules themselves are checked against every installed TransformerLens in
tests/knowledge/test_catalog_vs_tl.py; these tests cover the document side.
"""

from __future__ import annotations

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.features.hover import hover
from lsp_server.knowledge.resolve import resolve_model_name


def doc(model: str, body: str):
    src = (f'from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained("{model}")\n'
           'logits, cache = model.run_with_cache("hi")\n' + body)
    return src, analyze(src, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))


def hover_at(src: str, analysis, needle: str) -> str:
    return hover(analysis, len(src[: src.index(needle)].encode()) + 2).markdown


def test_logit_lens_stack_shows_its_components():
    src, a = doc("gpt2-small", "stack, labels = cache.accumulated_resid(layer=3, incl_mid=True, return_labels=True)\n")
    text = hover_at(src, a, "accumulated_resid")
    assert text.startswith("`cache.accumulated_resid(layer=3, incl_mid=True, return_labels=True)`"
                           " · `[components, batch, pos, d_model]` = `[7, batch, pos, 768]`")
    assert "**7 components** (what `return_labels=True` gives): `0_pre`, `0_mid`, `1_pre`, `1_mid`, `2_pre`, `2_mid`, `3_pre`" in text
    assert "Returns `(tensor, labels)`." in text and a.findings == []


def test_defaults_values_from_variables_and_position_slices():
    src, a = doc("gpt2-small", "L = 5\nx = cache.decompose_resid(L, pos_slice=-1)\ny = cache.stack_head_results()\n"
                               "z = cache.stack_activation('pattern')\nw = cache.accumulated_resid(layer=n)\n")
    assert hover_at(src, a, "decompose_resid").splitlines()[0].endswith("= `[12, batch, 768]`")  # embed, pos_embed, 5 × 2
    assert hover_at(src, a, "stack_head_results").splitlines()[0].endswith("= `[144, batch, pos, 768]`")
    assert hover_at(src, a, "stack_activation").splitlines()[0].endswith(
        "= `[12, batch, 12, query_pos, key_pos]`")
    unknown = hover_at(src, a, "accumulated_resid")  # layer from an unknown variable: the rule, no count
    assert "`[components, batch, pos, d_model]` = `[components, batch, pos, 768]`" in unknown and "**" not in unknown


def test_calls_that_raise_for_the_model_are_errors():
    src, a = doc("pythia-70m", "a = cache.accumulated_resid(incl_mid=True)\nb = cache.accumulated_resid()\n"
                               "c = cache.stack_activation('resid_mid')\n")
    found = [(a.lines.position(f.start).line, f.code, f.message) for f in a.findings if f.code == "unknown-hook"]
    assert [(line, code) for line, code, _ in found] == [(3, "unknown-hook"), (5, "unknown-hook")]
    assert "KeyError: 'blocks.0.hook_resid_mid'" in found[0][2] and "in parallel" in found[0][2]
    assert "⚠ `accumulated_resid` raises KeyError" in hover_at(src, a, "accumulated_resid")


def test_nothing_is_claimed_for_a_model_of_unknown_structure():
    src, a = doc("my-org/private-model", "a = cache.accumulated_resid(layer=2, incl_mid=True)\n"
                                         "b = cache.stack_activation('scale', 2, 'ln1')\n")
    assert [f for f in a.findings if f.code == "unknown-hook"] == []
    assert "**5 components**" in hover_at(src, a, "accumulated_resid")


def test_stack_activation_completes_per_layer_short_names():
    from lsp_server.features.completion import completions

    for body in ('x = cache.stack_activation("pat")\n', 'x = cache.stack_activation("pat\n'):  # closed, half-typed
        src, a = doc("gpt2-small", body)
        labels = [c.label for c in completions(a, len(src[: src.index('"pat') + 4].encode()))]
        assert "pattern" in labels and "resid_pre" in labels and "embed" not in labels  # global names take no layer


def test_inlay_hints_give_the_stacked_shape():
    from lsp_server.features.inlay_hints import inlay_hints

    src, a = doc("gpt2-small", "lens, labels = cache.accumulated_resid(return_labels=True)\nheads = cache.stack_head_results(layer=2)\n"
                               "nothing = cache.accumulated_resid(layer=k)\n")
    hints = {src.encode()[: h.offset].decode().rsplit("\n", 1)[1]: h.label for h in inlay_hints(a, 0, len(src))}
    assert hints == {"lens": ": [13, batch, pos, 768]", "heads": ": [24, batch, pos, 768]",
                     "nothing": ": [components, batch, pos, 768]"}
