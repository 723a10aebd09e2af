"""Run a recognised patching experiment in a Jupyter kernel and render the result.

Shared by the language server (code action / code lens / command) and the CLI. Protocol-free:
progress goes to a callback, messages to a logger callback.

Kernel policy: an attached kernel is the user's; its variables (model, prompts, metric) come from
their notebook, and nothing but the sweep runs there. A kernel we start has nothing defined, so
the file's setup code (the top-level code above the experiment) runs first, once per version of
that code, and the user is told so.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Awaitable, Callable

from .analysis.experiments import Experiment, setup_statements
from .analysis.findings import sentence
from .kernel import KernelBridge, list_connection_files, run_setup, run_sweep, save_result
from .kernel.errors import SweepCancelled, SweepError
from .kernel.spec import SweepProgress, SweepResult, SweepSpec
from .kernel.sweeps import SetupCode, SetupStep
from .workspace import View

if TYPE_CHECKING:
    from .render import PanelGeometry

Log = Callable[[str], None]
StateCallback = Callable[[str], None]


@dataclass
class SweepOutcome:
    result: SweepResult
    png: bytes  # large rendering (panel, file)
    hover_png: bytes  # small rendering for hover markdown (data URI under VS Code's 100,000-char cap)
    png_path: Path
    json_path: Path
    summary: str  # "L9 pos 14 = 0.82"
    setup_ran: bool
    panels: list["PanelGeometry"] = field(default_factory=list)  # cell grids of `png`, for the panel's readout


@dataclass
class KernelHolder:
    """The one kernel a server (or a CLI run) talks to: attached, or started by us."""

    on_state: StateCallback | None = None
    bridge: KernelBridge | None = None
    setups_run: set[str] = field(default_factory=set)
    last_error: str | None = None

    @property
    def state(self) -> str:
        return self.bridge.state if self.bridge is not None else "none"

    def status(self) -> dict:
        b = self.bridge
        return {
            "state": self.state,
            "connectionFile": b.connection_file if b is not None else None,
            "owned": b.owned if b is not None else False,
            "detail": self.last_error,
        }

    def _notify(self, state: str) -> None:
        if self.on_state is not None:
            self.on_state(state)

    async def attach(self, connection_file: str) -> None:
        await self.close()
        self.bridge = await KernelBridge.attach(connection_file, on_state=self._notify)
        self.setups_run.clear()

    async def start(self, interpreter: str | None, cwd: str | None) -> None:
        await self.close()
        self.bridge = await KernelBridge.start(interpreter or sys.executable, cwd, on_state=self._notify)
        self.setups_run.clear()

    async def ensure(self, interpreter: str | None, cwd: str | None, log: Log) -> bool:
        """A usable kernel; start one if none is attached. Returns True if it was just started."""
        if self.bridge is not None and self.bridge.state != "dead":
            return False
        if self.bridge is not None:
            log("the kernel died; starting a new one")
        log(f"no kernel attached: starting one with {interpreter or sys.executable}")
        await self.start(interpreter, cwd)
        return True

    async def interrupt(self) -> None:
        if self.bridge is not None:
            await self.bridge.interrupt()

    async def close(self) -> None:
        """Stop a kernel we started; disconnect from an attached one."""
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            await bridge.shutdown()
            self._notify("none")


def connection_file_candidates() -> list[str]:
    return [str(p) for p in list_connection_files()]


def strongest_cell(result: SweepResult) -> str:
    """``L9 pos 14 = 0.82``-style summary of the largest-magnitude cell."""
    best: tuple[float, str] | None = None

    def visit(values, path: tuple[int, ...]) -> None:
        nonlocal best
        if isinstance(values, list):
            for i, v in enumerate(values):
                visit(v, path + (i,))
        elif isinstance(values, (int, float)) and not math.isnan(values):
            if best is None or abs(values) > best[0]:
                best = (abs(values), _cell_label(result, path) + f" = {values:.3g}")

    visit(result.values, ())
    return best[1] if best else "no values"


def _cell_label(result: SweepResult, path: tuple[int, ...]) -> str:
    rows, cols = result.row_labels, result.col_labels
    panels = result.panel_labels or []
    if result.kind in ("block", "attribution") and len(path) == 3:
        panel = panels[path[0]] if path[0] < len(panels) else str(path[0])
        return f"{panel} {rows[path[1]] if path[1] < len(rows) else path[1]} pos {path[2]}"
    if result.kind == "heads_by_pos" and len(path) == 3:
        return f"{rows[path[0]]} pos {path[1]} {result.head_labels[path[2]] if path[2] < len(result.head_labels) else path[2]}"
    if len(path) == 2:
        row = rows[path[0]] if path[0] < len(rows) else str(path[0])
        col = f"pos {path[1]}" if result.kind != "heads" else (cols[path[1]] if path[1] < len(cols) else f"H{path[1]}")
        return f"{row} {col}"
    return "/".join(map(str, path))


def setup_code(view: View, exp: Experiment, name: str) -> SetupCode:
    """The setup statements above ``exp``, located in the file (``name``, as the user knows it) or
    in the notebook cells they were written in (``name, cell 4``)."""
    source = view.analysis.parsed.source
    files: dict[str, str] = {}
    steps: list[SetupStep] = []
    for stmt in setup_statements(view.analysis, exp):
        first, last = stmt.start_point[0], stmt.end_point[0]
        summary = (stmt.text or b"").split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        span = next((c for c in view.cells if c.start_byte <= stmt.start_byte <= c.end_byte), None)
        if span is None:
            label = name
            files.setdefault(label, source.decode("utf-8", "replace"))
        else:
            label = f"{name}, cell {span.number}" if span.number else f"{name}, cell at line {span.start_line + 1}"
            files.setdefault(label, source[span.start_byte:span.end_byte].decode("utf-8", "replace"))
            first, last = first - span.start_line, min(last - span.start_line, span.line_count - 1)
        steps.append(SetupStep(label, first + 1, last + 1, summary if len(summary) <= 60 else summary[:59] + "…"))
    return SetupCode(files, steps)


async def sweep_experiment(
    holder: KernelHolder,
    view: View,
    exp: Experiment,
    kind: str,
    workspace_root: str,
    interpreter: str | None,
    on_progress: Callable[[SweepProgress], Awaitable[None] | None] | None,
    cancel_event: asyncio.Event,
    log: Log,
    normalize: bool = True,
    file_name: str = "this file",
) -> SweepOutcome:
    """Run ``exp`` as a ``kind`` sweep; raises SweepError / KernelError with a user-facing message.

    A kernel we started that no setup has succeeded in yet holds nothing of the user's: when the
    setup code fails it is shut down, so the next attempt starts clean. (In VS Code the extension
    starts the kernel just before the sweep, so "started for this sweep" cannot be told from ``ensure``.)
    """
    from .render import render_heatmap, render_heatmap_with_layout  # pillow, loaded only when a sweep runs

    started = await holder.ensure(interpreter, workspace_root, log)
    assert holder.bridge is not None
    setup_ran = False
    if holder.bridge.owned:
        setup = setup_code(view, exp, file_name)
        key = hashlib.sha256(repr((setup.files, setup.steps)).encode()).hexdigest()
        if key not in holder.setups_run:
            log(f"running the setup code of {file_name} ({len(setup.steps)} statements above the experiment) in the "
                f"{'new ' if started else ''}kernel first")
            t0 = time.monotonic()

            async def step(s: SetupStep, index: int, count: int) -> None:
                if on_progress is not None:
                    detail = f"{setup.describe(s)}: {s.summary}" if s.summary else setup.describe(s)
                    result = on_progress(SweepProgress(index, count, time.monotonic() - t0, None, "setup", detail))
                    if inspect.isawaitable(result):
                        await result

            fresh = not holder.setups_run
            outcome = await run_setup(holder.bridge, setup, on_step=step, cancel_event=cancel_event)
            if not outcome.ok:
                if fresh:
                    await holder.close()
                if outcome.cancelled:
                    raise SweepCancelled("the sweep was cancelled while the setup code ran" +
                                         ("; the kernel started for it was shut down." if fresh else "."))
                how = ("The kernel started for this sweep was shut down. " if fresh else "")
                raise SweepError(f"{sentence(outcome.message)} {how}Fix the setup code, or attach the kernel your notebook "
                                 "uses.", "setup-failed", {"traceback": outcome.traceback, "file": outcome.file,
                                                           "line": outcome.line})
            holder.setups_run.add(key)
            setup_ran = True
    spec = SweepSpec(model=exp.model, clean=exp.clean, corrupted=exp.corrupted, kind=kind, metric=exp.metric,
                     normalize=normalize)
    result = await run_sweep(holder.bridge, spec, on_progress, cancel_event)
    png, panels = render_heatmap_with_layout(result, size="large")
    hover_png = render_heatmap(result, size="hover")
    png_path, json_path = save_result(result, png, workspace_root)
    return SweepOutcome(result, png, hover_png, png_path, json_path, strongest_cell(result), setup_ran, panels)


def default_workspace_root(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))
