"""Logit lens: decode the residual stream after every layer (nostalgebraist 2020)."""
import torch
from transformer_lens import HookedTransformer

model = HookedTransformer.from_pretrained("pythia-70m")
prompt = "The Eiffel Tower is located in the city of"
answer = " Paris"
tokens = model.to_tokens(prompt)
answer_token = model.to_single_token(answer)

logits, cache = model.run_with_cache(tokens)
# Pythia runs attention and MLP in parallel: there is no resid_mid, so incl_mid=True raises KeyError.
accumulated, labels = cache.accumulated_resid(layer=-1, incl_mid=True, return_labels=True, apply_ln=True)
lens_logits = accumulated[:, 0, -1, :] @ model.W_U
ranks = (lens_logits > lens_logits[:, answer_token, None]).sum(-1)

for layer in range(model.cfg.n_layers):
    resid = cache["resid_post", layer]
    normed = cache["normalized", layer, "ln2"]
    scaled = cache["scale", layer, "ln1"]
    logits_at_layer = model.unembed(model.ln_final(resid))

final_scale = cache["ln_final.hook_scale"]
mlp_out = cache["mlp_out", 5]
bad_layer = cache["resid_post", 6]
typo = cache["blocks.0.hook_resid_pree"]
parts, part_labels = cache.decompose_resid(layer=3, return_labels=True)
