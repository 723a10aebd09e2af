"""Workspace imports over LSP: an open file's unsaved edit changes what its importers see, and their
diagnostics are published again."""

from __future__ import annotations

from lsprotocol import types

from .helpers import diagnostics_for, hover_text, open_doc, pos_of

HELPERS = '''\
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")

def act_name(layer):
    return f"blocks.{layer}.hook_resid_post"
'''
MAIN = '''\
from helpers import model, act_name
logits, cache = model.run_with_cache("hello")
x = cache[act_name(5)]
'''


async def test_an_unsaved_edit_of_an_imported_module_reaches_its_importers(client):
    helpers, main = client.root / "helpers.py", client.root / "main.py"
    helpers.write_text(HELPERS)
    main.write_text(MAIN)
    open_doc(client, main.as_uri(), MAIN)
    open_doc(client, helpers.as_uri(), HELPERS)
    assert not await diagnostics_for(client, main.as_uri(), version=1)
    shown = await hover_text(client, main.as_uri(), pos_of(MAIN, "act_name(5)", 1))
    assert shown.startswith("`blocks.5.hook_resid_post` · `[batch, pos, d_model]` = `[batch, pos, 768]`"), shown

    # In the editor only (not saved): the helper now builds a layer-50 name, out of range for GPT-2.
    edited = HELPERS.replace("blocks.{layer}", "blocks.{layer}0")
    client.diagnostics.pop(main.as_uri(), None)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=helpers.as_uri(), version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=edited)]))
    (diagnostic,) = await diagnostics_for(client, main.as_uri())
    assert diagnostic.code == "layer-out-of-range" and "Layer 50" in diagnostic.message, diagnostic
    shown = await hover_text(client, main.as_uri(), pos_of(MAIN, "act_name(5)", 1))
    assert shown.startswith("`blocks.50.hook_resid_post`"), shown
