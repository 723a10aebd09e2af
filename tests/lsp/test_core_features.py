"""End to end over stdio: hover, completion, inlay hints, diagnostics and quick fixes."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from .helpers import diagnostics_for, hover_text, open_doc, pos_of

SCRIPT = '''\
import torch
from transformer_lens import HookedTransformer, utils

model = HookedTransformer.from_pretrained("gpt2-small")
tokens = model.to_tokens("When John and Mary went to the store")
logits, cache = model.run_with_cache(tokens)

resid = cache["resid_post", 5]
pattern = cache["pattern", 3]
last = cache["resid_post", -1]
typo = cache["blocks.0.hook_resid_pree"]
too_far = cache["resid_post", 12]
z = cache[utils.get_act_name("z", 9)]
heads = cache["result", 4]
for layer in range(model.cfg.n_layers):
    scores = cache[f"blocks.{layer}.attn.hook_attn_scores"]
W = model.W_Q
'''


@pytest.fixture
def uri(client):
    return (client.root / "exp.py").as_uri()


async def test_hover_shows_full_name_and_shapes(client, uri):
    open_doc(client, uri, SCRIPT)
    text = await hover_text(client, uri, pos_of(SCRIPT, '"resid_post", 5', 3))
    assert text.startswith("`blocks.5.hook_resid_post` · `[batch, pos, d_model]` = `[batch, pos, 768]`")
    assert "official table" in text
    text = await hover_text(client, uri, pos_of(SCRIPT, '"pattern", 3', 2))
    assert "blocks.3.attn.hook_pattern" in text and "[batch, n_heads, query_pos, key_pos]" in text
    assert "[batch, 12, query_pos, key_pos]" in text


async def test_hover_negative_layer_fstring_and_weights(client, uri):
    open_doc(client, uri, SCRIPT)
    text = await hover_text(client, uri, pos_of(SCRIPT, '"resid_post", -1', 2))
    assert text.startswith("`blocks.11.hook_resid_post`")
    text = await hover_text(client, uri, pos_of(SCRIPT, 'f"blocks.{layer}', 4))
    assert text.startswith("`blocks.{layer}.attn.hook_attn_scores`") and "0–11" in text
    text = await hover_text(client, uri, pos_of(SCRIPT, "W_Q", 1))
    assert "[n_layers, n_heads, d_model, d_head]" in text and "[12, 12, 768, 64]" in text


async def test_hover_on_a_stacking_call_lists_its_components(client, uri):
    src = SCRIPT + "lens, labels = cache.accumulated_resid(layer=2, return_labels=True)\n"
    open_doc(client, uri, src)
    text = await hover_text(client, uri, pos_of(src, "accumulated_resid", 3))
    assert "= `[3, batch, pos, 768]`" in text.splitlines()[0] and "`0_pre`, `1_pre`, `2_pre`" in text


async def test_diagnostics_and_quick_fixes(client, uri):
    open_doc(client, uri, SCRIPT)
    diags = await diagnostics_for(client, uri)
    by_code = {}
    for d in diags:
        by_code.setdefault(d.code, []).append(d)
    assert set(by_code) == {"unknown-hook", "layer-out-of-range", "hook-not-enabled"}, [d.message for d in diags]
    typo = by_code["unknown-hook"][0]
    assert typo.range.start.line == 10 and "Did you mean 'blocks.0.hook_resid_pre'" in typo.message
    assert "12 layers (0–11)" in by_code["layer-out-of-range"][0].message
    assert "use_attn_result" in by_code["hook-not-enabled"][0].message

    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=typo.range,
        context=types.CodeActionContext(diagnostics=[typo])))
    fix = next(a for a in actions if a.title.startswith("Replace with"))
    (edit,) = fix.edit.changes[uri]
    assert edit.new_text == "blocks.0.hook_resid_pre"
    assert edit.range.start == pos_of(SCRIPT, "blocks.0.hook_resid_pree")

    gated = by_code["hook-not-enabled"][0]
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=gated.range,
        context=types.CodeActionContext(diagnostics=[gated])))
    (insert,) = [a for a in actions if "set_use_attn_result" in a.title]
    (edit,) = insert.edit.changes[uri]
    assert edit.new_text == "\nmodel.set_use_attn_result(True)" and edit.range.start.line == 3


async def test_diagnostics_follow_edits(client, uri):
    open_doc(client, uri, SCRIPT)
    await diagnostics_for(client, uri, version=1)
    fixed = SCRIPT.replace("hook_resid_pree", "hook_resid_pre").replace('"resid_post", 12', '"resid_post", 11')
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)]))
    diags = await diagnostics_for(client, uri, version=2)
    assert [d.code for d in diags] == ["hook-not-enabled"]


async def test_suppression_comment(client, uri):
    text = SCRIPT.replace('typo = cache["blocks.0.hook_resid_pree"]', 'typo = cache["blocks.0.hook_resid_pree"]  # tlens: ignore[unknown-hook]')
    open_doc(client, uri, text)
    diags = await diagnostics_for(client, uri)
    assert "unknown-hook" not in {d.code for d in diags}


async def test_completion_inside_cache_key(client, uri):
    text = SCRIPT + 'x = cache["res'
    open_doc(client, uri, text)
    end = pos_of(text, 'cache["res', len('cache["res'), nth=0)
    end = types.Position(line=text.count("\n"), character=len('x = cache["res'))
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=end))
    labels = [i.label for i in result.items]
    assert "hook_embed" in labels and "blocks.11." in labels and "blocks.12." not in labels

    text2 = SCRIPT + 'y = cache["", 3]'
    open_doc(client, uri, text2, version=2)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=text2.count("\n"), character=len('y = cache["'))))
    labels = [i.label for i in result.items]
    assert {"resid_post", "pattern", "attn_out", "z"} <= set(labels)
    assert "rot_q" not in labels  # gpt2 has no rotary embedding

    text3 = SCRIPT + 'w = cache["blocks.4.'
    open_doc(client, uri, text3, version=3)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=text3.count("\n"), character=len('w = cache["blocks.4.'))))
    labels = [i.label for i in result.items]
    assert "blocks.4.attn.hook_pattern" in labels and "blocks.4.hook_resid_post" in labels


async def test_inlay_hints(client, uri):
    open_doc(client, uri, SCRIPT)
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(types.Position(0, 0), types.Position(20, 0))))
    labels = {(h.position.line, h.label) for h in hints}
    assert (7, ": [batch, pos, 768]") in labels
    assert (8, ": [batch, 12, query_pos, key_pos]") in labels
    assert (15, ": [batch, 12, query_pos, key_pos]") in labels


async def test_half_typed_line_keeps_hovers(client, uri):
    broken = SCRIPT.replace("W = model.W_Q", "W = model.W_Q[\nbad = (")
    open_doc(client, uri, broken)
    text = await hover_text(client, uri, pos_of(broken, '"resid_post", 5', 3))
    assert text.startswith("`blocks.5.hook_resid_post`")


async def test_a_gated_hook_hover_agrees_with_the_file(client, uri):
    """`heads = cache["result", 4]` without the flag: "only fires with"; after
    `model.set_use_attn_result(True)` the hover says it fires (it used to keep the warning)."""
    open_doc(client, uri, SCRIPT)
    text = await hover_text(client, uri, pos_of(SCRIPT, '"result", 4', 2))
    assert "Only fires with `use_attn_result=True`" in text
    enabled = SCRIPT.replace("tokens = model.to_tokens", "model.set_use_attn_result(True)\ntokens = model.to_tokens")
    open_doc(client, (client.root / "enabled.py").as_uri(), enabled)
    text = await hover_text(client, (client.root / "enabled.py").as_uri(), pos_of(enabled, '"result", 4', 2))
    assert "Fires: `use_attn_result` is on for `model`." in text and "Only fires" not in text


async def test_a_hover_right_after_an_edit_answers_as_a_fresh_analysis_would(client, uri):
    """A hover sent right after a keystroke (before the re-analysis) on a key the edit cannot change
    gets the previous analysis's answer, at its place in the new text; a key on the edited line gets
    the new text's answer."""
    # Long enough that the re-analysis is still running when the hover arrives.
    script = SCRIPT + "".join(f"rows_{i} = [r * {i} for r in range(10)]\nprint(rows_{i})\n" for i in range(5000))
    open_doc(client, uri, script)
    await diagnostics_for(client, uri, version=1)
    typed = script.replace('pattern = cache["pattern", 3]', 'pattern = cache["pattern", 3] ')
    retyped = typed.replace('"resid_post", 12]', '"resid_post", 11]')
    for version, text in ((2, typed), (3, retyped)):
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        at = pos_of(text, '"result", 4', 2)
        result = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=at))
        assert result.contents.value.startswith("`blocks.4.attn.hook_result`"), result.contents.value
        assert (result.range.start.line, result.range.start.character) == (at.line, at.character - 2)
    edited_key = await hover_text(client, uri, pos_of(retyped, '"resid_post", 11', 3))
    assert edited_key.startswith("`blocks.11.hook_resid_post`"), edited_key
    info = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.serverInfo"))
    assert info["hoversBeforeAnalysis"] >= 1, info  # not waiting for the re-analysis


async def test_requests_waiting_for_the_new_analysis_do_not_hold_up_a_hover(client, uri):
    """After a keystroke an editor asks for inlay hints, code actions and symbols, which need the new analysis;
    a hover sent behind them is still answered at once from the previous one (they used to wait for the
    analysis on the event loop, and the hover behind them)."""
    script = SCRIPT + "".join(f"rows_{i} = [r * {i} for r in range(10)]\nprint(rows_{i})\n" for i in range(5000))
    open_doc(client, uri, script)
    await diagnostics_for(client, uri, version=1)
    typed = script.replace('pattern = cache["pattern", 3]', 'pattern = cache["pattern", 3] ')
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=typed)]))
    doc = types.TextDocumentIdentifier(uri=uri)
    done: list[str] = []

    async def ask(name, request):
        result = await request
        done.append(name)
        return result

    hints = asyncio.ensure_future(ask("hints", client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=doc, range=types.Range(types.Position(0, 0), types.Position(40, 0))))))
    symbols = asyncio.ensure_future(ask("symbols", client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=doc))))
    await asyncio.sleep(0)  # both sent, then the hover
    hover = await ask("hover", client.text_document_hover_async(types.HoverParams(
        text_document=doc, position=pos_of(typed, '"result", 4', 2))))
    await asyncio.gather(hints, symbols)
    assert hover is not None and hover.contents.value.startswith("`blocks.4.attn.hook_result`"), hover
    assert done[0] == "hover", done
    assert any(h.label for h in hints.result()), hints.result()  # answered from the new analysis


async def test_the_server_reports_what_each_diagnostics_run_cost_it(client, uri):
    """tlens.serverInfo lists, per diagnostics run, the milliseconds spent analysing (on the worker) and
    publishing (on the loop): benchmarks tell the server's own time from the JSON-RPC around it."""
    async def timings() -> list:
        info = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.serverInfo"))
        return info["diagnosticsTimings"]

    before = await timings()
    open_doc(client, uri, SCRIPT)
    await diagnostics_for(client, uri, version=1)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=SCRIPT + "\nx = 1\n")]))
    await diagnostics_for(client, uri, version=2)
    after = await timings()
    assert len(after) >= min(len(before) + 2, 512), (before, after)  # (a tokenizer loaded may add a run)
    assert all(analysing > 0 and publishing >= 0 for analysing, publishing in after[-2:]), after


async def test_the_version_a_project_declares_is_the_one_its_code_targets(client):
    """No setting: the server's own TransformerLens is 4.x, but a folder whose requirements pin 2.x
    holds HookedTransformer code, which is right there (and wrong next to it)."""
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"transformerLensVersion": ""}}))
    old = client.root / "replication"
    old.mkdir()
    (old / "requirements.txt").write_text("torch\ntransformer-lens>=2.16,<3\n")
    code = "from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained('gpt2')\n"
    pinned, unpinned = (old / "ioi.py").as_uri(), (client.root / "new.py").as_uri()
    open_doc(client, pinned, code)
    open_doc(client, unpinned, code)
    assert [d.code for d in await diagnostics_for(client, unpinned)] == ["removed-api"]
    assert list(await diagnostics_for(client, pinned)) == []
    info = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="tlens.serverInfo", arguments=[{"uri": pinned}]))
    assert (info["transformerLens"], info["transformerLensSource"]) == ("2.x", "replication/requirements.txt (transformer-lens>=2.16,<3)")


async def test_a_changed_requirements_file_changes_the_version_the_code_targets(client):
    for _ in range(100):  # the server asks the editor to watch the declaring files (after `initialized`)
        if client.registrations:
            break
        await asyncio.sleep(0.05)
    (watch,) = client.registrations
    assert watch.method == "workspace/didChangeWatchedFiles" and "requirements*.txt" in str(watch.register_options)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"transformerLensVersion": ""}}))
    requirements = client.root / "requirements.txt"
    requirements.write_text("transformer-lens>=2.16,<3\n")
    uri = (client.root / "ioi.py").as_uri()
    open_doc(client, uri, "from transformer_lens import HookedTransformer\n")
    assert list(await diagnostics_for(client, uri)) == []
    requirements.write_text("transformer-lens>=4,<5\n")  # ported to TransformerLens 4
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=requirements.as_uri(), type=types.FileChangeType.Changed)]))
    for _ in range(200):
        if [d.code for d in client.diagnostics.get(uri, ())] == ["removed-api"]:
            break
        await asyncio.sleep(0.05)
    assert [d.code for d in client.diagnostics[uri]] == ["removed-api"]
    assert "requirements.txt (transformer-lens>=4,<5)" in client.diagnostics[uri][0].message
