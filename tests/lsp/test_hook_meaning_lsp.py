"""hook-meaning end to end over stdio: the diagnostic, the enable_compatibility_mode() quick fix, the hover."""

from __future__ import annotations

from lsprotocol import types

from .helpers import diagnostics_for, hover_text, open_doc, pos_of, quick_fixes

SCRIPT = '''\
from transformer_lens.model_bridge import TransformerBridge


def run(prompt):
    bridge = TransformerBridge.boot_transformers("gpt2", device="cpu")
    logits, cache = bridge.run_with_cache(prompt)
    normed = cache["blocks.5.ln1.hook_normalized"]
    resid = cache["resid_post", 5]
    return normed, resid
'''


async def test_diagnostic_quick_fix_and_hover(client):
    # The default fixture targets TL 2.18, where TransformerBridge does not exist: this code targets 4.3.
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"transformerLensVersion": "4.3.0"}}))
    uri = (client.root / "port.py").as_uri()
    open_doc(client, uri, SCRIPT)
    diagnostics = [d for d in await diagnostics_for(client, uri, version=1) if d.code == "hook-meaning"]
    by_severity = {d.severity: d for d in diagnostics}
    assert len(diagnostics) == 2 and set(by_severity) == {types.DiagnosticSeverity.Warning, types.DiagnosticSeverity.Hint}

    warning = by_severity[types.DiagnosticSeverity.Warning]
    assert warning.range.start == pos_of(SCRIPT, '"blocks.5.ln1.hook_normalized"')
    assert "GPT-2, raw: no enable_compatibility_mode()" in warning.message and "`blocks.5.ln1.hook_out`" in warning.message

    hint = by_severity[types.DiagnosticSeverity.Hint]
    assert hint.range.start == pos_of(SCRIPT, "TransformerBridge.boot_transformers")
    (insert,) = [a for a in await quick_fixes(client, uri, hint) if "enable_compatibility_mode" in a.title]
    (edit,) = insert.edit.changes[uri]
    assert edit.new_text == "\n    bridge.enable_compatibility_mode()" and edit.range.start.line == 4

    text = await hover_text(client, uri, pos_of(SCRIPT, "blocks.5.ln1.hook_normalized", 3))
    assert text.startswith("`blocks.5.ln1.hook_normalized` · `[batch, pos, d_model]`")
    (note,) = [line for line in text.split("\n\n") if line.startswith("⚠")]
    assert "before the LayerNorm weight and bias" in note and "(measured: |Δ|" in note

    # The fix applied: processed compatibility mode, where every name here means what it meant.
    lines = SCRIPT.split("\n")
    fixed = "\n".join(lines[:5] + ["    bridge.enable_compatibility_mode()"] + lines[5:])
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)]))
    assert [d.code for d in await diagnostics_for(client, uri, version=2) if d.code == "hook-meaning"] == []
