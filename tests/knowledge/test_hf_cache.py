"""Reading model configs from a fake (but real-format) Hugging Face hub cache."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")

from lsp_server.knowledge import hf_cache  # noqa: E402
from lsp_server.knowledge.hf_cache import (  # noqa: E402
    find_config_json,
    find_tokenizer_json,
    lookup_hf_cache,
    spec_from_hf_config,
)


def put(cache: Path, repo_id: str, config, rev: str = "0123456789abcdef", *, ref: bool = True,
        extra: dict[str, str] | None = None) -> Path:
    """Lay out ``models--org--name/snapshots/<rev>/`` like huggingface_hub does."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True, exist_ok=True)
    if isinstance(config, (dict, list, str)):
        (snap / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    else:
        config.to_json_file(str(snap / "config.json"))
    for filename, text in (extra or {}).items():
        (snap / filename).write_text(text)
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(rev)
    return snap


@pytest.fixture
def cache(tmp_path, monkeypatch):
    # Keep the real caches of this machine out of every test.
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_HOME",
                "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    c = tmp_path / "hub"
    c.mkdir()
    return c


# ------------------------------------------------------------------ architectures -> ModelSpec


def test_gpt2(cache):
    cfg = transformers.GPT2Config(n_layer=3, n_embd=96, n_head=4, n_positions=128, vocab_size=1000,
                                  architectures=["GPT2LMHeadModel"])
    put(cache, "someone/tiny-gpt2", cfg, rev="abcdef0123456789")
    spec = lookup_hf_cache("someone/tiny-gpt2", cache_dir=cache)
    assert spec is not None
    assert (spec.n_layers, spec.d_model, spec.n_heads, spec.d_head, spec.d_mlp, spec.d_vocab,
            spec.n_ctx) == (3, 96, 4, 24, 384, 1000, 128)
    assert spec.architecture == "GPT2LMHeadModel" and spec.structure_known
    assert spec.positional_embedding_type == "standard" and spec.normalization_type == "LN"
    assert spec.act_fn == "gelu_new" and not spec.gated_mlp
    assert spec.name == "someone/tiny-gpt2"
    assert spec.source == "Hugging Face cache: someone/tiny-gpt2@abcdef0123"


def test_gpt2_with_explicit_mlp_width(cache):
    put(cache, "a/b", transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_inner=100))
    assert lookup_hf_cache("a/b", cache_dir=cache).d_mlp == 100


def test_llama_gqa(cache):
    cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=8,
                                   num_key_value_heads=2, intermediate_size=344, vocab_size=512,
                                   max_position_embeddings=256, architectures=["LlamaForCausalLM"])
    put(cache, "meta-like/tiny-llama", cfg)
    spec = lookup_hf_cache("meta-like/tiny-llama", cache_dir=cache)
    assert (spec.n_layers, spec.d_model, spec.n_heads, spec.d_head, spec.d_mlp) == (2, 128, 8, 16, 344)
    assert spec.n_key_value_heads == 2 and spec.is_gqa
    assert spec.normalization_type == "RMS" and spec.gated_mlp
    assert spec.positional_embedding_type == "rotary" and spec.rotary_dim == 16
    assert spec.act_fn == "silu" and spec.n_ctx == 256


def test_llama_without_gqa_reports_no_kv_heads(cache):
    cfg = transformers.LlamaConfig(num_hidden_layers=1, hidden_size=64, num_attention_heads=4,
                                   num_key_value_heads=4, intermediate_size=128, vocab_size=100)
    put(cache, "x/llama-mha", cfg)
    spec = lookup_hf_cache("x/llama-mha", cache_dir=cache)
    assert spec.n_key_value_heads is None and not spec.is_gqa
    assert spec.dims()["n_key_value_heads"] == 4


def test_neox_partial_rotary_both_spellings(cache):
    # transformers 5 writes rope_parameters.partial_rotary_factor ...
    cfg = transformers.GPTNeoXConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                     intermediate_size=256, vocab_size=300,
                                     max_position_embeddings=128, rotary_pct=0.25,
                                     architectures=["GPTNeoXForCausalLM"])
    put(cache, "e/neox-new", cfg)
    # ... published Pythia configs say "rotary_pct" at the top level.
    put(cache, "e/neox-old", {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
                              "hidden_size": 512, "num_attention_heads": 8, "num_hidden_layers": 6,
                              "intermediate_size": 2048, "rotary_pct": 0.25, "vocab_size": 50304,
                              "max_position_embeddings": 2048, "use_parallel_residual": True,
                              "hidden_act": "gelu"})
    new = lookup_hf_cache("e/neox-new", cache_dir=cache)
    old = lookup_hf_cache("e/neox-old", cache_dir=cache)
    assert new.rotary_dim == 4 and new.parallel_attn_mlp and new.normalization_type == "LN"
    assert old.rotary_dim == 16 and old.d_head == 64 and old.d_vocab == 50304


def test_neox_sequential_residual(cache):
    cfg = transformers.GPTNeoXConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=4,
                                     intermediate_size=64, vocab_size=50,
                                     use_parallel_residual=False)
    put(cache, "e/seq", cfg)
    assert lookup_hf_cache("e/seq", cache_dir=cache).parallel_attn_mlp is False


@pytest.mark.parametrize(
    "config_cls, kwargs, expect",
    [
        ("PhiConfig", dict(num_hidden_layers=2, hidden_size=80, num_attention_heads=4,
                           intermediate_size=320, vocab_size=500, partial_rotary_factor=0.4),
         dict(architecture="PhiForCausalLM", d_head=20, rotary_dim=8, parallel_attn_mlp=True,
              normalization_type="LN", gated_mlp=False)),
        ("Phi3Config", dict(num_hidden_layers=2, hidden_size=96, num_attention_heads=4,
                            num_key_value_heads=2, intermediate_size=256, vocab_size=500),
         dict(architecture="Phi3ForCausalLM", n_key_value_heads=2, gated_mlp=True,
              normalization_type="RMS")),
        ("MistralConfig", dict(num_hidden_layers=2, hidden_size=160, num_attention_heads=4,
                               num_key_value_heads=2, head_dim=32, intermediate_size=320,
                               vocab_size=500),
         dict(architecture="MistralForCausalLM", d_head=32, rotary_dim=32, n_key_value_heads=2)),
        ("MixtralConfig", dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                               num_key_value_heads=2, intermediate_size=128, vocab_size=500,
                               num_local_experts=4, num_experts_per_tok=2),
         dict(architecture="MixtralForCausalLM", num_experts=4, experts_per_token=2)),
        ("Qwen2Config", dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                             num_key_value_heads=2, intermediate_size=128, vocab_size=500),
         dict(architecture="Qwen2ForCausalLM", gated_mlp=True, use_qk_norm=False)),
        ("Qwen3Config", dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                             num_key_value_heads=2, head_dim=32, intermediate_size=128,
                             vocab_size=500),
         dict(architecture="Qwen3ForCausalLM", d_head=32, use_qk_norm=True)),
        ("GemmaConfig", dict(num_hidden_layers=2, hidden_size=96, num_attention_heads=4,
                             num_key_value_heads=1, head_dim=32, intermediate_size=256,
                             vocab_size=500),
         dict(architecture="GemmaForCausalLM", d_head=32, n_key_value_heads=1,
              use_normalization_before_and_after=False)),
        ("Gemma2Config", dict(num_hidden_layers=2, hidden_size=96, num_attention_heads=4,
                              num_key_value_heads=2, head_dim=32, intermediate_size=256,
                              vocab_size=500),
         dict(architecture="Gemma2ForCausalLM", act_fn="gelu_pytorch_tanh",
              use_normalization_before_and_after=True)),
        ("OPTConfig", dict(num_hidden_layers=2, hidden_size=64, word_embed_proj_dim=64,
                           num_attention_heads=4, ffn_dim=256, vocab_size=500),
         dict(architecture="OPTForCausalLM", d_mlp=256, act_fn="relu",
              positional_embedding_type="standard")),
        ("GPTJConfig", dict(n_layer=2, n_embd=128, n_head=4, rotary_dim=8, vocab_size=500),
         dict(architecture="GPTJForCausalLM", d_mlp=512, rotary_dim=8, parallel_attn_mlp=True)),
        ("BloomConfig", dict(n_layer=2, hidden_size=64, n_head=4, vocab_size=500),
         dict(architecture="BloomForCausalLM", d_mlp=256, positional_embedding_type="alibi",
              post_embedding_ln=True)),
        ("GPTNeoConfig", dict(num_layers=2, hidden_size=64, num_heads=4, vocab_size=500,
                              max_position_embeddings=256,
                              attention_types=[[["global", "local"], 1]]),
         dict(architecture="GPTNeoForCausalLM", d_mlp=256, n_ctx=256)),
    ],
)
def test_common_architectures(cache, config_cls, kwargs, expect):
    # No "architectures" key: the model_type decides, as for a bare XConfig().save_pretrained().
    put(cache, f"t/{config_cls}", getattr(transformers, config_cls)(**kwargs))
    spec = lookup_hf_cache(f"t/{config_cls}", cache_dir=cache)
    assert spec is not None and spec.structure_known
    for key, value in expect.items():
        assert getattr(spec, key) == value, key
    assert spec.n_layers == 2 and spec.d_vocab == 500


def test_multimodal_wrapper_reads_text_config(cache):
    text = dict(num_hidden_layers=3, hidden_size=96, num_attention_heads=4, num_key_value_heads=2,
                head_dim=32, intermediate_size=256, vocab_size=700)
    cfg = transformers.Gemma3Config(text_config=text, architectures=["Gemma3ForConditionalGeneration"])
    put(cache, "g/tiny-gemma3", cfg)
    spec = lookup_hf_cache("g/tiny-gemma3", cache_dir=cache)
    assert spec.architecture == "Gemma3ForConditionalGeneration"
    assert (spec.n_layers, spec.d_model, spec.d_head, spec.d_vocab) == (3, 96, 32, 700)
    assert spec.use_qk_norm and spec.use_normalization_before_and_after


def test_unknown_architecture_keeps_dims_but_not_structure(cache):
    cfg = transformers.OlmoConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                  intermediate_size=128, vocab_size=500,
                                  architectures=["OlmoForCausalLM"])
    put(cache, "ai2/tiny-olmo", cfg)
    spec = lookup_hf_cache("ai2/tiny-olmo", cache_dir=cache)
    assert spec.architecture == "OlmoForCausalLM" and not spec.structure_known
    assert (spec.n_layers, spec.d_model, spec.n_heads, spec.d_mlp, spec.d_vocab) == (2, 64, 4, 128, 500)


def test_spec_from_hf_config_ignores_junk_values():
    spec = spec_from_hf_config({"model_type": "gpt2", "n_layer": "twelve", "n_embd": -5,
                                "n_head": True, "vocab_size": 10, "activation_function": 3})
    assert spec.n_layers is None and spec.d_model is None and spec.n_heads is None
    assert spec.d_vocab == 10 and spec.act_fn is None


# ------------------------------------------------------------------------ finding the file


def test_refs_main_wins_over_newer_snapshot(cache):
    put(cache, "o/m", transformers.GPT2Config(n_layer=2), rev="old0000000")
    newer = put(cache, "o/m", transformers.GPT2Config(n_layer=5), rev="new1111111", ref=False)
    os.utime(newer, (2e9, 2e9))
    assert lookup_hf_cache("o/m", cache_dir=cache).n_layers == 2  # refs/main -> old0000000


def test_without_refs_main_the_newest_snapshot_is_used(cache):
    a = put(cache, "o/n", transformers.GPT2Config(n_layer=2), rev="aaaa", ref=False)
    b = put(cache, "o/n", transformers.GPT2Config(n_layer=7), rev="bbbb", ref=False)
    os.utime(a, (1e9, 1e9))
    os.utime(b, (2e9, 2e9))
    assert lookup_hf_cache("o/n", cache_dir=cache).n_layers == 7


def test_hub_ids_are_case_insensitive(cache):
    put(cache, "EleutherAI/pythia-tiny", transformers.GPTNeoXConfig(num_hidden_layers=3))
    assert lookup_hf_cache("eleutherai/PYTHIA-tiny", cache_dir=cache).n_layers == 3


def test_tl_names_resolve_to_their_hub_repo(cache):
    # gpt2-small is TL's alias of "gpt2", whose repo now lives at openai-community/gpt2.
    put(cache, "openai-community/gpt2", transformers.GPT2Config(n_layer=12),
        extra={"tokenizer.json": "{}"})
    spec = lookup_hf_cache("gpt2-small", cache_dir=cache)
    assert spec is not None and spec.n_layers == 12
    assert spec.tokenizer == "gpt2"  # the official table says GPT-2 BPE
    assert find_tokenizer_json("gpt2-small", cache_dir=cache).name == "tokenizer.json"


def test_tokenizer_of_an_unofficial_repo(cache):
    put(cache, "me/with-tok", transformers.GPT2Config(n_layer=1), extra={"tokenizer.json": "{}"})
    put(cache, "me/without-tok", transformers.GPT2Config(n_layer=1))
    assert lookup_hf_cache("me/with-tok", cache_dir=cache).tokenizer == "me/with-tok"
    assert lookup_hf_cache("me/without-tok", cache_dir=cache).tokenizer is None
    assert find_tokenizer_json("me/without-tok", cache_dir=cache) is None
    assert find_config_json("me/without-tok", cache_dir=cache).name == "config.json"


def test_local_folder_and_config_path(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    transformers.LlamaConfig(num_hidden_layers=4, hidden_size=64, num_attention_heads=4,
                             intermediate_size=128, vocab_size=100).to_json_file(
        str(folder / "config.json"))
    (folder / "tokenizer.json").write_text("{}")
    by_dir = lookup_hf_cache(str(folder))
    by_file = lookup_hf_cache(str(folder / "config.json"))
    assert by_dir.n_layers == by_file.n_layers == 4
    assert by_dir.source == f"local folder: {folder}"
    assert by_dir.tokenizer == str(folder)
    assert find_tokenizer_json(str(folder)) == folder / "tokenizer.json"


def test_environment_variables_choose_the_cache(cache, tmp_path, monkeypatch):
    home = tmp_path / "hf-home"
    put(home / "hub", "env/one", transformers.GPT2Config(n_layer=4))
    hub = tmp_path / "hub-cache"
    put(hub, "env/two", transformers.GPT2Config(n_layer=6))
    monkeypatch.setenv("HF_HOME", str(home))
    assert lookup_hf_cache("env/one").n_layers == 4
    assert lookup_hf_cache("env/two") is None
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    assert lookup_hf_cache("env/two").n_layers == 6
    assert lookup_hf_cache("env/one").n_layers == 4  # HF_HOME/hub is still searched after
    # An explicit cache_dir is the only place searched.
    assert lookup_hf_cache("env/one", cache_dir=hub) is None


def test_default_cache_under_home(cache, tmp_path):
    put(tmp_path / "home" / ".cache" / "huggingface" / "hub", "home/model",
        transformers.GPT2Config(n_layer=9))
    assert lookup_hf_cache("home/model").n_layers == 9


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "", "\xff\xfe"])
def test_broken_config_gives_none_and_a_log_line(cache, caplog, content):
    put(cache, "bad/model", content)
    with caplog.at_level(logging.WARNING, logger=hf_cache.__name__):
        assert lookup_hf_cache("bad/model", cache_dir=cache) is None
    assert any("bad" in r.getMessage() and "config.json" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["nobody/nothing", "", "   ", "/does/not/exist", "./nope",
                                  "~/nope-either"])
def test_missing_models_give_none(cache, name):
    assert lookup_hf_cache(name, cache_dir=cache) is None
    assert find_tokenizer_json(name, cache_dir=cache) is None


def test_non_string_input_gives_none(cache):
    assert lookup_hf_cache(None, cache_dir=cache) is None  # type: ignore[arg-type]


def test_snapshot_without_config_gives_none(cache):
    repo = cache / "models--o--empty"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    assert lookup_hf_cache("o/empty", cache_dir=cache) is None


def test_dangling_symlink_gives_none(cache):
    snap = cache / "models--o--dangling" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").symlink_to(cache / "blobs" / "missing")
    assert lookup_hf_cache("o/dangling", cache_dir=cache) is None


def test_unreadable_cache_dir_gives_none(tmp_path):
    assert lookup_hf_cache("o/m", cache_dir=tmp_path / "no-such-dir") is None


# ------------------------------------------------------- our mapping vs TL 2.x's own conversion

_TL_CONVERT = textwrap.dedent(
    """
    import json, logging, sys, warnings
    logging.disable(logging.CRITICAL); warnings.filterwarnings("ignore")
    import transformers
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config
    out = {}
    for i, (name, (cls, kwargs, arch)) in enumerate(json.loads(sys.argv[1]).items()):
        # Neutral folder names: TL special-cases any path containing "llama" or "gemma".
        folder = sys.argv[2] + "/cfg%d" % i
        getattr(transformers, cls)(architectures=[arch], **kwargs).save_pretrained(folder)
        cfg = get_pretrained_model_config(folder)
        out[name] = {k: getattr(cfg, k, None) for k in json.loads(sys.argv[3])}
    json.dump(out, sys.stdout)
    """
)
_SMALL = dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=8, intermediate_size=320,
              vocab_size=500)
_AGAINST_TL = {
    "gpt2": ("GPT2Config", dict(n_layer=2, n_embd=128, n_head=8, vocab_size=500, n_ctx=64,
                                n_positions=64), "GPT2LMHeadModel"),
    "neox": ("GPTNeoXConfig", dict(_SMALL, rotary_pct=0.25), "GPTNeoXForCausalLM"),
    "gptj": ("GPTJConfig", dict(n_layer=2, n_embd=128, n_head=8, rotary_dim=8, vocab_size=500),
             "GPTJForCausalLM"),
    "opt": ("OPTConfig", dict(num_hidden_layers=2, hidden_size=128, word_embed_proj_dim=128,
                              num_attention_heads=8, ffn_dim=512, vocab_size=500), "OPTForCausalLM"),
    "llama": ("LlamaConfig", dict(_SMALL, num_key_value_heads=2), "LlamaForCausalLM"),
    "mistral": ("MistralConfig", dict(_SMALL, num_key_value_heads=2), "MistralForCausalLM"),
    "mixtral": ("MixtralConfig", dict(_SMALL, num_key_value_heads=2, num_local_experts=4,
                                      num_experts_per_tok=2), "MixtralForCausalLM"),
    "qwen2": ("Qwen2Config", dict(_SMALL, num_key_value_heads=2), "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Config", dict(_SMALL, num_key_value_heads=2, head_dim=32), "Qwen3ForCausalLM"),
    "phi": ("PhiConfig", dict(_SMALL, partial_rotary_factor=0.5), "PhiForCausalLM"),
    "phi3": ("Phi3Config", dict(_SMALL, num_key_value_heads=2), "Phi3ForCausalLM"),
    "bloom": ("BloomConfig", dict(n_layer=2, hidden_size=128, n_head=8, vocab_size=500),
              "BloomForCausalLM"),
    "gptneo": ("GPTNeoConfig", dict(num_layers=2, hidden_size=128, num_heads=8, vocab_size=500,
                                    attention_types=[[["global", "local"], 1]]),
               "GPTNeoForCausalLM"),
}
_KEYS = ["n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_key_value_heads",
         "rotary_dim", "num_experts", "experts_per_token", "positional_embedding_type",
         "normalization_type", "gated_mlp", "parallel_attn_mlp", "act_fn", "post_embedding_ln",
         "use_qk_norm"]
_TL_DEFAULTS = {"positional_embedding_type": "standard", "normalization_type": "LN",
                "gated_mlp": False, "parallel_attn_mlp": False, "post_embedding_ln": False,
                "use_qk_norm": False}


@pytest.mark.ht
def test_mapping_matches_tl2_conversion_of_the_same_configs(tmp_path):
    python = os.environ.get("TLENS_HT_PYTHON")
    if not python:
        pytest.skip("TLENS_HT_PYTHON is not set: point it at a python with transformer-lens 2.x")
    proc = subprocess.run([python, "-c", _TL_CONVERT, json.dumps(_AGAINST_TL), str(tmp_path),
                           json.dumps(_KEYS)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    tl = json.loads(proc.stdout)
    diffs = []
    for i, (name, tl_cfg) in enumerate(tl.items()):
        ours = lookup_hf_cache(str(tmp_path / f"cfg{i}"))  # the folder TL's environment wrote
        assert ours is not None and ours.structure_known, name
        for key in _KEYS:
            theirs = tl_cfg[key] if tl_cfg[key] is not None else _TL_DEFAULTS.get(key)
            mine = getattr(ours, key)
            if key == "rotary_dim" and ours.positional_embedding_type != "rotary":
                continue
            if key == "n_key_value_heads" and theirs is None and mine is None:
                continue
            if mine != theirs:
                diffs.append((name, key, mine, theirs))
    assert not diffs, diffs
