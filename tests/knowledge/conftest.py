"""Run ``tl_probe.py`` once per TransformerLens environment and hand its answer to the tests.

Environments (each one subprocess, cached for the session):
  ``ht``    ``$TLENS_HT_PYTHON``  (TL 2.x HookedTransformer; ``make`` builds ``.venv-ht``)   marker ``ht``
  ``ht3``   ``$TLENS_HT3_PYTHON`` (optional TL 3.x: HookedTransformer *and* TransformerBridge)  marker ``ht``
  ``main``  this interpreter      (TL 4.x TransformerBridge)

Every configuration below uses dimensions that are all distinct (batch 3, pos 7, d_model 16/40,
n_heads 4, d_head 10, d_mlp 36, d_vocab 50/300, n_key_value_heads 2, rotary_dim 8, 9 experts, top-5),
so a shape built from the wrong symbol cannot match by accident.

Tests receive cases through ``pytest_generate_tests`` (test modules never import this file: another
``conftest`` module may own that name): a test that takes ``hooked_case`` runs for every
HookedTransformer configuration in every environment that has one, ``bridge_case`` likewise,
``hooked_failing_case`` / ``bridge_failing_case`` for configurations TL refuses,
``tl_env`` once per environment, ``catalog_case`` once per configuration and TL major version (no TL
needed) and ``documented_act_name`` once per documented ``get_act_name`` row. The ``tables`` fixture
gives the raw tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from lsp_server.knowledge.act_names import GLOBAL_SHORT_NAMES, SHORT_NAMES
from lsp_server.knowledge.spec import ModelSpec

PROBE = Path(__file__).with_name("tl_probe.py")
DIMS = {"batch": 3, "pos": 7}

# ------------------------------------------------------------------ HookedTransformer configurations

# Field names of HookedTransformerConfig and ModelSpec coincide, so a case maps to its spec 1:1.
HOOKED_BASE = dict(n_layers=2, d_model=16, n_heads=4, d_head=10, d_mlp=36, d_vocab=50, n_ctx=32,
                   act_fn="gelu", normalization_type="LN", seed=0)
ROTARY = dict(positional_embedding_type="rotary", rotary_dim=8)
GQA = dict(n_key_value_heads=2)
HOOKED_CASES: dict[str, dict] = {
    "standard": {},
    "use_attn_result": dict(use_attn_result=True),
    "use_split_qkv_input": dict(use_split_qkv_input=True),
    "use_attn_in": dict(use_attn_in=True),
    "use_hook_mlp_in": dict(use_hook_mlp_in=True),
    "use_hook_tokens": dict(use_hook_tokens=True),
    "rotary": ROTARY,
    "shortformer": dict(positional_embedding_type="shortformer"),
    "alibi": dict(positional_embedding_type="alibi"),
    "attn_only": dict(attn_only=True),
    "parallel_attn_mlp": dict(parallel_attn_mlp=True),
    "LNPre": dict(normalization_type="LNPre"),
    "RMS": dict(normalization_type="RMS"),
    "RMSPre": dict(normalization_type="RMSPre"),
    "no_norm": dict(normalization_type=None),
    "gated_mlp_silu": dict(gated_mlp=True, act_fn="silu"),
    "solu_ln": dict(act_fn="solu_ln"),
    "gqa": GQA,
    "gqa_ungroup": dict(**GQA, ungroup_grouped_query_attention=True),
    "gqa_split_qkv": dict(**GQA, use_split_qkv_input=True),
    "norm_before_and_after_RMS": dict(use_normalization_before_and_after=True, normalization_type="RMS"),
    "norm_before_and_after_RMSPre": dict(use_normalization_before_and_after=True, normalization_type="RMSPre"),
    "norm_before_and_after_no_norm": dict(use_normalization_before_and_after=True, normalization_type=None),
    "post_embedding_ln": dict(post_embedding_ln=True),
    "qk_norm": dict(use_qk_norm=True),
    "moe": dict(num_experts=9, experts_per_token=5),
    # Interactions between flags, where shapes or gates could combine wrongly.
    "all_gates": dict(use_attn_result=True, use_split_qkv_input=True, use_attn_in=True,
                      use_hook_mlp_in=True, use_hook_tokens=True),
    "attn_in_no_norm": dict(use_attn_in=True, normalization_type=None),
    "gqa_rotary": dict(**GQA, **ROTARY),
    "gqa_rotary_ungroup": dict(**GQA, **ROTARY, ungroup_grouped_query_attention=True),
    "gqa_attn_result": dict(**GQA, use_attn_result=True),
    "gqa_qk_norm": dict(**GQA, use_qk_norm=True),
    "gqa_ungroup_attn_in": dict(**GQA, use_attn_in=True, ungroup_grouped_query_attention=True),
    "gqa_split_qkv_ungroup": dict(**GQA, use_split_qkv_input=True, ungroup_grouped_query_attention=True),
    "rotary_qk_norm": dict(**ROTARY, use_qk_norm=True),
    "attn_only_mlp_in": dict(attn_only=True, use_hook_mlp_in=True),
    "attn_only_no_norm": dict(attn_only=True, normalization_type=None),
    "parallel_mlp_in": dict(parallel_attn_mlp=True, use_hook_mlp_in=True),
    "shortformer_split_qkv": dict(positional_embedding_type="shortformer", use_split_qkv_input=True),
    "RMSPre_split_qkv": dict(normalization_type="RMSPre", use_split_qkv_input=True),
    "moe_gated": dict(num_experts=9, experts_per_token=5, gated_mlp=True, act_fn="silu"),
    "llama_like": dict(**GQA, **ROTARY, normalization_type="RMS", gated_mlp=True, act_fn="silu"),
}

# Configurations TL itself cannot run: (overrides, exception type, text the catalog must show for it).
HOOKED_FAILING: dict[str, tuple[dict, str, str]] = {
    "norm_before_and_after_LN": (dict(use_normalization_before_and_after=True), "UnboundLocalError",
                                 "UnboundLocalError"),
    "norm_before_and_after_LNPre": (dict(use_normalization_before_and_after=True, normalization_type="LNPre"),
                                    "UnboundLocalError", "UnboundLocalError"),
    "gqa_attn_in": (dict(**GQA, use_attn_in=True), "RuntimeError", "RuntimeError"),
}


def hooked_spec(overrides: dict) -> ModelSpec:
    """The ModelSpec the server would build for ``HookedTransformerConfig(**HOOKED_BASE, **overrides)``."""
    fields = {**HOOKED_BASE, **overrides}
    fields.pop("seed")
    return ModelSpec(backend="hooked", structure_known=True, **fields)


# ------------------------------------------------------------------ TransformerBridge configurations

GPT2 = dict(n_layer=2, n_embd=40, n_head=4, n_positions=32, vocab_size=300, n_inner=36)
LLAMA = dict(hidden_size=40, num_attention_heads=4, num_key_value_heads=2, intermediate_size=36,
             num_hidden_layers=2, vocab_size=300, max_position_embeddings=32, head_dim=10)
NEOX = dict(hidden_size=40, num_attention_heads=4, intermediate_size=36, num_hidden_layers=2, vocab_size=300,
            max_position_embeddings=32, rotary_pct=0.8, use_parallel_residual=True)
NATIVE = dict(n_layers=2, d_model=40, n_heads=4, d_head=10, d_mlp=36, d_vocab=300, n_ctx=32, act_fn="gelu", seed=0)

BRIDGE_DIMS = dict(n_layers=2, d_model=40, n_heads=4, d_head=10, d_mlp=36, d_vocab=300, n_ctx=32)
BRIDGE_SPECS = {
    "gpt2": ModelSpec(backend="bridge", architecture="GPT2LMHeadModel", act_fn="gelu_new", **BRIDGE_DIMS,
                      structure_known=True),
    "llama": ModelSpec(backend="bridge", architecture="LlamaForCausalLM", act_fn="silu", **BRIDGE_DIMS,
                       n_key_value_heads=2, rotary_dim=10, positional_embedding_type="rotary",
                       normalization_type="RMS", gated_mlp=True, structure_known=True),
    "neox": ModelSpec(backend="bridge", architecture="GPTNeoXForCausalLM", act_fn="gelu", **BRIDGE_DIMS,
                      rotary_dim=8, positional_embedding_type="rotary", parallel_attn_mlp=True,
                      structure_known=True),
    "native": ModelSpec(backend="bridge", architecture="native", act_fn="gelu", **BRIDGE_DIMS,
                        structure_known=True),
}
BRIDGE_CONFIGS = {"gpt2": GPT2, "llama": LLAMA, "neox": NEOX, "native": NATIVE}
# How the probe builds each: transformers "<ConfigClass>/<ModelClass>", or boot_native.
BRIDGE_BUILDERS = {"gpt2": "GPT2Config/GPT2LMHeadModel", "llama": "LlamaConfig/LlamaForCausalLM",
                   "neox": "GPTNeoXConfig/GPTNeoXForCausalLM", "native": "native"}

# More architectures the server maps from Hugging Face configs (knowledge/hf_config.py). Each gets
# raw, compat and one case per setter (raw mode); the four above get the full matrix.
_HF_GQA = dict(hidden_size=40, num_attention_heads=4, num_key_value_heads=2, intermediate_size=36,
               num_hidden_layers=2, vocab_size=300, max_position_embeddings=32, head_dim=10)
_GQA_SPEC = dict(n_key_value_heads=2, positional_embedding_type="rotary", normalization_type="RMS", gated_mlp=True)
EXTRA_BRIDGES = {
    # name: (builder, HF config kwargs, ModelSpec fields beyond BRIDGE_DIMS)
    "mistral": ("MistralConfig/MistralForCausalLM", dict(_HF_GQA, sliding_window=None),
                dict(architecture="MistralForCausalLM", **_GQA_SPEC)),
    "qwen2": ("Qwen2Config/Qwen2ForCausalLM", _HF_GQA, dict(architecture="Qwen2ForCausalLM", **_GQA_SPEC)),
    "gemma": ("GemmaConfig/GemmaForCausalLM", _HF_GQA, dict(architecture="GemmaForCausalLM", **_GQA_SPEC)),
    "gemma2": ("Gemma2Config/Gemma2ForCausalLM", _HF_GQA, dict(architecture="Gemma2ForCausalLM", **_GQA_SPEC)),
    "phi3": ("Phi3Config/Phi3ForCausalLM", dict(_HF_GQA, pad_token_id=0), dict(architecture="Phi3ForCausalLM", **_GQA_SPEC)),
    "phi": ("PhiConfig/PhiForCausalLM",
            dict(hidden_size=40, num_attention_heads=4, intermediate_size=36, num_hidden_layers=2, vocab_size=300,
                 max_position_embeddings=32, partial_rotary_factor=0.8),
            dict(architecture="PhiForCausalLM", positional_embedding_type="rotary", rotary_dim=8,
                 parallel_attn_mlp=True)),
    "gptj": ("GPTJConfig/GPTJForCausalLM",
             dict(n_embd=40, n_head=4, n_layer=2, n_positions=32, rotary_dim=8, n_inner=36, vocab_size=300),
             dict(architecture="GPTJForCausalLM", positional_embedding_type="rotary", rotary_dim=8,
                  parallel_attn_mlp=True)),
    "opt": ("OPTConfig/OPTForCausalLM",
            dict(hidden_size=40, num_attention_heads=4, ffn_dim=36, num_hidden_layers=2, vocab_size=300,
                 max_position_embeddings=32, word_embed_proj_dim=40),
            dict(architecture="OPTForCausalLM")),
    "qwen3": ("Qwen3Config/Qwen3ForCausalLM", _HF_GQA, dict(architecture="Qwen3ForCausalLM", **_GQA_SPEC)),
    "mixtral": ("MixtralConfig/MixtralForCausalLM", dict(_HF_GQA, num_local_experts=9, num_experts_per_tok=5),
                dict(architecture="MixtralForCausalLM", num_experts=9, experts_per_token=5, **_GQA_SPEC)),
    "bloom": ("BloomConfig/BloomForCausalLM", dict(hidden_size=40, n_head=4, n_layer=2, vocab_size=300),
              dict(architecture="BloomForCausalLM", positional_embedding_type="alibi", d_mlp=160)),
    "gptneo": ("GPTNeoConfig/GPTNeoForCausalLM",
               dict(hidden_size=40, num_heads=4, num_layers=2, max_position_embeddings=32, intermediate_size=36,
                    vocab_size=300, attention_types=[[["global"], 2]]),
               dict(architecture="GPTNeoForCausalLM")),
}
for _name, (_builder, _config, _fields) in EXTRA_BRIDGES.items():
    BRIDGE_BUILDERS[_name] = _builder
    BRIDGE_CONFIGS[_name] = _config
BRIDGE_SPECS.update({name: ModelSpec(backend="bridge", **{**BRIDGE_DIMS, **fields}, structure_known=True)
                     for name, (_, _, fields) in EXTRA_BRIDGES.items()})
SETTERS = ("set_use_attn_result", "set_use_split_qkv_input", "set_use_attn_in", "set_use_hook_mlp_in")


@dataclass(frozen=True)
class BridgeCase:
    arch: str
    compat: bool = False
    setters: tuple[str, ...] = ()

    def request(self) -> dict:
        return {"arch": BRIDGE_BUILDERS[self.arch], "config": BRIDGE_CONFIGS[self.arch], "compat": self.compat,
                "setters": list(self.setters)}

    def spec(self) -> ModelSpec:
        flags = {setter.removeprefix("set_"): True for setter in self.setters}
        return BRIDGE_SPECS[self.arch].with_flags(compat_mode=self.compat, **flags)


# A plain AttentionBridge (boot_native, GPT-J, OPT, GPT-Neo) raises NotImplementedError for the
# per-head attention setters.
_ATTN_SETTERS = ("set_use_attn_result", "set_use_split_qkv_input", "set_use_attn_in")
UNSUPPORTED_SETTERS = {arch: _ATTN_SETTERS for arch in ("native", "gptj", "opt", "gptneo")}


def _bridge_cases(supported: bool) -> dict[str, BridgeCase]:
    cases: dict[str, BridgeCase] = {}
    for arch in BRIDGE_SPECS:
        for compat in (False, True):
            mode = "compat" if compat else "raw"
            if supported:
                cases[f"{arch}_{mode}"] = BridgeCase(arch, compat)
            if compat and arch in EXTRA_BRIDGES:
                continue
            for setter in SETTERS:
                if (setter in UNSUPPORTED_SETTERS.get(arch, ())) != supported:
                    cases[f"{arch}_{mode}_{setter.removeprefix('set_')}"] = BridgeCase(arch, compat, (setter,))
    if supported:
        cases["gpt2_raw_attn_result_and_mlp_in"] = BridgeCase("gpt2", False, ("set_use_attn_result", "set_use_hook_mlp_in"))
        cases["llama_compat_attn_result_and_mlp_in"] = BridgeCase("llama", True, ("set_use_attn_result", "set_use_hook_mlp_in"))
    return cases


BRIDGE_CASES = _bridge_cases(supported=True)
BRIDGE_FAILING = _bridge_cases(supported=False)

# ------------------------------------------------------------------ get_act_name and cache-key tables

# Rows of the knowledge file's table (transformerlens.md §2.3) with the result it documents.
DOCUMENTED_ACT_NAMES: list[tuple[tuple, str]] = [
    (("resid_pre", 5), "blocks.5.hook_resid_pre"),
    (("resid_mid", 5), "blocks.5.hook_resid_mid"),
    (("resid_post", 5), "blocks.5.hook_resid_post"),
    (("attn_out", 3), "blocks.3.hook_attn_out"),
    (("mlp_out", 3), "blocks.3.hook_mlp_out"),
    (("attn_in", 3), "blocks.3.hook_attn_in"),
    (("mlp_in", 3), "blocks.3.hook_mlp_in"),
    (("q_input", 3), "blocks.3.hook_q_input"),
    (("k_input", 3), "blocks.3.hook_k_input"),
    (("v_input", 3), "blocks.3.hook_v_input"),
    (("q", 6), "blocks.6.attn.hook_q"),
    (("k", 6, "a"), "blocks.6.attn.hook_k"),
    (("v", 6), "blocks.6.attn.hook_v"),
    (("z", 6), "blocks.6.attn.hook_z"),
    (("result", 6), "blocks.6.attn.hook_result"),
    (("attn_scores", 6), "blocks.6.attn.hook_attn_scores"),
    (("attn_logits", 6), "blocks.6.attn.hook_attn_scores"),
    (("pattern", 6), "blocks.6.attn.hook_pattern"),
    (("attn", 6), "blocks.6.attn.hook_pattern"),
    (("rot_q", 1), "blocks.1.attn.hook_rot_q"),
    (("rot_k", 1), "blocks.1.attn.hook_rot_k"),
    (("key", 1), "blocks.1.attn.hook_k"),
    (("query", 1), "blocks.1.attn.hook_q"),
    (("value", 1), "blocks.1.attn.hook_v"),
    (("pre", 2), "blocks.2.mlp.hook_pre"),
    (("post", 2), "blocks.2.mlp.hook_post"),
    (("mid", 2), "blocks.2.mlp.hook_mid"),
    (("pre_linear", 2), "blocks.2.mlp.hook_pre_linear"),
    (("mlp_pre", 2), "blocks.2.mlp.hook_pre"),
    (("mlp_post", 2), "blocks.2.mlp.hook_post"),
    (("mlp_mid", 2), "blocks.2.mlp.hook_mid"),
    (("scale", 4, "ln1"), "blocks.4.ln1.hook_scale"),
    (("normalized", 27, "ln2"), "blocks.27.ln2.hook_normalized"),
    (("scale",), "ln_final.hook_scale"),
    (("normalized",), "ln_final.hook_normalized"),
    (("scale", 4), "blocks.4.hook_scale"),
    (("scale", None, "ln_final"), "ln_final.ln_final.hook_scale"),
    (("embed",), "hook_embed"),
    (("pos_embed",), "hook_pos_embed"),
    (("tokens",), "hook_tokens"),
    (("hook_embed",), "hook_embed"),
    (("blocks.0.hook_resid_pre",), "blocks.0.hook_resid_pre"),
    (("hook_resid_pre", 0), "blocks.0.hook_hook_resid_pre"),
    (("blocks.0.hook_resid_pre", 1), "blocks.1.hook_blocks.0.hook_resid_pre"),
    (("k6",), "blocks.6.attn.hook_k"),
    (("scale4ln1",), "blocks.4.ln1.hook_scale"),
    (("pre5",), "blocks.5.mlp.hook_pre"),
    (("resid_pre5",), "hook_resid_pre5"),
    (("attn_scores3",), "hook_attn_scores3"),
    (("resid_pre", -1), "blocks.-1.hook_resid_pre"),
    (("resid_pre", "5"), "blocks.5.hook_resid_pre"),
    (("mlp_out", 0, "b"), "blocks.0.hook_mlp_out"),
    (("resid_pre", 0, "block"), "blocks.0.hook_resid_pre"),
    (("mlp_out", 0, "m"), "blocks.0.mlp.hook_mlp_out"),
    (("attn_out", 0, "a"), "blocks.0.attn.hook_attn_out"),
    (("mlp_out", 0, "mlp"), "blocks.0.mlp.hook_mlp_out"),
    (("Q", 1), "blocks.1.hook_Q"),
]

# Names beyond SHORT_NAMES that exercise the pass-through, compact and fallback branches.
_ODD_NAMES = ("hook_embed", "hook_resid_pre", "blocks.0.hook_resid_pre", "ln_final.hook_scale", "Q", "k6",
              "k6a", "scale4ln1", "pre5", "resid_pre5", "attn_scores3", "blocks", "block", "attention",
              "embed", "unembed", "", "x", "12", "a1b2", "hook_", "resid.pre")
ACT_NAME_LAYERS = (None, 0, 5, -1, "5")
ACT_NAME_LAYER_TYPES = (None, "a", "m", "b", "attn", "mlp", "ln1", "ln2", "ln_final", "block", "blocks",
                        "attention", "", "ln1_post")


def act_name_calls() -> list[list]:
    """Every (name, layer, layer_type) the get_act_name comparison sends to TL, without duplicates."""
    names = dict.fromkeys(SHORT_NAMES + GLOBAL_SHORT_NAMES + _ODD_NAMES)
    calls = {(n, layer, lt): None for n in names for layer in ACT_NAME_LAYERS for lt in ACT_NAME_LAYER_TYPES}
    for args, _ in DOCUMENTED_ACT_NAMES:
        calls[tuple(args) + (None,) * (3 - len(args))] = None
    # Inputs TL rejects: the mirror must raise the same exception type.
    calls.update({(None, None, None): None, (5, None, None): None, (5, 1, None): None})
    out = [list(c) for c in calls]
    out += [["resid_pre", 0, ["ln1"]], ["scale", 1.0, "ln1"]]
    return out


# Keys from the knowledge file's cache table (§2.4), for a 2-layer model; then generated ones.
DOCUMENTED_CACHE_KEYS: list = [
    "blocks.1.hook_resid_post", ["resid_post", 1], ["resid_post", -1], ["resid_post", -2], ["resid_post", -3],
    ["resid_post", 2], ["scale", 1, "ln1"], ["scale", 1], "scale", ["normalized", None, None], "embed",
    "pos_embed", "k1", "pattern1", ["attn", 0], ["pattern", 0, "attn"], ["z", 0], "resid_pre",
    ["resid_pre"], ["resid_pre", "1"], ["resid_pre", "-1"], ["result", 0], "blocks.0.hook_in",
    "blocks.0.hook_resid_pre", ["hook_resid_pre", 0], ["blocks.0.hook_resid_pre", 1],
]
CACHE_KEY_LAYERS = (None, 0, 1, -1, -2, -3, 2, "1")
CACHE_KEY_LAYER_TYPES = (None, "ln1", "ln2", "a", "m", "b", "attn")


def cache_keys() -> list:
    keys = list(DOCUMENTED_CACHE_KEYS)
    names = dict.fromkeys(SHORT_NAMES + GLOBAL_SHORT_NAMES)
    keys += [[n, layer, lt] for n in names for layer in CACHE_KEY_LAYERS for lt in CACHE_KEY_LAYER_TYPES]
    keys += [[n, layer] for n in names for layer in CACHE_KEY_LAYERS]
    keys += list(names)
    return keys


# ------------------------------------------------------------------ ActivationCache stacking methods

# (method, kwargs) run on every configuration's cache (n_layers = 2): defaults, every flag, the final
# layer given explicitly, layer 0, a position slice.
STACK_CALLS: list[tuple[str, dict]] = [
    ("accumulated_resid", {}),
    ("accumulated_resid", dict(layer=1, incl_mid=True, return_labels=True)),
    ("accumulated_resid", dict(layer=2, incl_mid=True, mlp_input=True, return_labels=True)),
    ("accumulated_resid", dict(layer=0, mlp_input=True, return_labels=True)),
    ("accumulated_resid", dict(layer=-1, pos_slice=-1, return_labels=True)),
    ("decompose_resid", dict(return_labels=True)),
    ("decompose_resid", dict(layer=1, mode="attn", mlp_input=True, return_labels=True)),
    ("decompose_resid", dict(mode="mlp", incl_embeds=False, return_labels=True)),
    ("decompose_resid", dict(layer=1, mlp_input=True, pos_slice=2, return_labels=True)),
    ("stack_head_results", dict(return_labels=True)),
    ("stack_head_results", dict(layer=1, incl_remainder=True, return_labels=True)),
    ("stack_head_results", dict(layer=0, return_labels=True)),
    ("stack_activation", dict(activation_name="pattern")),
    ("stack_activation", dict(activation_name="resid_post", layer=1)),
    ("stack_activation", dict(activation_name="scale", sublayer_type="ln1")),
    ("stack_activation", dict(activation_name="z")),
]


# ------------------------------------------------------------------ environments and the probe


@dataclass(frozen=True)
class TLEnv:
    key: str
    variable: str | None  # environment variable naming the interpreter; None = this interpreter
    backends: tuple[str, ...]
    marks: tuple = field(default=())
    hint: str = ""

    def python(self) -> str | None:
        return os.environ.get(self.variable) if self.variable else sys.executable


ENVS = {
    "ht": TLEnv("ht", "TLENS_HT_PYTHON", ("hooked",), (pytest.mark.ht,),
                "point it at a python with transformer-lens 2.x (make builds .venv-ht)"),
    "ht3": TLEnv("ht3", "TLENS_HT3_PYTHON", ("hooked", "bridge"), (pytest.mark.ht,),
                 "optional: a python with transformer-lens 3.x (HookedTransformer and TransformerBridge)"),
    "main": TLEnv("main", None, ("bridge",)),
}


def probe_request(env: TLEnv) -> dict:
    request: dict = {"dims": DIMS, "act_name_calls": act_name_calls(), "cache_keys": cache_keys(),
                     "stack_calls": [list(call) for call in STACK_CALLS]}
    if "hooked" in env.backends:
        failing = {name: overrides for name, (overrides, _, _) in HOOKED_FAILING.items()}
        request["hooked"] = {"base": HOOKED_BASE, "cases": {**HOOKED_CASES, **failing}}
    if "bridge" in env.backends:
        cases = {**BRIDGE_CASES, **BRIDGE_FAILING}
        request["bridge"] = {"cases": {name: case.request() for name, case in cases.items()}}
    return request


def run_probe(python: str, request: dict, probe: Path = PROBE) -> dict:
    """Run ``probe`` (tl_probe.py) in ``python``; its JSON answer, with the wall time added."""
    start = time.perf_counter()
    # Tiny models gain nothing from intra-op threads; one thread each lets the probes run side by side.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([python, str(probe)], input=json.dumps(request), capture_output=True, text=True,
                          timeout=600, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{probe.name} failed in {python} (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    answer = json.loads(proc.stdout)
    answer["wall_s"] = time.perf_counter() - start
    return answer


def _envs_in(items) -> set[str]:
    """Environment keys the selected tests will ask the probe about."""
    keys = set()
    for item in items:
        for value in getattr(getattr(item, "callspec", None), "params", {}).values():
            if isinstance(value, Case):
                keys.add(value.env)
            elif isinstance(value, str) and value in ENVS:
                keys.add(value)
    return keys


@pytest.fixture(scope="session")
def tl_probe(request):
    """``tl_probe(env_key, backend)`` -> the probe's answer for that environment.

    On first use it starts the probe of every configured environment the selected tests need, side
    by side, and then caches the answers for the session. Skips when the environment's interpreter
    is not configured, or its TL lacks ``backend``.
    """
    pool = ThreadPoolExecutor(max_workers=len(ENVS))
    futures: dict[str, Future] = {}

    def start(key: str) -> None:
        python = ENVS[key].python()
        if python and key not in futures:
            futures[key] = pool.submit(run_probe, python, probe_request(ENVS[key]))

    def get(key: str, backend: str | None = None) -> dict:
        env = ENVS[key]
        python = env.python()
        if not python:
            pytest.skip(f"{env.variable} is not set: {env.hint}")
        if not futures:
            for needed in sorted(_envs_in(request.session.items) | {key}):
                start(needed)
        start(key)
        try:
            answer = futures[key].result()
        except (OSError, RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            pytest.fail(f"probing transformer-lens with {python} ({env.variable or 'this interpreter'}) failed: "
                        f"{type(exc).__name__}: {exc}", pytrace=False)
        if backend and not answer.get(f"has_{backend}"):
            pytest.skip(f"transformer-lens {answer['tl_version']} in {python} has no {backend} backend")
        return answer

    yield get
    pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def probe_every_env():
    """``probe_every_env(script_name, request)`` -> {env key: the script's JSON answer, or None where that
    environment's interpreter is not configured}: one subprocess per environment, side by side."""
    def run(script: str, request: dict) -> dict[str, dict | None]:
        pythons = {key: env.python() for key, env in ENVS.items()}
        with ThreadPoolExecutor(max_workers=len(pythons)) as pool:
            futures = {key: pool.submit(run_probe, python, request, PROBE.with_name(script))
                       for key, python in pythons.items() if python}
            return {key: futures[key].result() if key in futures else None for key in pythons}
    return run


@dataclass(frozen=True)
class Case:
    env: str
    name: str
    spec: ModelSpec


def pytest_generate_tests(metafunc):
    """Parametrize ``hooked_case`` / ``bridge_case`` / ``tl_env`` over environments and configurations."""
    def params(backend: str, cases: dict, make_spec):
        return [pytest.param(Case(env.key, name, make_spec(cfg)), id=f"{env.key}-{name}", marks=env.marks)
                for env in ENVS.values() if backend in env.backends for name, cfg in cases.items()]

    if "hooked_case" in metafunc.fixturenames:
        metafunc.parametrize("hooked_case", params("hooked", HOOKED_CASES, hooked_spec))
    if "bridge_case" in metafunc.fixturenames:
        metafunc.parametrize("bridge_case", params("bridge", BRIDGE_CASES, BridgeCase.spec))
    if "tl_env" in metafunc.fixturenames:
        metafunc.parametrize("tl_env", [pytest.param(e.key, id=e.key, marks=e.marks) for e in ENVS.values()])
    if "hooked_failing_case" in metafunc.fixturenames:
        metafunc.parametrize("hooked_failing_case", params("hooked", HOOKED_FAILING, lambda row: hooked_spec(row[0])))
    if "bridge_failing_case" in metafunc.fixturenames:
        metafunc.parametrize("bridge_failing_case", params("bridge", BRIDGE_FAILING, BridgeCase.spec))
    if "catalog_case" in metafunc.fixturenames:
        cases = [pytest.param((hooked_spec(cfg), major), id=f"hooked-{name}-tl{major}")
                 for name, cfg in HOOKED_CASES.items() for major in (2, 3)]
        cases += [pytest.param((case.spec(), major), id=f"bridge-{name}-tl{major}")
                  for name, case in BRIDGE_CASES.items() for major in (3, 4)]
        metafunc.parametrize("catalog_case", cases)
    if "documented_act_name" in metafunc.fixturenames:
        metafunc.parametrize("documented_act_name", [pytest.param(row, id=repr(row[0])) for row in DOCUMENTED_ACT_NAMES])


@pytest.fixture(scope="session")
def tables() -> SimpleNamespace:
    """The case tables and request builders of this file, for tests that look at them directly."""
    return SimpleNamespace(dims=DIMS, hooked_cases=HOOKED_CASES, bridge_cases=BRIDGE_CASES, setters=SETTERS,
                           hooked_failing=HOOKED_FAILING, bridge_failing=BRIDGE_FAILING,
                           act_name_calls=act_name_calls(), cache_keys=cache_keys(),
                           documented_act_names=DOCUMENTED_ACT_NAMES, stack_calls=STACK_CALLS)
