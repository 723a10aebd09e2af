"""One sweep shared among running kernels the user names (``tlens-lsp sweep --kernel CONN --kernel CONN2``;
lsp_server/sweeps/named_kernels.py), started here through jupyter_client as a notebook's kernels would be.

They ran the experiment's file already (as a notebook does), so no setup code runs in them; the grid
equals the one-kernel grid, and a named kernel killed mid-sweep loses its cells to the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_asyncio

from lsp_server.sweeps.driver import run_sweep
from lsp_server.sweeps.named_kernels import NamedKernel, attach_named
from lsp_server.sweeps.shards import run_sharded_sweep

from .exactness import max_abs_diff
from .test_sweep_shards import SETUP, SPEC, killer, pid_of

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "tiny_patching.py"
LINE = next(i for i, l in enumerate(EXAMPLE.read_text().splitlines(), 1) if "# sweep here" in l)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def notebooks(kernel_factory):
    """Three kernels that ran the example file and the slow sweep's set-up (the third one is killed)."""
    return list(await asyncio.gather(*(kernel_factory.start(setup=SETUP + EXAMPLE.read_text()) for _ in range(3))))


def sweep(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Raw values: normalising divides by clean - corrupted, which would magnify float32 rounding.
    return subprocess.run([sys.executable, "-m", "lsp_server", "sweep", f"{EXAMPLE.name}:{LINE}", "--out", "map.png",
                           "--raw", *flags], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def saved(run: subprocess.CompletedProcess, cwd: Path) -> dict:
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((cwd / re.search(r"^numbers: (.+)$", run.stdout, re.M).group(1)).read_text())


async def test_two_named_kernels_give_the_one_kernel_grid(tmp_path, notebooks):
    (tmp_path / EXAMPLE.name).write_text(EXAMPLE.read_text())
    first, second = (b.connection_file for b in notebooks[:2])
    one = await asyncio.to_thread(sweep, tmp_path, "--kernel", first)
    two = await asyncio.to_thread(sweep, tmp_path, "--kernel", first, "--kernel", second)
    alone, shared = saved(one, tmp_path), saved(two, tmp_path)
    assert max_abs_diff(shared["values"], alone["values"]) <= 1e-6
    assert alone["kernels"] == [] and [k["kernel"] for k in shared["kernels"]] == [1, 2]
    assert all(k["error"] is None for k in shared["kernels"]) and shared["missing_cells"] == []
    assert f"attached to {second} to share the sweep" in two.stderr and "running setup" not in two.stderr
    assert "note: ran on 2 kernels" in two.stdout
    for bridge in notebooks[:2]:  # the user's kernels outlive the runs
        assert (await bridge.execute("after_the_sweeps = 1")).ok


async def test_a_named_kernel_killed_midway_loses_its_cells_to_the_other(notebooks):
    one_kernel = await run_sweep(notebooks[0], SPEC)
    attached = await attach_named([NamedKernel(connection_file=b.connection_file) for b in (notebooks[0], notebooks[2])],
                                  None)
    try:
        assert not any(b.owned for b in attached)  # attached as the user's kernels, through their connection files
        on_progress, state = killer([await pid_of(attached[1])], at=0.5)
        result = await asyncio.wait_for(run_sharded_sweep(attached, SPEC, on_progress), 120)
    finally:
        await asyncio.gather(*(b.shutdown() for b in attached))
    assert state["killed_at"] is not None
    assert not result.partial and result.error is None and result.missing_cells == []
    assert max_abs_diff(result.values, one_kernel.values) <= 1e-6  # complete and identical
    first, second = result.kernels
    assert first["error"] is None and second["error"].startswith("died") and second["cells"] > 0
    assert first["cells"] + second["cells"] == result.cells_total


async def test_a_named_kernel_that_is_not_running_is_named_in_the_error(tmp_path):
    missing = str(tmp_path / "kernel-gone.json")
    with pytest.raises(Exception) as caught:
        await attach_named([NamedKernel(connection_file=missing)], None)
    assert missing in str(caught.value)
