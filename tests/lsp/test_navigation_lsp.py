"""Go to definition on a hook name opens the installed TransformerLens where the hook point is defined;
find references lists every read, registration, filter and get_act_name of it in the workspace."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from lsprotocol import types

from .helpers import diagnostics_for, open_doc, pos_of

HOOKED = '''\
from transformer_lens import HookedTransformer, utils
model = HookedTransformer.from_pretrained("gpt2")
logits, cache = model.run_with_cache("hi", names_filter=lambda n: n.endswith("hook_pattern"))
pattern = cache["pattern", 3]
other = cache["pattern", 4]
def ablate(p, hook):
    return p * 0
model.add_hook("blocks.3.attn.hook_pattern", ablate)
'''
HELPER = '''\
from transformer_lens import utils
def patterns(cache, layers):
    return [cache[utils.get_act_name("pattern", l)] for l in layers]
resid = None
'''


def _line_at(location: types.Location) -> str:
    path = Path(unquote(urlparse(location.uri).path))
    return path.read_text().split("\n")[location.range.start.line]


async def _definition(client, uri, text, needle, delta):
    return await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=pos_of(text, needle, delta)))


async def test_definition_of_a_bridge_hook_opens_the_bridge_component(client):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"transformerLensVersion": "4.3.0"}}))
    text = HOOKED.replace("HookedTransformer.from_pretrained", "TransformerBridge.boot_transformers").replace(
        "import HookedTransformer", "import TransformerBridge")
    uri = (client.root / "bridge.py").as_uri()
    open_doc(client, uri, text)
    (location,) = await _definition(client, uri, text, '"pattern", 3', 2)
    assert location.uri.endswith("model_bridge/generalized_components/attention.py"), location.uri
    assert "hook_pattern" in _line_at(location)


@pytest.mark.ht
async def test_definition_of_a_hooked_transformer_hook_opens_its_component(client):
    python = os.environ.get("TLENS_HT_PYTHON")
    if not python:
        pytest.skip("TLENS_HT_PYTHON is not set (a Python with TransformerLens 2.x)")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"transformerLensVersion": "2.18.0", "kernel": {"interpreter": python}}}))
    uri = (client.root / "hooked.py").as_uri()
    open_doc(client, uri, HOOKED)
    (location,) = await _definition(client, uri, HOOKED, '"pattern", 3', 2)
    assert location.uri.endswith("components/abstract_attention.py") and ".venv-ht" in location.uri, location.uri
    assert "self.hook_pattern = HookPoint()" in _line_at(location)
    assert await _definition(client, uri, HOOKED, "logits, cache", 2) is None  # not a hook name


async def test_references_cover_reads_registrations_filters_and_helpers_across_files(client):
    uri = (client.root / "main.py").as_uri()
    (client.root / "helpers.py").write_text(HELPER)  # on disk only, never opened
    open_doc(client, uri, HOOKED)
    await diagnostics_for(client, uri)
    found = await client.text_document_references_async(types.ReferenceParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=pos_of(HOOKED, '"pattern", 3', 2),
        context=types.ReferenceContext(include_declaration=True)))
    lines = sorted((Path(unquote(urlparse(l.uri).path)).name, l.range.start.line) for l in found)
    assert lines == [("helpers.py", 2), ("main.py", 2), ("main.py", 3), ("main.py", 7)], lines  # not layer 4


PATCHING = '''\
from functools import partial
from transformer_lens import HookedTransformer, patching, utils
model = HookedTransformer.from_pretrained("gpt2")
clean_tokens, corrupted_tokens = model.to_tokens("a"), model.to_tokens("b")
_, clean_cache = model.run_with_cache(clean_tokens)
def metric(logits):
    return logits[0, -1, 0]
def patch_z(z, hook, clean_cache):
    z[:] = clean_cache[hook.name]
    return z
results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)
model.run_with_hooks(corrupted_tokens, fwd_hooks=[(utils.get_act_name("z", 3), partial(patch_z, clean_cache=clean_cache))])
'''


async def test_document_symbols_list_experiments_and_hook_functions(client):
    uri = (client.root / "symbols.py").as_uri()
    open_doc(client, uri, PATCHING)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    shown = [(s.name, s.detail, s.kind, s.selection_range.start.line) for s in symbols]
    assert ("patch_z", "hook on blocks.3.attn.hook_z", types.SymbolKind.Function, 7) in shown, shown
    assert any(kind == types.SymbolKind.Event and name.startswith("Patch sweep:") and line == 10
               for name, _, kind, line in shown), shown


NAMES = '''\
def name_of(layer):
    return f"blocks.{layer}.attn.hook_z"
'''
USES_NAMES = '''\
import names as n
from names import name_of
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, cache = model.run_with_cache("hi")
direct = cache[name_of(3)]
key = n.name_of(4)
through_variable = cache[key]
'''


async def test_definition_of_a_name_built_by_a_workspace_helper_opens_the_helper_too(client):
    (client.root / "names.py").write_text(NAMES)  # on disk only, never opened
    uri = (client.root / "uses_names.py").as_uri()
    open_doc(client, uri, USES_NAMES)
    await diagnostics_for(client, uri)
    for needle, delta in (("name_of(3)", 1), ("cache[key]", 7)):
        found = await _definition(client, uri, USES_NAMES, needle, delta)
        assert found, needle
        helper = found[0]  # the user's own code first, then TransformerLens
        assert helper.uri.endswith("/names.py") and _line_at(helper).startswith("def name_of"), (needle, helper)
        assert helper.range.start.character == len("def "), helper
        assert any("transformer_lens" in loc.uri and "hook_z" in _line_at(loc) for loc in found[1:]), found
    # A helper of this file: the def in this document.
    local = "def local_name(l):\n    return f'blocks.{l}.hook_resid_post'\n" + USES_NAMES.replace("name_of(3)", "local_name(3)")
    uri2 = (client.root / "local.py").as_uri()
    open_doc(client, uri2, local)
    await diagnostics_for(client, uri2)
    found = await _definition(client, uri2, local, "local_name(3)", 1)
    assert found[0].uri == uri2 and found[0].range.start.line == 0 and found[0].range.start.character == 4, found
