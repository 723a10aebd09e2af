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
from ..kernel.bridge import KernelBridge
from ..kernel.holder import KernelHolder
from ..workspace import View
from .driver import run_sweep
from .errors import SweepCancelled, SweepError
from .extra_kernels import ExtraKernel, ExtraKernels
from .saved import save_result
from .setup_code import SetupCode, SetupStep, run_setup
from .shards import run_sharded_sweep
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


def describe_missing(result: SweepResult, shown: int = 6) -> str:
    """``12 of 192 cells not computed: L2 pos 5, L2 pos 6, … (why)`` for a partial result."""
    cells = result.missing_cells
    names = ", ".join(_cell_label(result, tuple(path)) for path in cells[:shown]) + (", …" if len(cells) > shown else "")
    return (f"{len(cells)} of {result.cells_total} cells not computed: {names} "
            f"({result.error or 'cancelled'}); their values are null in the JSON")


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
    extra: ExtraKernels | None = None,
    kernels: int = 1,
    attached: list[KernelBridge] | None = None,
) -> SweepOutcome:
    """Run ``exp`` as a ``kind`` sweep; raises SweepError / KernelError with a user-facing message.

    With ``kernels`` > 1, ``extra`` starts the kernels beyond the holder's; each runs the file's
    setup code, and the sweep's cells are shared among them all (``shards.py``). The ``attached``
    kernels (the user's, named for this sweep: ``named_kernels.py``) share them too, without setup.

    A kernel we started that no setup has succeeded in yet holds nothing of the user's: when the
    setup code fails it is shut down, so the next attempt starts clean. (In VS Code the extension
    starts the kernel just before the sweep, so "started for this sweep" cannot be told from ``ensure``.)
    """
    from ..render import render_heatmap, render_heatmap_with_layout  # pillow, loaded only when a sweep runs

    started = await holder.ensure(interpreter, workspace_root, log)
    assert holder.bridge is not None
    helpers: list[ExtraKernel] = []
    if extra is not None and kind != "attribution":  # attribution is one forward and backward: nothing to share
        helpers = await extra.ensure(kernels - 1, interpreter, workspace_root, log)
    setup = setup_code(view, exp, file_name)
    setup_ran = await _run_setups(holder, started, extra, helpers, setup, file_name, on_progress, cancel_event, log)
    helpers = [h for h in helpers if extra is not None and h in extra.kernels]  # less those whose setup failed
    spec = SweepSpec(model=exp.model, clean=exp.clean, corrupted=exp.corrupted, kind=kind, metric=exp.metric,
                     normalize=normalize, positions=exp.positions)
    attached = list(attached or []) if kind != "attribution" else []
    if helpers or attached:
        bridges = [holder.bridge] + attached + [h.bridge for h in helpers]
        result = await run_sharded_sweep(bridges, spec, on_progress, cancel_event)
    else:
        result = await run_sweep(holder.bridge, spec, on_progress, cancel_event)
    png, panels = render_heatmap_with_layout(result, size="large")
    hover_png = render_heatmap(result, size="hover")
    png_path, json_path = save_result(result, png, workspace_root)
    return SweepOutcome(result, png, hover_png, png_path, json_path, strongest_cell(result), setup_ran, panels)


async def _run_setups(
    holder: KernelHolder, started: bool, extra: ExtraKernels | None, helpers: list[ExtraKernel], setup: SetupCode,
    file_name: str, on_progress: ProgressCallback | None, cancel_event: asyncio.Event, log: Log,
) -> bool:
    """The file's setup code in every kernel we started that has not run this version of it, all at
    once; the first of them reports its steps. Returns whether it ran in the holder's kernel.

    Raises:
        SweepCancelled / SweepError: in the holder's kernel (an extra kernel whose setup fails is
            shut down, and the sweep goes on without it).
    """
    assert holder.bridge is not None
    key = hashlib.sha256(repr((setup.files, setup.steps)).encode()).hexdigest()
    targets: list[tuple[KernelBridge, set[str]]] = []
    if holder.bridge.owned and key not in holder.setups_run:
        targets.append((holder.bridge, holder.setups_run))
    targets += [(h.bridge, h.setups_run) for h in helpers if key not in h.setups_run]
    if not targets:
        return False
    if targets[0][0] is not holder.bridge:
        where = f"the {len(targets)} kernel{'s' if len(targets) > 1 else ''} started to share the sweep"
    else:
        where = f"the {'new ' if started else ''}kernel" if len(targets) == 1 else f"{len(targets)} kernels"
    log(f"running the setup code of {file_name} ({len(setup.steps)} statements above the experiment) in {where} first")
    t0 = time.monotonic()

    async def step(s: SetupStep, index: int, count: int) -> None:
        detail = f"{setup.describe(s)}: {s.summary}" if s.summary else setup.describe(s)
        await report(on_progress, SweepProgress(index, count, time.monotonic() - t0, None, "setup", detail))

    fresh = not holder.setups_run
    outcomes = await asyncio.gather(*(run_setup(bridge, setup, on_step=step if i == 0 else None,
                                                cancel_event=cancel_event) for i, (bridge, _) in enumerate(targets)))
    for (bridge, runs), outcome in zip(targets, outcomes):
        if outcome.ok:
            runs.add(key)
        elif bridge is not holder.bridge and extra is not None and not outcome.cancelled:
            log(f"the setup code failed in an extra kernel ({outcome.message}); the sweep goes on without it")
            await extra.drop(next(h for h in helpers if h.bridge is bridge))
    if targets[0][0] is not holder.bridge:  # the holder's kernel is attached, or ran this setup already
        if any(o.cancelled for o in outcomes):
            raise SweepCancelled("the sweep was cancelled while the setup code ran.")
        return False
    outcome = outcomes[0]
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
    return True
