"""Hugging Face config fields -> ModelSpec, for configs written in code or read from config.json.

``TransformerBridge.boot_transformers(..., hf_model=GPT2LMHeadModel(GPT2Config(n_layer=2)))`` builds
a model whose dims are the config class's defaults overridden by the literal keywords, so the
defaults of the common config classes are recorded here (transformers 5.x values).
"""

from __future__ import annotations

import dataclasses

from .spec import SYMBOLIC, ModelSpec

# Defaults of `transformers` config classes (only the fields that decide hook shapes).
CLASS_DEFAULTS: dict[str, dict] = {
    "GPT2Config": {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768,
                   "n_layer": 12, "n_head": 12, "n_inner": None, "activation_function": "gelu_new"},
    "LlamaConfig": {"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
                    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": None,
                    "max_position_embeddings": 2048, "hidden_act": "silu"},
    "MistralConfig": {"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
                      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                      "max_position_embeddings": 131072, "hidden_act": "silu"},
    "GPTNeoXConfig": {"model_type": "gpt_neox", "vocab_size": 50432, "hidden_size": 6144, "num_hidden_layers": 44,
                      "num_attention_heads": 64, "intermediate_size": 24576, "rotary_pct": 0.25,
                      "max_position_embeddings": 2048, "use_parallel_residual": True, "hidden_act": "gelu"},
}

ARCHITECTURES = {
    "gpt2": "GPT2LMHeadModel",
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "gpt_neox": "GPTNeoXForCausalLM",
    "gpt_neo": "GPTNeoForCausalLM",
    "gptj": "GPTJForCausalLM",
    "opt": "OPTForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "phi": "PhiForCausalLM",
    "phi3": "Phi3ForCausalLM",
}

_ROTARY_TYPES = {"llama", "mistral", "mixtral", "gpt_neox", "gptj", "gemma", "gemma2", "qwen2", "phi", "phi3"}
_GATED_TYPES = {"llama", "mistral", "mixtral", "gemma", "gemma2", "qwen2", "phi3"}
_RMS_TYPES = {"llama", "mistral", "mixtral", "gemma", "gemma2", "qwen2", "phi3"}


def _first(cfg: dict, *keys: str):
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return None


def spec_from_hf_dict(cfg: dict, source: str, name: str | None = None) -> ModelSpec:
    """Map a config.json-style dict to a spec (unknown fields stay None)."""
    model_type = str(cfg.get("model_type") or "")
    archs = cfg.get("architectures") or []
    architecture = archs[0] if archs else ARCHITECTURES.get(model_type)
    d_model = _first(cfg, "n_embd", "hidden_size", "d_model")
    n_heads = _first(cfg, "n_head", "num_attention_heads", "num_heads")
    d_head = _first(cfg, "head_dim")
    if d_head is None and d_model and n_heads:
        d_head = d_model // n_heads
    d_mlp = _first(cfg, "n_inner", "intermediate_size", "ffn_dim")
    if d_mlp is None and d_model and model_type in ("gpt2", "gpt_neo", "gptj"):
        d_mlp = 4 * d_model
    rotary_dim = _first(cfg, "rotary_dim")
    if rotary_dim is None and d_head and cfg.get("rotary_pct") is not None:
        rotary_dim = int(d_head * cfg["rotary_pct"])
    num_experts = _first(cfg, "num_local_experts", "num_experts")
    spec = dataclasses.replace(
        SYMBOLIC,
        name=name,
        source=source,
        architecture=architecture,
        n_layers=_first(cfg, "n_layer", "num_hidden_layers", "num_layers"),
        d_model=d_model,
        n_heads=n_heads,
        d_head=d_head,
        d_mlp=d_mlp,
        d_vocab=_first(cfg, "vocab_size"),
        n_ctx=_first(cfg, "n_positions", "max_position_embeddings", "n_ctx"),
        n_key_value_heads=_first(cfg, "num_key_value_heads") or n_heads,
        rotary_dim=rotary_dim,
        num_experts=num_experts,
        experts_per_token=_first(cfg, "num_experts_per_tok") if num_experts else None,
        act_fn=_first(cfg, "activation_function", "hidden_act", "hidden_activation"),
        positional_embedding_type="rotary" if model_type in _ROTARY_TYPES else "standard",
        normalization_type="RMS" if model_type in _RMS_TYPES else "LN",
        parallel_attn_mlp=bool(cfg.get("use_parallel_residual")) or model_type in ("gptj", "phi"),
        gated_mlp=model_type in _GATED_TYPES,
        structure_known=model_type in ARCHITECTURES,
    )
    return spec


def spec_from_config_class(config_class: str, kwargs: dict, model_class: str, source: str) -> ModelSpec | None:
    """Spec for ``SomeModel(SomeConfig(**kwargs))`` written in code, using the class defaults."""
    defaults = CLASS_DEFAULTS.get(config_class)
    if defaults is None:
        return None
    cfg = {**defaults, **{k: v for k, v in kwargs.items() if v is not None}}
    if model_class:
        cfg["architectures"] = [model_class]
    return spec_from_hf_dict(cfg, source=source)
