"""Patching experiments whose clean cache comes from the user's own function are still recognised:
code lens and code actions, hovers with the model that function was given, and what was assumed."""

from __future__ import annotations

from lsprotocol import types

from .helpers import hover_text, open_doc, pos_of

HELPER_IN_FILE = '''\
from transformer_lens import HookedTransformer, patching
model = HookedTransformer.from_pretrained("gpt2")
big = HookedTransformer.from_pretrained("gpt2-medium")
clean_tokens = model.to_tokens("When John and Mary went to the store, John gave a drink to")
corrupted_tokens = model.to_tokens("When John and Mary went to the store, Mary gave a drink to")


def run_and_cache(model, prompts):
    logits, cache = model.run_with_cache(prompts)
    return cache


def metric(logits):
    return logits[0, -1, 3] - logits[0, -1, 4]


clean_cache = run_and_cache(model, clean_tokens)
resid = clean_cache["resid_post", 3]
results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)
'''

HELPER_IMPORTED = '''\
from transformer_lens import HookedTransformer, patching
from utils import run_and_cache, logit_diff
model = HookedTransformer.from_pretrained("gpt2")
clean_tokens = model.to_tokens("When John and Mary went to the store, John gave a drink to")
corrupted_tokens = model.to_tokens("When John and Mary went to the store, Mary gave a drink to")
clean_cache = run_and_cache(model, clean_tokens)
results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, logit_diff)
'''


async def _lenses(client, uri):
    return await client.text_document_code_lens_async(types.CodeLensParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))


async def test_a_clean_cache_from_a_function_of_the_file(client):
    uri = (client.root / "helper.py").as_uri()
    open_doc(client, uri, HELPER_IN_FILE)
    (lens,) = await _lenses(client, uri)
    assert lens.command.title == "▶ Run patch sweep" and lens.range.start.line == pos_of(HELPER_IN_FILE, "results =").line
    text = await hover_text(client, uri, pos_of(HELPER_IN_FILE, '"resid_post", 3', 2))
    assert text.startswith("`blocks.3.hook_resid_post` · `[batch, pos, d_model]` = `[batch, pos, 768]`"), text
    assert "assumed to be a cache of `model`, the model passed to it" in text  # gpt2, not gpt2-medium's 1024
    experiment = await hover_text(client, uri, pos_of(HELPER_IN_FILE, "results ="))
    assert "clean input `clean_tokens`, passed to run_and_cache(…)" in experiment
    assert "Run *Run" not in experiment and "▶ Run patch sweep (the code lens above it" in experiment


async def test_a_clean_cache_from_an_imported_function_says_what_it_assumed(client):
    uri = (client.root / "imported.py").as_uri()
    open_doc(client, uri, HELPER_IMPORTED)
    assert len(await _lenses(client, uri)) == 1
    experiment = await hover_text(client, uri, pos_of(HELPER_IMPORTED, "results ="))
    assert "clean input assumed to be `clean_tokens`, the argument of run_and_cache(…) that is not the model" in experiment
