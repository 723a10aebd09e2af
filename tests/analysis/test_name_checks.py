"""Name diagnostics: unknown hooks, get_act_name traps, layers, gated hooks, removed APIs, fixes."""

from __future__ import annotations

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.analysis.findings import Fix
from lsp_server.features.hover import hover
from lsp_server.knowledge.resolve import resolve_model_name

HEADER = '''from transformer_lens import HookedTransformer, utils
model = HookedTransformer.from_pretrained("gpt2")
logits, cache = model.run_with_cache("hi")
'''


def findings(body: str, tl_major: int = 2):
    src = HEADER + body
    a = analyze(src, AnalysisContext(tl_major=tl_major, resolve_model=resolve_model_name))
    return [(a.lines.position(f.start).line - 2, f.code, f.message, f) for f in a.findings], src


def hovers_in(src: str, *keys: str) -> list[str]:
    """The hover of the cache key that starts right after each of ``keys`` (``"clean_cache['"``) in ``src``."""
    a = analyze(src, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
    return [hover(a, src.index(key) + len(key)).markdown for key in keys]


def apply(src: str, fix: Fix) -> str:
    data = src.encode()
    for e in sorted(fix.edits, key=lambda e: e.start, reverse=True):
        data = data[:e.start] + e.new_text.encode() + data[e.end:]
    return data.decode()


def test_get_act_name_traps_explain_what_the_call_returns():
    rows, _ = findings('a = cache[utils.get_act_name("scale", 4)]\n'
                       'b = cache[utils.get_act_name("hook_resid_pre", 0)]\n'
                       'c = cache[utils.get_act_name("mlp_out", 0, "m")]\n')
    messages = {line: msg for line, _, msg, _ in rows}
    assert "needs a layer_type ('ln1' or 'ln2')" in messages[1]
    assert "Drop the 'hook_' prefix" in messages[2]
    assert "block-level hook" in messages[3]


def test_a_trap_behind_a_variable_is_reported_once_at_the_call():
    rows, _ = findings('name = utils.get_act_name("resid_pre5")\nx = cache[name]\ny = cache[name]\n')
    assert [(line, code) for line, code, _, _ in rows] == [(1, "unknown-hook")]


def test_short_key_without_layer_says_how_to_index():
    rows, _ = findings('x = cache["resid_pre"]\n')
    (line, code, msg, _), = rows
    assert code == "unknown-hook" and "cache['resid_pre', layer]" in msg


def test_valid_names_are_silent():
    rows, _ = findings('a = cache["resid_pre", 3]\nb = cache[utils.get_act_name("scale", 2, "ln1")]\n'
                       'c = cache["blocks.11.hook_resid_post"]\nd = cache["resid_post", -12]\n')
    assert rows == []


def test_negative_layer_wraps_once():
    rows, _ = findings('x = cache["resid_post", -13]\n')
    (_, code, msg, _), = rows
    assert code == "layer-out-of-range" and "-13 + 12 = -1" in msg


def test_gated_hook_fix_inserts_the_setter_and_silences_it():
    rows, src = findings('r = cache["result", 3]\n')
    (_, code, _, finding), = rows
    assert code == "hook-not-enabled"
    fixed = apply(src, finding.fixes[0])
    assert "model.set_use_attn_result(True)" in fixed
    again, _ = analyze(fixed, AnalysisContext(tl_major=2, resolve_model=resolve_model_name)).findings, None
    assert again == []


def test_model_built_with_eval_is_known():
    src = ('from transformer_lens import HookedTransformer, HookedTransformerConfig\n'
           'cfg = HookedTransformerConfig(n_layers=3, d_model=16, n_heads=2, d_head=8, d_vocab=10, n_ctx=8, act_fn="gelu")\n'
           'model = HookedTransformer(cfg).eval()\n_, cache = model.run_with_cache("hi")\nx = cache["resid_post", 3]\n')
    a = analyze(src, AnalysisContext(tl_major=2))
    assert [f.code for f in a.findings] == ["layer-out-of-range"]


def test_removed_api_migration_fix_rewrites_the_file():
    src = ('from transformer_lens import HookedTransformer, utils\n'
           'model = HookedTransformer.from_pretrained("gpt2")\n'
           'x = utils.get_act_name("resid_pre", 1)\n')
    a = analyze(src, AnalysisContext(tl_major=4, resolve_model=resolve_model_name))
    removed = [f for f in a.findings if f.code == "removed-api"]
    assert len(removed) == 2  # once per removed name
    migrate = next(f for f in removed if "HookedTransformer" in f.message).fixes[0]
    fixed = apply(src, migrate)
    assert "from transformer_lens.model_bridge import TransformerBridge" in fixed
    assert 'model = TransformerBridge.boot_transformers("gpt2")\nmodel.enable_compatibility_mode()' in fixed
    compile(fixed, "fixed.py", "exec")
    utils_fix = next(f for f in removed if "utils" in f.message).fixes[0]
    assert "from transformer_lens import utilities as utils" in apply(src, utils_fix).replace("HookedTransformer, ", "")


def test_removed_api_needs_tl4():
    rows, _ = findings('x = 1\n', tl_major=2)
    assert rows == []
    rows, _ = findings('x = 1\n', tl_major=4)
    assert {code for _, code, _, _ in rows} == {"removed-api"}


def test_suppression():
    rows, _ = findings('x = cache["resid_pre"]  # tlens: ignore[unknown-hook]\ny = cache["resid_pre"]  # tlens: ignore\n')
    assert rows == []


SAE = '''from sae_lens import HookedSAETransformer
model = HookedSAETransformer.from_pretrained("gpt2-small")
_, cache = model.run_with_cache_with_saes("hi", saes=[sae], names_filter=lambda n: n.endswith("hook_sae_acts_post"))
'''


def sae_findings(body: str):
    a = analyze(SAE + body, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
    return [(a.lines.position(f.start).line - 2, f.code) for f in a.findings], a


def test_sae_hooks_are_judged_by_the_model_hook_they_sit_under():
    rows, _ = sae_findings('a = cache["blocks.8.hook_resid_pre.hook_sae_acts_post"]\n'
                           'b = cache["blocks.8.hook_resid_pree.hook_sae_acts_post"]\n'
                           'c = cache["blocks.12.hook_mlp_out.hook_sae_error"]\n'
                           'd = cache["blocks.3.attn.hook_result.hook_sae_recons"]\n'
                           'e = cache["hook_sae_acts_post"]\n'  # an SAE's own cache spells it so
                           'model.add_hook("blocks.8.hook_resid_pre.hook_sae_input", fn)\nmodel.reset_hooks()\n')
    assert rows == [(2, "unknown-hook"), (3, "layer-out-of-range"), (4, "hook-not-enabled")]


def test_sae_hook_hover_gives_the_sae_shape_and_where_it_is_attached():
    from lsp_server.features.hover import hover

    body = 'a = cache["blocks.8.hook_resid_pre.hook_sae_acts_post"]\nb = cache["blocks.3.attn.hook_z.hook_sae_recons"]\n'
    _, a = sae_findings(body)
    src = SAE + body
    first = hover(a, len(src.encode()[: src.index('"blocks.8')]) + 2).markdown.split("\n\n")
    assert first[0] == "`blocks.8.hook_resid_pre.hook_sae_acts_post` · `[batch, pos, d_sae]`"
    assert "attached at `blocks.8.hook_resid_pre` (Residual stream entering block 8)" in first[1]
    z = hover(a, len(src.encode()[: src.index('"blocks.3')]) + 2).markdown
    assert z.startswith("`blocks.3.attn.hook_z.hook_sae_recons` · `[batch, pos, n_heads*d_head]` = `[batch, pos, 768]`")


def bare_findings(src: str, tl_major: int = 2):
    a = analyze(src, AnalysisContext(tl_major=tl_major, resolve_model=resolve_model_name))
    return [(a.lines.position(f.start).line, f.code) for f in a.findings]


def test_names_of_other_modules_and_plain_dicts_are_not_judged():
    # Seen in TransformerLens's own demos: a dict named cache, a custom HookedRootModule, T5.
    src = '''from transformer_lens import HookedEncoderDecoder
def get_neuron_acts(text, layer):
    cache = {}
    def caching_hook(act, hook):
        cache["activation"] = act[0]
    model.run_with_hooks(text, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", caching_hook)])
    return cache["activation"]
toy = TwoLayerModel()
toy.run_with_hooks(x, fwd_hooks=[("layer2.hook_square", fn)])
t5 = HookedEncoderDecoder.from_pretrained("t5-small")
_, cache = t5.run_with_cache(ids)
pattern = cache["encoder_blocks.0.attn.hook_pattern"]
'''
    assert bare_findings(src) == []


def test_a_decoder_style_typo_is_still_an_error_without_a_known_model():
    src = 'model = load_model()\n_, cache = model.run_with_cache(x)\ny = cache["blocks.0.hook_resid_pree"]\n'
    assert bare_findings(src) == [(2, "unknown-hook")]


def test_imports_of_removed_modules_are_flagged_under_tl4():
    src = ("import transformer_lens.components as comps\nfrom transformer_lens.HookedTransformer import HookedTransformer\n"
           "from transformer_lens.hook_points import HookPoint\nimport transformer_lens.utils\n")
    a = analyze(src, AnalysisContext(tl_major=4, resolve_model=resolve_model_name))
    assert [(a.lines.position(f.start).line, f.code) for f in a.findings] == [
        (0, "removed-api"), (1, "removed-api"), (3, "removed-api")]
    assert "TransformerBridge" in a.findings[1].message
    assert analyze(src, AnalysisContext(tl_major=2, resolve_model=resolve_model_name)).findings == []


def test_bridge_code_without_a_known_model_is_not_judged():
    # From TransformerLens's own tests: a Mamba bridge's component hooks, through a fixture parameter.
    src = '''from transformer_lens.model_bridge import TransformerBridge
def test_projection_shapes(cache, mamba_bridge):
    assert cache["blocks.0.mixer.in_proj.hook_in"].shape == (1, 4, 768)
    names = [n for n in cache if "mixer" in n]
'''
    assert bare_findings(src, tl_major=4) == []
    hooked = 'def f(cache):\n    return cache["blocks.0.hook_resid_pree"]\n'
    assert bare_findings(hooked) == [(1, "unknown-hook")]  # no bridge in sight: TL decoder names are closed


def test_an_unknown_layer_type_is_unknown_not_missing():
    """`which_ln` is not a literal: the name may be blocks.{l}.ln1.hook_scale or ln2's, never a
    layer-type-less `blocks.{l}.hook_scale` (which used to give a false unknown-hook error)."""
    rows, _ = findings('def scales(layer, which_ln):\n'
                       '    a = cache[utils.get_act_name("scale", layer, which_ln)]\n'
                       '    b = cache["scale", layer, which_ln]\n'
                       '    return a, b\n')
    assert rows == []


import pytest  # noqa: E402


@pytest.mark.parametrize("typo, fixed, suggested", [
    ('cache["atqtn", 3]', 'cache["attn", 3]', "'attn' (blocks.3.attn.hook_pattern)"),
    ('cache["patern", 3]', 'cache["pattern", 3]', "'pattern' (blocks.3.attn.hook_pattern)"),
    ('cache["resid_psot", layer]', 'cache["resid_post", layer]', "'resid_post' (blocks.{layer}.hook_resid_post)"),
    ('cache["scael", 3, "ln1"]', 'cache["scale", 3, "ln1"]', "'scale' (blocks.3.ln1.hook_scale)"),
    ('cache["emb"]', 'cache["embed"]', "'embed' (hook_embed)"),
    ('cache[utils.get_act_name("atn_out", 2)]', 'cache[utils.get_act_name("attn_out", 2)]', "'attn_out'"),
    ('model.add_hook(utils.get_act_name("resid_psot", 3), f)', 'model.add_hook(utils.get_act_name("resid_post", 3), f)',
     "'resid_post'"),
    ('utils.get_act_name("patern", 3)', 'utils.get_act_name("pattern", 3)', "'pattern'"),
    ('cache["blocks.3.attn.hook_patern"]', 'cache["blocks.3.attn.hook_pattern"]', "'blocks.3.attn.hook_pattern'"),
])
def test_a_typo_is_suggested_and_fixed_in_the_form_written(typo, fixed, suggested):
    body = f"def f(x, hook):\n    return x\nfor layer in range(12):\n    v = {typo}\n"
    rows, src = findings(body)
    (line, code, message, finding), = rows
    assert code == "unknown-hook" and f"Did you mean {suggested}" in message, message
    (fix,) = finding.fixes
    after = apply(src, fix)
    assert after == src.replace(typo, fixed)
    a = analyze(after, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
    assert not a.findings


def _version_findings(src: str, tl_major: int, label: str):
    a = analyze(src, AnalysisContext(tl_major=tl_major, tl_label=label, resolve_model=resolve_model_name))
    return [(f.code, a.source[f.start:f.end].decode(), f.message) for f in a.findings]


def test_bridge_code_under_tl2_is_flagged_with_the_version_it_needs():
    src = ("from transformer_lens.model_bridge import TransformerBridge\n"
           "from transformer_lens import TransformerBridgeConfig\n"
           "model = TransformerBridge.boot_transformers('gpt2')\n")
    rows = _version_findings(src, 2, "2.18.0, from the attached kernel")
    assert [(code, where) for code, where, _ in rows] == [("unavailable-api", "transformer_lens.model_bridge"),
                                                          ("unavailable-api", "TransformerBridgeConfig")]
    assert "needs TransformerLens ≥ 3.0; importing it raises ModuleNotFoundError on TransformerLens 2.18.0, from the attached kernel" in rows[0][2]
    assert _version_findings(src, 3, "3.9.0") == [] and _version_findings(src, 4, "4.3.0") == []


def test_the_top_level_bridge_import_needs_tl4():
    rows = _version_findings("from transformer_lens import TransformerBridge\n", 3, "3.9.0, from the setting")
    (code, where, message), = rows
    assert code == "unavailable-api" and where == "TransformerBridge" and "imported from transformer_lens.model_bridge" in message


def test_hooked_transformer_code_is_not_flagged_on_tl2():
    src = "from transformer_lens import HookedTransformer, utils\nimport transformer_lens.utils as u\n"
    assert _version_findings(src, 2, "2.18.0") == []


def test_messages_end_in_one_full_stop():
    """Knowledge text that already ends a sentence is not given a second full stop (".." seen in messages)."""
    from lsp_server.analysis.findings import sentence
    from lsp_server.features.hover import hook_ref_markdown
    from lsp_server.knowledge.hookpoints import all_variants, catalog_for
    import re

    assert sentence("interrupted it.") == "interrupted it." and sentence("it failed") == "it failed."
    double = re.compile(r"(?<!\.)\.\.(?!\.)")
    src = HEADER
    a = analyze(src, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
    from lsp_server.analysis.hookrefs import HookRef
    for spec in all_variants():
        for point in catalog_for(spec, 3).points:
            if point.dead or point.note:
                ref = HookRef(0, 1, "cache", point.template, layer=0)
                md = hook_ref_markdown(a, ref) or ""
                assert not double.search(md.replace("...", "")), md


def test_a_filter_naming_one_later_layer_matches_it_and_one_past_the_last_layer_does_not():
    # Seen in real code: names_filter=lambda name: name.endswith((..., ".11.hook_resid_post")) on gpt2.
    ok, _ = findings('_, c = model.run_with_cache("x", names_filter=lambda n: n.endswith(".11.hook_resid_post"))')
    assert ok == []
    past, _ = findings('_, c = model.run_with_cache("x", names_filter=lambda n: n.endswith(".12.hook_resid_post"))')
    assert [code for _, code, *_ in past] == ["unknown-hook"]


def test_caches_that_only_sound_like_caches_are_not_checked():
    # Seen in real code: ARENA's MetricCache (keys 'train_loss', ...), a dict parameter of plotting data.
    src = ("class MetricCache:\n    def __getitem__(self, k): ...\n"
           "metric_cache = MetricCache()\nloss = metric_cache['train_loss']\n"
           "def plot(cached_data: dict | None = None):\n    return cached_data[('OV', False)]\n")
    assert findings(src)[0] == []


def test_values_from_libraries_that_make_no_caches_are_not_checked():
    # Seen in real code: activations pickled as a dict of named arrays, read back into `cache`.
    src = ("import pickle\nimport torch as t\n"
           "with open('acts.pkl', 'rb') as f:\n    cache = pickle.load(f)\n"
           "train = cache['train_equal_pos_acts']\n"
           "stacked_cache = t.stack([t.zeros(3)])\nx = stacked_cache['test_last_pos_acts']\n"
           "def store(model):\n    hooked_cache = {}\n"
           "    def hook(act, hook):\n        hooked_cache['resid_pre5'] = act\n"
           "    model.add_hook('blocks.0.attn.hook_z', hook)\n")
    assert findings(src)[0] == []
    # The same key on the file's ActivationCache is still judged.
    assert [code for _, code, _, _ in findings("y = cache['train_equal_pos_acts']\n")[0]] == ["unknown-hook"]


def test_names_appended_to_a_hook_list_are_checked_once_however_often_the_list_is_used():
    src = ("def f(act, hook):\n    return act\n"
           "hooks = []\nhooks.append(('blocks.0.hook_resid_pree', f))\n"
           "model.run_with_hooks('a', fwd_hooks=hooks)\nmodel.run_with_hooks('b', fwd_hooks=hooks)\n")
    assert [(line, code) for line, code, _, _ in findings(src)[0]] == [(4, "unknown-hook")]


def test_a_model_parameter_no_call_site_binds_is_not_judged_on_flags():
    # Seen in real code: a helper module's function, called from files that switch the flag on.
    src = ("def trace(model, toks, layer):\n"
           "    return model.run_with_hooks(toks, fwd_hooks=[(utils.get_act_name('mlp_in', layer), fn)])\n")
    assert findings(src)[0] == []
    # The file's own model, named, still is.
    rows, _ = findings("model.run_with_hooks('x', fwd_hooks=[(utils.get_act_name('mlp_in', 3), fn)])\n")
    assert [code for _, code, _, _ in rows] == ["hook-not-enabled"]


def test_hooks_of_a_module_of_the_users_own_are_not_judged_against_the_files_model():
    # Seen in real code: an SAE written as a HookedRootModule, with hooks named `hook_hidden_post`.
    src = ("from copy import deepcopy\ndummy_sae = SAE(cfg)\nsae = deepcopy(dummy_sae)\n"
           "sae.run_with_hooks(acts, fwd_hooks=[('hook_hidden_post', fn)])\n"
           "acts = sae.run_with_cache(x, names_filter='hook_hidden_pre')[1]['hook_hidden_pre']\n"
           "toy = ReluOutputModel(cfg)\n_, toy_cache = toy.run_with_cache(batch)\nh = toy_cache['hook_hidden']\n")
    assert findings(src)[0] == []


def test_a_parameter_every_caller_passes_a_dict_is_not_a_cache_even_for_a_def_in_each_branch():
    src = ("from collections import defaultdict\n"
           "def run(attn):\n"
           "    if attn:\n"
           "        def save(act, hook, clean_cache):\n            clean_cache['attn_acts'].append(act)\n"
           "    else:\n"
           "        def save(act, hook, clean_cache):\n            clean_cache['mlp_acts'].append(act)\n"
           "    saved = defaultdict(list)\n"
           "    model.add_hook('blocks.0.hook_mlp_out', lambda act, hook: save(act, hook, clean_cache=saved))\n")
    assert findings(src)[0] == []
    # Passed a real cache by one caller: still a cache.
    rows, _ = findings("def patch(act, hook, clean_cache):\n    return clean_cache['attn_acts']\n"
                       "patch(None, None, clean_cache=cache)\npatch(None, None, clean_cache={})\n")
    assert [code for _, code, _, _ in rows] == ["unknown-hook"]


def test_a_parameter_annotated_as_a_dict_of_tensors_looks_its_keys_up_as_written():
    """Seen in real code: `def patch_resid_pre(src_cache: dict, layer)` whose hook closure reads `src_cache["resid_pre"]`,
    a dict of the code's own stacked by layer. A dict does not expand short names as a cache does: no error,
    unless every caller passes a real cache."""
    closure = ("def patch_resid_pre(src_cache: dict, layer: int):\n"
               "    def fn(value, hook):\n        value[0, -1, :] = src_cache['resid_pre'][layer]\n        return value\n"
               "    return [(f'blocks.{layer}.hook_resid_pre', fn)]\n")
    assert findings(closure)[0] == []
    for annotation in ("Dict[str, torch.Tensor]", "dict[str, Tensor]", "Mapping[str, Tensor]", "Optional[Dict[str, Tensor]]"):
        src = f"def read(acts_cache: {annotation}, layer):\n    return acts_cache['resid_pre'][layer]\n"
        assert findings(src)[0] == [], annotation
    # Full hook names are the same key in both: they hover with their shape, and a typo in one is still wrong.
    typed = "def read(acts_cache: Dict[str, Tensor]):\n    return acts_cache['blocks.0.hook_resid_pre'], acts_cache['resid_pre']\n"
    assert hovers_in(HEADER + typed, "acts_cache['")[0].startswith("`blocks.0.hook_resid_pre` · `[batch, pos, d_model]`")
    rows, _ = findings("def read(acts_cache: Dict[str, Tensor]):\n    return acts_cache['blocks.0.hook_resid_pree']\n")
    assert [code for _, code, _, _ in rows] == ["unknown-hook"]
    # Every caller passes a real cache: it is one, and a short name without a layer is wrong.
    rows, _ = findings(typed + "read(cache)\n")
    assert [code for _, code, _, _ in rows] == ["unknown-hook"]


def test_a_filter_for_sae_hooks_is_judged_only_on_a_model_that_cannot_carry_saes():
    """`names_filter=lambda name: "error" in name` selects SAE Lens's `….hook_sae_error` under attached SAEs (seen in
    real code, on a model handed in as a parameter): silent for a parameter or a HookedSAETransformer, still an
    unknown name on a plain HookedTransformer, and a typo stays one whatever the model."""
    run = '_, c = {}.run_with_cache(x, names_filter=lambda name: "{}" in name)\n'
    param = "def f(model, x):\n    " + run.format("model", "error")
    sae_model = ("from sae_lens import HookedSAETransformer\nsae_model = HookedSAETransformer.from_pretrained('gpt2')\n"
                 "x = 'hi'\n" + run.format("sae_model", "error"))
    plain = "x = 'hi'\n" + run.format("model", "error")
    typo = "def f(model, x):\n    " + run.format("model", "resid_prre")
    assert [code for _, code, _, _ in findings(param)[0]] == []
    assert [code for _, code, _, _ in findings(sae_model)[0]] == []
    assert [(code, "no hook name contains 'error'" in msg) for _, code, msg, _ in findings(plain)[0]] == [("unknown-hook", True)]
    assert [code for _, code, _, _ in findings(typo)[0]] == ["unknown-hook"]


def test_a_filter_needle_held_by_a_name_is_checked_only_when_it_has_one_value():
    rows, _ = findings("needle = 'attn_outt'\n_, c1 = model.run_with_cache('x', names_filter=lambda n: needle in n)\n")
    assert [code for _, code, _, _ in rows] == ["unknown-hook"]
    rows, _ = findings("for needle in ['attn_out', 'attn_outt']:\n"
                       "    _, c2 = model.run_with_cache('x', names_filter=lambda n: needle in n)\n")
    assert rows == []


def test_a_subclass_of_a_transformerlens_model_is_still_judged_as_the_model():
    rows, _ = findings("class AtPTransformer(HookedTransformer):\n    pass\n"
                       "atp = AtPTransformer(model.cfg)\n_, c1 = atp.run_with_cache('x')\n"
                       "a = c1['blocks.0.hook_resid_pree']\n")
    assert [code for _, code, _, _ in rows] == ["unknown-hook"]


def test_a_parameter_annotated_with_another_class_has_hook_names_of_its_own():
    # Seen in real code (SAE Lens's tests): a HookedProxyLM wraps a Hugging Face model; its hook names
    # are the module paths (`transformer.h.0`), never the file's HookedTransformer's.
    src = ("def test_proxy(proxy_model: HookedProxyLM, toks):\n"
           "    layers = ['transformer.h.0', 'transformer.h.1']\n"
           "    _, proxy_cache = proxy_model.run_with_cache(toks, names_filter=layers)\n"
           "    proxy_model.add_hook('transformer.h.0', fn)\n"
           "    return [proxy_cache[layer] for layer in layers]\n")
    assert findings(src)[0] == []
    # A parameter annotated as a TransformerLens model is still judged.
    rows, _ = findings("def f(m: HookedTransformer, toks):\n    m.add_hook('transformer.h.0', fn)\n")
    assert [code for _, code, _, _ in rows] == ["unknown-hook"]


def _sae_lens_model(import_line: str) -> str:
    return (f"{import_line}\n"
            "sae_model = HookedSAETransformer.from_pretrained('gpt2')\n"
            "_, sae_cache = sae_model.run_with_cache('hi')\n"
            "x = sae_cache['blocks.3.mlp.hook_in']\n")


def test_sae_lens_hooked_sae_transformer_has_an_mlp_hook_in():
    # Seen in real code (SAE Lens's tests): SAE Lens's HookedSAETransformer adds `mlp.hook_in` to every
    # block for transcoders; TransformerLens's own class of the same name does not.
    for line in ("from sae_lens import HookedSAETransformer", "from sae_lens.analysis.hooked_sae_transformer "
                 "import HookedSAETransformer"):
        src = HEADER + _sae_lens_model(line)
        a = analyze(src, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
        assert a.findings == []
        shown = hover(a, src.index("sae_cache['blocks") + 12).markdown
        assert "blocks.3.mlp.hook_in" in shown and "768" in shown
    rows, _ = findings(_sae_lens_model("from transformer_lens import HookedSAETransformer"))
    assert [code for _, code, _, _ in rows] == ["unknown-hook"]
    rows, _ = findings("def f(m: HookedSAETransformer):\n    m.add_hook('blocks.0.mlp.hook_in', fn)\n")
    assert [code for _, code, _, _ in rows] == ["unknown-hook"]


def test_a_key_the_code_asks_the_cache_for_first_is_a_probe_not_an_error():
    # Seen in real code (a course repository): several spellings tried in turn, each behind `in cache`.
    rows, _ = findings("def head_out(cache, layer):\n"
                       "    key = f'blocks.{layer}.attn.h_out'\n"
                       "    if key in cache:\n"
                       "        return cache[key]\n"
                       "    y = cache['blocks.0.attn.h_out'] if 'blocks.0.attn.h_out' in cache.keys() else None\n"
                       "    if 'blocks.0.hook_zz' in cache and layer > 0:\n"
                       "        return cache['blocks.0.hook_zz']\n"
                       "    if key in cache:\n"
                       "        pass\n"
                       "    else:\n"
                       "        return cache[key]\n"
                       "    if key in other_cache:\n"
                       "        return cache[key]\n"
                       "    return cache['blocks.0.attn.h_out']\n")
    assert [(line, code) for line, code, _, _ in rows] == [(11, "unknown-hook"), (13, "unknown-hook"), (14, "unknown-hook")]
    rows, _ = findings("for name in ['blocks.0.attn.h_out']:\n"
                       "    if name not in cache or name not in other_cache:\n"
                       "        print('missing', name)\n"
                       "        continue\n"
                       "    print(name)\n"
                       "    x = cache[name]\n"
                       "for name in ['blocks.1.attn.h_out']:\n"
                       "    if name not in cache:\n"
                       "        print('missing', name)\n"
                       "    x = cache[name]\n")
    assert [(line, code) for line, code, _, _ in rows] == [(10, "unknown-hook")]  # that guard does not leave


def test_a_key_read_in_a_try_that_catches_its_key_error_is_a_probe():
    # Seen in real code (a notebook): `try: result = test_cache["result", 0] except KeyError as e: print(...)`.
    for caught in ("KeyError as e", "(KeyError, IndexError)", "LookupError"):
        rows, _ = findings("_, cache = model.run_with_cache('x')\n"
                           f"try:\n    r = cache['result', 0]\n    z = cache['blocks.0.attn.hook_zz']\nexcept {caught}:\n    pass\n")
        assert rows == [], caught
    # Another error, a catch of anything (a block guarded against whatever fails: a typo there fails silently), or
    # a read in the handler: still judged.
    rows, _ = findings("_, cache = model.run_with_cache('x')\n"
                       "try:\n    r = cache['result', 0]\nexcept ValueError:\n    pass\n"
                       "try:\n    pass\nexcept KeyError:\n    r = cache['blocks.0.attn.hook_zz']\n"
                       "try:\n    r = cache['blocks.0.attn.hook_zz']\nexcept Exception:\n    pass\n"
                       "try:\n    r = cache['blocks.0.attn.hook_zz']\nexcept:\n    pass\n")
    assert [(line, code) for line, code, _, _ in rows] == [(3, "hook-not-enabled"), (9, "unknown-hook"),
                                                           (11, "unknown-hook"), (15, "unknown-hook")]


def test_a_key_read_under_a_suppressed_key_error_or_after_a_test_of_its_full_name_is_a_probe():
    rows, _ = findings("_, cache = model.run_with_cache('x')\n"
                       "with contextlib.suppress(KeyError):\n    z = cache['blocks.0.attn.hook_zz']\n"
                       "with suppress(ValueError, LookupError), open('f') as f:\n    z = cache['blocks.0.attn.hook_zz']\n"
                       "r = cache['result', 0] if 'blocks.0.attn.hook_result' in cache else None\n"
                       "with suppress(ValueError):\n    z = cache['blocks.0.attn.hook_zz']\n"
                       "r = cache['result', 0] if 'blocks.1.attn.hook_result' in cache else None\n")
    assert [(line, code) for line, code, _, _ in rows] == [(8, "unknown-hook"), (9, "hook-not-enabled")]


def test_a_filter_used_twice_is_judged_once():
    rows, _ = findings("names = ['blocks.0.attn.hook_zz']\n"
                       "f = lambda name: name in names\n"
                       "g = lambda name: name in ['blocks.1.attn.hook_zz']\n"
                       "_, c = model.run_with_cache('x', names_filter=f)\n"
                       "model.run_with_hooks('x', fwd_hooks=[(f, print)])\n"
                       "_, c = model.run_with_cache('x', names_filter=g)\n"
                       "model.add_hook(g, print)\n")
    assert [(line, code) for line, code, _, _ in rows] == [(2, "unknown-hook"), (3, "unknown-hook")]


def test_a_cache_parameter_has_no_batch_axis_when_every_caller_passes_an_unbatched_cache():
    body = ("def pattern_of(clean_cache, layer):\n"
            "    return clean_cache['pattern', layer]\n"
            "_, flat_cache = model.run_with_cache('hi', remove_batch_dim=True)\n"
            "pattern_of(flat_cache, 3)\n")
    shown, = hovers_in(HEADER + body, "clean_cache['")
    assert shown.startswith("`blocks.3.attn.hook_pattern` · `[n_heads, query_pos, key_pos]`")
    # a batched cache too: the batch axis may be there
    shown, = hovers_in(HEADER + body + "pattern_of(cache, 2)\n", "clean_cache['")
    assert "[batch, n_heads, query_pos, key_pos]" in shown


def test_a_cache_has_no_batch_axis_after_its_remove_batch_dim_method():
    body = ("before = cache['pattern', 1]\n"
            "cache.remove_batch_dim()\n"
            "after = cache['pattern', 1]\n"
            "if flag:\n"
            "    other_cache = cache\n"
            "_, maybe_cache = model.run_with_cache('hi')\n"
            "if flag:\n"
            "    maybe_cache.remove_batch_dim()\n"
            "either = maybe_cache['pattern', 1]\n")
    before, after, either = (shown.split("\n")[0] for shown in hovers_in(
        HEADER + body, "before = cache['", "after = cache['", "either = maybe_cache['"))
    assert "`[batch, n_heads, query_pos, key_pos]`" in before
    assert "`[n_heads, query_pos, key_pos]`" in after
    assert "`[batch, n_heads, query_pos, key_pos]`" in either  # only in a branch


def test_a_cache_a_helper_returns_keeps_the_helpers_remove_batch_dim():
    body = ("def run_and_cache(m, prompt):\n"
            "    _, flat = m.run_with_cache(prompt, remove_batch_dim=True)\n"
            "    return flat\n"
            "def again(prompt):\n"
            "    inner_cache = again(prompt)\n"  # returns what it calls itself for: no endless loop
            "    return inner_cache\n"
            "helper_cache = run_and_cache(model, 'hi')\n"
            "looped_cache = again('hi')\n"
            "x = helper_cache['pattern', 1]\n")
    shown, = hovers_in(HEADER + body, "helper_cache['")
    assert shown.startswith("`blocks.1.attn.hook_pattern` · `[n_heads, query_pos, key_pos]`")


def test_a_dict_a_helper_fills_itself_is_not_a_cache_but_a_filtered_cache_still_is():
    """``bundled = bundle(cache)`` where the helper builds ``out = {}`` under keys of its own: not judged (its
    keys are not hook names); a helper returning a comprehension over a cache's items keeps hook names."""
    body = ('def bundle(fake_cache):\n'
            '    bundled_cache = {}\n'
            '    for key in fake_cache:\n'
            '        bundled_cache[".".join(key.split(".")[2:])] = fake_cache[key]\n'
            '    return bundled_cache\n'
            'def resid_only(c):\n'
            '    return {k: v for k, v in c.items() if "resid" in k}\n'
            'bundled_cache = bundle(cache)\n'
            'x = bundled_cache["mlp.hook_post"]\n'
            'resid_cache = resid_only(cache)\n'
            'y = resid_cache["blocks.3.hook_resid_pos"]\n')
    rows, src = findings(body)
    assert [(line, code) for line, code, _, _ in rows] == [(11, "unknown-hook")]
    assert hovers_in(src, 'resid_cache["')[0].startswith("`blocks.3.hook_resid_pos`")


def test_a_cache_key_a_loop_test_lets_through_is_never_judged_wrong():
    """Keys of a cache of every hook point, read behind a test: the names that fire and pass it hover; a test
    no such name passes (a gated hook, a typo) leaves the key unknown, never an error."""
    body = ('for key in cache:\n'
            '    if "hook_result" in key:\n'
            '        a = cache[key]\n'
            '    if "hook_mlp_outt" in key:\n'
            '        b = cache[key]\n'
            '    if "hook_pattern" in key:\n'
            '        c = cache[key]\n')
    rows, src = findings(body)
    assert rows == []
    a = analyze(src, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
    shown = [hover(a, src.index(key) + len(key)) for key in ("a = cache[", "b = cache[", "c = cache[")]
    assert shown[0] is None and shown[1] is None
    assert shown[2].markdown.startswith("`blocks.{layer}.attn.hook_pattern`")


def test_a_name_under_a_real_hook_point_is_a_hook_of_what_is_attached_there():
    """A library that attaches its own modules at hook points (SAEs, transcoders, detaching wrappers) names their
    hooks under the model's: not judged, though the model hook under SAE Lens's own names still is."""
    rows, _ = findings('a = cache["hook_embed.post"]\n'
                       'b = cache["blocks.3.hook_resid_pre.sae.hook_feature_acts.pre"]\n'
                       'c = cache["blocks.3.hook_resid_pr.hook_sae_acts_post"]\n'
                       'd = cache["blocks.3.hook_resid_pr"]\n')
    assert [(line, code) for line, code, _, _ in rows] == [(3, "unknown-hook"), (4, "unknown-hook")]
    # No model at all (a library's own cache helper): checked against every TransformerLens model.
    plain = ('def f(model, x):\n    logits, cache = collect_cache(model, x)\n'
             '    return cache["hook_embed.post"], cache["blocks.0.hook_resid_prre"]\n')
    a = analyze(plain, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
    assert [(a.source[f.start:f.end], f.code) for f in a.findings] == [(b'"blocks.0.hook_resid_prre"', "unknown-hook")]
