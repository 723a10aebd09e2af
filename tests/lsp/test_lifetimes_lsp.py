"""Hook-lifetime diagnostics end to end over stdio: related locations, quick fixes that resolve them."""

from __future__ import annotations

import pytest
from lsprotocol import types

from .helpers import diagnostics_for, open_doc, pos_of
from .test_notebooks import open_notebook, wait_for

SCRIPT = '''\
import torch
from transformer_lens import HookedTransformer, utils

model = HookedTransformer.from_pretrained("gpt2-small")
tokens = model.to_tokens("When John and Mary went to the store, John gave a drink to")


def ablate_name_mover(z, hook):
    z[:, :, 9, :] = 0.0
    return z


model.add_hook(utils.get_act_name("z", 9), ablate_name_mover)
ablated_logits = model(tokens)
# run_with_cache cleans up the hooks, so this cache is from the clean model
clean_logits, clean_cache = model.run_with_cache(tokens)


def double(x, h):
    return x * 2


doubled = model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_resid_pre", double)])
'''


@pytest.fixture
def uri(client):
    return (client.root / "ablation.py").as_uri()


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.split("\n")

    def offset(p: types.Position) -> int:
        return sum(len(line) + 1 for line in lines[:p.line]) + p.character

    for e in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[:offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text


async def actions_for(client, uri, diagnostic):
    return await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=diagnostic.range,
        context=types.CodeActionContext(diagnostics=[diagnostic])))


def change_doc(client, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


async def test_stale_hook_has_related_locations(client, uri):
    open_doc(client, uri, SCRIPT)
    diags = await diagnostics_for(client, uri)
    (stale,) = [d for d in diags if d.code == "stale-hook"]
    assert stale.severity == types.DiagnosticSeverity.Warning
    assert stale.range.start == pos_of(SCRIPT, "model.add_hook")
    assert "blocks.9.attn.hook_z" in stale.message and "run_with_cache" in stale.message
    related = {(r.location.range.start.line, r.message) for r in stale.related_information}
    assert related == {
        (12, "hook on `blocks.9.attn.hook_z` added here"),
        (13, "the forward it is meant for"),
        (15, "still attached during this forward"),
    }
    assert all(r.location.uri == uri for r in stale.related_information)


@pytest.mark.parametrize("which", ["Scope the hook", "Insert `model.reset_hooks()`"])
async def test_stale_hook_quick_fix_resolves_it(client, uri, which):
    open_doc(client, uri, SCRIPT)
    diags = await diagnostics_for(client, uri)
    (stale,) = [d for d in diags if d.code == "stale-hook"]
    actions = await actions_for(client, uri, stale)
    (fix,) = [a for a in actions if a.title.startswith(which)]
    assert fix.kind == types.CodeActionKind.QuickFix and fix.diagnostics[0].code == "stale-hook"
    fixed = apply_edits(SCRIPT, fix.edit.changes[uri])
    assert fixed != SCRIPT
    change_doc(client, uri, fixed, 2)
    after = await diagnostics_for(client, uri, version=2)
    assert [d.code for d in after if d.code == "stale-hook"] == []
    assert [d.code for d in after] == ["hook-signature"]  # the other problem is still there


async def test_hook_signature_error_and_rename_fix(client, uri):
    open_doc(client, uri, SCRIPT)
    diags = await diagnostics_for(client, uri)
    (sig,) = [d for d in diags if d.code == "hook-signature"]
    assert sig.severity == types.DiagnosticSeverity.Error and "unexpected keyword argument 'hook'" in sig.message
    assert sig.related_information[0].location.range.start.line == 22  # where it is registered
    (rename,) = [a for a in await actions_for(client, uri, sig) if a.title == "Rename parameter `h` to `hook`"]
    fixed = apply_edits(SCRIPT, rename.edit.changes[uri])
    assert "def double(x, hook):" in fixed
    change_doc(client, uri, fixed, 2)
    after = await diagnostics_for(client, uri, version=2)
    assert [d.code for d in after] == ["stale-hook"]


async def test_stale_hook_across_notebook_cells(client):
    nb = (client.root / "ablation.ipynb").as_uri()
    cells = [
        ("code", "from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained('gpt2-small')"),
        ("code", "model.add_hook('blocks.5.hook_mlp_out', lambda out, hook: out * 0)\nablated = model('Hello there')"),
        ("markdown", "Now a clean run."),
        ("code", "logits, cache = model.run_with_cache('Hello there')"),
    ]
    uris = open_notebook(client, nb, cells)
    await wait_for(lambda: uris[1] in client.diagnostics)
    (stale,) = [d for d in client.diagnostics[uris[1]] if d.code == "stale-hook"]
    assert stale.range.start == types.Position(0, 0)
    # Places are named by their code: line numbers of the joined cells would mean nothing in the editor.
    assert "(`logits, cache = model.run_with_cache('Hello there')`)" in stale.message and " line " not in stale.message
    assert not [d for d in client.diagnostics.get(uris[3], ()) if d.code == "stale-hook"]
    # The reset goes right after the hooked forward, in the same cell.
    (fix,) = [a for a in await actions_for(client, uris[1], stale) if a.title.startswith("Insert")]
    (edit,) = fix.edit.changes[uris[1]]
    new_text = apply_edits(cells[1][1], [edit])
    assert new_text.endswith("ablated = model('Hello there')\nmodel.reset_hooks()")
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=nb, version=2),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
            types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=uris[1], version=2),
                changes=[types.TextDocumentContentChangeWholeDocument(text=new_text)])]))))
    await wait_for(lambda: not [d for d in client.diagnostics.get(uris[1], ()) if d.code == "stale-hook"])
