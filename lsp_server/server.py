"""The language server: thin pygls wiring from LSP messages to the analysis and features.

Concurrency model: every handler runs on the asyncio loop. Analyses are memoised per document
version, so hover/completion on an unchanged document only look up a snapshot. Diagnostics are
published after edits, coalesced (a burst of didChange messages is analysed once), from an analysis
that runs on one worker thread: meanwhile the loop keeps answering, and a hover the edit cannot have
changed is answered from the previous analysis. A request that needs the new analysis awaits it from the
worker (:meth:`TlensServer.current_view`), never holding up the loop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from . import __version__, hovers, kernel_commands, live, live_pictures, navigate
from .analysis.document import AnalysisContext
from .collection import IdleCollection
from .features import code_actions, convert
from .features.completion import completions
from .features.inlay_hints import inlay_hints
from .features.token_loading import BackgroundTokenizers
from .handlers import command, handles
from .knowledge import versions
from .knowledge.project_versions import DECLARING, declared_version
from .knowledge.resolve import resolve_model_name
from .live import LiveService
from .open_documents import lsp_workspace, open_document, open_uris
from .editor_modules import editor_modules, local_path
from .modules import stale_readers
from .configuration import Configuration
from .settings import Settings
from .sweeps import lsp as sweeps_lsp
from .transport import TlensProtocol
from .trust import workspace_trusted
from .workspace import CellText, View, Workspace, findings_in
from .workspace_index import WorkspaceIndex

log = logging.getLogger(__name__)

NOTEBOOK_SYNC = types.NotebookDocumentSyncOptions(
    notebook_selector=[
        types.NotebookDocumentFilterWithCells(
            notebook="jupyter-notebook", cells=[types.NotebookCellLanguage(language="python")]
        )
    ],
    save=True,
)


class TlensServer(LanguageServer):
    """Server state: settings, the TransformerLens version in use, and the analysis cache."""

    def __init__(self) -> None:
        super().__init__("tlens-lsp", __version__, notebook_document_sync=NOTEBOOK_SYNC, protocol_cls=TlensProtocol)
        self.configuration = Configuration(self)
        self.trusted = True  # False in an untrusted workspace (trust.py): static analysis only, no code runs
        # TL installed where the code runs: the server's environment, or the kernel
        # interpreter's once it has been asked (see `initialized`).
        self.installed_tl: versions.TLVersion | None = versions.in_this_environment()
        # Open documents, and the workspace's other files (imported modules, references): one lock, as
        # an analysis of one may read the other.
        lock = threading.RLock()
        self.workspace_cache = Workspace(self.analysis_context, lock=lock)
        self.disk_cache = Workspace(self.analysis_context, lock=lock)
        self.modules = editor_modules(self)
        self.index = WorkspaceIndex(self)  # the workspace's files, analysed in the background
        self._pending: dict[str, asyncio.Task] = {}
        # What was last sent per document: a notebook edit re-sends only the cells it changed.
        self._published: dict[str, tuple[int | None, list[types.Diagnostic]]] = {}
        self.tokenizers = BackgroundTokenizers(self)  # never waits; re-publishes when a load finishes
        self.hovers_before_analysis = 0  # answered from the previous analysis right after an edit
        # The last diagnostics runs: (seconds analysing on the worker, seconds publishing on the loop), so that a
        # benchmark can tell the server's own time from the JSON-RPC around it (tlens.serverInfo).
        self.diagnostics_timings: deque[tuple[float, float]] = deque(maxlen=512)
        self.idle_collection = IdleCollection()  # the cycle collector's full runs wait for a pause
        self.analysis_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tlens-analysis")
        # While the worker analyses, the loop needs the GIL back quickly to answer (default: every 5 ms).
        sys.setswitchinterval(0.0005)
        self.kernel = kernel_commands.KernelService(self)  # the one kernel, attached or started
        self.sweeps = sweeps_lsp.SweepService(self, self.kernel)  # patch sweeps and their results
        self.live = LiveService(self)  # what the kernel holds, asked after each execution
        self.pictures = live_pictures.PictureService(self)  # hover pictures of live tensors
        # Code actions beyond the findings' quick fixes: (server, view, params, start, end) -> actions.
        self.code_action_providers = [self.sweeps.code_actions, self.live.code_actions]

    @property
    def settings(self) -> Settings:
        """The settings the editor pushed (kernels, which serve every folder, read these)."""
        return self.configuration.pushed

    def settings_for(self, uri: str | None) -> Settings:
        return self.configuration.for_uri(uri)

    def tl_version(self, uri: str | None = None) -> versions.TLVersion | None:
        """The TL version the code of ``uri`` targets: the user's setting, else the attached kernel's
        (the code really runs there), else the one its project declares (requirements, pyproject, lock
        file, from its folder up to the workspace root), else the installed one."""
        setting = versions.from_string(self.settings_for(uri).transformer_lens_version or "", "the setting tlens.transformerLensVersion")
        live = self.live.kernel_tl_version()
        return setting or live or self._declared_version(uri) or self.installed_tl

    def _declared_version(self, uri: str | None) -> versions.TLVersion | None:
        path = to_fs_path(uri) if uri and uri.startswith("file:") else None
        if not path:
            return None
        root = to_fs_path(self.workspace.root_uri) if self.workspace.root_uri else None
        return declared_version(Path(path).parent, Path(root) if root else None)

    def analysis_context(self, uri: str | None = None) -> AnalysisContext:
        tl = self.tl_version(uri)
        context = AnalysisContext(
            tl_major=tl.major if tl else None,
            tl_label=tl.label if tl else None,
            tl_version=tl.version if tl else None,
            resolve_model=resolve_model_name,
            tokenizer_for=self.tokenizers,
            links=self.modules.links(local_path(uri)),
        )
        return self.live.extend(context)

    # -- workspace modules

    def edited_in_editor(self, uri: str) -> None:
        """An open file's text changed (opened, edited, closed): the workspace's imports may have."""
        if (path := local_path(uri)) is not None:
            self.modules.edited(path)

    def reanalyse_readers(self, uri: str, typing: bool) -> None:
        """``uri`` changed (in the editor when ``typing``, else on disk): re-publish the open documents whose
        analyses that makes stale (they read it, import a module whose analysis read it, or asked who imports
        a module it now imports or no longer does), and have the index analyse the workspace's other such files
        again, once the typing stops."""
        path = local_path(uri)
        if path is None:
            return
        readers = stale_readers([self.workspace_cache, self.disk_cache], path)
        for cache, reader_uri, _ in readers:
            cache.expire(reader_uri)
        stale_open = {u for cache, u, _ in readers if cache is self.workspace_cache} | set(self.workspace_cache.stale())
        for dependent in stale_open - {uri}:
            self.schedule_diagnostics(dependent)
        self.index.reanalyse([p for cache, _, p in readers if cache is self.disk_cache], after_typing=typing)

    # -- views

    def _analysis_of(self, uri: str) -> Callable[..., list[View] | None] | None:
        """The texts ``uri``'s analysis is made of (the file itself, or all cells of its notebook), read now (on
        the event loop), and a function that analyses them into every view sharing that analysis (safe on any
        thread: the workspace cache locks); called with ``ready_only=True``, it answers None instead of
        analysing, and never waits."""
        notebook = self.workspace.get_notebook_document(cell_uri=uri) or self.workspace.get_notebook_document(notebook_uri=uri)
        if notebook is not None:
            notebook_uri, cells = notebook.uri, self.code_cells(notebook)
            return lambda ready_only=False: self.workspace_cache.notebook_views(notebook_uri, cells, ready_only)
        doc = open_document(self.workspace, uri)
        if doc is None:
            return None
        source, version = doc.source, doc.version

        def analyse(ready_only: bool = False) -> list[View] | None:
            view = self.workspace_cache.text_view(uri, source, version, ready_only)
            return [view] if view is not None else None
        return analyse

    def code_cells(self, notebook: types.NotebookDocument) -> list[CellText]:
        """The notebook's code cells in analysis order: as they stand, or in the order the kernel
        ran them once every cell has run."""
        code = [(i, c) for i, c in enumerate(notebook.cells, start=1) if c.kind == types.NotebookCellKind.Code]
        orders = [c.execution_summary.execution_order if c.execution_summary else None for _, c in code]
        if None not in orders and len(set(orders)) == len(orders):
            code = [pair for _, pair in sorted(zip(orders, code), key=lambda item: item[0])]
        docs = [(number, cell.document, open_document(self.workspace, cell.document)) for number, cell in code]
        return [CellText(uri, doc.source, doc.version, number) for number, uri, doc in docs
                if doc is not None]  # None: a cell the editor never sent

    async def current_view(self, uri: str) -> View | None:
        """``uri``'s view of its text as it stands now, analysed on the worker if it is not yet: meanwhile the
        event loop goes on reading messages (a hover right after a keystroke is answered from the previous
        analysis) instead of waiting for the analysis's lock."""
        analyse = self._analysis_of(uri)
        if analyse is None:
            return None
        views = analyse(ready_only=True)
        if views is None:
            views = await asyncio.get_running_loop().run_in_executor(self.analysis_worker, analyse)
        return next((v for v in views if v.uri == uri), None)

    # -- diagnostics

    def schedule_diagnostics(self, uri: str) -> None:
        """Publish diagnostics for ``uri`` once the messages already queued have been handled."""
        key = self._diagnostics_key(uri)
        pending = self._pending.pop(key, None)
        if pending is not None:
            pending.cancel()
        self._pending[key] = asyncio.get_event_loop().create_task(self._publish_soon(key, uri))

    def _diagnostics_key(self, uri: str) -> str:
        notebook = self.workspace.get_notebook_document(cell_uri=uri)
        return notebook.uri if notebook is not None else uri

    async def _publish_soon(self, key: str, uri: str) -> None:
        await asyncio.sleep(0)  # let queued didChange messages cancel us first
        try:
            analyse = self._analysis_of(uri)
            if analyse is not None:
                loop = asyncio.get_running_loop()
                views, analysed = await loop.run_in_executor(self.analysis_worker, _timed, analyse)
                started = time.perf_counter()
                self._publish(views)
                self.diagnostics_timings.append((analysed, time.perf_counter() - started))
                loop.run_in_executor(self.analysis_worker, self.workspace_cache.release_retired)
        except asyncio.CancelledError:
            raise  # a newer edit: its own run publishes
        except Exception:
            self.report_error("publishing diagnostics")
        finally:
            if self._pending.get(key) is asyncio.current_task():
                self._pending.pop(key, None)
            self.idle_collection.after_work()

    def _publish(self, views: list[View]) -> None:
        """Send each view's diagnostics, unless the editor already has them for that version (one cell
        edit of a 200-cell notebook sends that cell and the cells whose diagnostics it changed, first
        the edited cell)."""
        changed = []
        # The views are one file or one notebook's cells: one folder, one set of settings.
        settings = self.settings_for(views[0].uri) if views else None
        for view in views:
            diagnostics = [d for f in findings_in(view) if (d := convert.diagnostic(view, f, settings)) is not None]
            version = doc.version if (doc := open_document(self.workspace, view.uri)) is not None else None
            last = self._published.get(view.uri)
            if last is not None and last == (version, diagnostics):
                continue
            changed.append((last is not None and last[0] == version, view.uri, version, diagnostics))
        for _, uri, version, diagnostics in sorted(changed, key=lambda c: c[0]):  # new versions first
            self._published[uri] = (version, diagnostics)
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version))

    def clear_diagnostics(self, uri: str) -> None:
        self._published.pop(uri, None)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    # -- navigation

    def all_views(self) -> Callable[[], list[View]]:
        """Views of every open document and of the workspace's other Python files (for references):
        the open texts are read now, on the event loop; the returned function analyses (any thread)."""
        jobs, seen = [], set()
        for notebook in list(self.workspace.notebook_documents.values()):
            jobs.append(self._analysis_of(notebook.uri))
            seen.add(notebook.uri)
        for uri in open_uris(self.workspace):
            if self.workspace.get_notebook_document(cell_uri=uri) is None:
                jobs.append(self._analysis_of(uri))
                seen.add(uri)
        return lambda: [v for job in jobs if job is not None for v in job()] + self.index.disk_views(seen)

    async def watch_declaring_files(self) -> None:
        """Ask the editor to tell us when a file that declares the TransformerLens version changes, and when
        a Python file is created, deleted or saved (imports between the workspace's files)."""
        caps = self.client_capabilities.workspace if self.client_capabilities else None
        watched = caps.did_change_watched_files if caps else None
        if not (watched and watched.dynamic_registration):
            return
        pattern = "**/{" + ",".join(DECLARING) + ",requirements*.txt}"
        options = types.DidChangeWatchedFilesRegistrationOptions(watchers=[
            types.FileSystemWatcher(glob_pattern=pattern), types.FileSystemWatcher(glob_pattern="**/*.py")])
        try:
            await self.client_register_capability_async(types.RegistrationParams(registrations=[types.Registration(
                id="tlens-declaring-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options)]))
        except Exception as e:  # the editor said no: versions are read again on the next edit
            log.info("could not watch the files that declare the TransformerLens version: %s", e)

    def reanalyse_all(self) -> None:
        """Every analysis may be stale (settings, the TransformerLens version, a declaring file changed)."""
        self.workspace_cache.invalidate()
        self.disk_cache.invalidate()
        for uri in open_uris(self.workspace):
            self.schedule_diagnostics(uri)
        self.index.start()

    # -- settings

    def report_error(self, what: str) -> None:
        """Log a traceback and tell the user once, briefly; the server keeps serving."""
        detail = traceback.format_exc()
        log.error("%s failed:\n%s", what, detail)
        self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=f"{what} failed:\n{detail}"))


def _timed(analyse: Callable[[], list[View]]) -> tuple[list[View], float]:
    """``analyse()``, and how long it took (on the analysis worker)."""
    started = time.perf_counter()
    return analyse(), time.perf_counter() - started


server = TlensServer()


# ------------------------------------------------------------------------------- lifecycle


@handles(server, types.INITIALIZE)
def initialize(ls: TlensServer, params: types.InitializeParams) -> None:
    ls.trusted = workspace_trusted(params.initialization_options)
    ls.protocol._workspace = lsp_workspace(ls.workspace)  # pygls made it just now; ours splits lines as LSP does
    ls.configuration.push(params.initialization_options)
    ls.pictures.client_name = live_pictures.client_name(params)


@handles(server, types.INITIALIZED)
async def initialized(ls: TlensServer, params: types.InitializedParams) -> None:
    ls.tokenizers.attach()
    ls.index.when_quiet(ls.tokenizers.warm_up)  # GPT-2's BPE, in a background thread, after the first documents
    ls.index.start()
    await ls.watch_declaring_files()
    await ls.configuration.pull_folders()
    if not ls.settings.transformer_lens_version:
        found = await ls.kernel.interpreter_tl_version()
        changed = found is not None and (ls.installed_tl is None or found.version != ls.installed_tl.version)
        ls.installed_tl = found or ls.installed_tl
        if changed:
            ls.reanalyse_all()


@handles(server, types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(ls: TlensServer, params: types.DidChangeWatchedFilesParams) -> None:
    """A requirements / pyproject / lock file changed: the version the code targets may have too. A Python
    file changed on disk: the files that import it (or that it imports) are analysed again."""
    if any(Path(to_fs_path(change.uri) or "").name in DECLARING or "requirements" in change.uri for change in params.changes):
        ls.reanalyse_all()
    python = [change.uri for change in params.changes if change.uri.endswith(".py")]
    if python:
        paths = [p for uri in python if (p := local_path(uri)) is not None]
        ls.modules.changed(paths)
        ls.index.reanalyse(paths, after_typing=False)
        for uri in python:
            ls.reanalyse_readers(uri, typing=False)


@handles(server, types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: TlensServer, params: types.DidChangeConfigurationParams) -> None:
    """New settings: pushed in the notification, and each folder's own pulled again."""
    if params.settings is not None:
        ls.configuration.push(params.settings)
    await ls.configuration.pull_folders()
    ls.reanalyse_all()


@command(server, "tlens.serverInfo")
def server_info(ls: TlensServer, args: dict) -> dict:
    """Versions and what is loaded: lets editors and benchmarks check the server stays light.
    With ``{uri}``: the TransformerLens version that document's code targets, and why."""
    tl = ls.tl_version(args.get("uri"))
    return {
        "version": __version__,
        "transformerLens": tl.version if tl else None,
        "transformerLensSource": tl.source if tl else None,
        "torchImported": "torch" in sys.modules,
        "transformerLensImported": "transformer_lens" in sys.modules,
        "hoversBeforeAnalysis": ls.hovers_before_analysis,
        # Milliseconds of the last diagnostics runs, oldest first: analysing (worker thread), publishing (event loop).
        "diagnosticsTimings": [[round(a * 1000, 3), round(p * 1000, 3)] for a, p in ls.diagnostics_timings],
        "workspaceIndex": {"indexed": ls.index.indexed, "complete": ls.index.complete,
                           "importLinesRead": ls.modules.import_map.reads},
        "workspaceTrusted": ls.trusted,
    }


# ------------------------------------------------------------------------------- documents


@handles(server, types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: TlensServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.modules.changed()  # perhaps a new file
    ls.edited_in_editor(params.text_document.uri)
    ls.schedule_diagnostics(params.text_document.uri)


@handles(server, types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: TlensServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.edited_in_editor(params.text_document.uri)
    ls.schedule_diagnostics(params.text_document.uri)
    ls.reanalyse_readers(params.text_document.uri, typing=True)


@handles(server, types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: TlensServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    if ls.workspace.get_notebook_document(cell_uri=uri) is None:
        ls.edited_in_editor(uri)  # its text is the one on disk again
        ls.workspace_cache.forget(uri)
        ls.clear_diagnostics(uri)


@handles(server, types.NOTEBOOK_DOCUMENT_DID_OPEN)
def notebook_did_open(ls: TlensServer, params: types.DidOpenNotebookDocumentParams) -> None:
    ls.schedule_diagnostics(params.notebook_document.uri)


@handles(server, types.NOTEBOOK_DOCUMENT_DID_CHANGE)
def notebook_did_change(ls: TlensServer, params: types.DidChangeNotebookDocumentParams) -> None:
    cells = params.change.cells
    for removed in (cells.structure.did_close or []) if cells and cells.structure else []:
        ls.clear_diagnostics(removed.uri)
    ls.schedule_diagnostics(params.notebook_document.uri)


@handles(server, types.NOTEBOOK_DOCUMENT_DID_SAVE)
def notebook_did_save(ls: TlensServer, params: types.DidSaveNotebookDocumentParams) -> None:
    """Nothing to redo: analyses read the editor's text, which a save does not change."""


@handles(server, types.NOTEBOOK_DOCUMENT_DID_CLOSE)
def notebook_did_close(ls: TlensServer, params: types.DidCloseNotebookDocumentParams) -> None:
    ls.workspace_cache.forget(params.notebook_document.uri)
    for cell in params.cell_text_documents:
        ls.clear_diagnostics(cell.uri)


# ------------------------------------------------------------------------------- features


@handles(server, types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=['"', "'", "."]))
async def completion(ls: TlensServer, params: types.CompletionParams) -> types.CompletionList | None:
    view = await ls.current_view(params.text_document.uri)
    if view is None:
        return None
    candidates = completions(view.analysis, view.offset(params.position.line, params.position.character))
    if not candidates:
        return None
    return types.CompletionList(is_incomplete=True, items=[convert.completion_item(view, c) for c in candidates])


@handles(server, types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False), default=[])
async def inlay_hint(ls: TlensServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    if not ls.settings_for(params.text_document.uri).inlay_hints.enabled:
        return []
    view = await ls.current_view(params.text_document.uri)
    if view is None:
        return []
    start = view.offset(params.range.start.line, params.range.start.character)
    end = view.offset(params.range.end.line, params.range.end.character)
    return [h for hint in inlay_hints(view.analysis, start, end) if (h := convert.inlay_hint(view, hint)) is not None]


@handles(server, types.TEXT_DOCUMENT_CODE_ACTION,
         types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.Empty]), default=[])
async def code_action(ls: TlensServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    view = await ls.current_view(params.text_document.uri)
    if view is None:
        return []
    return code_actions.code_actions(ls, view, params)


kernel_commands.register(server)  # kernel commands
sweeps_lsp.register(server)  # the sweep command, code lenses
live.register(server)  # live-kernel commands
live_pictures.register(server)  # the large live picture
hovers.register(server)  # hovers: static, sweep results, live pictures
navigate.register(server)  # definition, references, document symbols

