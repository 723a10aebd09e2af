#!/usr/bin/env python3
"""Generate ``lsp_server/knowledge/data/models.json``: TransformerLens' official model table.

Run from the repository root with the main venv (TL 4.x) and point it at the HookedTransformer
environments that do the config conversion::

    .venv/bin/python scripts/gen_model_table.py --tl2-python /tmp/v2/bin/python \
        [--tl3-python /tmp/v3/bin/python]

Where the facts come from:

* **Names and aliases** are read from every TL install given: ``transformer_lens.supported_models``
  in this interpreter (TL 3.x/4.x) and ``transformer_lens.loading_from_pretrained`` in the 2.x one.
  Nothing is typed in by hand except the few Hugging Face repos that moved org (``HUB_MOVES``).
* **Configs** are produced by TL's own ``get_pretrained_model_config`` inside the TL 2.x process
  (and TL 3.x, when given), with ``HF_HUB_OFFLINE=1`` and an empty cache:
  - names TL hard-codes (the Llama / CodeLlama / Gemma families) come straight out of TL (``tl-offline``);
  - for the rest, TL's ``AutoConfig.from_pretrained`` (or, for TL-format repos, its config download) is
    answered from ``CURATED`` below: the published ``config.json`` values of each model. TL then does its
    normal conversion, so act_fn / normalization / rotary / flags are TL's own mapping (``curated``).
  - a few toy models are only partly known (``PARTIAL``); they are written as given, with
    ``structure_known: false`` so flag-dependent diagnostics stay silent for them.
  Models that are in neither list are left out of the table rather than guessed.
* When two TL versions convert the same name, their dimensions must agree (the script fails otherwise);
  ``default_prepend_bos`` is kept only where they agree (it changed for Pythia/Phi between 2.18 and 3.9).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "lsp_server" / "knowledge" / "data" / "models.json"

# Spec fields copied from a HookedTransformerConfig.
CFG_FIELDS = (
    "n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx", "n_key_value_heads",
    "rotary_dim", "num_experts", "experts_per_token", "act_fn", "positional_embedding_type",
    "normalization_type", "attn_only", "parallel_attn_mlp", "gated_mlp",
    "ungroup_grouped_query_attention", "use_normalization_before_and_after", "post_embedding_ln",
    "use_qk_norm", "default_prepend_bos", "original_architecture", "tokenizer_name",
)
DIM_FIELDS = ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx",
              "n_key_value_heads", "rotary_dim", "num_experts", "experts_per_token")

# Official names whose Hugging Face repo now lives under an organisation (the hub redirects).
HUB_MOVES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "distilgpt2": "distilbert/distilgpt2",
}

# TL-format repos (NeelNanda/, ArthurConmy/, Baidicoot/) have no HF architecture; TL 4.x boots them as:
TL_NATIVE_ARCH = "TransformerLensNative"

# Architectures that use GPT-2's byte-level BPE with GPT-2's ids (GPT-J adds unused ids above 50256).
# OPT shares the merges but renumbers the vocabulary, so it is NOT in this list.
GPT2_BPE_ARCHS = {"GPT2LMHeadModel", "GPTNeoForCausalLM", "GPTJForCausalLM"}


# ---------------------------------------------------------------------------------------------
# Hand-curated Hugging Face config.json values (published configs; only fields TL reads matter).
# ---------------------------------------------------------------------------------------------

def _gpt2(n_layer, n_embd, n_head):
    return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": n_layer,
            "n_embd": n_embd, "n_head": n_head, "n_ctx": 1024, "n_positions": 1024,
            "vocab_size": 50257, "activation_function": "gelu_new"}


def _stanford_gpt2(n_layer, n_embd, n_head):
    # Mistral-project GPT-2 replications: GPT-2 shapes, scaled/upcast attention.
    return {**_gpt2(n_layer, n_embd, n_head), "scale_attn_by_inverse_layer_idx": True,
            "reorder_and_upcast_attn": True}


def _gpt_neo(num_layers, hidden_size, num_heads):
    return {"model_type": "gpt_neo", "architectures": ["GPTNeoForCausalLM"], "num_layers": num_layers,
            "hidden_size": hidden_size, "num_heads": num_heads, "max_position_embeddings": 2048,
            "vocab_size": 50257, "window_size": 256, "activation_function": "gelu_new",
            "attention_types": [[["global", "local"], num_layers // 2]]}


def _neox(layers, hidden, heads, inter, vocab, act="gelu"):
    return {"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"],
            "num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
            "intermediate_size": inter, "vocab_size": vocab, "rotary_pct": 0.25,
            "max_position_embeddings": 2048, "hidden_act": act, "use_parallel_residual": True}


def _opt(layers, hidden, heads, ffn):
    return {"model_type": "opt", "architectures": ["OPTForCausalLM"], "num_hidden_layers": layers,
            "hidden_size": hidden, "word_embed_proj_dim": hidden, "num_attention_heads": heads,
            "ffn_dim": ffn, "vocab_size": 50272, "max_position_embeddings": 2048,
            "activation_function": "relu"}


def _bloom(n_layer, hidden, n_head):
    return {"model_type": "bloom", "architectures": ["BloomForCausalLM"], "n_layer": n_layer,
            "hidden_size": hidden, "n_head": n_head, "vocab_size": 250880}


def _mistral(layers, hidden, heads, kv, inter, vocab, *, head_dim=None, sliding_window=None,
             max_pos=32768):
    return {"model_type": "mistral", "architectures": ["MistralForCausalLM"],
            "num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
            "num_key_value_heads": kv, "intermediate_size": inter, "vocab_size": vocab,
            "head_dim": head_dim, "sliding_window": sliding_window, "max_position_embeddings": max_pos,
            "hidden_act": "silu"}


def _mixtral():
    return {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "num_hidden_layers": 32,
            "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
            "intermediate_size": 14336, "vocab_size": 32000, "max_position_embeddings": 32768,
            "sliding_window": None, "num_local_experts": 8, "num_experts_per_tok": 2,
            "hidden_act": "silu"}


def _qwen1(layers, hidden, heads, inter, vocab):
    # trust_remote_code model: config.json intermediate_size is twice the MLP width (TL halves it).
    return {"model_type": "qwen", "architectures": ["QWenLMHeadModel"], "num_hidden_layers": layers,
            "hidden_size": hidden, "num_attention_heads": heads, "intermediate_size": inter,
            "vocab_size": vocab, "kv_channels": 128, "layer_norm_epsilon": 1e-6,
            "scale_attn_weights": True, "initializer_range": 0.02, "seq_length": 2048}


def _qwen2(layers, hidden, heads, kv, inter, vocab):
    return {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "num_hidden_layers": layers,
            "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv,
            "intermediate_size": inter, "vocab_size": vocab, "hidden_act": "silu"}


def _qwen3(layers, hidden, heads, kv, inter):
    return {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "num_hidden_layers": layers,
            "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv,
            "head_dim": 128, "intermediate_size": inter, "vocab_size": 151936, "hidden_act": "silu"}


def _phi(layers, hidden, heads, inter, partial_rotary_factor):
    return {"model_type": "phi", "architectures": ["PhiForCausalLM"], "num_hidden_layers": layers,
            "hidden_size": hidden, "num_attention_heads": heads, "intermediate_size": inter,
            "vocab_size": 51200, "max_position_embeddings": 2048, "hidden_act": "gelu_new",
            "partial_rotary_factor": partial_rotary_factor}


def _phi3(layers, hidden, heads, kv, inter, vocab, max_pos):
    return {"model_type": "phi3", "architectures": ["Phi3ForCausalLM"], "num_hidden_layers": layers,
            "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv,
            "intermediate_size": inter, "vocab_size": vocab, "max_position_embeddings": max_pos,
            "hidden_act": "silu"}


def _neel(n_layers, d_model, n_heads, act_fn, *, pile=False):
    # TL-format config.json of Neel Nanda's toy models (d_head 64, 4x MLP, context 1024).
    return {"tl_format": True, "n_layers": n_layers, "d_model": d_model, "d_head": 64,
            "n_heads": n_heads, "d_mlp": 4 * d_model, "n_ctx": 1024,
            "d_vocab": 50278 if pile else 48262,
            "tokenizer_name": "EleutherAI/gpt-neox-20b" if pile else "NeelNanda/gpt-neox-tokenizer-digits",
            "act_fn": act_fn, "attn_only": False, "normalization_type": "LN", "shortformer_pos": False}


def _curated() -> dict[str, dict]:
    c: dict[str, dict] = {
        "gpt2": _gpt2(12, 768, 12),
        "gpt2-medium": _gpt2(24, 1024, 16),
        "gpt2-large": _gpt2(36, 1280, 20),
        "gpt2-xl": _gpt2(48, 1600, 25),
        "distilgpt2": _gpt2(6, 768, 12),
        "EleutherAI/gpt-neo-125M": _gpt_neo(12, 768, 12),
        "EleutherAI/gpt-neo-1.3B": _gpt_neo(24, 2048, 16),
        "EleutherAI/gpt-neo-2.7B": _gpt_neo(32, 2560, 20),
        "EleutherAI/gpt-j-6B": {"model_type": "gptj", "architectures": ["GPTJForCausalLM"],
                                "n_layer": 28, "n_embd": 4096, "n_head": 16, "rotary_dim": 64,
                                "n_positions": 2048, "vocab_size": 50400,
                                "activation_function": "gelu_new"},
        "EleutherAI/gpt-neox-20b": _neox(44, 6144, 64, 24576, 50432, act="gelu_fast"),
        "facebook/opt-125m": _opt(12, 768, 12, 3072),
        "facebook/opt-1.3b": _opt(24, 2048, 32, 8192),
        "facebook/opt-2.7b": _opt(32, 2560, 32, 10240),
        "facebook/opt-6.7b": _opt(32, 4096, 32, 16384),
        "facebook/opt-13b": _opt(40, 5120, 40, 20480),
        "facebook/opt-30b": _opt(48, 7168, 56, 28672),
        "facebook/opt-66b": _opt(64, 9216, 72, 36864),
        "mistralai/Mistral-7B-v0.1": _mistral(32, 4096, 32, 8, 14336, 32000, sliding_window=4096),
        "mistralai/Mistral-7B-Instruct-v0.1": _mistral(32, 4096, 32, 8, 14336, 32000,
                                                       sliding_window=4096),
        "mistralai/Mistral-Nemo-Base-2407": _mistral(40, 5120, 32, 8, 14336, 131072, head_dim=128,
                                                     max_pos=1024000),
        "mistralai/Mistral-Small-24B-Base-2501": _mistral(40, 5120, 32, 8, 32768, 131072,
                                                          head_dim=128),
        "mistralai/Mixtral-8x7B-v0.1": _mixtral(),
        "mistralai/Mixtral-8x7B-Instruct-v0.1": _mixtral(),
        "bigscience/bloom-560m": _bloom(24, 1024, 16),
        "bigscience/bloom-1b1": _bloom(24, 1536, 16),
        "bigscience/bloom-1b7": _bloom(24, 2048, 16),
        "bigscience/bloom-3b": _bloom(30, 2560, 32),
        "bigscience/bloom-7b1": _bloom(30, 4096, 32),
        "microsoft/phi-1": _phi(24, 2048, 32, 8192, 0.5),
        "microsoft/phi-1_5": _phi(24, 2048, 32, 8192, 0.5),
        "microsoft/phi-2": _phi(32, 2560, 32, 10240, 0.4),
        "microsoft/Phi-3-mini-4k-instruct": _phi3(32, 3072, 32, 32, 8192, 32064, 4096),
        "microsoft/phi-4": _phi3(40, 5120, 40, 10, 17920, 100352, 16384),
        "ArthurConmy/redwood_attn_2l": {
            "tl_format": True, "n_layers": 2, "d_model": 256, "d_head": 32, "n_heads": 8,
            "d_mlp": -1, "n_ctx": 2048, "d_vocab": 50259, "act_fn": "gelu_new", "attn_only": True,
            "normalization_type": "LN", "shortformer_pos": True,
            "tokenizer_name": "ArthurConmy/redwood_tokenizer"},
    }
    for size in ("small", "medium"):
        shape = (12, 768, 12) if size == "small" else (24, 1024, 16)
        names = (["alias", "battlestar", "caprica", "darkmatter", "expanse"] if size == "small"
                 else ["arwen", "beren", "celebrimbor", "durin", "eowyn"])
        for name, seed in zip(names, ("x21", "x49", "x81", "x343", "x777")):
            c[f"stanford-crfm/{name}-gpt2-{size}-{seed}"] = _stanford_gpt2(*shape)

    pythia = {  # layers, hidden, heads, intermediate, vocab
        "14m": (6, 128, 4, 512, 50304), "31m": (6, 256, 8, 1024, 50304),
        "70m": (6, 512, 8, 2048, 50304), "160m": (12, 768, 12, 3072, 50304),
        "410m": (24, 1024, 16, 4096, 50304), "1b": (16, 2048, 8, 8192, 50304),
        "1.4b": (24, 2048, 16, 8192, 50304), "2.8b": (32, 2560, 32, 10240, 50304),
        "6.9b": (32, 4096, 32, 16384, 50432), "12b": (36, 5120, 40, 20480, 50688),
    }
    for size, dims in pythia.items():
        for suffix in ("", "-deduped", "-v0", "-deduped-v0"):
            c[f"EleutherAI/pythia-{size}{suffix}"] = _neox(*dims)
    for seed in (1, 2, 3):
        c[f"EleutherAI/pythia-160m-seed{seed}"] = _neox(*pythia["160m"])

    for chat in ("", "-Chat"):
        c[f"Qwen/Qwen-1_8B{chat}"] = _qwen1(24, 2048, 16, 11008, 151936)
        c[f"Qwen/Qwen-7B{chat}"] = _qwen1(32, 4096, 32, 22016, 151936)
        c[f"Qwen/Qwen-14B{chat}"] = _qwen1(40, 5120, 40, 27392, 152064)
        c[f"Qwen/Qwen1.5-0.5B{chat}"] = _qwen2(24, 1024, 16, 16, 2816, 151936)
        c[f"Qwen/Qwen1.5-1.8B{chat}"] = _qwen2(24, 2048, 16, 16, 5504, 151936)
        c[f"Qwen/Qwen1.5-4B{chat}"] = _qwen2(40, 2560, 20, 20, 6912, 151936)
        c[f"Qwen/Qwen1.5-7B{chat}"] = _qwen2(32, 4096, 32, 32, 11008, 151936)
        c[f"Qwen/Qwen1.5-14B{chat}"] = _qwen2(40, 5120, 40, 40, 13696, 152064)
    for inst in ("", "-Instruct"):
        c[f"Qwen/Qwen2-0.5B{inst}"] = _qwen2(24, 896, 14, 2, 4864, 151936)
        c[f"Qwen/Qwen2-1.5B{inst}"] = _qwen2(28, 1536, 12, 2, 8960, 151936)
        c[f"Qwen/Qwen2-7B{inst}"] = _qwen2(28, 3584, 28, 4, 18944, 152064)
        c[f"Qwen/Qwen2.5-0.5B{inst}"] = _qwen2(24, 896, 14, 2, 4864, 151936)
        c[f"Qwen/Qwen2.5-1.5B{inst}"] = _qwen2(28, 1536, 12, 2, 8960, 151936)
        c[f"Qwen/Qwen2.5-3B{inst}"] = _qwen2(36, 2048, 16, 2, 11008, 151936)
        c[f"Qwen/Qwen2.5-7B{inst}"] = _qwen2(28, 3584, 28, 4, 18944, 152064)
        c[f"Qwen/Qwen2.5-14B{inst}"] = _qwen2(48, 5120, 40, 8, 13824, 152064)
        c[f"Qwen/Qwen2.5-32B{inst}"] = _qwen2(64, 5120, 40, 8, 27648, 152064)
        c[f"Qwen/Qwen2.5-72B{inst}"] = _qwen2(80, 8192, 64, 8, 29568, 152064)
    c["Qwen/QwQ-32B-Preview"] = _qwen2(64, 5120, 40, 8, 27648, 152064)
    c["Qwen/Qwen3-0.6B"] = _qwen3(28, 1024, 16, 8, 3072)
    c["Qwen/Qwen3-0.6B-Base"] = _qwen3(28, 1024, 16, 8, 3072)
    c["Qwen/Qwen3-1.7B"] = _qwen3(28, 2048, 16, 8, 6144)
    c["Qwen/Qwen3-4B"] = _qwen3(36, 2560, 32, 8, 9728)
    c["Qwen/Qwen3-8B"] = _qwen3(36, 4096, 32, 8, 12288)
    c["Qwen/Qwen3-14B"] = _qwen3(40, 5120, 40, 8, 17408)

    # Neel Nanda's toy models (C4 + code: 512 wide up to 4 layers, then 128 * n_layers).
    for n in (1, 2, 3, 4):
        c[f"NeelNanda/SoLU_{n}L512W_C4_Code"] = _neel(n, 512, 8, "solu_ln")
        c[f"NeelNanda/GELU_{n}L512W_C4_Code"] = _neel(n, 512, 8, "gelu")
    for n, width in ((6, 768), (8, 1024), (10, 1280), (12, 1536)):
        c[f"NeelNanda/SoLU_{n}L{width}W_C4_Code"] = _neel(n, width, width // 64, "solu_ln")
    c["NeelNanda/SoLU_1L512W_Wiki_Finetune"] = _neel(1, 512, 8, "solu_ln")
    c["NeelNanda/SoLU_4L512W_Wiki_Finetune"] = _neel(4, 512, 8, "solu_ln")
    # The older Pile scan: widths chosen per size, heads = d_model // 64.
    for repo, n, width in (("SoLU_1L_v9_old", 1, 1024), ("SoLU_2L_v10_old", 2, 736),
                           ("SoLU_4L_v11_old", 4, 512), ("SoLU_6L_v13_old", 6, 768),
                           ("SoLU_8L_v21_old", 8, 1024), ("SoLU_10L_v22_old", 10, 1280),
                           ("SoLU_12L_v23_old", 12, 1536)):
        c[f"NeelNanda/{repo}"] = _neel(n, width, width // 64, "solu_ln", pile=True)
    return c


# Toy models whose layout is only partly known: dims as given, structure unknown (no guessing
# about positional embeddings or normalisation for these).
PARTIAL: dict[str, dict] = {
    **{f"NeelNanda/Attn_Only_{n}L512W_C4_Code": {
        "n_layers": n, "d_model": 512, "n_heads": 8, "d_head": 64, "d_vocab": 48262, "n_ctx": 1024,
        "attn_only": True, "tokenizer": "NeelNanda/gpt-neox-tokenizer-digits"} for n in (1, 2, 3, 4)},
    "NeelNanda/Attn-Only-2L512W-Shortformer-6B-big-lr": {
        "n_layers": 2, "d_model": 512, "n_heads": 8, "d_head": 64, "attn_only": True,
        "positional_embedding_type": "shortformer"},
}


# ---------------------------------------------------------------------------------------------
# Worker: runs inside a TL 2.x / 3.x interpreter, converts configs with TL's own code.
# ---------------------------------------------------------------------------------------------

def _worker() -> None:
    import logging
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.filterwarnings("ignore")
    import transformer_lens
    import transformers
    from transformer_lens import loading_from_pretrained as lfp

    curated = _curated()
    real_auto_config = lfp.AutoConfig
    real_download = lfp.utils.download_file_from_hf

    def hf_config(values: dict):
        values = dict(values)
        model_type = values.pop("model_type")
        try:
            return transformers.AutoConfig.for_model(model_type, **values)
        except (ValueError, KeyError):  # trust_remote_code model types (QWen v1)
            cfg = transformers.PretrainedConfig(**values)
            cfg.model_type = model_type
            return cfg

    class CuratedAutoConfig:
        @staticmethod
        def from_pretrained(name, *args, **kwargs):
            return hf_config(curated[name])

    def curated_download(repo, file_name, *args, **kwargs):
        if file_name == "config.json" and repo in curated:
            return {k: v for k, v in curated[repo].items() if k != "tl_format"}
        return real_download(repo, file_name, *args, **kwargs)

    def extract(cfg) -> dict:
        out = {f: getattr(cfg, f, None) for f in CFG_FIELDS}
        for k, v in out.items():
            if hasattr(v, "item"):
                out[k] = v.item()
        return out

    results: dict[str, dict] = {}
    for name in lfp.OFFICIAL_MODEL_NAMES:
        entry: dict = {}
        try:  # 1) what TL knows without any download
            entry = {"source": "tl-offline", "cfg": extract(lfp.get_pretrained_model_config(name))}
        except Exception as exc:  # noqa: BLE001 - TL raises OSError, ValueError, HF errors...
            entry = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            if name in curated:  # 2) TL's conversion of the curated config.json values
                lfp.AutoConfig = CuratedAutoConfig
                lfp.utils.download_file_from_hf = curated_download
                try:
                    entry = {"source": "curated",
                             "cfg": extract(lfp.get_pretrained_model_config(name))}
                except Exception as exc2:  # noqa: BLE001
                    entry = {"error": f"curated conversion failed: {type(exc2).__name__}: {exc2}"}
                finally:
                    lfp.AutoConfig = real_auto_config
                    lfp.utils.download_file_from_hf = real_download
        results[name] = entry
    json.dump({"tl_version": transformer_lens.__version__ if hasattr(transformer_lens, "__version__")
               else _dist_version("transformer_lens"),
               "names": list(lfp.OFFICIAL_MODEL_NAMES),
               "aliases": {k: list(v) for k, v in lfp.MODEL_ALIASES.items()},
               "results": results}, sys.stdout)


def _dist_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist.replace("_", "-"))


def _run_worker(python: str) -> dict:
    with tempfile.TemporaryDirectory() as empty_cache:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HOME": empty_cache, "HF_HUB_CACHE": empty_cache, "HF_TOKEN": ""}
        proc = subprocess.run([python, __file__, "--worker"], env=env, capture_output=True,
                              text=True, timeout=900)
    if proc.returncode != 0:
        sys.exit(f"worker {python} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------------------------
# Main: merge names, aliases and converted configs into models.json.
# ---------------------------------------------------------------------------------------------

def _local_names() -> tuple[str, list[str], dict[str, list[str]]]:
    """Names and aliases of the TL installed in this interpreter (3.x/4.x: supported_models)."""
    import logging

    logging.disable(logging.CRITICAL)
    try:
        from transformer_lens import supported_models as sm
    except ImportError:
        from transformer_lens import loading_from_pretrained as sm
    return (_dist_version("transformer_lens"), list(sm.OFFICIAL_MODEL_NAMES),
            {k: list(v) for k, v in sm.MODEL_ALIASES.items()})


def _hf_architectures() -> dict[str, str]:
    """Lower-cased hub id -> HF architecture class, from TL 4.x's bridge inventory (if installed).

    TL 2.x's own label is wrong in places (it calls google/gemma-2b "Gemma2ForCausalLM" because the
    name contains "gemma-2"), so the inventory's class wins where it lists the model.
    """
    try:
        import transformer_lens
    except ImportError:
        return {}
    path = (Path(transformer_lens.__file__).parent / "tools" / "model_registry" / "data"
            / "supported_models.json")
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {m["model_id"].lower(): m["architecture_id"] for m in data.get("models", [])}


def _spec_fields(cfg: dict, name: str) -> dict:
    arch = cfg["original_architecture"]
    tl_native = arch in ("neel", "neel-solu-old", "mingpt") or name.startswith(
        ("NeelNanda/", "ArthurConmy/", "Baidicoot/"))
    spec = {f: cfg[f] for f in CFG_FIELDS if f not in
            ("original_architecture", "tokenizer_name", "default_prepend_bos")}
    spec["architecture"] = TL_NATIVE_ARCH if tl_native else arch
    if spec["positional_embedding_type"] != "rotary":
        spec["rotary_dim"] = None
    if spec["attn_only"]:
        spec["d_mlp"] = None  # no MLP; TL keeps a placeholder value here
    if arch in GPT2_BPE_ARCHS:
        spec["tokenizer"] = "gpt2"
    elif name in NON_HF_HOSTED:
        spec["tokenizer"] = None  # TL loads these from a local path; nothing to find offline
    else:
        spec["tokenizer"] = cfg["tokenizer_name"]
    # Drop unset values (the ModelSpec defaults say the same), but never normalization_type:
    # None there means "no normalisation", while the spec's default is "LN".
    return {k: v for k, v in spec.items()
            if k == "normalization_type" or (v is not None and v is not False)}


NON_HF_HOSTED = ("llama-7b-hf", "llama-13b-hf", "llama-30b-hf", "llama-65b-hf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tl2-python", default=os.environ.get("TLENS_HT_PYTHON", "/tmp/v2/bin/python"),
                    help="python of an environment with TransformerLens 2.x (required)")
    ap.add_argument("--tl3-python", default=None,
                    help="python of an environment with TransformerLens 3.x (optional cross-check)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.worker:
        _worker()
        return

    local_version, local_names, local_aliases = _local_names()
    runs = [_run_worker(args.tl2_python)]
    if args.tl3_python:
        runs.append(_run_worker(args.tl3_python))

    names: list[str] = []
    aliases: dict[str, list[str]] = {}
    seen_in: dict[str, list[str]] = {}
    for version, ns, al in [(local_version, local_names, local_aliases)] + [
            (r["tl_version"], r["names"], r["aliases"]) for r in runs]:
        for n in ns:
            if n not in seen_in:
                names.append(n)
                seen_in[n] = []
            seen_in[n].append(version)
        for official, alist in al.items():
            bucket = aliases.setdefault(official, [])
            for a in alist:
                if a != official and a not in bucket:
                    bucket.append(a)

    hf_archs = _hf_architectures()
    models: dict[str, dict] = {}
    left_out: dict[str, str] = {}
    for name in names:
        converted = [(r["tl_version"], r["results"][name]) for r in runs
                     if "cfg" in r["results"].get(name, {})]
        if converted:
            version, first = converted[0]
            spec = _spec_fields(first["cfg"], name)
            for other_version, other in converted[1:]:
                other_spec = _spec_fields(other["cfg"], name)
                if spec.get("n_ctx") != other_spec.get("n_ctx"):
                    # TL 3.x changed several context caps (e.g. Qwen2 uses max_position_embeddings);
                    # keep the first (TL 2.x) value and say that it depends on the version.
                    spec["n_ctx_version_dependent"] = True
                for dim in DIM_FIELDS:
                    if dim != "n_ctx" and spec.get(dim) != other_spec.get(dim):
                        sys.exit(f"{name}: {dim} differs between TL {version} ({spec.get(dim)}) "
                                 f"and TL {other_version} ({other_spec.get(dim)})")
            bos = {r["cfg"]["default_prepend_bos"] for _, r in converted}
            if len(bos) == 1:
                spec["default_prepend_bos"] = bos.pop()
            hub_id = HUB_MOVES.get(name, name).lower()
            if spec["architecture"] != TL_NATIVE_ARCH and hub_id in hf_archs:
                spec["architecture"] = hf_archs[hub_id]
            entry = {**spec, "structure_known": True,
                     "config_source": f"{first['source']} (TL {', '.join(v for v, _ in converted)})"}
        elif name in PARTIAL:
            entry = {**PARTIAL[name], "architecture": TL_NATIVE_ARCH, "structure_known": False,
                     "config_source": "curated (partial: layout flags unknown)"}
        else:
            errors = [r["results"].get(name, {}).get("error") for r in runs]
            left_out[name] = next((e for e in errors if e), "not in the TL 2.x/3.x registry")
            entry = None
        record = {"aliases": aliases.get(name, []), "tl_versions": seen_in[name]}
        if name in HUB_MOVES:
            record["hub_ids"] = [HUB_MOVES[name]]
        if entry is not None:
            record.update(entry)
            models[name] = record
        else:
            models[name] = {**record, "config_source": None}

    table = {
        "generated_by": "scripts/gen_model_table.py",
        "tl_versions": [local_version] + [r["tl_version"] for r in runs],
        "models": models,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
    with_cfg = sum(1 for m in models.values() if m.get("config_source"))
    offline = sum(1 for m in models.values() if str(m.get("config_source", "")).startswith("tl-offline"))
    print(f"{len(models)} official names, {sum(len(m['aliases']) for m in models.values())} aliases; "
          f"{with_cfg} with dimensions ({offline} from TL's offline configs); "
          f"{len(left_out)} names without dimensions -> {args.out}")
    for n, why in sorted(left_out.items()):
        print(f"  no dims: {n}: {why[:90]}")


if __name__ == "__main__":
    main()
