"""Patch sweeps in the editor: the ``tlens.runSweep`` command, its work-done progress (cancellable),
the ``tlens/sweepResult`` notification, the "Run patch sweep" code lenses and code actions, sweep hovers.

The only module of ``lsp_server.sweeps`` that speaks LSP. The commands, notifications and payloads
are declared in :mod:`lsp_server.protocol`; the kernel is the server's (``kernel_commands.py``).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from lsprotocol import types
from pygls.uris import to_fs_path

from ..analysis.experiments import Experiment, experiment_at, find_experiments
from ..handlers import command, handles
from ..kernel.errors import KernelError
from ..kernel_commands import KernelService
from ..protocol import NOTIFICATIONS, SweepResult
from ..workspace import View
from . import history
from .errors import SweepCancelled, SweepError
from .kinds import CODE_ACTION_KINDS, SWEEP_TITLES
from .extra_kernels import ExtraKernels
from .named_kernels import NamedKernel, attached_for_sweep, distinct, lead_of
from .runner import SweepOutcome, describe_missing, strongest_cell, sweep_experiment
from .spec import SweepResult as Numbers

if TYPE_CHECKING:
    from ..server import TlensServer


@dataclass
class StoredSweep:
    outcome: SweepOutcome
    experiment_start: int
    when: float


class SweepService:
    """The server's patch sweeps and their results, keyed by document and experiment line."""

    def __init__(self, ls: "TlensServer", kernel: KernelService):
        self.ls = ls
        self.kernel = kernel
        self.results: dict[tuple[str, int], StoredSweep] = {}
        self.running: asyncio.Task | None = None
        self.extra = ExtraKernels()  # kernels beyond the server's one, for `tlens.sweep.kernels` > 1
        # (a list of running kernels is attached for each sweep and disconnected after it)
        kernel.also_close.append(self.extra.close)

    def display_name(self, uri: str) -> str:
        """A document's (or a cell's notebook's) path relative to the workspace root, as the user knows it."""
        notebook = self.ls.workspace.get_notebook_document(cell_uri=uri)
        path = to_fs_path(notebook.uri if notebook is not None else uri) or uri
        root = self.ls.workspace.root_path
        if root and path.startswith(root.rstrip("/") + "/"):
            return path[len(root.rstrip("/")) + 1:]
        return Path(path).name

    async def run_sweep(self, uri: str, line: int, kind: str | None) -> dict:
        view = await self.ls.current_view(uri)
        if view is None:
            raise SweepError(f"{uri} is not open in the editor.", "not-open")
        exp = experiment_at(view.analysis, view.offset(line, 0)) or _experiment_on_line(view, line)
        if exp is None:
            raise SweepError(
                "no patching experiment here: put the cursor on a transformer_lens.patching call or on a loop "
                "that runs model.run_with_hooks with a hook reading a clean cache and scores the logits.",
                "no-experiment")
        settings = self.ls.settings_for(uri)
        kind = kind or settings.sweep.default_kind
        if kind not in SWEEP_TITLES:
            raise SweepError(f"unknown sweep kind {kind!r}; use one of {', '.join(SWEEP_TITLES)}.", "bad-kind")
        if self.running is not None and not self.running.done():
            raise SweepError("a sweep is already running; cancel it first.", "busy")
        self.running = asyncio.current_task()
        cancel = asyncio.Event()
        token = await self._begin_progress(f"Patch sweep: {SWEEP_TITLES[kind]}", cancel)
        t0 = time.monotonic()

        async def progress(p) -> None:
            self.kernel.progress = {"done": p.done, "total": p.total}
            pct = int(100 * p.done / p.total) if p.total else 0
            eta = f", ~{p.eta_s:.0f} s left" if p.eta_s else ""
            msg = {"preparing": "preparing (clean and corrupted runs)", "cancelling": "cancelling",
                   "setup": f"running setup: {p.detail}"}.get(p.phase, f"{p.done}/{p.total} cells{eta}")
            if token is not None:
                self.ls.work_done_progress.report(token, types.WorkDoneProgressReport(message=msg, percentage=pct, cancellable=True))
            self.kernel.notify_status()

        end_message = "failed"  # every way out ends the editor's progress notification
        kernels = settings.sweep.kernels
        named = [NamedKernel.parse(k) for k in kernels] if isinstance(kernels, tuple) else []
        named = distinct(named, lead_of(self.kernel.holder.bridge))
        try:
            async with attached_for_sweep(named, self.kernel.holder.gateway) as attached:
                outcome = await sweep_experiment(
                    self.kernel.holder, view, exp, kind, self.kernel.workspace_root(uri), self.kernel.interpreter(),
                    progress, cancel, lambda text: self.kernel.message(text), normalize=settings.sweep.normalize,
                    file_name=self.display_name(uri), extra=self.extra,
                    kernels=kernels if isinstance(kernels, int) else 1, attached=attached)
        except asyncio.CancelledError:
            cancel.set()
            end_message = "cancelled"
            raise
        except SweepCancelled as e:
            end_message = f"cancelled: {e}"
            return {"cancelled": True, "message": str(e)}
        except (KernelError, OSError) as e:
            end_message = f"failed: {e}"
            raise
        else:
            status = "PARTIAL — " if outcome.result.partial else ""
            end_message = f"{status}done in {time.monotonic() - t0:.1f} s; strongest: {outcome.summary}"
        finally:
            self._end_progress(token, end_message)
            self.kernel.progress = None
            self.running = None
            self.kernel.notify_status()
        result = outcome.result
        start_line = view.position(exp.start)[0] if view.position(exp.start) else line
        self.results[(uri, start_line)] = StoredSweep(outcome, exp.start, time.time())
        root = self.kernel.workspace_root(uri)
        history.record(root, self.display_name(uri), exp.description, result, outcome.json_path, outcome.png_path,
                       outcome.summary)
        payload = self._result_payload(uri, start_line, kind, exp, outcome)
        self.ls.protocol.notify(NOTIFICATIONS["sweepResult"], payload)
        if outcome.setup_ran:
            self.kernel.message("ran the file's setup code in a fresh kernel before the sweep")
        if result.partial:
            self.kernel.message(f"the sweep is PARTIAL: {describe_missing(result)}", types.MessageType.Warning)
        self._refresh_lenses()
        return {k: v for k, v in payload.items() if k != "png"}

    def _result_payload(self, uri: str, line: int, kind: str, exp: Experiment, outcome: SweepOutcome) -> SweepResult:
        return self._payload(uri, line, exp, outcome.result, outcome.png, outcome.panels, outcome.summary,
                             str(outcome.png_path), str(outcome.json_path))

    def _payload(self, uri: str, line: int, exp: Experiment, r: Numbers, png: bytes, panels: list, summary: str,
                 png_path: str, json_path: str, title: str | None = None) -> SweepResult:
        runs = history.runs_of(self.kernel.workspace_root(uri), self.display_name(uri), exp.description)
        return {
            "uri": uri, "line": line, "kind": r.kind,
            "title": title or f"{SWEEP_TITLES.get(r.kind, r.kind)} — {exp.description}",
            "png": base64.b64encode(png).decode(),
            "values": r.values, "rowLabels": r.row_labels, "colLabels": r.col_labels,
            "panelLabels": r.panel_labels, "headLabels": r.head_labels,
            "pngPath": png_path, "jsonPath": json_path,
            "partial": r.partial, "metric": r.value_label, "summary": summary,
            "cellsDone": r.cells_done, "cellsTotal": r.cells_total, "elapsed": r.elapsed_s,
            "panels": [panel.to_dict() for panel in panels],  # cell boxes in `png`, for the readout
            "history": [run.to_wire(json_path) for run in runs[-history.LISTED:]][::-1],  # newest first
        }

    # -- history: past runs of an experiment, and the difference of the last two

    async def _experiment(self, uri: str, line: int) -> tuple[View, Experiment]:
        view = await self.ls.current_view(uri)
        exp = _experiment_on_line(view, line) if view is not None else None
        if view is None or exp is None:
            raise SweepError(f"no patching experiment on line {line + 1} of {uri}.", "no-experiment")
        return view, exp

    def _rendered(self, uri: str, line: int, exp: Experiment, r: Numbers, json_path: str, png_path: str = "",
                  title: str | None = None) -> SweepResult:
        from ..render import render_heatmap_with_layout  # pillow, loaded only when a heatmap is drawn

        png, panels = render_heatmap_with_layout(r, size="large")
        return self._payload(uri, line, exp, r, png, panels, strongest_cell(r), png_path, json_path, title)

    async def compare(self, uri: str, line: int) -> SweepResult:
        """``tlens.compareSweeps``: latest − previous run of the experiment (same kind and shape), in the panel."""
        _, exp = await self._experiment(uri, line)
        pair = history.previous_pair(history.runs_of(self.kernel.workspace_root(uri), self.display_name(uri), exp.description))
        if pair is None:
            raise SweepError("no earlier run of this experiment of the same kind and shape to compare with.", "no-history")
        previous, latest = pair
        diff = history.difference(history.load(latest.json_path), history.load(previous.json_path))
        title = (f"Δ {SWEEP_TITLES.get(diff.kind, diff.kind)} — {exp.description}: "
                 f"{latest.label().split(' · ')[0]} − {previous.label().split(' · ')[0]}")
        payload = self._rendered(uri, line, exp, diff, latest.json_path, title=title)
        self.ls.protocol.notify(NOTIFICATIONS["sweepResult"], payload)
        return payload

    async def show_run(self, uri: str, line: int, json_path: str) -> SweepResult:
        """``tlens.showSweep``: a past run of the experiment, as the panel shows a result."""
        _, exp = await self._experiment(uri, line)
        runs = history.runs_of(self.kernel.workspace_root(uri), self.display_name(uri), exp.description)
        run = next((r for r in runs if r.json_path == json_path), None)
        if run is None:
            raise SweepError(f"{json_path} is not a saved run of this experiment.", "no-history")
        return self._rendered(uri, line, exp, history.load(run.json_path), run.json_path, run.png_path)

    async def _begin_progress(self, title: str, cancel: asyncio.Event) -> str | None:
        caps = self.ls.client_capabilities
        if not (caps and caps.window and caps.window.work_done_progress):
            return None
        token = f"tlens-sweep-{uuid.uuid4()}"
        try:
            await self.ls.work_done_progress.create_async(token)
        except Exception:
            return None
        loop = asyncio.get_running_loop()
        self.ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=True, percentage=0))
        self.ls.work_done_progress.tokens[token].add_done_callback(lambda _: loop.call_soon_threadsafe(cancel.set))
        return token

    def _end_progress(self, token: str | None, message: str) -> None:
        if token is not None:
            self.ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(token, None)

    def _refresh_lenses(self) -> None:
        caps = self.ls.client_capabilities
        workspace = caps.workspace if caps else None
        if workspace and workspace.code_lens and workspace.code_lens.refresh_support:
            self.ls.workspace_code_lens_refresh(None)

    # -- editor surfaces

    def stored_for(self, view: View, exp: Experiment) -> StoredSweep | None:
        pos = view.position(exp.start)
        return self.results.get((view.uri, pos[0])) if pos else None

    def code_lenses(self, view: View) -> list[types.CodeLens]:
        lenses = []
        for exp in find_experiments(view.analysis):
            pos = view.position(exp.start)
            if pos is None:
                continue
            stored = self.stored_for(view, exp)
            title = "▶ Run patch sweep"
            if not self.ls.trusted:  # the lens stays, to say why; running it answers how to leave Restricted Mode
                title = "Run patch sweep: unavailable in Restricted Mode (this workspace is not trusted)"
            elif stored is not None:
                partial = " (partial)" if stored.outcome.result.partial else ""
                title += f" · last: {stored.outcome.summary}{partial}"
            here = types.Range(types.Position(pos[0], 0), types.Position(pos[0], 0))
            lenses.append(types.CodeLens(range=here, command=types.Command(
                title=title, command="tlens.runSweep", arguments=[{"uri": view.uri, "line": pos[0]}])))
            if stored is not None or self._has_history(view):
                root = self.kernel.workspace_root(view.uri)
                if history.previous_pair(history.runs_of(root, self.display_name(view.uri), exp.description)):
                    lenses.append(types.CodeLens(range=here, command=types.Command(
                        title="⇄ Compare with previous", command="tlens.compareSweeps",
                        arguments=[{"uri": view.uri, "line": pos[0]}])))
        return lenses

    def _has_history(self, view: View) -> bool:
        return (Path(self.kernel.workspace_root(view.uri)) / history.INDEX).is_file()

    def code_actions(self, ls, view: View, params: types.CodeActionParams, start: int, end: int) -> list[types.CodeAction]:
        exp = experiment_at(view.analysis, start)
        if exp is None or not self.ls.trusted:  # the code lens says why there are none
            return []
        pos = view.position(exp.start)
        line = pos[0] if pos else params.range.start.line
        default = self.ls.settings_for(view.uri).sweep.default_kind
        kinds = [default] + [k for k in CODE_ACTION_KINDS if k != default]
        return [
            types.CodeAction(
                title=f"Run patch sweep: {SWEEP_TITLES[k]}",
                kind=types.CodeActionKind.Empty,
                command=types.Command(title=f"Run patch sweep: {SWEEP_TITLES[k]}", command="tlens.runSweep",
                                      arguments=[{"uri": view.uri, "line": line, "kind": k}]),
            )
            for k in kinds
        ]

    def hover(self, view: View, offset: int) -> str | None:
        """The last sweep of the experiment under the cursor, as an inline image."""
        exp = experiment_at(view.analysis, offset)
        if exp is None:
            return None
        first_line_end = view.analysis.source.find(b"\n", exp.start)
        if first_line_end >= 0 and offset > first_line_end and exp.end > first_line_end:
            return None  # only on the experiment's first line: the body has its own hovers
        stored = self.stored_for(view, exp)
        if stored is None and not self.ls.trusted:
            return (f"**Patching experiment** — {exp.description}\n\n"
                    "Patch sweeps are unavailable in Restricted Mode: this workspace is not trusted.")
        if stored is None:
            return (f"**Patching experiment** — {exp.description}\n\n"
                    "Its heatmap shows here after a sweep: ▶ Run patch sweep (the code lens above it, or the light bulb).")
        r = stored.outcome.result
        image = base64.b64encode(stored.outcome.hover_png).decode()
        partial = "**PARTIAL** — " if r.partial else ""
        return (f"**Patch sweep** ({SWEEP_TITLES.get(r.kind, r.kind)}) — {partial}strongest: {stored.outcome.summary}\n\n"
                f"![patch sweep heatmap](data:image/png;base64,{image})\n\n"
                f"*{r.cells_done}/{r.cells_total} cells · {r.elapsed_s:.1f} s · {r.backend} {r.tl_version} on {r.device} · "
                f"values: {r.value_label} · saved to `{stored.outcome.png_path}`*")


def _experiment_on_line(view: View, line: int) -> Experiment | None:
    for exp in find_experiments(view.analysis):
        pos = view.position(exp.start)
        if pos and pos[0] == line:
            return exp
    return None


def register(server: "TlensServer") -> None:
    """Register the sweep command and the sweep code lenses on ``server``."""
    service = server.sweeps

    @command(server, "tlens.runSweep")
    async def run_sweep(ls, args: dict) -> Any:
        if "uri" not in args or "line" not in args:
            service.kernel.message("tlens.runSweep needs {uri, line} (a code lens or code action passes them)",
                                   types.MessageType.Error)
            return {"error": "missing uri/line"}
        return await service.kernel.failing("the patch sweep failed",
                                            service.run_sweep(args["uri"], int(args["line"]), args.get("kind")))

    async def answering(what: str, work: Callable[[], Awaitable]) -> Any:
        try:
            return await work()  # (the arguments are read in there too: a bad line is answered, not raised)
        except (SweepError, ValueError, OSError) as e:
            service.kernel.message(f"{what}: {e}", types.MessageType.Error)
            return {"error": str(e)}

    @command(server, "tlens.compareSweeps")
    async def compare_sweeps(ls, args: dict) -> Any:
        found = await answering("comparing the sweeps failed", lambda: service.compare(args["uri"], int(args["line"])))
        return {k: v for k, v in found.items() if k != "png"}

    @command(server, "tlens.showSweep")
    async def show_sweep(ls, args: dict) -> Any:
        return await answering("showing the saved sweep failed",
                               lambda: service.show_run(args["uri"], int(args["line"]), str(args["jsonPath"])))

    @handles(server, types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False), default=[])
    async def code_lens(ls, params: types.CodeLensParams) -> list[types.CodeLens]:
        view = await ls.current_view(params.text_document.uri)
        return service.code_lenses(view) if view is not None else []
