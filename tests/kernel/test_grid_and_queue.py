"""CellGrid (a cell counts once; missing cells named) and the sharded sweep's work queue (no kernel)."""

from __future__ import annotations

import asyncio

import pytest

from lsp_server.sweeps.grid import CellGrid
from lsp_server.sweeps.runner import describe_missing
from lsp_server.sweeps.shards import _disagreement, _WorkQueue
from lsp_server.sweeps.spec import SweepSpec

PREP = {
    "grid_shape": [2, 3], "total": 6, "precomputed": {"cells": [0], "values": [0.5]},
    "clean_value": 1.0, "corrupted_value": 0.5, "row_labels": ["L0", "L1"], "pos_labels": ["a", "b", "c"],
    "head_labels": ["H0"], "metric": "m", "backend": "HookedTransformer", "tl_version": "2.18", "device": "cpu",
}
SPEC = SweepSpec(model="m", clean="c", corrupted="d", metric="f")


def test_a_cell_counts_once_and_keeps_its_first_value():
    grid = CellGrid(PREP)
    assert grid.fill({"cells": [1, 2], "values": [0.1, 0.2]}) == 2
    assert grid.fill({"cells": [2, 3], "values": [9.0, 0.3]}) == 1  # a re-run cell adds nothing
    assert grid.done == 4 and grid.flat[:4] == [0.5, 0.1, 0.2, 0.3] and grid.missing() == [4, 5]


def test_a_partial_result_names_its_missing_cells_and_keeps_the_grid_shape():
    grid = CellGrid(PREP)
    grid.fill({"cells": [1, 2, 3], "values": [0.1, None, 0.3]})  # None: a NaN metric, computed
    result = grid.result(SPEC, PREP, 1.0, "every kernel stopped before the sweep finished: kernel 1 died", [])
    assert result.partial and result.values == [[0.5, 0.1, None], [0.3, None, None]]
    assert result.missing_cells == [[1, 1], [1, 2]]
    assert describe_missing(result) == ("2 of 6 cells not computed: L1 pos 1, L1 pos 2 (every kernel stopped before "
                                        "the sweep finished: kernel 1 died); their values are null in the JSON")
    grid.fill({"cells": [4, 5], "values": [0.4, 0.6]})
    assert grid.result(SPEC, PREP, 1.0, None, []).missing_cells == []


def test_the_index_paths_of_a_three_axis_grid():
    prep = dict(PREP, grid_shape=[3, 2, 4], total=24, precomputed={"cells": [], "values": []})
    result = CellGrid(prep).result(SPEC, prep, 0.0, None, [])
    assert result.missing_cells[:2] == [[0, 0, 0], [0, 0, 1]] and result.missing_cells[13] == [1, 1, 1]
    assert all(result.values[a][b][c] is None for a, b, c in result.missing_cells)


async def test_the_work_queue_hands_back_a_dead_kernels_cells_first():
    queue = _WorkQueue(list(range(10)), asyncio.Event())
    first, second = await queue.take(4), await queue.take(4)
    assert (first, second) == ([0, 1, 2, 3], [4, 5, 6, 7])
    waiting = asyncio.ensure_future(queue.take(4))  # takes [8, 9]
    assert await waiting == [8, 9]
    late = asyncio.ensure_future(queue.take(4))  # nothing queued, chunks out: it waits
    await asyncio.sleep(0.01)
    assert not late.done()
    await queue.give_back([2, 3])  # the kernel holding the first chunk died after cells 0 and 1
    assert await late == [2, 3]
    for _ in range(3):
        await queue.give_back([])
    assert await queue.take(4) is None  # every chunk done: the workers stop


async def test_the_work_queue_stops_on_cancel():
    cancel = asyncio.Event()
    queue = _WorkQueue(list(range(4)), cancel)
    await queue.take(2)
    cancel.set()
    assert await queue.take(2) is None


def test_a_kernel_with_other_baselines_is_named():
    assert _disagreement(PREP, dict(PREP)) is None
    assert _disagreement(PREP, dict(PREP, clean_value=1.00001)) is None  # another device's rounding
    assert _disagreement(PREP, dict(PREP, clean_value=1.2)) == "its clean baseline is 1.2, not 1.0"
    assert _disagreement(PREP, dict(PREP, grid_shape=[2, 4])) == "its grid_shape is [2, 4], not [2, 3]"
