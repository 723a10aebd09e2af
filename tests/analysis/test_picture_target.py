"""analysis/picture_target.py: what a hover would ask the kernel to draw (pure: live facts given as JSON)."""

from __future__ import annotations

from lsp_server.analysis.document import analyze
from lsp_server.analysis.picture_target import picture_target

from .test_live_facts import STATIC, cache_answer, context, model_answer

KEYS = ("blocks.1.attn.hook_pattern", "blocks.1.hook_resid_post", "blocks.0.mlp.hook_post")
LIVE = context([model_answer()], [cache_answer(keys=KEYS, shape=(2, 5, 5))])
CODE = '''\
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2-small")
tokens = model.to_tokens("Hello there")
_, cache = model.run_with_cache(tokens)
a = cache["pattern", 1]
b = cache["pattern", 1][0, 3]
c = cache["post", 0][..., -2]
d = cache["resid_post", 1] @ logit_dir
e = cache["pattern", 1][i]
f = cache.accumulated_resid(1, apply_ln=True, return_labels=True) @ logit_dir
g = cache.decompose_resid(layer=n)
def helper(cache):
    return cache["pattern", 1]
'''


def target(needle, ctx=LIVE, code=CODE, delta=2):
    return picture_target(analyze(code, ctx), code.index(needle) + delta)


def test_the_key_with_its_literal_index_direction_and_prompt():
    a = target('a = cache["pattern"', delta=12)
    assert (a.cache, a.key, a.shape, a.index, a.direction) == ("cache", "blocks.1.attn.hook_pattern", (2, 5, 5), (), None)
    assert a.tokens == {"name": "tokens"} and a.expression() == "cache['blocks.1.attn.hook_pattern']"
    b = target('b = cache["pattern"', delta=12)
    assert b.index == (0, 3) and b.expression() == "cache['blocks.1.attn.hook_pattern'][0, 3]"
    assert CODE[b.start:b.end] == 'cache["pattern", 1][0, 3]' and b.id != a.id
    c = target('c = cache["post"', delta=12)
    assert c.index == ("...", -2) and c.key == "blocks.0.mlp.hook_post"
    d = target('d = cache["resid_post"', delta=12)
    assert d.direction == "logit_dir" and CODE[d.start:d.end] == 'cache["resid_post", 1] @ logit_dir'
    assert d.args() == {"cache": "cache", "key": "blocks.1.hook_resid_post", "index": None, "direction": "logit_dir",
                        "tokens": {"name": "tokens"}, "stack": None}


def test_a_computed_index_is_not_drawn_but_said():
    e = target('e = cache["pattern"', delta=12)
    assert e.index == () and e.notes == ("`[i]` is not drawn (only literal indices are)",)


def test_stacking_calls_with_literal_arguments():
    f = target("accumulated_resid")
    assert f.stack == {"method": "accumulated_resid", "kwargs": {"layer": 1, "apply_ln": True}}
    assert f.direction == "logit_dir" and f.expression() == "cache.accumulated_resid(layer=1, apply_ln=True) @ logit_dir"
    assert target("decompose_resid") is None  # `n` would have to be computed in the kernel


def test_nothing_without_a_live_tensor():
    assert target('a = cache["pattern"', ctx=STATIC, delta=12) is None  # no kernel
    assert target('    return cache["pattern"', delta=16) is None  # a function's own `cache`
    other = context([model_answer()], [cache_answer(keys=("blocks.0.hook_resid_pre",))])
    assert target('a = cache["pattern"', ctx=other, delta=12) is None  # the kernel's cache lacks the key
