"""IOI circuit: where do name movers read the indirect object? (GPT-2 small)

Editor-test fixture: a realistic research script. The real-editor tests only analyse it statically
(hover, diagnostics, completion); nothing runs it, so from_pretrained never downloads anything.
"""
import torch
from transformer_lens import HookedTransformer, utils

torch.set_grad_enabled(False)
model = HookedTransformer.from_pretrained("gpt2-small")

prompts = [
    "When John and Mary went to the shops, John gave the bag to",
    "When Tom and James went to the park, James gave the ball to",
]
tokens = model.to_tokens(prompts)

logits, cache = model.run_with_cache(tokens)
attn_pattern = cache["pattern", 3]
resid = cache["resid_post", 9]


def ablate_head_9_6(z, hook):
    z[:, :, 6, :] = 0.0
    return z


# Stale: this hook stays on the model and silently edits every later forward pass,
# including the run_with_cache below.
model.add_hook(utils.get_act_name("z", 9), ablate_head_9_6)
ablated_logits, ablated_cache = model.run_with_cache(tokens)

name_mover_pattern = ablated_cache["pattern", 9]
logit_diff = (logits - ablated_logits)[:, -1].norm(dim=-1)
