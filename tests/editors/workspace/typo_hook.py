"""Editor-test fixture: a cache key with a typo (the hook is hook_resid_pre)."""
from transformer_lens import HookedTransformer

model = HookedTransformer.from_pretrained("gpt2-small")
logits, cache = model.run_with_cache("The quick brown fox")
first_resid = cache["blocks.0.hook_resid_pree"]
attn_pattern = cache["pattern", 3]
