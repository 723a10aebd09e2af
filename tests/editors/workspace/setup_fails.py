"""Editor-test fixture: the sweep's setup fails at line 13 (a helper the file never defines)."""
import torch
import transformer_lens.patching as patching
from transformer_lens import HookedTransformer, HookedTransformerConfig

torch.manual_seed(0)
cfg = HookedTransformerConfig(
    n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=256, d_vocab=300, n_ctx=128, act_fn="gelu"
)
model = HookedTransformer(cfg)
model.eval()

prompts = load_prompts_from_drive("ioi.json")
clean_tokens = torch.tensor([[1, 17, 42, 99, 7, 23]])
corrupted_tokens = torch.tensor([[1, 17, 42, 99, 8, 23]])
clean_logits, clean_cache = model.run_with_cache(clean_tokens)


def logit_diff(logits):
    return logits[0, -1, 5] - logits[0, -1, 6]


resid_pre_results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, logit_diff)
