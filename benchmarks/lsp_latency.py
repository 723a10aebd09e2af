"""LSP latency on a 5,000-line research file, measured through the real server over stdio.

Reports (ms): spawn -> first diagnostics, hover p50/p99, completion p99, one-character edit ->
diagnostics p50/p99, a hover sent right after a one-character edit (alone, and behind an inlay-hint
request, as editors send them), both round-trip (client side) and
server-side (the same feature functions timed in-process), each also as a ratio to ``ast.parse`` of
the same file timed in the same run, and whether torch was imported at start-up. Of each edit's round trip,
also what the server itself spent analysing and publishing (``tlens.serverInfo``): the rest is JSON-RPC.

    .venv/bin/python benchmarks/lsp_latency.py [--lines 5000] [--dense]
    .venv/bin/python benchmarks/lsp_latency.py --workspace 300   # a synthetic workspace (workspace_latency.py)
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).parent.parent))
from benchmarks.corpus import research_file  # noqa: E402
from lsp_server.collection import collection_paused  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def key_positions(text: str, needle: str) -> list[types.Position]:
    out, start = [], 0
    while (i := text.find(needle, start)) >= 0:
        line = text.count("\n", 0, i)
        out.append(types.Position(line=line, character=i - text.rfind("\n", 0, i) - 1 + len(needle) + 1))
        start = i + 1
    return out


def typing_positions(text: str, n: int = 20) -> list[tuple[int, int]]:
    """(line, column) in the middle of ``n`` non-blank lines spread over the file: where a keystroke lands
    (the fixed edit above is at the start of one line; typing is mostly inside lines, anywhere)."""
    lines = text.split("\n")
    out = []
    for i in range(n):
        line_no = len(lines) * (i + 1) // (n + 1)
        while line_no < len(lines) - 1 and not lines[line_no].strip():
            line_no += 1
        line = lines[line_no]
        out.append((line_no, len(line) - len(line.lstrip()) + len(line.strip()) // 2))
    return out


def keystroke(client: LanguageClient, uri: str, version: int, line: int, col: int, insert: bool) -> float:
    """Type an "x" at (line, col), or delete the one there; when the change was sent."""
    edit = types.TextDocumentContentChangePartial(
        range=types.Range(types.Position(line, col), types.Position(line, col if insert else col + 1)), text="x" if insert else "")
    t = time.perf_counter()
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version), content_changes=[edit]))
    return t


def split_cells(text: str, n: int) -> list[str]:
    """The text as ``n`` notebook cells of about equal length, split at top-level statements."""
    lines = text.split("\n")
    starts = [i for i, l in enumerate(lines) if l and not l[0].isspace() and not l.startswith((")", "]", "}"))]
    step = max(1, len(starts) // n)
    cuts = starts[::step][:n] + [len(lines)]
    cuts[0] = 0
    return ["\n".join(lines[a:b]) for a, b in zip(cuts, cuts[1:]) if b > a]


async def measure_notebook(text: str, cells: int, rounds: int) -> dict:
    """A notebook of ``cells`` cells: open -> diagnostics, then one-character edits in a middle cell."""
    client = LanguageClient("bench", "0")
    published: dict[tuple[str, int], float] = {}

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: types.PublishDiagnosticsParams):
        published[(params.uri, params.version)] = time.perf_counter()

    folder = Path(tempfile.mkdtemp())
    nb = (folder / "research.ipynb").as_uri()
    sources = split_cells(text, cells)
    uris = [f"vscode-notebook-cell:{nb}#C{i}" for i in range(len(sources))]
    await client.start_io(sys.executable, "-m", "lsp_server", "serve")
    caps = types.ClientCapabilities(notebook_document=types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities()))
    await client.initialize_async(types.InitializeParams(capabilities=caps, root_uri=folder.as_uri()))
    client.initialized(types.InitializedParams())
    t0 = time.perf_counter()
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(uri=nb, notebook_type="jupyter-notebook", version=1, cells=[
            types.NotebookCell(kind=types.NotebookCellKind.Code, document=u) for u in uris]),
        cell_text_documents=[types.TextDocumentItem(uri=u, language_id="python", version=1, text=src)
                             for u, src in zip(uris, sources)]))
    middle = uris[len(uris) // 2]
    while (middle, 1) not in published:
        await asyncio.sleep(0.001)
    first = published[(middle, 1)] - t0
    edits = []
    for version in range(2, 2 + rounds // 4):
        insert = version % 2 == 0
        change = types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(0, 0), types.Position(0, 0 if insert else 1)), text="x" if insert else "")
        t = time.perf_counter()
        client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
            notebook_document=types.VersionedNotebookDocumentIdentifier(uri=nb, version=version),
            change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
                types.NotebookDocumentCellContentChanges(
                    document=types.VersionedTextDocumentIdentifier(uri=middle, version=version), changes=[change])]))))
        while (middle, version) not in published:
            await asyncio.sleep(0.0005)
        edits.append(published[(middle, version)] - t)
    hovers = []
    for line in range(min(rounds, 20)):
        t = time.perf_counter()
        await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=middle), position=types.Position(line % 3, 10)))
        hovers.append(time.perf_counter() - t)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {"cells": len(sources), "first": first, "edit": edits, "hover": hovers}


async def measure(text: str, rounds: int) -> dict:
    client = LanguageClient("bench", "0")
    published: dict[int, float] = {}
    first = asyncio.get_event_loop().create_future()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: types.PublishDiagnosticsParams):
        published[params.version] = time.perf_counter()
        if not first.done():
            first.set_result(time.perf_counter())

    folder = Path(tempfile.mkdtemp())
    uri = (folder / "research.py").as_uri()
    t0 = time.perf_counter()
    await client.start_io(sys.executable, "-m", "lsp_server", "serve")
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=folder.as_uri()))
    client.initialized(types.InitializedParams())
    t_init = time.perf_counter()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    t_first = await asyncio.wait_for(first, 60)
    info = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.serverInfo"))

    doc = types.TextDocumentIdentifier(uri=uri)
    positions = key_positions(text, 'cache["resid_post"')[:rounds]
    hover_times, completion_times = [], []
    for pos in positions:
        t = time.perf_counter()
        await client.text_document_hover_async(types.HoverParams(text_document=doc, position=pos))
        hover_times.append(time.perf_counter() - t)
    for pos in positions:
        t = time.perf_counter()
        await client.text_document_completion_async(types.CompletionParams(text_document=doc, position=pos))
        completion_times.append(time.perf_counter() - t)

    async def published_at(version: int) -> float:
        while version not in published:
            await asyncio.sleep(0.0005)
        return published[version]

    async def server_timings(runs: int) -> list[list[float]]:
        """The server's own (analysing, publishing) milliseconds of its last ``runs`` diagnostics runs."""
        info = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.serverInfo"))
        return info["diagnosticsTimings"][-runs:] if runs else []

    edit_times = []
    line_no = text.count("\n") // 2
    for version in range(2, 2 + rounds // 4):
        t = keystroke(client, uri, version, line_no, 0, insert=version % 2 == 1)  # even versions undo
        edit_times.append(await published_at(version) - t)
    edit_in_server = await server_timings(len(edit_times))

    # Typing: one character typed in the middle of lines spread over the file, then deleted.
    typing_times = []
    version = 2 + rounds // 4
    for line, col in typing_positions(text):
        for insert in (True, False):
            t = keystroke(client, uri, version, line, col, insert)
            typing_times.append(await published_at(version) - t)
            version += 1
    typing_in_server = await server_timings(len(typing_times))

    # A hover sent right after a one-character edit, on a key elsewhere (the editor's hover as you type): alone,
    # then behind an inlay-hint request for the screen (an editor asks for hints after every keystroke; they need
    # the new analysis, and must not hold up the hover behind them).
    far = positions[len(positions) // 4] if positions else None

    async def hovers_after_edits(first: int, behind_hints: bool) -> tuple[list[float], int]:
        """The hovers' times, and the next version."""
        times = []
        for version in range(first, first + rounds // 4):
            t = keystroke(client, uri, version, line_no, 0, insert=(version - first) % 2 == 0)
            hints = None
            if behind_hints:
                hints = asyncio.ensure_future(client.text_document_inlay_hint_async(types.InlayHintParams(
                    text_document=doc, range=types.Range(types.Position(0, 0), types.Position(60, 0)))))
                await asyncio.sleep(0)  # sent before the hover
            if far is not None:
                await client.text_document_hover_async(types.HoverParams(text_document=doc, position=far))
                times.append(time.perf_counter() - t)
            if hints is not None:
                await hints
            await published_at(version)
        return times, first + rounds // 4

    # (Hovers before these may have come from a previous analysis too: the analyses a tokenizer load expires.)
    quick_before = (await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.serverInfo")))["hoversBeforeAnalysis"]
    after_edit, version = await hovers_after_edits(version, behind_hints=False)
    behind_hints, version = await hovers_after_edits(version, behind_hints=True)
    quick = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.serverInfo"))

    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {
        "start_ms": (t_init - t0) * 1000, "first_diag_ms": (t_first - t0) * 1000, "info": info,
        "hover": hover_times, "completion": completion_times, "edit": edit_times, "typing": typing_times,
        "edit_in_server": edit_in_server, "typing_in_server": typing_in_server,
        "hover_after_edit": after_edit, "hover_behind_hints": behind_hints, "quick_hovers": quick["hoversBeforeAnalysis"] - quick_before,
    }


async def measure_peer(command: list[str], text: str, rounds: int) -> dict | None:
    """jedi-language-server on the same file, side by side: hover (on the cache variable of the same
    subscripts, where jedi infers something) and a hover right after the same one-character edit.
    Peers publish diagnostics on their own schedule, so the edit is followed by a hover only."""
    import shutil

    if shutil.which(command[0]) is None or rounds < 1:
        return None
    client = LanguageClient("bench-peer", "0")
    folder = Path(tempfile.mkdtemp())
    uri = (folder / "research.py").as_uri()
    await client.start_io(*command)
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=folder.as_uri()))
    client.initialized(types.InitializedParams())
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    doc = types.TextDocumentIdentifier(uri=uri)
    needle = 'cache["resid_post"'
    positions = [types.Position(p.line, p.character - len(needle) + 1) for p in key_positions(text, needle)[:rounds]]
    await client.text_document_hover_async(types.HoverParams(text_document=doc, position=positions[0]))  # warm-up
    hovers = []
    for pos in positions:
        t = time.perf_counter()
        await client.text_document_hover_async(types.HoverParams(text_document=doc, position=pos))
        hovers.append(time.perf_counter() - t)
    after_edit, line_no, far = [], text.count("\n") // 2, positions[len(positions) // 4]
    for version in range(2, 2 + max(rounds // 2, 2)):
        insert = version % 2 == 0
        edit = types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line_no, 0), types.Position(line_no, 0 if insert else 1)), text="x" if insert else "")
        t = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version), content_changes=[edit]))
        await client.text_document_hover_async(types.HoverParams(text_document=doc, position=far))
        after_edit.append(time.perf_counter() - t)
    try:
        await asyncio.wait_for(client.shutdown_async(None), 10)
        client.exit(None)
        await asyncio.wait_for(client.stop(), 10)
    except (asyncio.TimeoutError, Exception):  # a peer that does not exit cleanly must not hang the benchmark
        if client._server is not None:
            client._server.kill()
    return {"hover": hovers, "hover_after_edit": after_edit}


def server_side(text: str, rounds: int) -> dict:
    """The same features timed in-process (what the server spends, without JSON-RPC), under the
    server's policy for the cycle collector (:mod:`lsp_server.collection`)."""
    from lsp_server.collection import settle_after_startup
    from lsp_server.analysis.document import AnalysisContext, analyze
    from lsp_server.analysis.syntax import SyntaxParser
    from lsp_server.features.completion import completions
    from lsp_server.features.hover import hover
    from lsp_server.knowledge.resolve import resolve_model_name
    from lsp_server.knowledge.tokenizers import tokenizer_for

    # As the server analyses: with the model's tokenizer (token checks), which it loads in the background.
    ctx = AnalysisContext(tl_major=4, resolve_model=resolve_model_name, tokenizer_for=tokenizer_for)
    parser = SyntaxParser()
    settle_after_startup()
    t = time.perf_counter()
    analysis = analyze(text, ctx, parser)
    full = time.perf_counter() - t
    offsets = [analysis.lines.offset(p.line, p.character) for p in key_positions(text, 'cache["resid_post"')[:rounds]]
    hovers, comps = [], []
    for off in offsets:
        t = time.perf_counter()
        hover(analysis, off)
        hovers.append(time.perf_counter() - t)
        t = time.perf_counter()
        completions(analysis, off)
        comps.append(time.perf_counter() - t)
    edits = []
    lines = text.split("\n")
    mid = len(lines) // 2
    for k in range(rounds // 4):
        edited = "\n".join(lines[:mid] + [("x" if k % 2 == 0 else "") + lines[mid]] + lines[mid + 1:])
        t = time.perf_counter()
        analyze(edited, ctx, parser)
        edits.append(time.perf_counter() - t)
    typing = []
    for line, col in typing_positions(text):
        typed = "\n".join(lines[:line] + [lines[line][:col] + "x" + lines[line][col:]] + lines[line + 1:])
        for version in (typed, text):
            t = time.perf_counter()
            analyze(version, ctx, parser)
            typing.append(time.perf_counter() - t)
    return {"full": full, "hover": hovers, "completion": comps, "edit": edits, "typing": typing}


def parse_time(text: str) -> float:
    """``ast.parse`` of ``text``, best of 10, with the cycle collector off: as ``timeit`` times it, and as the server
    analyses (see :mod:`lsp_server.collection`). (With it on, the collections its allocations trigger cost 5–15% more.)"""
    with collection_paused():
        return min(_timed(lambda: ast.parse(text)) for _ in range(10))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--dense", action="store_true", help="TransformerLens code only (worst case)")
    ap.add_argument("--cells", type=int, default=200, help="cells of the notebook measurement (0: skip it)")
    ap.add_argument("--peer-rounds", type=int, default=12, help="hovers asked of jedi-language-server (slow: seconds each)")
    ap.add_argument("--workspace", type=int, default=0, help="files of a synthetic workspace to measure instead")
    args = ap.parse_args()
    if args.workspace:
        from benchmarks.workspace_latency import measure_workspace, report

        report(asyncio.run(measure_workspace(args.workspace, args.rounds)), pct)
        return
    text = research_file(args.lines, dense=args.dense)
    rt = asyncio.run(measure(text, args.rounds))
    ss = server_side(text, args.rounds)
    parse = parse_time(text)
    jedi = asyncio.run(measure_peer([str(Path(sys.executable).parent / "jedi-language-server")], text, args.peer_rounds))
    kind = "dense" if args.dense else "realistic"
    print(f"\nLSP latency, {text.count(chr(10))}-line {kind} research file ({len(rt['hover'])} hovers)\n")
    print("| measure | round trip (ms) | server-side (ms) | target |")
    print("|---|---|---|---|")
    print(f"| spawn → initialized | {rt['start_ms']:.0f} | | ≤ 1000 |")
    print(f"| spawn → first diagnostics | {rt['first_diag_ms']:.0f} | {ss['full'] * 1000:.0f} (full analysis) | |")
    print(f"| hover p50 / p99 | {pct(rt['hover'], .5):.2f} / {pct(rt['hover'], .99):.2f} | {pct(ss['hover'], .5):.3f} / {pct(ss['hover'], .99):.3f} | p99 ≤ 5 |")
    print(f"| completion p50 / p99 | {pct(rt['completion'], .5):.2f} / {pct(rt['completion'], .99):.2f} | {pct(ss['completion'], .5):.3f} / {pct(ss['completion'], .99):.3f} | p99 ≤ 5 |")
    print(f"| 1-char edit → diagnostics p50 / p99 | {pct(rt['edit'], .5):.1f} / {pct(rt['edit'], .99):.1f} | {pct(ss['edit'], .5):.1f} / {pct(ss['edit'], .99):.1f} | p50 ≤ 0.4× ast.parse |")
    print(f"| typing: a character typed (then deleted) mid-line at 20 lines → diagnostics p50 / p99 | "
          f"{pct(rt['typing'], .5):.1f} / {pct(rt['typing'], .99):.1f} | {pct(ss['typing'], .5):.1f} / {pct(ss['typing'], .99):.1f} | p50 ≤ 0.4× ast.parse |")
    for label, runs in (("1-char edit", rt["edit_in_server"]), ("typing", rt["typing_in_server"])):
        analysing, publishing = [a / 1000 for a, _ in runs], [p / 1000 for _, p in runs]
        print(f"| {label}: of the round trip, the server analysing / publishing p50 | | "
              f"{pct(analysing, .5):.1f} / {pct(publishing, .5):.1f} | |")
    after = rt["hover_after_edit"]
    print(f"| hover right after a 1-char edit p50 / p99 | {pct(after, .5):.1f} / {pct(after, .99):.1f} | | p50 ≤ 0.25× ast.parse |")
    behind = rt["hover_behind_hints"]
    print(f"| the same, sent behind an inlay-hint request p50 / p99 | {pct(behind, .5):.1f} / {pct(behind, .99):.1f} | | |")
    print(f"| `ast.parse` of the same file (best of 10, no cycle collection) | | {parse * 1000:.1f} | |")
    if jedi is not None:
        print(f"| jedi-language-server: hover p50 / p99 | {pct(jedi['hover'], .5):.1f} / {pct(jedi['hover'], .99):.1f} | | peer |")
        print(f"| jedi-language-server: hover right after a 1-char edit p50 / p99 | "
              f"{pct(jedi['hover_after_edit'], .5):.1f} / {pct(jedi['hover_after_edit'], .99):.1f} | | peer |")
    in_server = pct([a / 1000 for a, _ in rt["edit_in_server"]], .5)
    print(f"\nAs ratios to ast.parse: 1-char edit → diagnostics p50 {pct(rt['edit'], .5) / (parse * 1000):.2f}× "
          f"(server-side {pct(ss['edit'], .5) / (parse * 1000):.2f}×, the server's own analysis "
          f"{in_server / (parse * 1000):.2f}×); typing → diagnostics p50 {pct(rt['typing'], .5) / (parse * 1000):.2f}× "
          f"(server-side {pct(ss['typing'], .5) / (parse * 1000):.2f}×); "
          f"hover right after an edit p50 {pct(after, .5) / (parse * 1000):.2f}× "
          f"(behind an inlay-hint request {pct(behind, .5) / (parse * 1000):.2f}×; {rt['quick_hovers']} of "
          f"{len(after) + len(behind)} answered before the re-analysis)"
          + (f"; vs jedi-language-server: hover right after an edit {pct(after, .5) / pct(jedi['hover_after_edit'], .5):.2f}×" if jedi else ""))
    if args.cells:
        nbm = asyncio.run(measure_notebook(text, args.cells, args.rounds))
        print(f"| notebook ({nbm['cells']} cells): open → diagnostics | {nbm['first'] * 1000:.0f} | | |")
        print(f"| notebook: 1-char cell edit → diagnostics p50 / p99 | {pct(nbm['edit'], .5):.1f} / {pct(nbm['edit'], .99):.1f} | | p50 ≤ 50 |")
        print(f"| notebook: hover p50 / p99 | {pct(nbm['hover'], .5):.2f} / {pct(nbm['hover'], .99):.2f} | | p99 ≤ 5 |")
    info = rt["info"]
    print(f"\ntorch imported by the server: {info['torchImported']}; transformer_lens imported: {info['transformerLensImported']}")


if __name__ == "__main__":
    main()
