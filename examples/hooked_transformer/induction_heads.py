"""Find induction heads on repeated random tokens (Olsson et al. 2022)."""
import torch
import einops
from transformer_lens import HookedTransformer

model = HookedTransformer.from_pretrained("attn-only-2l")
model.set_use_attn_result(True)

seq_len = 50
batch = 4
random_tokens = torch.randint(1000, 10000, (batch, seq_len))
bos = torch.full((batch, 1), model.tokenizer.bos_token_id)
repeated_tokens = torch.cat([bos, random_tokens, random_tokens], dim=1)

induction_scores = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)

def induction_score_hook(pattern, hook):
    # pattern: [batch, n_heads, query_pos, key_pos]
    stripe = pattern.diagonal(dim1=-2, dim2=-1, offset=1 - seq_len)
    induction_scores[hook.layer(), :] = einops.reduce(stripe, "batch head pos -> head", "mean")

model.run_with_hooks(
    repeated_tokens,
    return_type=None,
    fwd_hooks=[(lambda name: name.endswith("pattern"), induction_score_hook)],
)

logits, cache = model.run_with_cache(repeated_tokens, names_filter=lambda n: "pattern" in n or n.endswith("result"))
for layer in range(model.cfg.n_layers):
    pattern = cache["pattern", layer]
    head_out = cache["result", layer]

# Which heads write most to the residual stream at the repeated half?
per_head = cache["blocks.1.attn.hook_result"][:, seq_len + 1:].norm(dim=-1).mean((0, 1))
W_OV = model.W_V[1] @ model.W_O[1]
prev_token_pattern = cache["pattern", 0][:, :, range(1, 2 * seq_len + 1), range(0, 2 * seq_len)]
