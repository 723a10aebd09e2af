"""LSP latency in a synthetic workspace of research code (``workspace_corpus.py``), through the real server
over stdio: the first hover on an opened script (with the workspace index still to build), hovers on cache
keys built by imported helpers, one-character edits, an edit of an imported helper in the editor and on
disk (until the script's diagnostics show it), find references across the workspace and workspace symbols.

    .venv/bin/python benchmarks/lsp_latency.py --workspace 300
"""

from __future__ import annotations

import ast
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from benchmarks.workspace_corpus import write_workspace

SCRIPT = "script_4.py"  # imports a helpers_k (name_of: blocks.{layer}.attn.hook_z) and a utils_j; layer 4
KEY = "cache[name_of(4)]"
OTHER_KEY = "cache[u.resid(4)]"


def _position(text: str, needle: str, delta: int) -> types.Position:
    i = text.index(needle) + delta
    return types.Position(line=text.count("\n", 0, i), character=i - text.rfind("\n", 0, i) - 1)


class _Session:
    """A client of the server over stdio that records when each document's diagnostics arrive."""

    def __init__(self) -> None:
        self.client = LanguageClient("bench-workspace", "0")
        self.published: dict[str, list[tuple[float, int | None, list[types.Diagnostic]]]] = {}

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: types.PublishDiagnosticsParams):
            self.published.setdefault(params.uri, []).append((time.perf_counter(), params.version, params.diagnostics))

    async def until(self, uri: str, test, after: float, timeout: float = 120) -> float:
        """When diagnostics of ``uri`` published after ``after`` first satisfied ``test(diagnostics)``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for t, _, diagnostics in self.published.get(uri, []):
                if t >= after and test(diagnostics):
                    return t
            await asyncio.sleep(0.0005)
        raise TimeoutError(f"no diagnostics of {uri} as expected")

    async def hover(self, uri: str, position: types.Position) -> tuple[float, str]:
        t = time.perf_counter()
        result = await self.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position))
        return time.perf_counter() - t, result.contents.value if result else ""

    async def info(self) -> dict:
        return await self.client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.serverInfo"))


def _out_of_range(diagnostics: list[types.Diagnostic]) -> bool:
    return any(d.code == "layer-out-of-range" for d in diagnostics)


def _change(uri: str, version: int, text: str) -> types.DidChangeTextDocumentParams:
    return types.DidChangeTextDocumentParams(text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                                             content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)])


async def measure_workspace(n_files: int, rounds: int) -> dict:
    root = Path(tempfile.mkdtemp())
    files = write_workspace(root, n_files)
    text = files[SCRIPT]
    script = (root / SCRIPT).as_uri()
    s = _Session()
    client = s.client
    t0 = time.perf_counter()
    await client.start_io(sys.executable, "-m", "lsp_server", "serve")
    caps = types.ClientCapabilities(workspace=types.WorkspaceClientCapabilities(
        did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(dynamic_registration=False)))
    await client.initialize_async(types.InitializeParams(capabilities=caps, root_uri=root.as_uri()))
    client.initialized(types.InitializedParams())
    started = time.perf_counter() - t0

    # The first hover, sent right after the script is opened: its analysis, not the workspace's.
    t_open = time.perf_counter()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=script, language_id="python", version=1, text=text)))
    key_pos = _position(text, KEY, len("cache[") + 1)
    first_hover, shown = await s.hover(script, key_pos)
    first_hover = time.perf_counter() - t_open
    assert shown.startswith("`blocks.4.attn.hook_z`"), shown
    index_at_first_hover = (await s.info()).get("workspaceIndex", {"indexed": "no index", "complete": None})
    t_first_diag = await s.until(script, lambda d: True, t_open)
    index_built = await _index_built(s, t0)

    hovers = []
    other_pos = _position(text, OTHER_KEY, len("cache[") + 1)
    for i in range(rounds):
        took, shown = await s.hover(script, key_pos if i % 2 == 0 else other_pos)
        hovers.append(took)
    assert shown.startswith("`blocks.4.hook_resid_post`"), shown

    # One-character edits of the opened script (a comment line at the end: the keys keep their results).
    edits, version, base = [], 1, text
    for i in range(max(2, rounds // 10)):
        version += 1
        base = base + "#" if i % 2 == 0 else base[:-1]
        t = time.perf_counter()
        client.text_document_did_change(_change(script, version, base))
        await s.until(script, lambda d: True, t)
        edits.append(time.perf_counter() - t)

    # An imported helper edited in the editor: the script's diagnostics follow (layer 4 -> 40: out of range).
    helper_name = re.search(r"^from (helpers_\d+) import", text, re.M).group(1) + ".py"
    helper = root / helper_name
    helper_text = files[helper_name]
    broken = helper_text.replace("blocks.{layer}", "blocks.{layer}0")
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=helper.as_uri(), language_id="python", version=1, text=helper_text)))
    await s.until(helper.as_uri(), lambda d: True, 0)
    helper_edits = []
    for version in range(2, 2 + max(2, rounds // 20)):
        t = time.perf_counter()
        client.text_document_did_change(_change(helper.as_uri(), version, broken if version % 2 == 0 else helper_text))
        await s.until(script, _out_of_range if version % 2 == 0 else (lambda d: not _out_of_range(d)), t)
        helper_edits.append(time.perf_counter() - t)
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=helper.as_uri())))

    # The same helper changed on disk (a save from another editor, a git checkout): the watched-files notice.
    # The index brings the changed file and the files that read it up to date, not all of them.
    disk_edits, reindexed, reindex_times = [], [], []
    for i in range(max(2, rounds // 20)):
        before = await _index_built(s, time.perf_counter())  # one change at a time: the index is idle
        indexed = (await s.info()).get("workspaceIndex", {}).get("indexed", 0)
        helper.write_text(broken if i % 2 == 0 else helper_text)
        t = time.perf_counter()
        client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
            types.FileEvent(uri=helper.as_uri(), type=types.FileChangeType.Changed)]))
        await s.until(script, _out_of_range if i % 2 == 0 else (lambda d: not _out_of_range(d)), t)
        disk_edits.append(time.perf_counter() - t)
        if before is not None:
            reindex_times.append(await _index_built(s, t))
            reindexed.append((await s.info())["workspaceIndex"]["indexed"] - indexed)

    # Find references on the hook name across the workspace, and workspace symbols: first time, second time.
    references, found = [], 0
    for _ in range(2):
        t = time.perf_counter()
        result = await client.text_document_references_async(types.ReferenceParams(
            text_document=types.TextDocumentIdentifier(uri=script), position=key_pos,
            context=types.ReferenceContext(include_declaration=True)))
        references.append(time.perf_counter() - t)
        found = len({loc.uri for loc in result or []})
    symbols, n_symbols = [], 0
    for _ in range(2):
        t = time.perf_counter()
        try:
            result = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query=""))
        except Exception:  # a server without workspace symbols (an older version, for comparison)
            result = None
        symbols.append(time.perf_counter() - t)
        n_symbols = len(result or [])
    index_end = (await s.info()).get("workspaceIndex")

    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {"files": len(files), "started": started, "first_hover": first_hover, "index_at_first_hover": index_at_first_hover,
            "first_diag": t_first_diag - t_open, "hover": hovers, "edit": edits, "helper_edit": helper_edits,
            "disk_edit": disk_edits, "references": references, "reference_files": found, "symbols": symbols,
            "n_symbols": n_symbols, "index_end": index_end, "index_built": index_built,
            "reindexed": reindexed, "reindex_times": reindex_times, "parse": _parse_time(text), "server_side": _server_side(root, rounds)}


async def _index_built(s: _Session, t0: float) -> float | None:
    """Seconds from spawn until the server's workspace index is complete (None: a server without one)."""
    while True:
        index = (await s.info()).get("workspaceIndex")
        if index is None:
            return None
        if index["complete"]:
            return time.perf_counter() - t0
        await asyncio.sleep(0.02)


def _parse_time(text: str) -> float:
    best = float("inf")
    for _ in range(20):
        t = time.perf_counter()
        ast.parse(text)
        best = min(best, time.perf_counter() - t)
    return best


def _server_side(root: Path, rounds: int) -> tuple[float, list[float]]:
    """In-process: the script's first analysis (its imports and their importers read from disk, nothing
    cached) and hover times on its two keys (the hover function timed)."""
    from lsp_server.analysis.document import AnalysisContext
    from lsp_server.features.hover import hover
    from lsp_server.knowledge.resolve import resolve_model_name
    from lsp_server.modules import linked_workspace

    workspace = linked_workspace(lambda _: AnalysisContext(tl_major=2, resolve_model=resolve_model_name), root)
    path = root / SCRIPT
    text = path.read_text()
    t = time.perf_counter()
    analysis = workspace.text_view(str(path), text, 0).analysis
    cold = time.perf_counter() - t
    offsets = [len(text[:text.index(k) + len("cache[") + 1].encode()) for k in (KEY, OTHER_KEY)]
    out = []
    for i in range(rounds):
        t = time.perf_counter()
        hover(analysis, offsets[i % 2])
        out.append(time.perf_counter() - t)
    return cold, out


def report(m: dict, pct) -> None:
    parse = m["parse"] * 1000

    def row(label: str, values: list[float], target: str = "") -> None:
        p50, p99 = pct(values, .5), pct(values, .99)
        print(f"| {label} p50 / p99 | {p50:.1f} / {p99:.1f} | {p50 / parse:.1f}× / {p99 / parse:.1f}× | {target} |")

    print(f"\nLSP latency, synthetic workspace of {m['files']} files (script {SCRIPT}: {parse:.2f} ms to `ast.parse`)\n")
    print("| measure | round trip (ms) | × `ast.parse` of the script | target |")
    print("|---|---|---|---|")
    print(f"| spawn → initialized | {m['started'] * 1000:.0f} | | |")
    idx = m["index_at_first_hover"]
    print(f"| open → first hover (index: {idx['indexed']} of {m['files']} files, complete {idx['complete']}) | "
          f"{m['first_hover'] * 1000:.1f} | {m['first_hover'] * 1000 / parse:.1f}× | not blocked by the index |")
    if m["index_built"] is not None:
        print(f"| spawn → workspace index complete (background) | {m['index_built'] * 1000:.0f} | | |")
    print(f"| open → first diagnostics | {m['first_diag'] * 1000:.1f} | {m['first_diag'] * 1000 / parse:.1f}× | |")
    row("hover on a key named by an imported helper", m["hover"], "p99 ≤ 5 (server-side)")
    cold, sh = m["server_side"]
    print(f"| the script's first analysis, in-process (its imports and their importers) | | {cold * 1000 / parse:.1f}× "
          f"({cold * 1000:.1f} ms) | |")
    print(f"| hover, server-side p50 / p99 | {pct(sh, .5):.3f} / {pct(sh, .99):.3f} | | p99 ≤ 5 |")
    row("1-char edit of the script → diagnostics", m["edit"])
    row("helper edited in the editor → script's diagnostics", m["helper_edit"])
    row("helper changed on disk (watched files) → script's diagnostics", m["disk_edit"])
    if m["reindexed"]:
        print(f"| helper changed on disk → index up to date again ({max(m['reindexed'])} of {m['files']} files "
              f"analysed again) p50 | {pct(m['reindex_times'], .5):.1f} | {pct(m['reindex_times'], .5) / parse:.1f}× | |")
    first, second = m["references"]
    print(f"| find references across the workspace ({m['reference_files']} files): first / second | "
          f"{first * 1000:.1f} / {second * 1000:.1f} | {first * 1000 / parse:.1f}× / {second * 1000 / parse:.1f}× | |")
    first, second = m["symbols"]
    print(f"| workspace symbols ({m['n_symbols']}): first / second | {first * 1000:.1f} / {second * 1000:.1f} | "
          f"{first * 1000 / parse:.1f}× / {second * 1000 / parse:.1f}× | |")
    print(f"\nIndex at the end: {m['index_end']}")
