"""Live-kernel facts in the analysis: spec override, live-hooks, not-cached, cache-key hover notes.

Pure: the kernel's answer is given as the payload's ``live_state`` JSON (the kernel tests in
``tests/kernel/test_live_kernel.py`` and ``tests/lsp/test_live_lsp.py`` produce it for real).
"""

from __future__ import annotations

import pytest

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.features.hover import hover
from lsp_server.knowledge.resolve import resolve_model_name
from lsp_server.live import facts_from_answer

CFG = {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_head": 16, "d_mlp": 256, "d_vocab": 300, "n_ctx": 128,
       "n_key_value_heads": None, "act_fn": "gelu", "positional_embedding_type": "standard",
       "normalization_type": "LN", "attn_only": False, "gated_mlp": False, "use_attn_result": False,
       "use_split_qkv_input": False, "use_attn_in": False, "use_hook_mlp_in": False, "use_hook_tokens": False,
       "default_prepend_bos": True, "model_name": "custom"}


def model_answer(var="model", hooks=(), **cfg):
    return {"var": var, "class": "HookedTransformer", "backend": "hooked", "tl_version": "2.18.0",
            "cfg": {**CFG, **cfg}, "compat_mode": False, "device": "cpu", "hook_templates": None,
            "hooks": [dict(h) for h in hooks], "hooks_total": len(hooks), "tokenizer": None}


def cache_answer(var="cache", keys=("blocks.0.hook_resid_pre",), shape=(1, 5, 64), complete=True, model="model"):
    return {"var": var, "model": model, "has_batch_dim": True, "n_keys": len(keys), "complete": complete,
            "dtypes": ["float32"], "devices": ["cuda:0"], "keys": {k: [list(shape), 0, 0] for k in keys}}


def context(models=(), caches=()):
    facts = facts_from_answer({"models": list(models), "caches": list(caches), "truncated": []})
    return AnalysisContext(tl_major=2, resolve_model=resolve_model_name, live=facts)


STATIC = AnalysisContext(tl_major=2, resolve_model=resolve_model_name)


def codes(text, ctx):
    return [(f.code, text.encode()[:f.start].count(b"\n")) for f in analyze(text, ctx).findings]


def hover_md(text, needle, ctx, delta=1):
    return hover(analyze(text, ctx), text.encode().index(needle.encode()) + delta).markdown


# ------------------------------------------------------------------------------ spec override

RESULT = '''\
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2-small")
_, cache = model.run_with_cache("Hello")
r = cache["blocks.3.attn.hook_result"]
'''


def test_live_flag_silences_hook_not_enabled():
    assert ("hook-not-enabled", 3) in codes(RESULT, STATIC)
    live = context([model_answer(n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, use_attn_result=True)])
    assert "hook-not-enabled" not in [c for c, _ in codes(RESULT, live)]
    md = hover_md(RESULT, "blocks.3", live)
    assert "live kernel: model (HookedTransformer, TL 2.18.0)" in md and "768" in md


def test_live_spec_ignored_when_static_dims_contradict_it():
    # The kernel's `model` has 2 layers; the document builds gpt2-small (12): another definition.
    md = hover_md(RESULT, "blocks.3", context([model_answer(use_attn_result=True)]))
    assert "live kernel" not in md and "768" in md


def test_unrecognised_constructor_becomes_a_model_with_exact_layers():
    text = "model = load_my_model()\n_, cache = model.run_with_cache(x)\na = cache['resid_post', 1]\nb = cache['resid_post', 5]\n"
    assert codes(text, STATIC) == []
    assert codes(text, context([model_answer()])) == [("layer-out-of-range", 3)]


def test_function_local_name_is_not_the_kernel_global():
    text = "def f():\n    model = load_my_model()\n    _, cache = model.run_with_cache(x)\n    return cache['resid_post', 5]\n"
    assert codes(text, context([model_answer()])) == []


# ------------------------------------------------------------------------------ live-hooks

HOOKS = [{"hook": "blocks.1.attn.hook_z", "fn": "ablate_top_head_hook", "permanent": False, "dir": "fwd"},
         {"hook": "blocks.0.hook_resid_pre", "fn": "<lambda>", "permanent": True, "dir": "fwd"},
         {"hook": "blocks.0.hook_mlp_out", "fn": "grad_hook", "permanent": False, "dir": "bwd"}]


def test_live_hooks_on_the_definition_line():
    text = "import torch\n\nmodel = load_my_model()\nlogits = model(x)\n"
    findings = [f for f in analyze(text, context([model_answer(hooks=HOOKS)])).findings if f.code == "live-hooks"]
    assert len(findings) == 1
    f = findings[0]
    assert text[f.start:f.end] == "model" and text.count("\n", 0, f.start) == 2 and f.severity == "warning"
    assert f.message.startswith("3 hooks still attached to model in the kernel: blocks.1.attn.hook_z (ablate_top_head_hook), "
                                "blocks.0.hook_resid_pre (<lambda>, permanent), blocks.0.hook_mlp_out (grad_hook, bwd)")
    assert "permanent hooks stay" in f.message


def test_live_hooks_on_first_use_when_not_defined_here():
    text = "# model comes from the notebook\ndef f(model):\n    return model\n\nout = f(model)\nmodel.reset_hooks\n"
    [f] = [f for f in analyze(text, context([model_answer(hooks=HOOKS[:1])])).findings if f.code == "live-hooks"]
    assert text.count("\n", 0, f.start) == 4 and text[f.start:f.end] == "model"  # not the comment, not the parameter
    assert f.message.startswith("1 hook still attached") and "permanent hooks stay" not in f.message


def test_live_hooks_only_for_models_the_document_uses():
    assert codes("x = 1\n# model\n", context([model_answer(hooks=HOOKS)])) == []
    only_permanent = [f for f in analyze("model.eval()\n", context([model_answer(hooks=HOOKS[1:2])])).findings]
    assert [(f.code, f.severity) for f in only_permanent] == [("live-hooks", "information")]


def test_live_hooks_message_counts_what_it_does_not_list():
    many = [{"hook": f"blocks.{i}.hook_resid_pre", "fn": "h", "permanent": False, "dir": "fwd"} for i in range(6)]
    answer = model_answer(hooks=many)
    answer["hooks_total"] = 40  # the kernel listed 6 of 40
    [f] = analyze("model.eval()\n", context([answer])).findings
    assert f.message.startswith("40 hooks") and ", … 36 more." in f.message


# ------------------------------------------------------------------------------ not-cached

CACHED = '''\
model = load_my_model()
_, cache = model.run_with_cache(x, names_filter=lambda n: n.endswith("resid_pre"))
a = cache["resid_pre", 0]
b = cache["blocks.1.attn.hook_pattern"]
for l in range(2):
    c = cache["z", l]
def f(cache):
    return cache["blocks.1.attn.hook_pattern"]
'''


def test_not_cached_for_keys_the_live_cache_lacks():
    live = context([model_answer()], [cache_answer(keys=("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"))])
    assert codes(CACHED, live) == [("not-cached", 3), ("not-cached", 5)]  # the parameter `cache` is not the global
    f = [f for f in analyze(CACHED, live).findings][0]
    assert f.message.startswith("blocks.1.attn.hook_pattern is not in the kernel's cache (2 keys)")


def test_not_cached_needs_a_complete_key_list_and_a_cache_of_that_name():
    partial = context([model_answer()], [cache_answer(complete=False)])
    assert codes(CACHED, partial) == []
    other = context([model_answer()], [cache_answer(var="clean_cache")])
    assert codes(CACHED, other) == []


def test_not_cached_leaves_invalid_names_to_the_static_checks():
    text = "model = load_my_model()\n_, cache = model.run_with_cache(x)\na = cache['resid_pre', 7]\n"
    live = context([model_answer()], [cache_answer()])
    assert codes(text, live) == [("layer-out-of-range", 2)]


# ------------------------------------------------------------------------------ hover


def test_hover_shows_live_shape_dtype_device():
    text = "model = load_my_model()\n_, cache = model.run_with_cache(x)\na = cache['resid_pre', 0]\n"
    md = hover_md(text, "'resid_pre'", context([model_answer()], [cache_answer()]))
    first = md.splitlines()[0]
    assert first == "`blocks.0.hook_resid_pre` · `[batch, pos, d_model]` = `[batch, pos, 64]` · live: `[1, 5, 64]` float32 cuda:0"


def test_hover_marks_a_live_shape_that_disagrees():
    text = "model = load_my_model()\n_, cache = model.run_with_cache(x)\na = cache['resid_pre', 0]\n"
    md = hover_md(text, "'resid_pre'", context([model_answer()], [cache_answer(shape=(1, 5, 32))]))
    assert md.splitlines()[0].endswith("live: `[1, 5, 32]` float32 cuda:0 ⚠ differs from the static shape")


def test_hover_for_an_unknown_layer_shows_the_first_layer_present():
    text = "model = load_my_model()\n_, cache = model.run_with_cache(x)\nfor l in range(2):\n    a = cache['resid_pre', l]\n"
    md = hover_md(text, "'resid_pre'", context([model_answer()], [cache_answer(keys=("blocks.1.hook_resid_pre",))]))
    assert "live: `[1, 5, 64]` float32 cuda:0 (`blocks.1.hook_resid_pre`)" in md.splitlines()[0]


@pytest.mark.parametrize("ctx", [STATIC, context()])
def test_without_live_facts_nothing_changes(ctx):
    text = "model = load_my_model()\n_, cache = model.run_with_cache(x)\na = cache['resid_pre', 0]\n"
    assert "live" not in hover_md(text, "'resid_pre'", ctx)
    assert codes(CACHED, ctx) == []


GATED = """\
model = load_my_model()
model.set_use_attn_result(True)
_, cache = model.run_with_cache(x)
a = cache["result", 0]
b = cache["q_input", 0]
"""


def test_not_cached_for_a_gated_hook_says_the_kernel_ran_without_the_flag():
    live = context([model_answer()], [cache_answer(keys=("blocks.0.hook_resid_pre",))])
    found = [(f.code, GATED.count("\n", 0, f.start), f.message) for f in analyze(GATED, live).findings]
    # result: the document switches the flag on, the kernel's cache predates it; q_input: hook-not-enabled only.
    assert [(c, line) for c, line, _ in found] == [("not-cached", 3), ("hook-not-enabled", 4)]
    assert "use_attn_result was off in the kernel when it was cached" in found[0][2]
