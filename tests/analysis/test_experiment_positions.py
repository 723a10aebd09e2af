"""A patching loop that walks a position labelling (label -> one position per prompt pair, as IOI
datasets give them) is a sweep aligned by that labelling."""

from __future__ import annotations

from lsp_server.analysis.document import analyze
from lsp_server.analysis.experiments import find_experiments

LOOP = '''\
from functools import partial
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
clean_tokens = model.to_tokens(clean_prompts)
corrupted_tokens = model.to_tokens(corrupted_prompts)
_, clean_cache = model.run_with_cache(clean_tokens)
word_idx = {"S1": s1_pos, "IO": io_pos, "END": end_pos}


def patch(act, hook, pos, clean_cache):
    act[range(len(pos)), pos] = clean_cache[hook.name][range(len(pos)), pos]
    return act


for layer in range(model.cfg.n_layers):
    for j, (label, pos) in enumerate(word_idx.items()):
        hook = partial(patch, pos=pos, clean_cache=clean_cache)
        logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(f"blocks.{layer}.hook_resid_pre", hook)])
        results[layer, j] = logit_diff(logits)
'''


def test_a_loop_over_a_labelling_gives_the_sweep_its_positions():
    (exp,) = find_experiments(analyze(LOOP))
    assert (exp.kind, exp.clean, exp.corrupted, exp.positions) == ("resid_pre", "clean_tokens", "corrupted_tokens", "word_idx")
    assert "positions aligned by the labels of `word_idx`" in exp.description


def test_a_loop_over_token_positions_has_no_labelling():
    source = LOOP.replace("enumerate(word_idx.items())", "enumerate(zip(range(15), range(15)))")
    (exp,) = find_experiments(analyze(source))
    assert exp.positions is None
