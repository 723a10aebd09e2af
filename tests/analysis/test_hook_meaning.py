"""hook-meaning: names that read another tensor on the file's TransformerBridge than on HookedTransformer."""

from __future__ import annotations

import dataclasses

import pytest

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.features.hover import hover
from lsp_server.knowledge.resolve import resolve_model_name
from lsp_server.knowledge.spec import ModelSpec

from .test_name_checks import apply

TL4 = AnalysisContext(tl_major=4, tl_version="4.3.0", tl_label="4.3.0, from a test", resolve_model=resolve_model_name)
IMPORT = "from transformer_lens.model_bridge import TransformerBridge\n"


def meaning(src: str, context: AnalysisContext = TL4):
    """(0-based line, severity, message, finding) of each hook-meaning finding."""
    a = analyze(src, context)
    return [(a.lines.position(f.start).line, f.severity, f.message, f) for f in a.findings if f.code == "hook-meaning"]


def bridge(name: str = "gpt2", setup: str = "", body: str = "") -> str:
    return IMPORT + f'model = TransformerBridge.boot_transformers("{name}", device="cpu")\n{setup}' \
        'logits, cache = model.run_with_cache("Hello")\n' + body


def test_layernorm_normalized_on_a_raw_bridge_names_the_architecture_the_tensor_and_the_replacement():
    src = bridge(body='x = cache["blocks.3.ln1.hook_normalized"]\n')
    (line, severity, message, finding), = [r for r in meaning(src) if r[0] == 3]
    assert severity == "warning"
    assert "GPT-2, raw: no enable_compatibility_mode()" in message
    assert "before the LayerNorm weight and bias" in message and "HookedTransformer 2.x" in message
    assert "`blocks.3.ln1.hook_out`" in message
    (fix,) = finding.fixes
    assert 'cache["blocks.3.ln1.hook_out"]' in apply(src, fix)


def test_the_raw_bridge_hint_comes_once_per_file_on_the_boot_call_and_its_fix_inserts_compatibility_mode():
    src = IMPORT + ("def main():\n"
                    "    lm = TransformerBridge.boot_transformers(\n        'gpt2', device='cpu')\n"
                    "    _, cache = lm.run_with_cache('Hello')\n"
                    "    a = cache['resid_post', 3]\n    b = cache['blocks.2.attn.hook_z']\n"
                    "    c = cache['blocks.0.ln1.hook_normalized']\n")
    rows = meaning(src)
    hints = [r for r in rows if r[1] == "hint"]
    assert len(hints) == 1
    line, _, message, finding = hints[0]
    assert line == 2 and message.startswith("`lm` is booted without enable_compatibility_mode().")
    assert "not centred" in message and "`blocks.3.hook_resid_post`" in message
    assert finding.related and "is read here" in finding.related[0].message
    (fix,) = finding.fixes
    fixed = apply(src, fix)
    assert "        'gpt2', device='cpu')\n    lm.enable_compatibility_mode()\n" in fixed
    assert meaning(fixed) == []  # processed compatibility mode: every name agrees with from_pretrained


@pytest.mark.parametrize("setup,mode", [
    ("model.enable_compatibility_mode(no_processing=True)\n", "compatibility mode, LayerNorm not folded"),
    ("model.enable_compatibility_mode(disable_warnings=True, fold_ln=False)\n", "compatibility mode, LayerNorm not folded"),
    ("model.enable_compatibility_mode(True, True)\n", "compatibility mode, LayerNorm not folded"),
])
def test_compatibility_mode_without_processing_keeps_the_layernorm_warning_but_drops_the_hint(setup, mode):
    rows = meaning(bridge(setup=setup, body='x = cache["ln_final.hook_normalized"]\ny = cache["resid_pre", 1]\n'))
    assert [(sev, mode in msg) for _, sev, msg, _ in rows] == [("warning", True)]


@pytest.mark.parametrize("src", [
    # processed compatibility mode: what from_pretrained gives
    bridge(setup="model.enable_compatibility_mode()\n", body='x = cache["blocks.0.ln1.hook_normalized"]\n'),
    # RMSNorm: nothing folded or centred, hook_normalized before the weight in every version
    bridge("meta-llama/Llama-3.2-1B", body='x = cache["blocks.0.ln1.hook_normalized"]\ny = cache["resid_post", 1]\n'),
    # an architecture no row measured, an unresolvable name, a model of unknown origin
    bridge("mistralai/Mistral-7B-v0.1", body='x = cache["blocks.0.ln1.hook_normalized"]\n'),
    bridge("my-org/some-private-model", body='x = cache["blocks.0.ln1.hook_normalized"]\n'),
    IMPORT + "def f(model: TransformerBridge):\n    _, cache = model.run_with_cache('x')\n"
             "    return cache['blocks.0.ln1.hook_normalized']\n",
    # compatibility mode switched on by a helper, or with arguments that are not literals: the mode is not known
    bridge(setup="def prepare(m):\n    m.enable_compatibility_mode()\nprepare(model)\n",
           body='x = cache["blocks.0.ln1.hook_normalized"]\ny = cache["resid_post", 1]\n'),
    bridge(setup="model.enable_compatibility_mode(no_processing=flag)\n", body='x = cache["blocks.0.ln1.hook_normalized"]\n'),
])
def test_safe_or_unknown_setups_are_silent(src):
    assert meaning(src) == []


def test_hooked_transformer_code_is_silent_on_every_version():
    src = ('from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained_no_processing("gpt2")\n'
           '_, cache = model.run_with_cache("x")\nx = cache["blocks.0.ln1.hook_normalized"]\n'
           'y = cache["blocks.0.attn.hook_in"] if False else None\n')
    for major, version in ((2, "2.18.0"), (3, "3.9.0"), (4, "4.3.0")):
        context = dataclasses.replace(TL4, tl_major=major, tl_version=version)
        assert meaning(src, context) == []


@pytest.mark.parametrize("version,major,reported", [
    ("4.3.0", 4, True), ("4.x", 4, True), (None, 4, True), ("3.9.0", 3, True),
    ("3.5.0", 3, False), ("3.x", 3, False), (None, None, False),
])
def test_only_on_versions_the_row_holds_for(version, major, reported):
    context = dataclasses.replace(TL4, tl_major=major, tl_version=version)
    assert bool(meaning(bridge(body='x = cache["blocks.0.ln2.hook_normalized"]\n'), context)) == reported


def test_bloom_split_inputs_are_after_the_layernorm_even_in_compatibility_mode():
    src = bridge("bigscience/bloom-560m", setup="model.enable_compatibility_mode()\nmodel.set_use_split_qkv_input(True)\n",
                 body='q = cache["blocks.2.hook_q_input"]\na = cache["blocks.1.attn.hook_out"]\n'
                      'n = cache["blocks.0.ln1.hook_normalized"]\n')
    rows = meaning(src)
    assert [(line, sev) for line, sev, _, _ in rows] == [(5, "warning"), (6, "warning")]
    assert "BLOOM, compatibility mode" in rows[0][2] and "`blocks.2.hook_resid_pre`" in rows[0][2]
    assert "#1317" in rows[0][2]
    assert "hook_resid_mid" in rows[1][2] and "`blocks.1.hook_attn_out`" in rows[1][2]


def test_a_gated_name_that_is_off_is_left_to_hook_not_enabled():
    src = bridge("bigscience/bloom-560m", setup="model.enable_compatibility_mode()\n",
                 body='q = cache["blocks.2.hook_q_input"]\n')
    a = analyze(src, TL4)
    assert [f.code for f in a.findings] == ["hook-not-enabled"]


def test_layout_rows_report_only_indexing_written_for_hooked_transformers_layout():
    src = bridge("facebook/opt-125m", setup="model.enable_compatibility_mode()\n", body=(
        'whole = cache["blocks.1.ln2.hook_scale"]\n'  # 4: a plain read: silent
        'last = cache["blocks.1.ln2.hook_scale"][:, -1]\n'  # 5
        's = cache["blocks.1.ln2.hook_normalized"]\n'  # 6: indexed two lines below
        'feature = s[..., 3]\n'
        't = s[0, 3]\n'
        'def patch(x, hook):\n    x[:, -1] = 0\n    return x\n'
        'model.run_with_hooks("hi", fwd_hooks=[("blocks.0.ln2.hook_normalized", patch)])\n'))  # 12
    rows = meaning(src)
    assert [line for line, *_ in rows] == [5, 6, 12]
    assert all("[batch*pos, ·]" in msg and "OPT, compatibility mode" in msg for _, _, msg, _ in rows)


def test_qwen3_qk_norm_layout_is_reported_where_the_value_is_reshaped():
    src = bridge("Qwen/Qwen3-0.6B", body=('a = cache["blocks.0.attn.q_norm.hook_normalized"]\n'
                                         'b = cache["blocks.0.attn.k_norm.hook_normalized"].reshape(2, 5, 8, 128)\n'))
    (row,) = meaning(src)
    assert row[0] == 4 and "[batch, head, pos, d_head]" in row[2] and "[batch*pos*head, d_head]" in row[2]


def test_post_norm_architectures_canonical_outputs_point_to_the_additive_hooks():
    olmo = ModelSpec(name="allenai/OLMo-2-0425-1B", source="a test", backend="bridge", architecture="Olmo2ForCausalLM",
                     normalization_type="RMS", structure_known=True, n_layers=16)
    context = dataclasses.replace(TL4, resolve_model=lambda name: olmo if "OLMo" in name else None)
    (row,) = meaning(bridge("allenai/OLMo-2-0425-1B", body='x = cache["blocks.4.mlp.hook_out"]\n'), context)
    assert "OLMo-2" in row[2] and "`blocks.4.hook_mlp_out`" in row[2] and row[1] == "warning"


def test_canonical_inputs_are_a_hint():
    (row,) = meaning(bridge(setup="model.enable_compatibility_mode()\n", body='x = cache["blocks.0.mlp.hook_in"]\n'))
    assert row[1] == "hint" and "after its LayerNorm" in row[2] and "`blocks.0.hook_resid_mid`" in row[2]


def test_suppression_and_hover():
    src = bridge(body='x = cache["blocks.0.ln1.hook_normalized"]  # tlens: ignore[hook-meaning]\n'
                      'y = cache["blocks.0.ln2.hook_normalized"]\n')
    assert [line for line, *_ in meaning(src)] == [4]  # only the unsuppressed read (no residual name: no boot hint)
    a = analyze(src, TL4)
    md = hover(a, src.index("blocks.0.ln2.hook_normalized") + 3).markdown
    note = next(line for line in md.split("\n\n") if line.startswith("⚠"))
    assert "GPT-2, raw" in note and "`blocks.0.ln2.hook_out`" in note and "(measured: |Δ|" in note


def _migrated(src: str) -> str:
    """``src`` after the removed-api migration fix (TL 4)."""
    a = analyze(src, TL4)
    (fix,) = [fix for f in a.findings if f.code == "removed-api" for fix in f.fixes]
    return apply(src, fix)


@pytest.mark.parametrize("loader,compat", [
    ('HookedTransformer.from_pretrained("gpt2")', "model.enable_compatibility_mode()"),
    ('HookedTransformer.from_pretrained_no_processing("gpt2")', "model.enable_compatibility_mode(no_processing=True)"),
    ('transformer_lens.HookedTransformer.from_pretrained("gpt2")', "model.enable_compatibility_mode()"),
    ('HookedTransformer.from_pretrained(\n    "gpt2",\n    fold_ln=False,\n    center_writing_weights=False,  # later\n)',
     "model.enable_compatibility_mode(fold_ln=False, center_writing_weights=False)"),
])
def test_the_migration_keeps_the_loaders_processing_so_hooks_keep_their_numbers(loader, compat):
    src = ("import transformer_lens\nfrom transformer_lens import HookedTransformer\n"
           f"model = {loader}\n_, cache = model.run_with_cache('x')\nr = cache['resid_post', 1]\n")
    migrated = _migrated(src)
    assert f"\n{compat}\n" in migrated and "fold_ln=False,\n" not in migrated.split(compat)[0]
    compile(migrated, "migrated.py", "exec")
    # No boot hint: the bridge is prepared the way the HookedTransformer was loaded.
    assert meaning(migrated) == []


def test_a_migrated_unfolded_layernorm_still_reads_hook_normalized_before_the_affine():
    src = ('from transformer_lens import HookedTransformer\n'
           'model = HookedTransformer.from_pretrained("gpt2", fold_ln=False)\n'
           '_, cache = model.run_with_cache("x")\nx = cache["normalized", 0, "ln1"]\n')
    (row,) = meaning(_migrated(src))
    assert "compatibility mode, LayerNorm not folded" in row[2] and "`blocks.0.ln1.hook_out`" in row[2]
