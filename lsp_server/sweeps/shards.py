"""One sweep over several kernels: its cells shared out as a work queue, merged into one grid.

    result = await run_sharded_sweep([bridge, helper], spec, on_progress, cancel_event)

Every kernel prepares the sweep (its own clean and corrupted runs). A kernel whose baselines
differ from the first kernel's holds another model (unseeded setup code) and is left out, with a
note. Then each kernel pulls the next chunk of cells whenever it has finished one, so a slower
kernel computes fewer. A kernel that dies hands its unfinished cells back to the queue and the
others run them; a cell counts once (``CellGrid``), so none is computed twice into the result and
none is lost. Cancel interrupts every kernel. When every kernel has stopped, the result is partial:
``missing_cells`` names the cells not computed and ``error`` says why.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass

from ..kernel.bridge import KernelBridge, PayloadCallInterrupted
from ..kernel.errors import KernelDiedError, KernelError, PayloadError
from .driver import cancellable_call, release_sweep
from .errors import SweepCancelled, SweepError
from .grid import CellGrid
from .spec import ProgressCallback, SweepProgress, SweepResult, SweepSpec, report

CHUNKS_PER_KERNEL = 4  # at least this many chunks per kernel, so the queue can even out speeds


@dataclass
class _Kernel:
    number: int  # 1 = the first kernel (the holder's); as messages name it
    bridge: KernelBridge
    prep: dict | None = None
    cells: int = 0  # cells it computed into the result
    error: str | None = None  # why it stopped before the sweep finished

    def share(self) -> dict:
        return {"kernel": self.number, "cells": self.cells, "error": self.error}


class _WorkQueue:
    """The cells no kernel holds yet, in plan order; a kernel's unfinished chunk goes back in front."""

    def __init__(self, cells: list[int], cancel_event: asyncio.Event) -> None:
        self.cells = deque(cells)
        self.cancel_event = cancel_event
        self.held = 0  # chunks out with a kernel: their cells may come back
        self.changed = asyncio.Condition()

    async def take(self, size: int) -> list[int] | None:
        """The next chunk, or None when every cell is done (or the sweep is cancelled)."""
        async with self.changed:
            while not self.cells:
                if self.held == 0 or self.cancel_event.is_set():
                    return None
                await self.changed.wait()
            if self.cancel_event.is_set():
                return None
            chunk = [self.cells.popleft() for _ in range(min(size, len(self.cells)))]
            self.held += 1
            return chunk

    async def give_back(self, unfinished: list[int]) -> None:
        async with self.changed:
            self.cells.extendleft(reversed(unfinished))
            self.held -= 1
            self.changed.notify_all()


class _ShardedSweep:
    """The state one sharded sweep shares among its kernels' workers."""

    def __init__(self, kernels: list[_Kernel], spec: SweepSpec, on_progress: ProgressCallback | None,
                 cancel_event: asyncio.Event, step_seconds: float) -> None:
        self.kernels = kernels
        self.spec = spec
        self.on_progress = on_progress
        self.cancel_event = cancel_event
        self.step_seconds = step_seconds
        self.grace = 2 * step_seconds + 0.5  # a step overshoots its budget by at most one chunk
        self.t0 = time.monotonic()
        self.grid: CellGrid | None = None
        self.queue: _WorkQueue | None = None
        self.chunk_cells = 1
        self.run_t0 = 0.0
        self.done_at_start = 0

    # -- preparation: every kernel, the first one's answer decides

    async def prepare(self) -> dict:
        await report(self.on_progress, SweepProgress(0, 0, 0.0, None, "preparing"))
        first, *others = self.kernels
        outcomes = await asyncio.gather(*(self._prepare_one(k) for k in self.kernels), return_exceptions=True)
        failure = outcomes[0]
        if isinstance(failure, BaseException):
            await self.release()
            if isinstance(failure, PayloadError):
                raise SweepError(str(failure), failure.code, failure.details) from None
            if isinstance(failure, PayloadCallInterrupted):
                if self.cancel_event.is_set():
                    raise SweepCancelled("the sweep was cancelled while it was being prepared.") from None
                raise SweepError("the kernel was interrupted (not by tlens) while the sweep was being prepared.",
                                 "interrupted") from None
            raise failure
        if self.cancel_event.is_set():
            await self.release()
            raise SweepCancelled("the sweep was cancelled while it was being prepared.")
        prep = first.prep
        assert prep is not None
        for k, outcome in zip(others, outcomes[1:]):
            if isinstance(outcome, BaseException):
                k.error = f"could not prepare the sweep: {outcome}"
            elif (why := _disagreement(prep, k.prep or {})) is not None:
                k.error = f"left out: {why}; is the setup code seeded (torch.manual_seed)?"
        return prep

    async def _prepare_one(self, k: _Kernel) -> None:
        await k.bridge.ensure_payload()  # outside the cancellable part: never half-installed
        k.prep = await cancellable_call(k.bridge, "prepare", self.cancel_event, self.grace, spec=self.spec.to_dict())
        # Cells the kernel already computed (its check of the fast path) come with the first collect.
        k.prep["collected"] = await k.bridge.call_payload("collect")
        if k.number == 1:
            k.prep["planned"] = await k.bridge.call_payload("planned")

    # -- running: one worker per kernel pulls chunks from the queue

    async def run(self, prep: dict) -> SweepResult:
        grid = self.grid = CellGrid(prep)
        live = [k for k in self.kernels if k.error is None]
        for k in live:
            k.cells += grid.fill(k.prep["collected"])
        order = [c for c in prep.get("planned", []) if not grid.filled[c]]
        planned = set(order)
        order += [c for c in grid.missing() if c not in planned]
        self.queue = _WorkQueue(order, self.cancel_event)
        self.chunk_cells = max(1, math.ceil(len(order) / (CHUNKS_PER_KERNEL * len(live))))
        self.run_t0, self.done_at_start = time.monotonic(), grid.done
        await report(self.on_progress, grid.progress(self.t0, None, "running"))
        await asyncio.gather(*(self._work(k) for k in live))
        await self.release()
        return grid.result(self.spec, prep, time.monotonic() - self.t0, self._error(), self._notes(prep),
                           [k.share() for k in self.kernels])

    async def _work(self, k: _Kernel) -> None:
        assert self.queue is not None and self.grid is not None
        size = min(self.chunk_cells, k.prep["rows_per_chunk"]) if k.prep else self.chunk_cells
        try:
            while (chunk := await self.queue.take(size)) is not None:
                try:
                    await self._run_chunk(k, chunk)
                finally:
                    await self.queue.give_back([c for c in chunk if not self.grid.filled[c]])
        except KernelDiedError as e:
            k.error = f"died: {e}"
        except KernelError as e:  # PayloadError included
            k.error = f"stopped: {e}"

    async def _run_chunk(self, k: _Kernel, chunk: list[int]) -> None:
        grid = self.grid
        assert grid is not None
        await k.bridge.call_payload("assign", cells=chunk)
        idle_steps = 0
        while not all(grid.filled[c] for c in chunk) and not self.cancel_event.is_set():
            try:
                step = await cancellable_call(k.bridge, "run", self.cancel_event, self.grace,
                                              max_seconds=self.step_seconds)
            except PayloadCallInterrupted:
                # The chunks finished before the interrupt, and the last step's again (its reply may be lost).
                k.cells += grid.fill(await k.bridge.call_payload("collect", resend=True))
                if self.cancel_event.is_set():
                    return
                raise KernelError("the kernel was interrupted (not by tlens)") from None
            k.cells += grid.fill(step)
            idle_steps = 0 if step["cells"] else idle_steps + 1
            if idle_steps >= 2:  # its queue is empty, yet cells of the chunk never came
                raise KernelError("the kernel did not return cells it was given")
            await report(self.on_progress, grid.progress(self.t0, self._eta(), "running"))

    def _eta(self) -> float | None:
        grid = self.grid
        assert grid is not None
        ran = grid.done - self.done_at_start
        if ran <= 0:
            return None
        return (time.monotonic() - self.run_t0) * (grid.total - grid.done) / ran

    # -- the end

    async def release(self) -> None:
        await asyncio.gather(*(release_sweep(k.bridge) for k in self.kernels if k.bridge.state != "dead"))

    def _error(self) -> str | None:
        """Why cells are missing, when it was not a cancel: every kernel stopped."""
        assert self.grid is not None
        if self.grid.complete or self.cancel_event.is_set():
            return None
        stopped = "; ".join(f"kernel {k.number} {k.error}" for k in self.kernels if k.error)
        return f"every kernel stopped before the sweep finished: {stopped}"

    def _notes(self, prep: dict) -> list[str]:
        notes = list(prep.get("notes", []))
        if prep.get("fallback_reason"):
            notes.append(f"slow path: {prep['fallback_reason']}")
        shares = ", ".join(f"kernel {k.number}: {k.cells}" for k in self.kernels)
        same = len(prep["precomputed"]["cells"])
        notes.append(f"ran on {len(self.kernels)} kernels; cells each computed: {shares}"
                     + (f" (the other {same} equal the corrupted run)." if same else "."))
        if self.grid is not None and self.grid.complete:
            notes += [f"kernel {k.number} {k.error}; the other kernels ran its cells." for k in self.kernels if k.error]
        return notes


async def run_sharded_sweep(
    bridges: list[KernelBridge],
    spec: SweepSpec,
    on_progress: ProgressCallback | None = None,
    cancel_event: asyncio.Event | None = None,
    *,
    step_seconds: float = 0.5,
) -> SweepResult:
    """Run ``spec`` with its cells shared among the kernels behind ``bridges`` (the first one leads).

    Same contract as ``driver.run_sweep``; progress counts the cells of every kernel, and a
    kernel that stops (dies, is interrupted) only loses its share to the others.

    Raises:
        SweepError: the first kernel could not prepare the sweep (message from the payload).
        SweepCancelled: cancelled before the preparation finished.
        KernelError: the first kernel died or was unusable before any cell ran.
    """
    spec.validate()
    cancel_event = cancel_event or asyncio.Event()
    if cancel_event.is_set():
        raise SweepCancelled("the sweep was cancelled before it started.")
    kernels = [_Kernel(i + 1, bridge) for i, bridge in enumerate(bridges)]
    sweep = _ShardedSweep(kernels, spec, on_progress, cancel_event, step_seconds)
    prep = await sweep.prepare()
    return await sweep.run(prep)


def _disagreement(first: dict, other: dict) -> str | None:
    """Why another kernel's preparation does not describe the same sweep as the first's, if it does not."""
    for key in ("grid_shape", "total"):
        if first.get(key) != other.get(key):
            return f"its {key} is {other.get(key)}, not {first.get(key)}"
    if sorted(first["precomputed"]["cells"]) != sorted(other.get("precomputed", {}).get("cells", [])):
        return "other cells have identical clean and corrupted activations"
    for key in ("clean_value", "corrupted_value"):
        a, b = first.get(key), other.get(key)
        if (a is None) != (b is None) or (a is not None and abs(a - b) > 1e-4 * (1 + abs(a))):
            return f"its {key.replace('_value', '')} baseline is {b}, not {a}"
    return None
