"""Tokenizers for the language server: never wait for a load, re-publish when one is ready.

Hovers and diagnostics must not block for the few hundred ms a tokenizer load takes.
:class:`BackgroundTokenizers` answers ``None`` while a tokenizer is loading (loading starts in the
background on the first request), and once a tokenizer somebody asked for is ready it expires the
cached analyses (the next ones reuse what hook names resolved to) and schedules diagnostics for the open
documents, so token findings appear then.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from ..knowledge import tokenizers
from ..knowledge.spec import ModelSpec
from ..open_documents import open_uris

if TYPE_CHECKING:  # pragma: no cover
    from ..server import TlensServer

log = logging.getLogger(__name__)


class BackgroundTokenizers:
    """``AnalysisContext.tokenizer_for`` for the server (``tokenizer_for(spec, wait=False)`` + refresh)."""

    def __init__(self, server: TlensServer) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._watching: set[str] = set()  # families with a thread waiting for their load
        self._wanted: set[str] = set()  # families an analysis asked for before they were ready
        self._missing: set[str] = set()  # families with no tokenizer on this machine: nothing to wait for
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, spec: ModelSpec) -> tokenizers.Tok | None:
        tok = tokenizers.tokenizer_for(spec, wait=False)
        if tok is None and spec.tokenizer and spec.tokenizer not in self._missing:
            self._watch(spec, wanted=True)
        return tok

    def attach(self) -> None:
        """On the event loop, at start-up: remember it (a load an analysis asked for from the worker thread
        re-publishes through it), without loading anything yet."""
        self._loop = asyncio.get_running_loop()

    def warm_up(self, spec: ModelSpec | None = None) -> None:
        """Start loading a tokenizer (GPT-2's by default) in the background; returns at once."""
        self._watch(spec or ModelSpec(tokenizer=tokenizers.GPT2), wanted=False)

    def _watch(self, spec: ModelSpec, wanted: bool) -> None:
        family = spec.tokenizer or ""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass  # called off the event loop: keep the loop seen before
        with self._lock:
            if wanted:
                self._wanted.add(family)
            if family in self._watching:
                return
            self._watching.add(family)
        threading.Thread(target=self._wait, args=(spec,), daemon=True, name=f"tokenizer-wait-{family}").start()

    def _wait(self, spec: ModelSpec) -> None:
        family = spec.tokenizer or ""
        tok = tokenizers.tokenizer_for(spec)  # joins the load in flight, or loads
        with self._lock:
            self._watching.discard(family)
            wanted = family in self._wanted
            self._wanted.discard(family)
            if tok is None:
                self._missing.add(family)
        if tok is not None and wanted and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._refresh)

    def _refresh(self) -> None:
        """On the event loop: analyses made without the tokenizer are stale; publish again."""
        server = self._server
        try:
            server.workspace_cache.refresh()  # what hook names resolve to stays: only the token checks change
            for uri in open_uris(server.workspace):
                server.schedule_diagnostics(uri)
        except Exception:  # noqa: BLE001 - a refresh must never take the server down
            log.exception("re-publishing diagnostics after a tokenizer load failed")
