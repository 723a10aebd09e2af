"""Run patch sweep from the editor: code action -> command -> kernel -> heatmap in hover and lens.

Real ipykernel started by the server (the test's interpreter, TL 4.x), tiny random model.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_server.kernel import KernelBridge
from lsp_server.protocol import SweepResult

from .helpers import hover_text, open_doc, pos_of, sweep_progress_token

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SCRIPT = '''\
import torch
from transformer_lens import TransformerBridgeConfig, patching
from transformer_lens.model_bridge import TransformerBridge

torch.manual_seed(0)
cfg = TransformerBridgeConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=50, n_ctx=16, act_fn="gelu", seed=0)
model = TransformerBridge.boot_native(cfg)
model.eval()
clean_tokens = torch.tensor([[1, 5, 7, 9, 11, 13]])
corrupted_tokens = torch.tensor([[1, 5, 7, 9, 12, 13]])


def metric(logits):
    return logits[0, -1, 3] - logits[0, -1, 4]


_, clean_cache = model.run_with_cache(clean_tokens)
results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)
'''


async def test_run_sweep_from_code_action(client):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"interpreter": sys.executable, "transformerLensVersion": "4.3.0"}}))
    uri = (client.root / "sweep.py").as_uri()
    open_doc(client, uri, SCRIPT)
    at = pos_of(SCRIPT, "get_act_patch_resid_pre")
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(at, at),
        context=types.CodeActionContext(diagnostics=[])))
    sweep = next(a for a in actions if a.title.startswith("Run patch sweep: residual"))
    assert sweep.command.command == "tlens.runSweep"

    lenses = await client.text_document_code_lens_async(types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    assert [l.command.title for l in lenses] == ["▶ Run patch sweep"] and lenses[0].range.start.line == at.line

    result = await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=sweep.command.command, arguments=sweep.command.arguments)), 240)
    assert "error" not in result, result
    assert result["partial"] is False and result["cellsDone"] == result["cellsTotal"] == 2 * 6
    assert len(result["values"]) == 2 and len(result["values"][0]) == 6

    notes = [p for m, p in client.notifications if m == "tlens/sweepResult"]
    assert notes, "a tlens/sweepResult notification carries the image to the editor"
    sent = set(notes[-1]._fields) if hasattr(notes[-1], "_fields") else set(vars(notes[-1]))
    assert sent == set(SweepResult.__annotations__), sent ^ set(SweepResult.__annotations__)  # lsp_server/protocol.py
    from PIL import Image
    img = Image.open(io.BytesIO(base64.b64decode(notes[-1].png)))
    assert img.width > 200 and img.height > 100
    (panel,) = notes[-1].panels  # cell geometry for the editor's value readout
    assert panel.x + panel.width <= img.width and panel.y + panel.height <= img.height
    assert len(panel["values"] if isinstance(panel, dict) else panel.values) == 2

    states = [p.state for m, p in client.notifications if m == "tlens/kernelStatus"]
    assert "idle" in states

    assert client.progress_reports, "work-done progress was reported"
    text = await hover_text(client, uri, at)
    assert "data:image/png;base64," in text and len(text) < 100_000
    lenses = await client.text_document_code_lens_async(types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    assert lenses[0].command.title.startswith("▶ Run patch sweep · last: L")
    assert client.code_lens_refreshes >= 1

    status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.kernelStatus"))
    assert status["state"] in ("idle", "busy") and status["owned"] is True


SLOW = SCRIPT.replace("n_layers=2", "n_layers=4").replace(
    "clean_tokens = torch.tensor([[1, 5, 7, 9, 11, 13]])", "clean_tokens = torch.arange(1, 21).unsqueeze(0)").replace(
    "corrupted_tokens = torch.tensor([[1, 5, 7, 9, 12, 13]])", "corrupted_tokens = torch.arange(21, 41).unsqueeze(0)").replace(
    "def metric(logits):\n", "def metric(logits):\n    import time; time.sleep(0.1)  # a slow metric: each step outlasts the cancel grace\n").replace(
    "d_vocab=50, n_ctx=16", "d_vocab=50, n_ctx=32")


async def test_cancel_from_the_editor_gives_a_partial_result(client):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"interpreter": sys.executable, "transformerLensVersion": "4.3.0", "sweep": {"normalize": False}}}))
    uri = (client.root / "slow.py").as_uri()
    open_doc(client, uri, SLOW)
    at = pos_of(SLOW, "get_act_patch_resid_pre")
    run = asyncio.ensure_future(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="tlens.runSweep", arguments=[{"uri": uri, "line": at.line}])))

    token = await sweep_progress_token(client)
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(run, 120)
    assert result.get("partial") is True or result.get("cancelled") is True, result
    if result.get("partial"):
        assert 0 < result["cellsDone"] < result["cellsTotal"] == 4 * 20
        note = [p for m, p in client.notifications if m == "tlens/sweepResult"][-1]
        assert note.partial is True
    for _ in range(100):  # the kernel survives the cancel (it may be busy a moment: release, live refresh)
        status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.kernelStatus"))
        if status["state"] == "idle":
            break
        assert status["state"] == "busy", status
        await asyncio.sleep(0.1)
    assert status["state"] == "idle"


WIDE = SLOW.replace("    import time; time.sleep(0.1)  # a slow metric: each step outlasts the cancel grace\n", "")


async def test_a_sweep_shared_among_two_kernels_equals_the_one_kernel_sweep(client):
    uri = (client.root / "wide.py").as_uri()
    open_doc(client, uri, WIDE)
    at = pos_of(WIDE, "get_act_patch_resid_pre")
    # A notebook's kernel that ran the file, named in the list form of the setting.
    notebook = await KernelBridge.start(sys.executable, timeout=120)
    try:
        assert (await notebook.execute(WIDE, timeout=300)).ok
        results = []
        # tlens.sweep.kernels: the server's kernel; it and one more it starts; it and the notebook's kernel
        for kernels in (1, 2, [notebook.connection_file]):
            client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"settings": {
                "interpreter": sys.executable, "transformerLensVersion": "4.3.0",
                "sweep": {"kernels": kernels, "normalize": False}}}))  # raw metric: ≤ 1e-6 (batches differ)
            results.append(await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="tlens.runSweep", arguments=[{"uri": uri, "line": at.line}])), 240))
        assert (await notebook.execute("after_the_sweep = 1")).ok  # the named kernel is only disconnected
    finally:
        await notebook.shutdown()
    one, *shared = results
    for two in shared:
        assert "error" not in two, two
        assert two["partial"] is False and two["cellsDone"] == two["cellsTotal"] == 4 * 20
        assert max(abs(a - b) for ra, rb in zip(one["values"], two["values"]) for a, b in zip(ra, rb)) <= 1e-6
        saved = json.loads(Path(two["jsonPath"]).read_text())
        assert [k["kernel"] for k in saved["kernels"]] == [1, 2] and all(k["error"] is None for k in saved["kernels"])
    logs = [m.message for m in client.log_messages]
    assert any("starting 1 more kernel" in m for m in logs), logs
    assert any("setup code of wide.py" in m and "in the " in m for m in logs)
