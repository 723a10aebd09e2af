"""When Python's cycle collector runs in the server: while it is idle, not in the middle of an analysis.

An analysis leaves a few thousand objects in reference cycles (its evaluator, models and hook-name
collector refer to one another), so with the default thresholds a full collection starts every few
analyses, inside one, and walks every object the server holds: ~8 ms of the ~50 ms a keystroke's
re-analysis of a 5,000-line file takes. So the objects the server starts with (modules, tables) are
frozen out of every collection, automatic full collections are ten times rarer (they still bound the
memory an unbroken burst of edits can leave), and a full collection runs once the server has been
idle for a second. While an analysis runs, no collection starts at all (:func:`collection_paused`): it
makes no cycles (tests/analysis/test_no_reference_cycles.py), so reference counting frees what it drops, and
the collections its allocations triggered only walked its live objects, ~1.7 ms of a keystroke's ~38 ms there.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from contextlib import contextmanager

IDLE_S = 1.0
FULL_EVERY = 100  # younger collections per automatic full one (Python's default: 10)


def settle_after_startup() -> None:
    """Freeze what the server has built so far out of every later collection."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_EVERY)


_pause_lock = threading.Lock()
_pauses = 0  # blocks running in collection_paused, on any thread
_enabled_before = True  # whether collections were on when the first of them began


@contextmanager
def collection_paused():
    """No automatic cycle collection while the block runs (on any thread), unless collections were off anyway:
    an analysis allocates and frees ~100,000 objects and would otherwise trigger several on the way, each one
    walking every young object it holds at that moment."""
    global _pauses, _enabled_before
    with _pause_lock:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()


class IdleCollection:
    """A full collection once no work has been done for :data:`IDLE_S` (each piece of work re-arms it)."""

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None

    def after_work(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(IDLE_S, self._collect)

    def _collect(self) -> None:
        self._timer = None
        gc.collect()
