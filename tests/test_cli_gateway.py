"""``tlens-lsp sweep --gateway URL [--kernel-id ID]`` against the local Kernel Gateway (tests/gateway_server.py):
a new kernel there runs the file's setup code; an attached one is the user's; a refused token exits non-zero
and says so without printing the token. The ``numbers:`` line and the JSON's ``values`` are as for local runs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.kernel import KernelBridge
from lsp_server.kernel.gateway import GatewayKernel

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "tiny_patching.py"
LINE = next(i for i, l in enumerate(EXAMPLE.read_text().splitlines(), 1) if "# sweep here" in l)


def sweep(tmp_path: Path, *flags: str, token: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JUPYTER_GATEWAY_AUTH_TOKEN": token}
    env.pop("JUPYTER_GATEWAY_URL", None)
    return subprocess.run([sys.executable, "-m", "lsp_server", "sweep", f"{EXAMPLE.name}:{LINE}", "--out", "map.png", *flags],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def saved_values(run: subprocess.CompletedProcess, cwd: Path) -> list:
    assert run.returncode == 0, run.stdout + run.stderr
    numbers = re.search(r"^numbers: (.+)$", run.stdout, re.M).group(1)
    return json.loads((cwd / numbers).read_text())["values"]


def test_a_refused_token_exits_non_zero_and_never_prints_it(tmp_path, gateway):
    shutil.copy(EXAMPLE, tmp_path)
    wrong = "wrong-token-0123456789"
    run = sweep(tmp_path, "--gateway", gateway.url, token=wrong)
    assert run.returncode == 1
    assert "refused the token (HTTP 401 Unauthorized)" in run.stderr and "JUPYTER_GATEWAY_AUTH_TOKEN" in run.stderr
    assert wrong not in run.stdout + run.stderr and gateway.token not in run.stdout + run.stderr
    assert gateway.kernels() == []


def test_new_and_attached_gateway_kernels_give_the_same_grid(tmp_path, gateway):
    shutil.copy(EXAMPLE, tmp_path)
    fresh = sweep(tmp_path, "--gateway", gateway.url, token=gateway.token)
    assert "starting one on the Jupyter gateway at " + gateway.url in fresh.stderr
    assert "running setup" in fresh.stderr
    values = saved_values(fresh, tmp_path)
    assert gateway.kernels() == []  # the kernel the run started is shut down with it

    async def users_kernel() -> KernelBridge:  # a notebook on the gateway that ran the whole file
        bridge = await KernelBridge.open(await GatewayKernel.start(gateway.config), timeout=120)
        res = await bridge.execute(EXAMPLE.read_text(), timeout=300)
        assert res.ok, res.traceback_text()
        return bridge

    async def attached_run() -> tuple[subprocess.CompletedProcess, list]:
        bridge = await users_kernel()
        try:
            run = await asyncio.to_thread(sweep, tmp_path, "--gateway", gateway.url, "--kernel-id", bridge.kernel_id,
                                          token=gateway.token)
            alive = [k["id"] for k in gateway.kernels()]
            assert alive == [bridge.kernel_id]  # the user's kernel outlives the run
            return run, alive
        finally:
            await bridge.shutdown()

    attached, _ = asyncio.run(attached_run())
    assert "running setup" not in attached.stderr
    assert saved_values(attached, tmp_path) == values
    assert len(values) == 4 and all(v is not None for row in values for v in row)


def test_a_gateway_kernel_and_a_local_kernel_share_one_sweep(tmp_path, gateway):
    shutil.copy(EXAMPLE, tmp_path)

    async def run_both() -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
        # Two notebooks that ran the whole file: one on the gateway, one on this machine.
        remote = await KernelBridge.open(await GatewayKernel.start(gateway.config), timeout=120)
        local = await KernelBridge.start(sys.executable, timeout=120)
        try:
            for bridge in (remote, local):
                res = await bridge.execute(EXAMPLE.read_text(), timeout=300)
                assert res.ok, res.traceback_text()
            flags = ("--gateway", gateway.url, "--kernel-id", remote.kernel_id, "--raw")
            alone = await asyncio.to_thread(sweep, tmp_path, *flags, token=gateway.token)
            shared = await asyncio.to_thread(sweep, tmp_path, *flags, "--kernel", local.connection_file,
                                             token=gateway.token)
            assert [k["id"] for k in gateway.kernels()] == [remote.kernel_id]  # the user's kernels outlive the runs
            assert (await local.execute("after_the_sweep = 1")).ok
            return alone, shared
        finally:
            await remote.shutdown()
            await local.shutdown()

    alone, shared = asyncio.run(run_both())
    assert "running setup" not in shared.stderr and "to share the sweep" in shared.stderr
    assert "note: ran on 2 kernels" in shared.stdout
    values, shared_values = saved_values(alone, tmp_path), saved_values(shared, tmp_path)
    assert max(abs(a - b) for ra, rb in zip(values, shared_values) for a, b in zip(ra, rb)) <= 1e-6
