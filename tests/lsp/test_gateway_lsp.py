"""The editor's kernel on a Jupyter gateway (the local Kernel Gateway of tests/gateway_server.py), set with
``tlens.kernel.gateway``: the gateway's kernels are listed and attached by id (live hover, "Reset hooks in
kernel"), a sweep with no kernel starts one there (progress, cancel), and a wrong token or a gateway that
cannot be reached is an error message while the server keeps serving. The token is never in what it sends.
"""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from lsp_server.kernel import KernelBridge
from lsp_server.kernel.gateway import GatewayKernel

from ..gateway_server import free_port
from ..kernel.tiny_models import bridge_setup
from .helpers import hover_text, open_doc, pos_of, sweep_progress_token
from .test_live_lsp import HOOKS_CELL, codes, command
from .test_notebooks import open_notebook, wait_for
from .test_sweep_lsp import SLOW

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def use_gateway(client, url: str, token: str) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"settings": {
        "transformerLensVersion": "4.3.0", "sweep": {"normalize": False}, "kernel": {"gateway": {"url": url, "token": token}}}}))


def never_sent(client, token: str) -> None:
    """The token is in no log message, shown message or notification the server sent."""
    sent = [m.message for m in client.log_messages] + [m.message for m in client.messages]
    sent += [repr(p) for _, p in client.notifications]
    assert not [s for s in sent if token in s]


async def users_notebook_kernel(gateway, code: str) -> KernelBridge:
    """A notebook's kernel on the gateway that ran ``code`` as cells (not silent)."""
    bridge = await KernelBridge.open(await GatewayKernel.start(gateway.config), timeout=120)
    res = await bridge.execute(code, silent=False, timeout=300)
    assert res.ok, res.traceback_text()
    return bridge


async def test_attach_a_gateway_kernel_for_live_hover_and_reset_hooks(client, gateway):
    setup = bridge_setup()
    notebook = await users_notebook_kernel(gateway, setup + "\nlogits, cache = model.run_with_cache(clean_tokens)\n" + HOOKS_CELL)
    try:
        use_gateway(client, gateway.url, gateway.token)
        listed = await command(client, "tlens.listGatewayKernels")
        assert listed["gateway"] == gateway.url and "error" not in listed, listed
        assert notebook.kernel_id in [k["id"] for k in listed["kernels"]]

        status = await command(client, "tlens.attachKernel", {"kernelId": notebook.kernel_id})
        assert "error" not in status, status
        assert (status["gateway"], status["kernelId"], status["owned"], status["connectionFile"]) == (
            gateway.url, notebook.kernel_id, False, None)
        state = await command(client, "tlens.refreshLiveState")
        assert state["status"] == "ready" and [c["var"] for c in state["caches"]] == ["cache"], state

        nb = (client.root / "remote.ipynb").as_uri()
        uris = open_notebook(client, nb, [("code", setup), ("code", "logits, cache = model.run_with_cache(clean_tokens)"),
                                          ("code", "pattern = cache['pattern', 1]")])
        shape = (await notebook.execute("pass", user_expressions={"s": "list(cache['pattern', 1].shape)"})).user_expressions["s"]
        first = (await hover_text(client, uris[2], types.Position(line=0, character=20))).splitlines()[0]
        assert first.endswith(f" · live: `{shape}` float32 cpu"), first

        model_line = setup.splitlines().index(next(l for l in setup.splitlines() if l.startswith("model = ")))
        await wait_for(lambda: ("live-hooks", model_line) in codes(client, uris[0]), 30)
        result = await command(client, "tlens.resetKernelHooks", {"model": "model"})
        assert result["models"] == [{"var": "model", "removed": 1, "permanent_left": 1}], result
        left = await notebook.execute("pass", user_expressions={"n": "len(model.hook_dict['blocks.1.attn.hook_z'].fwd_hooks)"})
        assert left.user_expressions["n"] == "0"
        never_sent(client, gateway.token)
    finally:
        await notebook.shutdown()


async def test_a_sweep_with_no_kernel_starts_one_on_the_gateway_and_cancels(client, gateway):
    use_gateway(client, gateway.url, gateway.token)
    uri = (client.root / "remote_slow.py").as_uri()
    open_doc(client, uri, SLOW)
    at = pos_of(SLOW, "get_act_patch_resid_pre")
    run = asyncio.ensure_future(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="tlens.runSweep", arguments=[{"uri": uri, "line": at.line}])))

    token = await sweep_progress_token(client, 180)
    started = [p for m, p in client.notifications if m == "tlens/kernelStatus" and p.kernelId]
    assert started and started[-1].gateway == gateway.url and started[-1].owned is True
    assert started[-1].kernelId in [k["id"] for k in gateway.kernels()]
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(run, 120)
    assert result.get("partial") is True or result.get("cancelled") is True, result
    if result.get("partial"):
        assert 0 < result["cellsDone"] < result["cellsTotal"] == 4 * 20
    for _ in range(100):  # the kernel survives the cancel
        status = await command(client, "tlens.kernelStatus")
        if status["state"] == "idle":
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "idle" and status["kernelId"] == started[-1].kernelId
    never_sent(client, gateway.token)


@pytest.mark.server_errors(r"refused the token \(HTTP 401 Unauthorized\)", r"cannot reach the Jupyter gateway")
async def test_a_wrong_token_or_an_unreachable_gateway_is_an_error_and_the_server_keeps_serving(client, gateway):
    wrong = "wrong-" + gateway.token[::-1]
    use_gateway(client, gateway.url, wrong)
    listed = await command(client, "tlens.listGatewayKernels")
    assert listed["kernels"] == [] and "refused the token (HTTP 401 Unauthorized)" in listed["error"]
    attached = await command(client, "tlens.attachKernel", {"kernelId": "00000000-0000-4000-8000-000000000000"})
    assert "refused the token (HTTP 401 Unauthorized)" in attached["error"]
    started = await command(client, "tlens.startKernel", {})
    assert "refused the token" in started["error"]

    use_gateway(client, f"http://127.0.0.1:{free_port()}", gateway.token)
    listed = await command(client, "tlens.listGatewayKernels")
    assert "cannot reach the Jupyter gateway" in listed["error"]
    started = await command(client, "tlens.startKernel", {})
    assert "cannot reach the Jupyter gateway" in started["error"]

    uri = (client.root / "still_serving.py").as_uri()
    text = "import torch\nlogits, cache = model.run_with_cache(tokens)\nresid = cache['blocks.0.hook_resid_pre']\n"
    open_doc(client, uri, text)
    assert "`blocks.0.hook_resid_pre`" in await hover_text(client, uri, pos_of(text, "blocks.0", 3))
    assert (await command(client, "tlens.kernelStatus"))["state"] == "none"
    never_sent(client, wrong)
    never_sent(client, gateway.token)
    assert gateway.kernels() == []
