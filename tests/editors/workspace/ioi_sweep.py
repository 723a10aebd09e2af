"""IOI: which positions carry the indirect object?"""
import torch
from transformer_lens import (
    HookedTransformer, HookedTransformerConfig, patching,
)
from transformers import AutoTokenizer

torch.set_grad_enabled(False)
# gpt2-small's shape, scaled down, random weights: the tests
# run offline. Use HookedTransformer.from_pretrained("gpt2").
cfg = HookedTransformerConfig(
    n_layers=8, d_model=128, n_heads=4, d_head=32,
    d_mlp=512, d_vocab=50257, n_ctx=64, act_fn="gelu",
    normalization_type="LN", seed=2,
)
tokenizer = AutoTokenizer.from_pretrained("gpt2")
model = HookedTransformer(cfg, tokenizer=tokenizer).eval()

prompt = "When Mary and John went to the shops, {} gave a bag to"
clean_tokens = model.to_tokens(prompt.format("John"))
corrupted_tokens = model.to_tokens(prompt.format("Mary"))
answer = model.to_single_token(" Mary")  # indirect object
wrong = model.to_single_token(" John")  # subject


def logit_diff(logits):
    return logits[0, -1, answer] - logits[0, -1, wrong]


clean_logits, clean_cache = model.run_with_cache(clean_tokens)
resid_pre_results = patching.get_act_patch_resid_pre(
    model, corrupted_tokens, clean_cache, logit_diff
)
