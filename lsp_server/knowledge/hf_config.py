"""Hugging Face config classes written in code -> ModelSpec.

``TransformerBridge.boot_transformers(..., hf_model=GPT2LMHeadModel(GPT2Config(n_layer=2)))`` builds
a model whose dims are the config class's defaults overridden by the literal keywords, so the
defaults of the common config classes are recorded here (transformers 5.x values).
"""

from __future__ import annotations

from .hf_cache import spec_from_hf_config
from .spec import ModelSpec

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

def spec_from_config_class(config_class: str, kwargs: dict, model_class: str, source: str) -> ModelSpec | None:
    """Spec for ``SomeModel(SomeConfig(**kwargs))`` written in code, using the class defaults."""
    defaults = CLASS_DEFAULTS.get(config_class)
    if defaults is None:
        return None
    cfg = {**defaults, **{k: v for k, v in kwargs.items() if v is not None}}
    if model_class:
        cfg["architectures"] = [model_class]
    return spec_from_hf_config(cfg, source=source)
