"""Drive a patching sweep in a kernel: the server-side half of the payload's sweep.

    result = await run_sweep(bridge, SweepSpec(model="model", clean="clean_tokens",
                             corrupted="corr_tokens", answer="' Mary'", wrong="' John'"),
                             on_progress=print, cancel_event=event)
    png = render_heatmap(result)               # lsp_server.render
    png_path, json_path = save_result(result, png, workspace_root)   # saved.py

``run_sweep`` installs the payload (``__tlens__``) once, prepares the sweep in the kernel,
then asks for results in time-budgeted steps so progress streams back. Setting
``cancel_event`` stops the sweep after the step in flight (the kernel is interrupted only if
that step runs on past a short grace); the cells finished so far come back with
``partial=True``. A kernel that dies mid-sweep gives a partial result with ``error`` set.
Problems found before any cell runs (missing variables, bad metric, ...) raise
``SweepError`` with the payload's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

from ..kernel.bridge import KernelBridge, PayloadCallInterrupted
from ..kernel.errors import KernelDiedError, KernelError, PayloadError
from .errors import SweepCancelled, SweepError
from .spec import ProgressCallback, SweepProgress, SweepResult, SweepSpec, report


async def run_sweep(
    bridge: KernelBridge,
    spec: SweepSpec,
    on_progress: ProgressCallback | None = None,
    cancel_event: asyncio.Event | None = None,
    *,
    step_seconds: float = 0.5,
) -> SweepResult:
    """Run ``spec`` in the kernel behind ``bridge``.

    Args:
        bridge: a connected kernel.
        spec: what to patch and how to score it.
        on_progress: called (sync or async) after preparation and after every step.
        cancel_event: set it to stop; the result is partial. A step still running
            ``2 * step_seconds + 0.5`` s after the cancel is interrupted.
        step_seconds: the kernel returns results at least this often (one chunk minimum).

    Raises:
        SweepError: the sweep could not start (message from the payload, e.g. missing variables).
        SweepCancelled: cancelled before the preparation finished.
        KernelError: the kernel died or was unusable before any cell ran.
    """
    spec.validate()
    cancel_event = cancel_event or asyncio.Event()
    if cancel_event.is_set():
        raise SweepCancelled("the sweep was cancelled before it started.")
    t0 = time.monotonic()
    grace = 2 * step_seconds + 0.5  # a step overshoots its budget by at most one chunk
    await report(on_progress, SweepProgress(0, 0, 0.0, None, "preparing"))
    try:
        await bridge.ensure_payload()  # outside the cancellable part: never half-installed
        prep = await _cancellable(bridge, "prepare", cancel_event, grace, spec=spec.to_dict())
    except PayloadError as e:
        raise SweepError(str(e), e.code, e.details) from None
    except PayloadCallInterrupted:
        if not cancel_event.is_set():
            await _release(bridge)
            raise SweepError("the kernel was interrupted (not by tlens) while the sweep was being prepared.",
                             "interrupted") from None
        prep = None
    if prep is None or cancel_event.is_set():  # the interrupt may land after prepare finished
        await _release(bridge)
        raise SweepCancelled("the sweep was cancelled while it was being prepared.")

    grid = _Grid(prep)
    error: str | None = None
    notes: list[str] = list(prep.get("notes", []))
    if prep.get("fallback_reason"):
        notes.append(f"slow path: {prep['fallback_reason']}")
    run_t0 = time.monotonic()
    work_done, work_total = 0, prep.get("work_total", 0)
    await report(on_progress, grid.progress(t0, None, "running"))
    try:
        while not grid.complete and not cancel_event.is_set():
            try:
                step = await _cancellable(bridge, "run", cancel_event, grace, max_seconds=step_seconds)
            except PayloadCallInterrupted:
                # Chunks finished before the interrupt, and the last step's again in case the
                # interrupt cost its reply (cells already filled are not counted twice).
                step = await bridge.call_payload("collect", resend=True)
                grid.fill(step)
                if not cancel_event.is_set():
                    error = "the kernel was interrupted (not by tlens) before the sweep finished."
                break
            grid.fill(step)
            work_done, work_total = step["work_done"], step["work_total"]
            eta = None
            if work_done:
                eta = (time.monotonic() - run_t0) * (work_total - work_done) / work_done
            await report(on_progress, grid.progress(t0, eta, "running"))
    except KernelDiedError as e:
        error = f"the kernel died during the sweep: {e}"
    except PayloadError as e:
        error = f"the sweep stopped: {e}"
    except KernelError as e:
        error = f"the sweep stopped: {e}"
    finally:
        if bridge.state != "dead" and (prep.get("held", True) or not grid.complete or error):
            await _release(bridge)
    return grid.result(spec, prep, time.monotonic() - t0, error, notes)


async def _cancellable(
    bridge: KernelBridge, name: str, cancel_event: asyncio.Event, grace: float, **args: Any
) -> Any:
    """A payload call that stops early when ``cancel_event`` is set meanwhile.

    A call that ends within ``grace`` seconds of the cancel is left to finish: its work is kept
    and no SIGINT lands in ipykernel's own code. A longer one is interrupted.
    """
    call = asyncio.ensure_future(bridge.call_payload(name, **args))
    waiter = asyncio.ensure_future(cancel_event.wait())
    try:
        done, _ = await asyncio.wait({call, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if call not in done:
            await asyncio.wait({call}, timeout=grace)
        if not call.done():
            with contextlib.suppress(KernelError):
                await bridge.interrupt_own()  # never a notebook cell queued before ours
        return await call
    finally:
        waiter.cancel()
        if not call.done():
            call.cancel()


async def _release(bridge: KernelBridge) -> None:
    """Drop the sweep's tensors in the kernel; a late interrupt may hit this call once."""
    for _ in range(2):
        try:
            await bridge.call_payload("release", timeout=30)
            return
        except PayloadCallInterrupted:
            continue
        except KernelError:
            return


class _Grid:
    """Flat store of cell values, reshaped into nested lists at the end."""

    def __init__(self, prep: dict) -> None:
        self.prep = prep
        self.shape = prep["grid_shape"]
        self.flat: list[float | None] = [None] * math.prod(self.shape)
        self.filled = [False] * len(self.flat)
        self.done = 0
        self.total = prep["total"]
        self.fill(prep["precomputed"])

    def fill(self, step: dict) -> None:
        for cell, value in zip(step["cells"], step["values"]):
            if not self.filled[cell]:  # a NaN metric comes back as None but is still done
                self.filled[cell] = True
                self.done += 1
            self.flat[cell] = value

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    def progress(self, t0: float, eta: float | None, phase: str) -> SweepProgress:
        return SweepProgress(self.done, self.total, time.monotonic() - t0, eta, phase)

    def result(
        self, spec: SweepSpec, prep: dict, elapsed: float, error: str | None, notes: list[str]
    ) -> SweepResult:
        clean, corr = prep.get("clean_value"), prep.get("corrupted_value")
        values, head_values = self.flat, prep.get("head_values")
        normalized = False
        if spec.normalize:
            if clean is None or corr is None or abs(clean - corr) < 1e-9:
                notes.append(
                    "not normalised: clean and corrupted baselines are equal "
                    f"({clean} vs {corr}), so (m − corrupted)/(clean − corrupted) is undefined."
                )
            else:
                normalized = True
                values = [_norm(v, clean, corr) for v in values]
                if head_values is not None:
                    head_values = [[_norm(v, clean, corr) for v in row] for row in head_values]
        kind = spec.kind
        cols = prep["head_labels"] if kind == "heads" else prep["pos_labels"]
        if prep.get("n_prompts", 1) > 1 and not prep.get("position_labels"):
            notes.append(f"position labels are the tokens of the first of {prep['n_prompts']} prompts.")
        partial = not self.complete
        return SweepResult(
            kind=kind,
            values=_reshape(values, self.shape),
            row_labels=prep["row_labels"],
            col_labels=cols,
            metric=prep["metric"],
            clean_value=clean,
            corrupted_value=corr,
            normalized=normalized,
            partial=partial,
            cells_done=self.done,
            cells_total=self.total,
            elapsed_s=round(elapsed, 4),
            backend=prep["backend"],
            tl_version=prep["tl_version"],
            device=prep["device"],
            head_labels=prep["head_labels"],
            panel_labels=prep.get("panel_labels"),
            head_values=head_values,
            path=prep.get("path", ""),
            error=error,
            notes=notes,
            position_labels=bool(prep.get("position_labels")),
        )


def _norm(v: float | None, clean: float, corr: float) -> float | None:
    return None if v is None else (v - corr) / (clean - corr)


def _reshape(flat: list, shape: list[int]) -> list:
    if len(shape) == 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]
