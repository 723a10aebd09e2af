"""A workspace of 60 research files (helpers that build hook names, scripts that import them): the first
hover on an opened script is answered from its own analysis, before the background index of the workspace
is complete; the index ends up holding every file, and a helper changed on disk reaches the script that
imports it, with only that helper and the files that read it analysed again."""

from __future__ import annotations

import asyncio
import re

from lsprotocol import types

from benchmarks.workspace_corpus import write_workspace

from .helpers import diagnostics_for, hover_text, open_doc, pos_of

N_FILES = 60


async def _info(client) -> dict:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.serverInfo"))


async def _index_complete(client, timeout: float = 60) -> dict:
    async def wait():
        while not (index := (await _info(client))["workspaceIndex"])["complete"]:
            await asyncio.sleep(0.05)
        return index
    return await asyncio.wait_for(wait(), timeout)


def _workspace(client) -> tuple[dict[str, str], str]:
    """The files, written as an editor finds them (and tells the server, as its file watcher would)."""
    files = write_workspace(client.root, N_FILES)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=(client.root / name).as_uri(), type=types.FileChangeType.Created) for name in files]))
    return files, (client.root / "script_4.py").as_uri()


async def test_the_first_hover_does_not_wait_for_the_workspace_index(client):
    files, script = _workspace(client)
    text = files["script_4.py"]
    open_doc(client, script, text)
    shown = await hover_text(client, script, pos_of(text, "cache[name_of(4)]", len("cache[") + 1))
    index = (await _info(client))["workspaceIndex"]
    assert shown.startswith("`blocks.4.attn.hook_z` · `[batch, pos, n_heads, d_head]`"), shown  # from the imported helper
    assert not index["complete"] and index["indexed"] < N_FILES, index

    index = await _index_complete(client)
    assert index["indexed"] >= N_FILES - 1, index  # every file but the open one
    symbols = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="zero_head"))
    helpers = {name for name in files if name.startswith("helpers_")}
    assert {s.location.uri.rsplit("/", 1)[1] for s in symbols} == helpers, symbols
    assert all(s.kind == types.SymbolKind.Function and "attn.hook_z" in s.container_name for s in symbols), symbols


async def test_a_helper_changed_on_disk_reaches_its_importer_and_only_its_readers_are_analysed_again(client):
    files, script = _workspace(client)
    text = files["script_4.py"]
    open_doc(client, script, text)
    assert not await diagnostics_for(client, script, version=1)
    before = (await _index_complete(client))["indexed"]

    helper_name = re.search(r"^from (helpers_\d+) import", text, re.M).group(1) + ".py"
    helper = client.root / helper_name
    helper.write_text(files[helper_name].replace("blocks.{layer}", "blocks.{layer}0"))  # layer 4 -> 40: out of range
    client.diagnostics.pop(script, None)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=helper.as_uri(), type=types.FileChangeType.Changed)]))
    diagnostics = await diagnostics_for(client, script)
    assert [d.code for d in diagnostics] == ["layer-out-of-range"] and "Layer 40" in diagnostics[0].message, diagnostics

    again = (await _index_complete(client))["indexed"] - before
    readers = [name for name, body in files.items() if re.search(rf"\b{helper_name[:-3]}\b", body)]
    assert 1 <= again <= len(readers) + 1 < N_FILES // 4, (again, readers)  # the helper and its readers, not all 60
    references = await client.text_document_references_async(types.ReferenceParams(
        text_document=types.TextDocumentIdentifier(uri=script), position=pos_of(text, "cache[name_of(4)]", len("cache[") + 1),
        context=types.ReferenceContext(include_declaration=True)))
    assert any(r.uri == script for r in references) and len({r.uri for r in references}) > 1, references
