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
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..analysis.experiments import Experiment, setup_statements
from ..analysis.findings import sentence
from ..kernel.holder import KernelHolder
from ..workspace import View
from .driver import run_sweep
from .errors import SweepCancelled, SweepError
from .saved import save_result
from .setup_code import SetupCode, SetupStep, run_setup
from .spec import ProgressCallback, SweepProgress, SweepResult, SweepSpec, report

if TYPE_CHECKING:
    from ..render import PanelGeometry

Log = Callable[[str], None]


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
    on_progress: ProgressCallback | None,
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
    from ..render import render_heatmap, render_heatmap_with_layout  # pillow, loaded only when a sweep runs

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
                detail = f"{setup.describe(s)}: {s.summary}" if s.summary else setup.describe(s)
                await report(on_progress, SweepProgress(index, count, time.monotonic() - t0, None, "setup", detail))

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
                     normalize=normalize, positions=exp.positions)
    result = await run_sweep(holder.bridge, spec, on_progress, cancel_event)
    png, panels = render_heatmap_with_layout(result, size="large")
    hover_png = render_heatmap(result, size="hover")
    png_path, json_path = save_result(result, png, workspace_root)
    return SweepOutcome(result, png, hover_png, png_path, json_path, strongest_cell(result), setup_ran, panels)

