"""The official model table: name resolution like TL, dimensions equal to TL's own configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from lsp_server.knowledge import registry
from lsp_server.knowledge.spec import ModelSpec

# Dumps {spelling: get_official_model_name(spelling)} for every official name and alias, in the
# exact spelling and upper-cased, from the TransformerLens installed in the given interpreter.
_DUMP_TL_NAMES = textwrap.dedent(
    """
    import json, logging, sys
    logging.disable(logging.CRITICAL)
    try:
        from transformer_lens import supported_models as sm
    except ImportError:
        from transformer_lens import loading_from_pretrained as sm
    spellings = list(sm.OFFICIAL_MODEL_NAMES)
    for aliases in sm.MODEL_ALIASES.values():
        spellings.extend(aliases)
    out = {}
    for s in spellings + [s.upper() for s in spellings]:
        out[s] = sm.get_official_model_name(s)
    json.dump(out, sys.stdout)
    """
)


def _tl_names(python: str) -> dict[str, str]:
    proc = subprocess.run([python, "-c", _DUMP_TL_NAMES], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _ht_python() -> str:
    python = os.environ.get("TLENS_HT_PYTHON")
    if not python:
        pytest.skip("TLENS_HT_PYTHON is not set: point it at a python with transformer-lens 2.x "
                    "(make builds .venv-ht) to compare with HookedTransformer's registry")
    return python


# ------------------------------------------------------------------ lookups by hand-checked facts


def test_gpt2_small_has_the_published_dimensions():
    spec = registry.lookup("gpt2")
    assert isinstance(spec, ModelSpec)
    assert (spec.n_layers, spec.d_model, spec.n_heads, spec.d_head, spec.d_mlp, spec.d_vocab,
            spec.n_ctx) == (12, 768, 12, 64, 3072, 50257, 1024)
    assert spec.architecture == "GPT2LMHeadModel"
    assert spec.act_fn == "gelu_new" and spec.normalization_type == "LN"
    assert spec.positional_embedding_type == "standard"
    assert spec.tokenizer == "gpt2" and spec.structure_known
    assert spec.source == "official table: gpt2"


@pytest.mark.parametrize(
    "spelling, source",
    [
        ("gpt2-small", "official table: gpt2 (alias gpt2-small)"),
        ("GPT2-Small", "official table: gpt2 (alias gpt2-small)"),
        ("GPT2", "official table: gpt2"),
        ("openai-community/gpt2", "official table: gpt2 (hub id openai-community/gpt2)"),
        ("  gpt2  ", "official table: gpt2"),
    ],
)
def test_spellings_resolve_like_tl(spelling, source):
    spec = registry.lookup(spelling)
    assert spec is not None and spec.name == "gpt2"
    assert spec.source == source


def test_moved_hub_ids_of_the_other_gpt2_sizes():
    assert registry.official_name("openai-community/gpt2-xl") == "gpt2-xl"
    assert registry.official_name("distilbert/distilgpt2") == "distilgpt2"
    assert registry.lookup("gpt2-xl").d_model == 1600


@pytest.mark.parametrize("bad", ["not-a-model", "", "   ", "gpt3", "meta-llama/Llama-9-1B"])
def test_unknown_names_give_none(bad):
    assert registry.lookup(bad) is None
    assert registry.official_name(bad) is None
    assert not registry.is_known(bad)


def test_non_string_input_gives_none():
    assert registry.lookup(None) is None  # type: ignore[arg-type]
    assert registry.official_name(42) is None  # type: ignore[arg-type]


def test_known_name_without_dimensions():
    # BERT is an official TL name (HookedEncoder), but the table holds no decoder spec for it.
    assert registry.is_known("bert-base-cased")
    assert registry.official_name("bert-base-cased") == "google-bert/bert-base-cased"
    assert registry.lookup("bert-base-cased") is None


def test_family_structures():
    pythia = registry.lookup("pythia-70m")
    assert pythia.name == "EleutherAI/pythia-70m"
    assert (pythia.n_layers, pythia.d_model, pythia.n_heads, pythia.d_vocab) == (6, 512, 8, 50304)
    assert pythia.positional_embedding_type == "rotary" and pythia.rotary_dim == 16
    assert pythia.parallel_attn_mlp and pythia.architecture == "GPTNeoXForCausalLM"
    # Pythia's prepend-BOS default changed between TL 2.18 and 3.9: not stated.
    assert pythia.default_prepend_bos is None

    llama = registry.lookup("meta-llama/Llama-3.2-1B")
    assert llama.is_gqa and llama.n_key_value_heads == 8
    assert llama.normalization_type == "RMS" and llama.gated_mlp

    mixtral = registry.lookup("mixtral")
    assert mixtral.is_moe and (mixtral.num_experts, mixtral.experts_per_token) == (8, 2)

    qwen = registry.lookup("qwen2.5-0.5b")
    assert qwen.default_prepend_bos is False and qwen.n_key_value_heads == 2

    gemma2 = registry.lookup("gemma-2-2b")
    assert gemma2.use_normalization_before_and_after and gemma2.architecture == "Gemma2ForCausalLM"
    # TL 2.x labels gemma-2b "Gemma2ForCausalLM" (its name contains "gemma-2"); the HF class wins.
    assert registry.lookup("gemma-2b").architecture == "GemmaForCausalLM"

    bloom = registry.lookup("bloom-560m")
    assert bloom.positional_embedding_type == "alibi" and bloom.post_embedding_ln


def test_toy_models():
    solu = registry.lookup("solu-1l")
    assert solu.act_fn == "solu_ln" and solu.d_vocab == 48262
    assert solu.tokenizer == "NeelNanda/gpt-neox-tokenizer-digits"
    assert registry.lookup("gelu-4l").n_layers == 4
    assert registry.lookup("solu-12l-pile").d_model == 1536
    redwood = registry.lookup("redwood_attn_2l")
    assert redwood.attn_only and redwood.positional_embedding_type == "shortformer"
    assert redwood.d_mlp is None and redwood.structure_known
    # Only partly known: dims yes, layout flags no -> structure_known is False.
    attn2 = registry.lookup("attn-only-2l")
    assert attn2.attn_only and attn2.n_layers == 2 and not attn2.structure_known


def test_opt_does_not_claim_gpt2_token_ids():
    # OPT reuses GPT-2's merges but renumbers the vocabulary ("</s>" is 2).
    assert registry.lookup("opt-125m").tokenizer == "facebook/opt-125m"
    assert registry.lookup("gpt-j").tokenizer == "gpt2"
    assert registry.lookup("gpt-neo-125M").tokenizer == "gpt2"


def test_table_invariants():
    table = json.loads(registry.TABLE_PATH.read_text())["models"]
    with_dims = [n for n, e in table.items() if e.get("config_source")]
    assert len(table) >= 249 and len(with_dims) >= 190
    for name in with_dims:
        spec = registry.lookup(name)
        assert spec is not None, name
        assert spec.n_layers and spec.d_model and spec.n_heads and spec.d_head, name
        if spec.structure_known and not spec.attn_only:
            assert spec.d_mlp, name
        if spec.positional_embedding_type == "rotary":
            assert 0 < spec.rotary_dim <= spec.d_head, name
        if spec.n_key_value_heads is not None:
            assert spec.n_heads % spec.n_key_value_heads == 0, name


def test_all_names_for_completion():
    names = registry.all_names()
    assert names[0] in registry.all_names(include_aliases=False)
    assert {"gpt2", "gpt2-small", "openai-community/gpt2", "pythia-70m"} <= set(names)
    assert len(names) == len(set(names))
    assert len(registry.all_names(include_aliases=False)) >= 249


# ------------------------------------------------------------ against the installed TransformerLens


def test_every_tl4_spelling_resolves_like_get_official_model_name():
    pytest.importorskip("transformer_lens")
    expected = _tl_names(sys.executable)
    wrong = {s: (registry.official_name(s), o) for s, o in expected.items()
             if registry.official_name(s) != o}
    assert not wrong, f"{len(wrong)} spellings resolve differently, e.g. {list(wrong.items())[:5]}"


@pytest.mark.ht
def test_every_tl2_spelling_resolves_like_get_official_model_name():
    expected = _tl_names(_ht_python())
    wrong = {s: (registry.official_name(s), o) for s, o in expected.items()
             if registry.official_name(s) != o}
    assert not wrong, f"{len(wrong)} spellings resolve differently, e.g. {list(wrong.items())[:5]}"


_DUMP_TL_OFFLINE_CONFIGS = textwrap.dedent(
    """
    import json, logging, sys, warnings
    logging.disable(logging.CRITICAL); warnings.filterwarnings("ignore")
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config
    out = {}
    for name in json.loads(sys.argv[1]):
        cfg = get_pretrained_model_config(name)
        out[name] = {k: getattr(cfg, k, None) for k in json.loads(sys.argv[2])}
    json.dump(out, sys.stdout)
    """
)

_COMPARED = ["n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx",
             "n_key_value_heads", "rotary_dim", "act_fn", "positional_embedding_type",
             "normalization_type", "gated_mlp", "parallel_attn_mlp", "attn_only",
             "use_normalization_before_and_after", "use_qk_norm", "default_prepend_bos"]


@pytest.mark.ht
def test_offline_configs_equal_tl2(tmp_path):
    """Every entry taken from TL's hard-coded configs must still equal what TL 2.x computes."""
    table = json.loads(registry.TABLE_PATH.read_text())["models"]
    names = [n for n, e in table.items() if str(e.get("config_source")).startswith("tl-offline")]
    assert len(names) >= 40
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path),
           "HF_HUB_CACHE": str(tmp_path)}
    proc = subprocess.run([_ht_python(), "-c", _DUMP_TL_OFFLINE_CONFIGS, json.dumps(names),
                           json.dumps(_COMPARED)], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tl = json.loads(proc.stdout)
    mismatches = []
    for name in names:
        spec = registry.lookup(name)
        for key in _COMPARED:
            ours, theirs = getattr(spec, key), tl[name][key]
            if key == "rotary_dim" and spec.positional_embedding_type != "rotary":
                continue
            if key == "default_prepend_bos" and ours is None:
                continue  # left unstated where TL versions disagree
            if ours != theirs:
                mismatches.append((name, key, ours, theirs))
    assert not mismatches, mismatches[:10]
