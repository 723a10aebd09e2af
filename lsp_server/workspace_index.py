"""The workspace's Python files analysed in the background, so that find references and workspace symbols
find them analysed already.

The index is the disk cache's analyses (one per file version, shared with the files' importers): it
analyses the files one at a time on the server's analysis worker, only while no diagnostics are
waiting, so an open document's analysis never queues behind more than one file. A file that changes
on disk is analysed again with the files whose analyses read it, not the whole workspace; files left
unanalysed by a request in the meantime are analysed on that request's path, as without an index.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .editor_modules import uri_of
from .open_documents import open_document
from .workspace import View

if TYPE_CHECKING:
    from .server import TlensServer

log = logging.getLogger(__name__)

START_SECONDS = 0.25  # after initialize: the editor opens its documents first, and they are analysed first
TYPING_SECONDS = 0.3  # an editor edit's readers are analysed again once no edit came for this long


class WorkspaceIndex:
    """Which workspace files are analysed, and the background task that analyses the others."""

    def __init__(self, ls: TlensServer):
        self.ls = ls
        self._queue: dict[Path, None] = {}  # files to analyse, in order (a dict: no duplicates)
        self._task: asyncio.Task | None = None
        self.indexed = 0  # files analysed by the index (again, after a change, counts again)
        self.complete = False  # every file of the last listing analysed
        self._list_all = False  # list the workspace's files when the task next runs
        self._quiet_jobs: list[Callable[[], None]] = []
        self._quiet_until = 0.0  # (monotonic) the editor's typing: files are analysed again after this

    def when_quiet(self, job: Callable[[], None]) -> None:
        """Run ``job`` (a start of other background work) once the editor's first documents are analysed, just
        before the index's own work: loaded at once, it would slow the first analysis down several times."""
        self._quiet_jobs.append(job)
        self.enqueue([])

    def start(self) -> None:
        """Analyse every workspace file (after initialize, and when every analysis may have changed); they
        are listed when the index starts, after the editor's first documents."""
        self._list_all = True
        self.enqueue([])

    def enqueue(self, paths: list[Path]) -> None:
        for path in paths:
            self._queue[path] = None
        if self._queue or self._list_all or self._quiet_jobs:
            self.complete = False
            if self._task is None or self._task.done():
                self._task = asyncio.get_event_loop().create_task(self._run())

    def reanalyse(self, paths: list[Path], after_typing: bool) -> None:
        """Analyse these files again (changed on disk, or reading a changed file); ``after_typing``: once the
        editor's edits stop for a moment (each keystroke of an open helper would otherwise redo its readers)."""
        if after_typing and paths:
            self._quiet_until = time.monotonic() + TYPING_SECONDS
        self.enqueue([p for p in paths if p.suffix == ".py"])

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        gc.unfreeze()  # analyses about to be replaced may be garbage in cycles: collectable again
        if not self.indexed:
            await asyncio.sleep(START_SECONDS)
        while self._queue or self._list_all or self._quiet_jobs:
            while self.ls._pending or time.monotonic() < self._quiet_until:  # open documents go first
                await asyncio.sleep(0.01)
            if self._quiet_jobs:
                self._quiet_jobs.pop(0)()
                continue
            if self._list_all:
                self._list_all = False
                self._queue.update(dict.fromkeys(self.ls.modules.files()))
                # Who imports whom, read once here (unless an analysis needed it first): no analysis reads it again.
                await loop.run_in_executor(self.ls.analysis_worker, self.ls.modules.import_map.refresh)
                continue
            path = next(iter(self._queue))
            self._queue.pop(path)
            try:
                await loop.run_in_executor(self.ls.analysis_worker, self.disk_view, path)
            except Exception:  # one unreadable file must not stop the index
                log.exception("indexing %s failed", path)
            self.indexed += 1
        self.complete = True
        # The index holds a few hundred analyses: a full garbage collection over them pauses every request
        # (~100 ms for 300 files, a hover's p99). They live until a file changes: out of the collector's way.
        gc.freeze()

    def disk_view(self, path: Path) -> View | None:
        """The analysis of a workspace file as it is on disk (None for open documents and unreadable files)."""
        uri = uri_of(path)  # as the modules' analyses name it: one entry each
        if open_document(self.ls.workspace, uri) is not None:
            return None
        text = self.ls.modules.text(path)
        return self.ls.disk_cache.text_view(uri, text, None) if text is not None else None

    def disk_views(self, skip: set[str]) -> list[View]:
        """Views of the workspace files not in ``skip`` (URIs), analysed now where the index has not yet."""
        return [view for path in self.ls.modules.files() if uri_of(path) not in skip
                and (view := self.disk_view(path)) is not None]
