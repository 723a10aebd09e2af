"""One sweep over several kernels (lsp_server/sweeps/shards.py), in real TL 4.x kernels.

The cells are shared out as a work queue and merged into the grid one kernel gives; a kernel
killed mid-sweep loses its share to the others; cancel stops them all; when every kernel dies the
result is partial and names the missing cells.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import pytest_asyncio

from lsp_server.sweeps.driver import run_sweep
from lsp_server.sweeps.shards import run_sharded_sweep
from lsp_server.sweeps.spec import SweepSpec

from .exactness import max_abs_diff
from .tiny_models import bridge_setup

pytestmark = [pytest.mark.kernel, pytest.mark.asyncio(loop_scope="module")]

# 4 layers x 48 positions of unrelated random tokens: 192 cells, none skipped. The metric sleeps
# a little per cell so that a sweep lasts long enough to kill a kernel or cancel in the middle.
SETUP = bridge_setup() + '''
import time
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(1)
_hf_big = GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=64, n_head=4, n_positions=128,
                                     vocab_size=len(tokenizer))).eval()
model_big = TransformerBridge.boot_transformers("big", hf_model=_hf_big, tokenizer=tokenizer, device="cpu")
_g = torch.Generator().manual_seed(2)
big_clean = torch.randint(0, 50000, (1, 48), generator=_g)
big_corrupted = torch.randint(0, 50000, (1, 48), generator=_g)
def slow_diff(logits):
    time.sleep(0.01)
    return (logits[:, -1, answer] - logits[:, -1, wrong]).mean()
'''

SPEC = SweepSpec(model="model_big", clean="big_clean", corrupted="big_corrupted", kind="resid_pre", metric="slow_diff")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernels(kernel_factory):
    """Three kernels that ran the same setup code (the third one is killed by a test)."""
    return list(await asyncio.gather(*(kernel_factory.start(setup=SETUP) for _ in range(3))))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def one_kernel_grid(kernels):
    result = await run_sweep(kernels[0], SPEC)
    assert not result.partial and result.cells_done == result.cells_total == 4 * 48
    return result.values


async def pid_of(bridge) -> int:
    res = await bridge.execute("pass", user_expressions={"p": "__import__('os').getpid()"})
    return int(res.user_expressions["p"])


def killer(pids: list[int], at: float):
    """A progress callback that SIGKILLs the kernels ``pids`` once ``at`` of the cells are done."""
    state = {"killed_at": None}

    def on_progress(p) -> None:
        if state["killed_at"] is None and p.total and p.done >= at * p.total:
            state["killed_at"] = p.done
            for pid in pids:
                os.kill(pid, signal.SIGKILL)

    return on_progress, state


async def test_two_kernels_give_the_one_kernel_grid(kernels, one_kernel_grid):
    seen = []
    result = await run_sharded_sweep(kernels[:2], SPEC, on_progress=lambda p: seen.append(p.done))
    assert not result.partial and result.error is None and result.missing_cells == []
    assert max_abs_diff(result.values, one_kernel_grid) <= 1e-6
    shares = [k["cells"] for k in result.kernels]
    assert all(n > 0 for n in shares) and sum(shares) == result.cells_total, result.kernels  # each cell once
    assert seen == sorted(seen) and seen[-1] == result.cells_total  # progress counts both kernels' cells
    assert any("ran on 2 kernels" in n for n in result.notes)


async def test_cancel_stops_every_kernel(kernels):
    cancel = asyncio.Event()

    def on_progress(p) -> None:
        if p.done >= 40:
            cancel.set()

    result = await asyncio.wait_for(run_sharded_sweep(kernels[:2], SPEC, on_progress, cancel), 60)
    assert result.partial and result.error is None
    assert 40 <= result.cells_done < result.cells_total
    flat = [v for row in result.values for v in row]
    assert len(result.missing_cells) == result.cells_total - result.cells_done == flat.count(None)
    assert all(result.values[l][p] is None for l, p in result.missing_cells)
    for bridge in kernels[:2]:  # both stopped and usable: the next sweep runs
        assert bridge.state != "dead"
        assert (await bridge.execute("x_after_cancel = 1")).ok


async def test_a_kernel_killed_midway_loses_its_cells_to_the_other(kernels, one_kernel_grid):
    survivor, victim = kernels[0], kernels[2]
    on_progress, state = killer([await pid_of(victim)], at=0.5)
    result = await asyncio.wait_for(run_sharded_sweep([survivor, victim], SPEC, on_progress), 120)
    assert state["killed_at"] is not None and victim.state == "dead"
    assert not result.partial and result.error is None and result.missing_cells == []
    assert max_abs_diff(result.values, one_kernel_grid) <= 1e-6  # complete and identical
    first, second = result.kernels
    assert first["error"] is None and second["error"].startswith("died") and second["cells"] > 0
    assert first["cells"] + second["cells"] == result.cells_total  # no cell twice, none lost
    assert any("kernel 2 died" in n and "the other kernels ran its cells" in n for n in result.notes)


async def test_every_kernel_dead_gives_a_partial_result_naming_the_missing_cells(kernels):
    on_progress, state = killer([await pid_of(b) for b in kernels[:2]], at=0.3)
    result = await asyncio.wait_for(run_sharded_sweep(kernels[:2], SPEC, on_progress), 120)
    assert state["killed_at"] is not None
    assert result.partial and 0 < result.cells_done < result.cells_total
    assert result.error.startswith("every kernel stopped before the sweep finished: kernel 1 died")
    assert "kernel 2 died" in result.error and "killed by signal 9" in result.error
    missing = {tuple(c) for c in result.missing_cells}
    assert len(missing) == result.cells_total - result.cells_done
    assert {(l, p) for l, row in enumerate(result.values) for p, v in enumerate(row) if v is None} == missing
