"""Unsaved edits in a workspace of research files (``benchmarks/workspace_corpus.py``): an edit of an open
module reaches the open files that read it through another module, the background index analyses the
workspace's other readers again without a request, and a file that starts importing a helper in unsaved
text binds the helper's parameters, with only that file's import lines read again."""

from __future__ import annotations

import re

from lsprotocol import types

from .helpers import diagnostics_for, hover_text, open_doc, pos_of
from .test_workspace_index_lsp import N_FILES, _index_complete, _info, _workspace


def _edit(client, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


def _helper_of(script_text: str) -> str:
    return re.search(r"^from (helpers_\d+) import", script_text, re.M).group(1) + ".py"


async def test_an_unsaved_edit_reaches_an_open_file_that_reads_it_through_an_unchanged_module(client):
    # script_4 -> utils_j (on disk, unchanged) -> sites (open, edited): `cache[u.resid(4)]` is built in sites.
    files, script = _workspace(client)
    text = files["script_4.py"]
    sites = (client.root / "sites.py").as_uri()
    open_doc(client, script, text)
    open_doc(client, sites, files["sites.py"])
    assert not await diagnostics_for(client, script, version=1)

    client.diagnostics.pop(script, None)
    _edit(client, sites, 2, files["sites.py"].replace("blocks.{layer}", "blocks.{layer}0"))  # layer 4 -> 40
    diagnostics = await diagnostics_for(client, script)
    assert [d.code for d in diagnostics] == ["layer-out-of-range"] and "Layer 40" in diagnostics[0].message, diagnostics
    shown = await hover_text(client, script, pos_of(text, "cache[u.resid(4)]", len("cache[") + 1))
    assert shown.startswith("`blocks.40.hook_resid_post`"), shown

    client.diagnostics.pop(script, None)
    _edit(client, sites, 3, files["sites.py"])
    assert not await diagnostics_for(client, script)


async def test_an_unsaved_helper_edit_brings_the_index_up_to_date_without_a_request(client):
    files, script = _workspace(client)
    helper_name = _helper_of(files["script_4.py"])
    helper = (client.root / helper_name).as_uri()
    open_doc(client, helper, files[helper_name])
    index = await _index_complete(client)
    before, lines_read = index["indexed"], index["importLinesRead"]
    assert N_FILES - 1 <= lines_read <= N_FILES + 1, index  # every file's import lines, read once

    _edit(client, helper, 2, files[helper_name].replace("blocks.{layer}", "blocks.{layer}0"))
    index = await _index_complete(client)
    again = index["indexed"] - before
    readers = [name for name, body in files.items() if re.search(rf"^from {helper_name[:-3]} import", body, re.M)]
    assert len(readers) <= again < N_FILES // 4, (again, readers)  # the helper's readers on disk, not all 60
    assert index["importLinesRead"] == lines_read + 1, index  # the edited helper's own lines, not the workspace's


async def test_an_unsaved_import_of_a_helper_binds_its_parameters(client):
    files, _ = _workspace(client)
    helper_name = _helper_of(files["script_4.py"])
    helper, helper_text = (client.root / helper_name).as_uri(), files[helper_name]
    other_name = next(name for name, body in files.items()
                      if name.startswith("script_") and helper_name[:-3] not in body)
    other, other_text = (client.root / other_name).as_uri(), files[other_name]
    open_doc(client, helper, helper_text)
    open_doc(client, other, other_text)
    layer_name = pos_of(helper_text, "add_hook(name_of(layer)", len("add_hook(") + 1)
    shown = await hover_text(client, helper, layer_name)
    assert "blocks.11.attn.hook_z" not in shown, shown  # the helper's callers pass other layers
    read = (await _index_complete(client))["importLinesRead"]

    # In the editor only: the other script imports the helper and patches layer 11 with it.
    _edit(client, other, 2, other_text + f"\nfrom {helper_name[:-3]} import add_patch as add_patch_here\n"
                                         "add_patch_here(model, 11)\n")
    shown = await hover_text(client, helper, layer_name)
    assert "`blocks.11.attn.hook_z`" in shown, shown
    assert (await _info(client))["workspaceIndex"]["importLinesRead"] == read + 1
