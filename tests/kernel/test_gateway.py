"""Kernels on a Jupyter gateway (a local Kernel Gateway with a token, tests/gateway_server.py): a sweep
there equals the one in a local kernel; progress, cancel, interrupt, restart, attach by id; and the
failures a user meets: wrong token, unreachable host, TLS, a kernel culled mid-use, a gateway that stops.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio

from lsp_server.kernel import KernelBridge, KernelDiedError, KernelError
from lsp_server.kernel.errors import GatewayAuthError, GatewayError
from lsp_server.kernel.gateway import GatewayKernel, list_kernels
from lsp_server.kernel.gateway_config import GatewayConfig
from lsp_server.sweeps.driver import run_sweep
from lsp_server.sweeps.setup_code import run_setup
from lsp_server.sweeps.spec import SweepSpec

from ..gateway_server import LocalGateway, free_port, tls_server
from .test_sweeps_bridge import LONG, LONG_SPEC, run_and_act
from .tiny_models import bridge_setup

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


async def open_gateway_kernel(config: GatewayConfig, setup: str | None = None) -> KernelBridge:
    bridge = await KernelBridge.open(await GatewayKernel.start(config), timeout=120)
    if setup is not None:
        res = await run_setup(bridge, setup, timeout=300)
        assert res.ok, res.message + "\n" + res.traceback
    return bridge


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote(gateway):
    bridge = await open_gateway_kernel(gateway.config, bridge_setup() + LONG)
    yield bridge
    await bridge.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local(kernel_factory):
    return await kernel_factory.start(setup=bridge_setup())


@pytest.mark.parametrize("kind", ["resid_pre", "heads"])
async def test_a_sweep_through_the_gateway_equals_the_local_sweep(remote, local, gateway, kind):
    spec = SweepSpec(model="model", clean="clean_tokens", corrupted="corrupted_tokens", kind=kind, metric="logit_diff")
    there, here = await run_sweep(remote, spec), await run_sweep(local, spec)
    assert not there.partial and there.cells_done == there.cells_total == here.cells_total > 0
    assert there.values == here.values  # same interpreter, same seed: the very same numbers
    assert (remote.owned, remote.gateway, remote.connection_file) == (True, gateway.url, None)
    assert remote.kernel_id in [k["id"] for k in gateway.kernels()]


async def test_progress_and_cancel_through_the_gateway(remote):
    async def cancel(event):
        event.set()

    result, progress = await run_and_act(remote, cancel)
    assert result.partial and result.error is None and 0 < result.cells_done < result.cells_total
    assert [p.done for p in progress if p.phase == "running"] == sorted(p.done for p in progress if p.phase == "running")
    assert (await remote.execute("pass", user_expressions={"x": "__tlens__._SWEEP is None"})).user_expressions["x"] == "True"


async def test_interrupt_goes_through_the_gateway(remote):
    pending = asyncio.create_task(remote.execute("import time; time.sleep(60)"))
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    await remote.interrupt_own()
    res = await asyncio.wait_for(pending, 20)
    assert res.interrupted and time.monotonic() - t0 < 10
    assert (await remote.execute("pass", user_expressions={"x": "1 + 1"})).user_expressions["x"] == "2"


async def test_attach_by_id_lists_and_leaves_the_kernel_running(remote, gateway):
    listed = await list_kernels(gateway.config)
    mine = next(k for k in listed if k["id"] == remote.kernel_id)
    assert mine["name"] == "python3" and mine["executionState"] in ("idle", "busy")
    other = await KernelBridge.open(await GatewayKernel.attach(gateway.config, remote.kernel_id), timeout=60)
    try:
        assert not other.owned and other.kernel_id == remote.kernel_id
        assert (await other.execute("pass", user_expressions={"m": "type(model).__name__"})).user_expressions["m"] == "'TransformerBridge'"
        with pytest.raises(KernelError, match="did not start it"):
            await other.restart()
    finally:
        await other.shutdown()
    assert remote.kernel_id in [k["id"] for k in gateway.kernels()]
    assert (await remote.execute("pass", user_expressions={"x": "2"})).user_expressions["x"] == "2"


async def test_restart_then_a_kernel_culled_mid_use(gateway):
    bridge = await open_gateway_kernel(gateway.config)
    try:
        await bridge.execute("lost = 1")
        await bridge.restart()
        res = await bridge.execute("pass", user_expressions={"x": "lost"})
        assert res.expression_errors["x"].startswith("NameError")
        pending = asyncio.create_task(bridge.execute("import time; time.sleep(60)"))
        await asyncio.sleep(0.5)
        gateway.delete_kernel(bridge.kernel_id)  # what the gateway's idle culler does
        with pytest.raises(KernelDiedError, match=r"is gone from the Jupyter gateway.*culled"):
            await asyncio.wait_for(pending, 20)
        assert bridge.state == "dead"
        with pytest.raises(KernelDiedError, match="culled"):
            await bridge.execute("1")
    finally:
        await asyncio.wait_for(bridge.shutdown(), 20)


async def test_a_wrong_token_is_refused_by_name_and_never_shown(gateway):
    wrong = GatewayConfig(gateway.url, "not-the-token-" + gateway.token[-6:])
    for attempt in (GatewayKernel.start(wrong), list_kernels(wrong), GatewayKernel.attach(wrong, "00000000-0000-4000-8000-000000000000")):
        with pytest.raises(GatewayAuthError, match=r"refused the token \(HTTP 401 Unauthorized\)") as caught:
            await attempt
        assert wrong.token not in str(caught.value) and gateway.token not in str(caught.value)
    assert wrong.token not in repr(wrong) and "token" not in repr(wrong)


async def test_an_unreachable_gateway_is_named_quickly(gateway):
    t0 = time.monotonic()
    with pytest.raises(GatewayError, match=r"cannot reach the Jupyter gateway at http://127\.0\.0\.1:\d+ \(Connection refused\)"):
        await GatewayKernel.start(GatewayConfig(f"http://127.0.0.1:{free_port()}", gateway.token))
    assert time.monotonic() - t0 < 10


async def test_a_tls_error_says_so(gateway):
    with tls_server() as url:
        with pytest.raises(GatewayError, match=r"TLS error talking to the Jupyter gateway at https://.*self-signed certificate"):
            await GatewayKernel.start(GatewayConfig(url, gateway.token))


async def test_a_gateway_that_stops_marks_its_kernel_dead_and_others_keep_working(remote):
    second = await asyncio.to_thread(LocalGateway().start)
    try:
        bridge = await open_gateway_kernel(second.config)
        pending = asyncio.create_task(bridge.execute("import time; time.sleep(60)"))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(second.stop, False)
        with pytest.raises(KernelDiedError, match=r"gateway at http://127\.0\.0\.1:\d+.*(does not answer|culled)"):
            await asyncio.wait_for(pending, 30)
        await asyncio.wait_for(bridge.shutdown(), 20)
    finally:
        await asyncio.to_thread(second.stop, False)
    # Two gateways, two tokens in one process: the first gateway's kernel is untouched.
    assert (await remote.execute("pass", user_expressions={"x": "3"})).user_expressions["x"] == "3"
    await remote.interrupt()
