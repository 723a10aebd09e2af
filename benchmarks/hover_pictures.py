"""Hover request -> live picture, through the real server over stdio and a real kernel (CPU).

A notebook kernel (jupyter-client, as a notebook front end drives it) holds a gpt2-small-shaped random
TransformerBridge (12 layers, d_model 768, 12 heads, vocab 50257) and the ``run_with_cache`` cache of a
64-prompt batch of 20 tokens; the server attaches to it (``tlens.attachKernel``) and a notebook of the
same code is open. For each hover target it reports:

  * cold ms: hover request -> answer with the image, the kernel drawing it (a cell ran just before,
    so neither the server's nor the payload's memo holds it), p50 and max of --repeats
  * warm ms: the same hover asked again (the server's cache), p50
  * kernel ms: time inside the kernel's ``live_picture`` (its own clock), p50
  * PNG bytes and hover characters (the whole hover Markdown; VS Code cuts at 100,000)

    .venv/bin/python benchmarks/hover_pictures.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.kernel_setup import GPT2_TOKENIZER  # noqa: E402
from tests.notebook_kernel import NotebookKernel  # noqa: E402

SETUP = GPT2_TOKENIZER + '''
from transformers import GPT2Config, GPT2LMHeadModel
from transformer_lens.model_bridge import TransformerBridge
model = TransformerBridge.boot_transformers("random", hf_model=GPT2LMHeadModel(GPT2Config(n_layer=12,
    n_embd=768, n_head=12, n_inner=3072)).eval(), tokenizer=tokenizer, device="cpu")
tokens = torch.cat([torch.full((64, 1), 50256), torch.randint(0, 50000, (64, 19))], dim=1)
with torch.no_grad():
    logits, cache = model.run_with_cache(tokens)
direction = torch.randn(768)
'''
TARGETS = {  # label -> (code line, the text the cursor is on)
    "pattern, 12 heads": ('heads = cache["pattern", 3]', '"pattern"'),
    "pattern, one head": ('head = cache["pattern", 3][0, 7]', '"pattern"'),
    "resid_post norms": ('resid = cache["resid_post", 5]', '"resid_post"'),
    "neuron strip": ('neuron = cache["post", 5][..., 42]', '"post"'),
    "resid @ direction": ('proj = cache["resid_post", 5] @ direction', '"resid_post"'),
}
IMAGE = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
KERNEL_MS = re.compile(r"(\d+) ms in the kernel")


async def command(client: LanguageClient, name: str, args: dict | None = None):
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command=name, arguments=[args or {}]))


async def hover(client: LanguageClient, uri: str, line: int, character: int) -> tuple[float, str]:
    t = time.perf_counter()
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character)))
    return (time.perf_counter() - t) * 1000, result.contents.value if result else ""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    kernel = NotebookKernel()
    client = LanguageClient("bench", "0")
    for method in ("tlens/kernelStatus", types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, types.WINDOW_LOG_MESSAGE,
                   types.WINDOW_SHOW_MESSAGE):
        client.feature(method)(lambda params: None)  # not measured
    started = False
    try:
        t = time.perf_counter()
        kernel.run(SETUP, timeout=900)
        print(f"kernel set-up (model + 64x20 cache): {time.perf_counter() - t:.1f} s", file=sys.stderr)
        folder = Path(tempfile.mkdtemp())
        nb = (folder / "bench.ipynb").as_uri()
        lines = [code for code, _ in TARGETS.values()]
        cells = [SETUP, "\n".join(lines)]
        uris = [f"vscode-notebook-cell:{nb}#C{i}" for i in range(len(cells))]
        await client.start_io(sys.executable, "-m", "lsp_server", "serve")
        started = True
        caps = types.ClientCapabilities(
            notebook_document=types.NotebookDocumentClientCapabilities(synchronization=types.NotebookDocumentSyncClientCapabilities()),
            text_document=types.TextDocumentClientCapabilities(hover=types.HoverClientCapabilities(
                content_format=[types.MarkupKind.Markdown])))
        await client.initialize_async(types.InitializeParams(capabilities=caps, root_uri=folder.as_uri(),
                                                             client_info=types.ClientInfo(name="bench")))
        client.initialized(types.InitializedParams())
        client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(uri=nb, notebook_type="jupyter-notebook", version=1, cells=[
                types.NotebookCell(kind=types.NotebookCellKind.Code, document=u) for u in uris]),
            cell_text_documents=[types.TextDocumentItem(uri=u, language_id="python", version=1, text=src)
                                 for u, src in zip(uris, cells)]))
        status = await command(client, "tlens.attachKernel", {"connectionFile": kernel.connection_file})
        assert "error" not in str(status), status
        state = await command(client, "tlens.refreshLiveState")
        assert "ready" in str(state), state
        rows = []
        for label, (code, needle) in TARGETS.items():
            line, character = lines.index(code), code.index(needle) + 2
            cold, warm, kernel_ms = [], [], []
            for _ in range(args.repeats):
                await asyncio.to_thread(kernel.run, "pass")  # a cell ran: the pictures are drawn anew
                await command(client, "tlens.refreshLiveState")
                ms, md = await hover(client, uris[1], line, character)
                found = IMAGE.search(md)
                assert found, md[-600:]
                cold.append(ms)
                kernel_ms.append(float(KERNEL_MS.search(md).group(1)))
                warm.append((await hover(client, uris[1], line, character))[0])
            rows.append((label, statistics.median(cold), max(cold), statistics.median(warm), statistics.median(kernel_ms),
                         len(base64.b64decode(found.group(1))), len(md)))
        print(f"{'hover target':<20} {'cold p50 ms':>11} {'cold max':>9} {'warm p50':>9} {'kernel ms':>9} "
              f"{'PNG bytes':>9} {'hover chars':>11}")
        for label, p50, worst, warm_p50, k, png, chars in rows:
            print(f"{label:<20} {p50:>11.1f} {worst:>9.1f} {warm_p50:>9.1f} {k:>9.0f} {png:>9} {chars:>11}")
    finally:
        if started:
            await client.shutdown_async(None)
            client.exit(None)
            await client.stop()
        kernel.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
