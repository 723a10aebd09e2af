"""Run activation-patching sweeps in a kernel and keep what they produce.

    result = await run_sweep(bridge, SweepSpec(model="model", clean="clean_tokens",
                             corrupted="corr_tokens", answer="' Mary'", wrong="' John'"),
                             on_progress=print, cancel_event=event)
    png = render_heatmap(result)               # lsp_server.render
    png_path, json_path = save_result(result, png, workspace_root)

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
import inspect
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable

from .bridge import KernelBridge, PayloadCallInterrupted
from .errors import (
    ExecuteTimeout,
    KernelDiedError,
    KernelError,
    PayloadError,
    SweepCancelled,
    SweepError,
)
from .spec import SweepProgress, SweepResult, SweepSpec

ProgressCallback = Callable[[SweepProgress], "Awaitable[None] | None"]


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
    await _report(on_progress, SweepProgress(0, 0, 0.0, None, "preparing"))
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
    await _report(on_progress, grid.progress(t0, None, "running"))
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
            await _report(on_progress, grid.progress(t0, eta, "running"))
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


async def _report(callback: Callable[..., Any] | None, *args: Any) -> None:
    """Call a progress callback, sync or async."""
    if callback is None:
        return
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


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
        if prep.get("n_prompts", 1) > 1:
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
        )


def _norm(v: float | None, clean: float, corr: float) -> float | None:
    return None if v is None else (v - corr) / (clean - corr)


def _reshape(flat: list, shape: list[int]) -> list:
    if len(shape) == 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


# ---------------------------------------------------------------------------- setup code


@dataclass(frozen=True)
class SetupStep:
    """One top-level statement of the setup code: lines ``first_line..last_line`` of ``file``."""

    file: str
    first_line: int  # 1-based, in the file (or notebook cell) as the user sees it
    last_line: int
    summary: str = ""  # the statement's first line, for progress messages


@dataclass
class SetupCode:
    """Setup code as the user wrote it: the files' texts (by the label they know them by, e.g.
    ``examples/ioi.py`` or ``ioi.ipynb, cell 4``) and the statements to run, in order."""

    files: dict[str, str]
    steps: list[SetupStep]

    @classmethod
    def single(cls, code: str, file: str = "setup code") -> "SetupCode":
        """All of ``code`` as one step (tests and benchmarks set kernels up this way)."""
        return cls({file: code}, [SetupStep(file, 1, max(code.count("\n") + 1, 1))])

    def describe(self, step: SetupStep) -> str:
        """``ioi.py, line 48 of 338`` / ``ioi.ipynb, cell 4, line 2``: where a step is."""
        total = self.files[step.file].count("\n") + 1
        of = f" of {total}" if "cell" not in step.file else ""
        return f"{step.file}, line {step.first_line}{of}"


@dataclass
class SetupResult:
    """Outcome of ``run_setup``.

    Attributes:
        ok: the code ran without an exception.
        message: one line for the user ("setup code failed at ioi.py, line 3: NameError: ...").
        stdout: what the code printed (stdout and stderr).
        traceback: the kernel's traceback, from the user's code on; empty when ok.
        file, line: where the innermost error happened in the user's code, if known.
        cancelled: stopped by ``cancel_event``.
    """

    ok: bool
    message: str
    stdout: str = ""
    traceback: str = ""
    file: str | None = None
    line: int | None = None
    cancelled: bool = False


SetupProgress = Callable[[SetupStep, int, int], "Awaitable[None] | None"]


async def run_setup(
    bridge: KernelBridge,
    setup: SetupCode | str,
    timeout: float | None = None,
    *,
    on_step: SetupProgress | None = None,
    cancel_event: asyncio.Event | None = None,
) -> SetupResult:
    """Execute a file's setup code (imports, model, prompts) in the kernel, statement by statement.

    Runs silently (no notebook output or history). Tracebacks name the user's files and lines.
    On timeout or cancel the kernel is interrupted.

    Args:
        setup: the statements to run; a string is run as one step of a file called "setup code".
        timeout: seconds for the whole setup.
        on_step: called before each step with (step, index, count).
        cancel_event: set it to stop between (or during) steps.
    """
    if isinstance(setup, str):
        setup = SetupCode.single(setup)
    cancel_event = cancel_event or asyncio.Event()
    deadline = None if timeout is None else time.monotonic() + timeout
    output: list[str] = []
    try:
        await bridge.call_payload("setup_begin", files=setup.files)
        for i, step in enumerate(setup.steps):
            if cancel_event.is_set():
                return SetupResult(False, "setup code cancelled", "".join(output), cancelled=True)
            await _report(on_step, step, i, len(setup.steps))
            left = None if deadline is None else max(deadline - time.monotonic(), 0.01)
            call = asyncio.ensure_future(bridge.call_payload(
                "setup_step", timeout=left, file=step.file, first_line=step.first_line, last_line=step.last_line))
            try:
                answer = await _interrupt_on_cancel(bridge, call, cancel_event)
            except PayloadCallInterrupted:
                if cancel_event.is_set():
                    return SetupResult(False, "setup code cancelled", "".join(output), cancelled=True)
                return SetupResult(False, f"setup code was interrupted at {setup.describe(step)}", "".join(output))
            output.append(answer.get("stdout", ""))
    except ExecuteTimeout:
        with contextlib.suppress(KernelError):
            await bridge.interrupt()
        return SetupResult(False, f"setup code did not finish within {timeout:g} s; interrupted it.", "".join(output))
    except PayloadError as e:
        if e.code != "setup-failed":
            return SetupResult(False, f"setup code did not run: {e}", "".join(output))
        file, line = e.details.get("file"), e.details.get("line")
        where = ""
        if line:
            where = f" at line {line}" if len(setup.files) == 1 and file == "setup code" else f" at {file}, line {line}"
        return SetupResult(False, f"setup code failed{where}: {e}", "".join(output) + e.details.get("stdout", ""),
                           e.details.get("traceback", ""), file, line)
    except KernelError as e:
        return SetupResult(False, f"setup code did not run: {e}", "".join(output))
    return SetupResult(True, "setup code ran", "".join(output))


async def _interrupt_on_cancel(bridge: KernelBridge, call: asyncio.Future, cancel_event: asyncio.Event) -> Any:
    """Await a payload call; a cancel interrupts it at once (setup steps may load a model for minutes)."""
    waiter = asyncio.ensure_future(cancel_event.wait())
    try:
        done, _ = await asyncio.wait({call, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if call not in done:
            with contextlib.suppress(KernelError):
                await bridge.interrupt_own()
        return await call
    finally:
        waiter.cancel()


# ---------------------------------------------------------------------------- saving


def save_result(result: SweepResult, png_bytes: bytes, workspace_root: str | Path) -> tuple[Path, Path]:
    """Write ``.tlens/sweeps/<timestamp>-<kind>.png`` and ``.json`` (raw numbers).

    Returns:
        (png_path, json_path).
    """
    folder = Path(workspace_root) / ".tlens" / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{result.kind}"
    n = 1
    while (folder / f"{base}.png").exists() or (folder / f"{base}.json").exists():
        n += 1
        base = f"{stamp}-{result.kind}-{n}"
    png_path, json_path = folder / f"{base}.png", folder / f"{base}.json"
    png_path.write_bytes(png_bytes)
    json_path.write_text(result.to_json(indent=1), encoding="utf-8")
    return png_path, json_path
