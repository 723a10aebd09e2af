"""The setup code a fresh kernel runs before a sweep: notebooks' Colab cells, the user's line numbers
in errors, and nothing left behind when it fails (progress ended, the kernel shut down).

Real ipykernel started by the server (the test's interpreter, TL 4.x), tiny random model.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from lsprotocol import types

from .helpers import open_doc, pos_of
from .test_notebooks import open_notebook

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

COLAB_CELL = """\
try:
    import google.colab  # noqa
    IN_COLAB = True
except ImportError:
    IN_COLAB = False
if IN_COLAB:
    %pip install transformer_lens
    !pip install circuitsvis
"""
MODEL_CELL = """\
import torch
from transformer_lens import TransformerBridgeConfig, patching
from transformer_lens.model_bridge import TransformerBridge
%matplotlib inline
torch.manual_seed(0)
cfg = TransformerBridgeConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=50, n_ctx=16, act_fn="gelu", seed=0)
model = TransformerBridge.boot_native(cfg)
model.eval()
clean_tokens = torch.tensor([[1, 5, 7, 9, 11, 13]])
corrupted_tokens = torch.tensor([[1, 5, 7, 9, 12, 13]])
"""
EXPERIMENT_CELL = """\
def metric(logits):
    return logits[0, -1, 3] - logits[0, -1, 4]
_, clean_cache = model.run_with_cache(clean_tokens)
results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)
"""


async def _configure(client) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"interpreter": sys.executable, "transformerLensVersion": "4.3.0"}}))


async def _run(client, uri: str, line: int) -> dict:
    return await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="tlens.runSweep", arguments=[{"uri": uri, "line": line}])), 240)


def _progress_messages(client) -> list[str]:
    return [r.message or "" for reports in client.progress_reports.values() for r in reports
            if isinstance(r, (types.WorkDoneProgressReport, types.WorkDoneProgressEnd))]


def _all_progress_ended(client) -> bool:
    return all(reports and isinstance(reports[-1], types.WorkDoneProgressEnd) for reports in client.progress_reports.values())


async def test_colab_setup_cell_runs_in_a_fresh_kernel(client):
    """`if IN_COLAB:` over only `%pip`/`!pip` lines: the block stays valid Python (it used to raise
    IndentationError), and progress names each setup statement in the user's cells."""
    await _configure(client)
    nb = (client.root / "colab.ipynb").as_uri()
    uris = open_notebook(client, nb, [("markdown", "# Setup"), ("code", COLAB_CELL), ("code", MODEL_CELL),
                                      ("code", EXPERIMENT_CELL)])
    result = await _run(client, uris[3], 3)
    assert "error" not in result, result
    assert result["cellsDone"] == result["cellsTotal"] == 12
    messages = _progress_messages(client)
    assert any(m.startswith("running setup: colab.ipynb, cell 2, line 6: if IN_COLAB:") for m in messages), messages
    assert any(m.startswith("running setup: colab.ipynb, cell 3, line 7: model = TransformerBridge.boot_native(cfg)")
               for m in messages), messages
    assert _all_progress_ended(client)


FAILING_SCRIPT = """\
import math

SCALE = 2


def metric(logits):
    return logits[0, -1, 3] - logits[0, -1, 4]


clean_tokens = [[1, 2, 3]]
corrupted_tokens = make_corrupted(clean_tokens)  # NameError on line 11
model = None
_, clean_cache = model.run_with_cache(clean_tokens)
results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)
"""


async def _wait_for_kernel_state(client, state: str, timeout: float = 30) -> dict:
    async def poll():
        while True:
            status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.kernelStatus"))
            if status["state"] == state:
                return status
            await asyncio.sleep(0.1)
    return await asyncio.wait_for(poll(), timeout)


@pytest.mark.server_errors("the patch sweep failed: setup code failed at")
async def test_setup_failure_names_the_users_line_ends_progress_and_stops_the_kernel(client):
    await _configure(client)
    uri = (client.root / "fail.py").as_uri()
    open_doc(client, uri, FAILING_SCRIPT)
    result = await _run(client, uri, pos_of(FAILING_SCRIPT, "results =").line)
    error = result.get("error", "")
    assert "setup code failed at fail.py, line 11: NameError: name 'make_corrupted' is not defined" in error, result
    assert "was shut down" in error
    assert _all_progress_ended(client), client.progress_reports  # no Cancel button left on screen
    await _wait_for_kernel_state(client, "none")  # the kernel started for the sweep is gone
    shown = [p.message for p in client.messages if p.type == types.MessageType.Error]
    assert any("fail.py, line 11" in m for m in shown), shown


@pytest.mark.server_errors("the patch sweep failed: setup code failed at")
async def test_a_kernel_the_editor_started_just_before_a_failed_setup_is_stopped_too(client):
    # VS Code starts the kernel (tlens.startKernel) and then asks for the sweep: the server did not
    # start it for the sweep, but nothing but the failed setup ever ran in it.
    await _configure(client)
    await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="tlens.startKernel", arguments=[{"interpreter": sys.executable}])), 120)
    await _wait_for_kernel_state(client, "idle")
    uri = (client.root / "fail.py").as_uri()
    open_doc(client, uri, FAILING_SCRIPT)
    result = await _run(client, uri, pos_of(FAILING_SCRIPT, "results =").line)
    assert "fail.py, line 11" in result.get("error", "") and "was shut down" in result["error"], result
    await _wait_for_kernel_state(client, "none")


@pytest.mark.server_errors("the patch sweep failed: setup code failed at")
async def test_setup_failure_in_a_notebook_names_the_cell_and_its_line(client):
    await _configure(client)
    nb = (client.root / "broken.ipynb").as_uri()
    broken = MODEL_CELL.replace("clean_tokens = ", "clean_tokens = undefined_helper() or ")
    uris = open_notebook(client, nb, [("code", COLAB_CELL), ("markdown", "text"), ("code", broken),
                                      ("code", EXPERIMENT_CELL)])
    result = await _run(client, uris[3], 3)
    assert "setup code failed at broken.ipynb, cell 3, line 9: NameError: name 'undefined_helper'" in result.get("error", ""), result
    assert _all_progress_ended(client)


SLOW_SETUP = FAILING_SCRIPT.replace("corrupted_tokens = make_corrupted(clean_tokens)  # NameError on line 11",
                                    "import time; time.sleep(60)  # a model load that takes a minute")


async def test_cancel_during_a_long_setup_statement_stops_it_at_once(client):
    await _configure(client)
    uri = (client.root / "slow_setup.py").as_uri()
    open_doc(client, uri, SLOW_SETUP)
    run = asyncio.ensure_future(_run(client, uri, pos_of(SLOW_SETUP, "results =").line))

    async def sleeping_step():
        while True:
            for token, reports in client.progress_reports.items():
                if any("slow_setup.py, line 11 of 15: import time" in (getattr(r, "message", None) or "") for r in reports):
                    return token
            await asyncio.sleep(0.05)

    token = await asyncio.wait_for(sleeping_step(), 60)
    t0 = asyncio.get_running_loop().time()
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(run, 60)
    assert result.get("cancelled") is True and "setup" in result["message"], result
    assert asyncio.get_running_loop().time() - t0 < 15  # not the minute the statement would take
    assert _all_progress_ended(client)
    await _wait_for_kernel_state(client, "none")
