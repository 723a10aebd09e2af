"""ModelSpec: what the server knows about one model's shape-relevant configuration.

A spec is built from whatever source resolves first (a config written in the file, the
official-model table, the local Hugging Face cache, a live kernel) and always says which
source that was, so hovers can tell the user where the numbers came from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

Backend = Literal["hooked", "bridge"]

# Names of the integer dimensions a spec may carry; shapes in the hook catalog use these.
DIM_NAMES = (
    "n_layers",
    "d_model",
    "n_heads",
    "d_head",
    "d_mlp",
    "d_vocab",
    "n_ctx",
    "n_key_value_heads",
    "rotary_dim",
    "num_experts",
    "experts_per_token",
)

# Config flags that add, remove or reshape hook points (see knowledge/hookpoints.py).
GATE_FLAGS = (
    "use_attn_result",
    "use_split_qkv_input",
    "use_attn_in",
    "use_hook_mlp_in",
    "use_hook_tokens",
)


@dataclass(frozen=True)
class ModelSpec:
    """Shape-relevant configuration of a model, with provenance.

    Dimensions are ``None`` when unknown; the hook catalog then shows the symbolic shape only.
    """

    name: str | None = None
    source: str = "symbolic"
    # "hooked" = HookedTransformer (TL 2.x/3.x); "bridge" = TransformerBridge (TL 3.x/4.x).
    backend: Backend = "hooked"
    # Hugging Face architecture (e.g. "GPT2LMHeadModel", "LlamaForCausalLM"); decides bridge hook names.
    architecture: str | None = None
    n_layers: int | None = None
    d_model: int | None = None
    n_heads: int | None = None
    d_head: int | None = None
    d_mlp: int | None = None
    d_vocab: int | None = None
    n_ctx: int | None = None
    n_key_value_heads: int | None = None
    rotary_dim: int | None = None
    num_experts: int | None = None
    experts_per_token: int | None = None
    act_fn: str | None = None
    positional_embedding_type: str = "standard"
    normalization_type: str | None = "LN"
    attn_only: bool = False
    parallel_attn_mlp: bool = False
    gated_mlp: bool = False
    use_attn_result: bool = False
    use_split_qkv_input: bool = False
    use_attn_in: bool = False
    use_hook_mlp_in: bool = False
    use_hook_tokens: bool = False
    ungroup_grouped_query_attention: bool = False
    use_normalization_before_and_after: bool = False
    post_embedding_ln: bool = False
    use_qk_norm: bool = False
    # TransformerBridge after ``enable_compatibility_mode()``: a gated MLP then runs on processed
    # weights and some hooks stop firing (see knowledge/hookpoints.py). Ignored for HookedTransformer.
    compat_mode: bool = False
    default_prepend_bos: bool | None = None
    # Name of the tokenizer family that fits this model, when known offline ("gpt2", or a HF repo id).
    tokenizer: str | None = None
    # True when the architecture and flags are known; False for a bare symbolic guess, in which
    # case flag-dependent diagnostics (missing rotary hooks, attn_only, ...) stay silent.
    structure_known: bool = False
    # Built by SAE Lens's HookedSAETransformer, which gives every MLP a ``hook_in`` (its input, read
    # by transcoders); TransformerLens's own HookedSAETransformer does not.
    mlp_hook_in: bool = False

    @property
    def is_gqa(self) -> bool:
        return (
            self.n_key_value_heads is not None
            and self.n_heads is not None
            and self.n_key_value_heads != self.n_heads
        )

    @property
    def is_moe(self) -> bool:
        return bool(self.num_experts)

    def dims(self) -> dict[str, int]:
        """Known integer dimensions, with the derived ones filled in (d_head, n_key_value_heads)."""
        out = {k: getattr(self, k) for k in DIM_NAMES if getattr(self, k) is not None}
        if "d_head" not in out and self.d_model and self.n_heads:
            out["d_head"] = self.d_model // self.n_heads
        if "n_key_value_heads" not in out and self.n_heads:
            out["n_key_value_heads"] = self.n_heads
        if self.ungroup_grouped_query_attention and self.n_heads:
            out["n_key_value_heads"] = self.n_heads
        if "rotary_dim" not in out and "d_head" in out:
            out["rotary_dim"] = out["d_head"]
        return out

    def with_flags(self, **flags: bool) -> ModelSpec:
        """A copy with config flags switched (e.g. after ``model.set_use_attn_result(True)``)."""
        return dataclasses.replace(self, **flags)

    @property
    def label(self) -> str:
        """Short human name for messages: the model name, or where the spec came from."""
        return self.name or self.source


SYMBOLIC = ModelSpec()
