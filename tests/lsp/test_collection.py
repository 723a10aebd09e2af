"""The cycle collector's policy in the server: startup objects frozen, full collections when idle."""

import asyncio
import subprocess
import sys

from lsp_server import collection


def test_startup_objects_are_frozen_and_automatic_full_collections_rarer():
    out = subprocess.run([sys.executable, "-c", (
        "import gc; from lsp_server.collection import settle_after_startup; import lsp_server.server; "
        "before = gc.get_threshold(); settle_after_startup(); print(gc.get_freeze_count(), before[2], gc.get_threshold()[2])")],
        capture_output=True, text=True, check=True).stdout.split()
    frozen, default_full, full = map(int, out)
    assert frozen > 10_000  # the server's modules and tables
    assert full == collection.FULL_EVERY > default_full


def test_a_full_collection_runs_once_the_server_is_idle(monkeypatch):
    runs = []
    monkeypatch.setattr(collection, "IDLE_S", 0.3)  # (a margin no scheduling hiccup of a busy machine reaches)
    monkeypatch.setattr(collection.gc, "collect", lambda: runs.append(asyncio.get_running_loop().time()))

    async def scenario():
        idle = collection.IdleCollection()
        for _ in range(4):  # work every 20 ms: never idle long enough
            idle.after_work()
            last = asyncio.get_running_loop().time()
            await asyncio.sleep(0.02)
        assert runs == []
        await asyncio.sleep(0.6)
        assert len(runs) == 1 and runs[0] - last >= 0.3  # one collection, a full idle period after the last work

    asyncio.run(scenario())


def test_no_collection_starts_while_an_analysis_runs_on_any_thread():
    import gc
    import threading

    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def other_analysis():
        with collection.collection_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other_analysis)
    with collection.collection_paused():
        assert not gc.isenabled()
        thread.start()
        inside.wait(5)
    assert not gc.isenabled()  # the other thread's analysis still runs
    release.set()
    thread.join(5)
    assert gc.isenabled()
    gc.disable()  # collections off anyway (a caller's choice): a pause leaves them off
    try:
        with collection.collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_analysis_through_the_workspace_runs_without_collections(monkeypatch):
    import gc

    from lsp_server import workspace as ws
    from lsp_server.analysis.document import AnalysisContext

    seen = []
    real = ws.analyze
    monkeypatch.setattr(ws, "analyze", lambda *a, **k: (seen.append(gc.isenabled()), real(*a, **k))[1])
    cache = ws.Workspace(lambda uri: AnalysisContext())
    cache.text_view("file:///a.py", "x = 1\n", 1)
    cache.notebook_views("file:///n.ipynb", [ws.CellText("file:///n.ipynb#1", "y = 2\n", 1, 1)])
    assert seen == [False, False] and gc.isenabled()


def test_a_replaced_analysis_is_freed_once_its_successor_is_published():
    """Freeing a large file's analysis and tree takes milliseconds: not between an edit and its diagnostics."""
    import weakref

    from lsp_server.analysis.document import AnalysisContext
    from lsp_server.workspace import Workspace

    cache = Workspace(lambda uri: AnalysisContext())
    first = weakref.ref(cache.text_view("file:///a.py", "x = 1\n", 1).analysis)
    for version in range(2, 9):  # a burst of edits, none published yet
        cache.text_view("file:///a.py", f"x = {version}\n", version)
    assert first() is None  # the oldest replaced analyses are freed at once: a few are kept, not every one
    kept = weakref.ref(cache.text_view("file:///a.py", "y = 1\n", 9).analysis)
    replaced = weakref.ref(cache.text_view("file:///a.py", "y = 2\n", 10).analysis)
    cache.text_view("file:///a.py", "y = 3\n", 11)
    assert kept() is not None and replaced() is not None
    cache.release_retired()
    assert kept() is None and replaced() is None
    assert cache.text_view("file:///a.py", "y = 3\n", 11).analysis.source == b"y = 3\n"
