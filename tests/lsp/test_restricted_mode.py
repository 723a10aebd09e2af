"""An untrusted workspace (VS Code's Restricted Mode, ``initializationOptions.workspaceTrusted: false``):
static analysis only. Every command that would run code answers why it is unavailable and how to leave
Restricted Mode; no kernel starts, no interpreter the settings name runs; hovers and diagnostics still work.
"""

from __future__ import annotations

import asyncio
import stat

import psutil
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_server.protocol import COMMANDS, RUNS_CODE

from .conftest import SERVER, _client_factory, _fail_on_server_errors, capabilities
from .helpers import diagnostics_for, hover_text, open_doc, pos_of

SCRIPT = '''\
import torch
from transformer_lens import TransformerBridgeConfig, patching
from transformer_lens.model_bridge import TransformerBridge

cfg = TransformerBridgeConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=50, n_ctx=16, act_fn="gelu")
model = TransformerBridge.boot_native(cfg)
clean_tokens = torch.tensor([[1, 5, 7, 9, 11, 13]])
corrupted_tokens = torch.tensor([[1, 5, 7, 9, 12, 13]])


def metric(logits):
    return logits[0, -1, 3] - logits[0, -1, 4]


_, clean_cache = model.run_with_cache(clean_tokens)
typo = clean_cache["blocks.0.hook_resid_pree"]
resid = clean_cache["blocks.1.hook_resid_post"]
results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)
'''


def _fake_python(folder) -> tuple[str, object]:
    """An "interpreter" that only leaves a marker file when something runs it."""
    marker = folder / "interpreter-ran"
    script = folder / "fake-python"
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), marker


def _session(trusted: bool | None):
    """A server session whose editor says the workspace is trusted (True), not (False), or nothing (None)."""

    @pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, client_factory=_client_factory))
    async def session(lsp_client: LanguageClient, tmp_path, request):
        python, lsp_client.marker = _fake_python(tmp_path)
        options: dict = {"settings": {"interpreter": python, "kernel": {"interpreter": python}}}
        if trusted is not None:
            options["workspaceTrusted"] = trusted
        await lsp_client.initialize_session(types.InitializeParams(
            capabilities=capabilities(), root_uri=tmp_path.as_uri(), initialization_options=options))
        lsp_client.root = tmp_path
        yield
        await lsp_client.shutdown_session()
        _fail_on_server_errors(lsp_client, request)

    return session


restricted = _session(False)
trusted = _session(True)
no_trust_field = _session(None)


async def command(client, name: str, args: dict | None = None):
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=[args] if args is not None else []))


def server_children(client) -> list[psutil.Process]:
    return psutil.Process(client._server.pid).children(recursive=True)


async def info(client) -> dict:
    return await command(client, COMMANDS["serverInfo"])


async def test_every_command_that_runs_code_is_refused_with_the_way_out(restricted):
    uri = (restricted.root / "sweep.py").as_uri()
    open_doc(restricted, uri, SCRIPT)
    at = pos_of(SCRIPT, "get_act_patch_resid_pre")
    connection = restricted.root / "kernel-1.json"
    connection.write_text('{"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, '
                          '"ip": "127.0.0.1", "key": "k", "transport": "tcp"}')
    args = {COMMANDS["attachKernel"]: {"connectionFile": str(connection)},
            COMMANDS["runSweep"]: {"uri": uri, "line": at.line, "kind": "resid_pre"}}
    for name in sorted(RUNS_CODE):
        answer = await command(restricted, name, args.get(name, {}))
        assert answer["restricted"] is True, (name, answer)
        assert "unavailable in Restricted Mode" in answer["error"] and "Manage Workspace Trust" in answer["error"], answer
        assert name in answer["error"]
    shown = [m.message for m in restricted.messages if m.type == types.MessageType.Warning]
    assert len([m for m in shown if "Restricted Mode" in m]) == len(RUNS_CODE), shown
    status = await command(restricted, COMMANDS["kernelStatus"])
    assert status["state"] == "none" and status["connectionFile"] is None
    assert server_children(restricted) == [], "the server started a process"
    await asyncio.sleep(1.0)  # a trusted session's initialized has run the interpreter by now (see below)
    assert not restricted.marker.exists(), "the interpreter that the settings name ran"
    assert (await info(restricted))["workspaceTrusted"] is False


async def test_hovers_and_diagnostics_still_work(restricted):
    uri = (restricted.root / "exp.py").as_uri()
    open_doc(restricted, uri, SCRIPT)
    diagnostics = await diagnostics_for(restricted, uri)
    assert any(d.code == "unknown-hook" and "hook_resid_pree" in d.message for d in diagnostics), diagnostics
    text = await hover_text(restricted, uri, pos_of(SCRIPT, "blocks.1.hook_resid_post", 3))
    assert text and "blocks.1.hook_resid_post" in text and "d_model" in text


async def test_sweep_lenses_say_why_and_no_sweep_actions_are_offered(restricted):
    uri = (restricted.root / "sweep.py").as_uri()
    open_doc(restricted, uri, SCRIPT)
    await diagnostics_for(restricted, uri)
    at = pos_of(SCRIPT, "get_act_patch_resid_pre")
    lenses = await restricted.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    assert [l.command.title for l in lenses] == ["Run patch sweep: unavailable in Restricted Mode (this workspace is not trusted)"]
    actions = await restricted.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(at, at),
        context=types.CodeActionContext(diagnostics=[])))
    assert not [a for a in actions or [] if "sweep" in a.title.lower()], actions
    text = await hover_text(restricted, uri, at)
    assert "unavailable in Restricted Mode" in text


async def test_a_trusted_workspace_runs_code_as_before(trusted):
    await _runs_as_before(trusted)


async def test_an_editor_that_sends_no_trust_field_is_trusted(no_trust_field):
    await _runs_as_before(no_trust_field)


async def _runs_as_before(client) -> None:
    uri = (client.root / "sweep.py").as_uri()
    open_doc(client, uri, SCRIPT)
    await diagnostics_for(client, uri)
    # initialized asked the settings' interpreter for its TransformerLens (the marker shows it ran).
    for _ in range(200):
        if client.marker.exists():
            break
        await asyncio.sleep(0.05)
    assert client.marker.exists(), "initialized did not ask the interpreter"
    assert (await info(client))["workspaceTrusted"] is True
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    assert [l.command.title for l in lenses] == ["▶ Run patch sweep"]
    answer = await command(client, COMMANDS["interruptKernel"])  # no kernel: nothing to do, and no refusal
    assert not (isinstance(answer, dict) and answer.get("restricted")), answer
