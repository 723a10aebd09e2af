"""Each workspace folder's own settings (pulled with workspace/configuration): a multi-root workspace
can give one folder its own severities, and a change is pulled again."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from .helpers import open_doc

CODE = '''\
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
logits, cache = model.run_with_cache("hello")
x = cache["resid_post", 50]
'''


async def _published(client, uri: str, expected: list[tuple[str, types.DiagnosticSeverity]]) -> None:
    """Wait until ``uri``'s diagnostics are ``expected`` (the pull answers while documents open)."""
    async def wait():
        while [(d.code, d.severity) for d in client.diagnostics.get(uri, ())] != expected:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), 10)


async def test_each_folder_gets_its_own_settings(client):
    quiet, strict = client.root / "quiet", client.root / "strict"
    for folder in (quiet, strict):
        folder.mkdir()
        (folder / "exp.py").write_text(CODE)
    client.set_configuration({"tlens": {"transformerLensVersion": "2.18.0"}})
    client.set_configuration({"tlens": {"transformerLensVersion": "2.18.0",
                                         "diagnostics": {"severity": {"layer-out-of-range": "hint"}}}},
                             scope_uri=quiet.as_uri())
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event=types.WorkspaceFoldersChangeEvent(
        added=[types.WorkspaceFolder(uri=f.as_uri(), name=f.name) for f in (quiet, strict)], removed=[])))
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    for folder, severity in ((quiet, types.DiagnosticSeverity.Hint), (strict, types.DiagnosticSeverity.Error)):
        open_doc(client, (folder / "exp.py").as_uri(), CODE)
        await _published(client, (folder / "exp.py").as_uri(), [("layer-out-of-range", severity)])

    # The strict folder turns the check off: pulled again on the next change notification.
    client.set_configuration({"tlens": {"transformerLensVersion": "2.18.0", "diagnostics": {"severity": {"layer-out-of-range": "off"}}}},
                             scope_uri=strict.as_uri())
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await _published(client, (strict / "exp.py").as_uri(), [])
    assert [(d.code, d.severity) for d in client.diagnostics[(quiet / "exp.py").as_uri()]] == [
        ("layer-out-of-range", types.DiagnosticSeverity.Hint)]
