"""Live pictures over LSP: the hover of a cache key in a notebook attached to a real kernel shows the
kernel's picture of the live tensor (VS Code-like client), or a text table (a Neovim client); "Open in
panel" asks ``tlens.livePicture`` for the large one. TL 4.x (TransformerBridge, this environment)."""

from __future__ import annotations

import asyncio
import base64
import re
import struct
import sys
import time
import urllib.parse
import json

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from ..kernel.tiny_models import bridge_setup
from ..notebook_kernel import NotebookKernel, kernel_python
from .conftest import SERVER, _client_factory, _fail_on_server_errors, capabilities
from .helpers import hover_text
from .test_live_lsp import attach, run_cell
from .test_notebooks import open_notebook

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

N_HEADS = 4
CELLS = [("code", bridge_setup(n_heads=N_HEADS)),
         ("code", "logits, cache = model.run_with_cache(clean_tokens)"),
         ("code", 'heads = cache["pattern", 1]\nhead = cache["pattern", 1][0, 2]\nneuron = cache["post", 0][..., 7]\n'
                  'resid = cache["resid_post", 1]\nproj = cache["resid_post", 1] @ direction\n'
                  'lens = cache.accumulated_resid(incl_mid=True, apply_ln=True) @ direction')]
IMAGE = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


@pytest.fixture(scope="module")
def notebook():
    kernel = NotebookKernel(kernel_python("tl4"))
    try:
        kernel.run(bridge_setup(n_heads=N_HEADS) + "\nlogits, cache = model.run_with_cache(clean_tokens)\n"
                   "direction = torch.ones(model.cfg.d_model)\n")
        kernel.env = "tl4"
        yield kernel
    finally:
        kernel.shutdown()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, client_factory=_client_factory))
async def nvim_client(lsp_client: LanguageClient, tmp_path, request):
    """A client that says it is Neovim (hovers show Markdown, no images)."""
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=tmp_path.as_uri(), client_info=types.ClientInfo(name="Neovim", version="0.9.5"),
        initialization_options={"settings": {"transformerLensVersion": "4.3.0"}}))
    lsp_client.root = tmp_path
    yield
    await lsp_client.shutdown_session()
    _fail_on_server_errors(lsp_client, request)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def image_of(markdown: str) -> tuple[int, int]:
    found = IMAGE.search(markdown)
    assert found, markdown[:500]
    return png_size(base64.b64decode(found.group(1)))


async def hover_at(client, uri: str, line: int, needle: str, source: str) -> str:
    text = source.splitlines()[line]
    return await hover_text(client, uri, types.Position(line=line, character=text.index(needle) + 2))


async def test_pattern_hover_shows_the_heads_and_opens_large(client, notebook):
    uris = open_notebook(client, (client.root / "pictures.ipynb").as_uri(), CELLS)
    src = CELLS[2][1]
    before = await hover_at(client, uris[2], 0, '"pattern"', src)
    assert "data:image" not in before  # no kernel: the static hover only
    await attach(client, notebook)
    t0 = time.monotonic()
    md = await hover_at(client, uris[2], 0, '"pattern"', src)
    first = time.monotonic() - t0
    assert md.startswith("`blocks.1.attn.hook_pattern`"), md[:200]  # the static hover's first line stays first
    assert f"{N_HEADS} heads (query × key each" in md and "framed: H" in md
    width, height = image_of(md)
    assert width > 50 and height > 20
    assert len(md) < 100_000
    assert re.search(r"off BOS, per head: .*\*\*H\d 0\.\d\d\*\*", md)
    assert "kernel execution [" in md and "tokens: `'<|endoftext|>'` `'When'` `' Mary'`" in md
    # Asked again, the same picture comes from the server's cache (no kernel call: fast).
    t1 = time.monotonic()
    again = await hover_at(client, uris[2], 0, '"pattern"', src)
    assert again == md and time.monotonic() - t1 < max(first, 0.5)

    link = re.search(r"\[Open in panel\]\(command:tlens\.client\.openPicture\?([^ )]+)", md)
    assert link, md[-400:]
    args = json.loads(urllib.parse.unquote(link.group(1)))
    large = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="tlens.livePicture", arguments=args))
    assert "error" not in large, large
    assert large["kind"] == "picture" and large["title"] == "Live: cache['blocks.1.attn.hook_pattern']"
    assert png_size(base64.b64decode(large["png"]))[0] > width  # larger than the hover's
    assert [p["label"] for p in large["panels"]] == [f"H{h}" for h in range(N_HEADS)]
    n = len(large["panels"][0]["values"])
    assert n == len(large["panels"][0]["colLabels"]) and large["panels"][0]["rowLabels"][1] == "When"
    assert all(abs(sum(v for v in row if v is not None) - 1) < 1e-2 for row in large["panels"][0]["values"])


async def test_indexed_head_neuron_and_direction(client, notebook):
    uris = open_notebook(client, (client.root / "indexed.ipynb").as_uri(), CELLS)
    src = CELLS[2][1]
    await attach(client, notebook)
    head = await hover_at(client, uris[2], 1, '"pattern"', src)
    assert "**Live** `cache['blocks.1.attn.hook_pattern'][0, 2]`: one head" in head
    w, h = image_of(head)
    assert w == h  # square cells: query × key
    neuron = await hover_at(client, uris[2], 2, '"post"', src)
    assert "`cache['blocks.0.mlp.hook_post'][..., 7]`: a value per position" in neuron
    assert image_of(neuron)[1] < 40  # a strip
    resid = await hover_at(client, uris[2], 3, '"resid_post"', src)
    assert "a value per position (L2 norm)" in resid
    proj = await hover_at(client, uris[2], 4, '"resid_post"', src)
    assert "`cache['blocks.1.hook_resid_post'] @ direction`" in proj and "projected on `direction`" in proj
    # The projection is the kernel's own: compare the strip's extremes with the kernel's numbers.
    want = ast_value(await asyncio.to_thread(notebook.value, "[round(float(x), 3) for x in (cache['blocks.1.hook_resid_post'][0] @ direction).aminmax()]"))
    low, high = (float(v) for v in re.search(r"min (\S+) · max (\S+)", proj).groups())
    assert abs(low - want[0]) < 1e-2 * max(1, abs(want[0])) and abs(high - want[1]) < 1e-2 * max(1, abs(want[1]))


async def test_logit_lens_of_the_accumulated_residual_stream(client, notebook):
    uris = open_notebook(client, (client.root / "lens.ipynb").as_uri(), CELLS)
    src = CELLS[2][1]
    await attach(client, notebook)
    md = await hover_at(client, uris[2], 5, "accumulated_resid", src)
    assert md.startswith("`cache.accumulated_resid(incl_mid=True, apply_ln=True)`"), md[:200]  # the static hover first
    assert "**Live** `cache.accumulated_resid(incl_mid=True, apply_ln=True) @ direction`: component × position (logit lens)" in md
    width, height = image_of(md)
    assert width > 100 and height > 20
    want = ast_value(await asyncio.to_thread(notebook.value, "[round(float(x), 3) for x in (cache.accumulated_resid("
                                                          "incl_mid=True, apply_ln=True)[:, 0] @ direction).aminmax()]"))
    low, high = (float(v) for v in re.search(r"min (\S+) · max (\S+)", md).groups())
    assert abs(low - want[0]) < 1e-2 * max(1, abs(want[0])) and abs(high - want[1]) < 1e-2 * max(1, abs(want[1]))


def ast_value(text: str):
    import ast

    return ast.literal_eval(text)


async def test_no_picture_while_a_cell_runs_then_a_new_one_after_it(client, notebook):
    uris = open_notebook(client, (client.root / "busy.ipynb").as_uri(), CELLS)
    src = CELLS[2][1]
    await attach(client, notebook)
    md = await hover_at(client, uris[2], 0, '"pattern"', src)
    count = int(re.search(r"kernel execution \[(\d+)\]", md).group(1))
    msg = notebook.start_cell("import time; time.sleep(4)\nlogits, cache = model.run_with_cache(corrupted_tokens)")
    try:
        await asyncio.sleep(0.5)
        busy = await hover_at(client, uris[2], 0, '"pattern"', src)
        assert "the kernel is running a cell; hover again when it has finished" in busy and "data:image" not in busy
    finally:
        await asyncio.to_thread(notebook.finish, msg)
    for _ in range(50):  # the server sees the idle, then draws the new cache
        after = await hover_at(client, uris[2], 0, '"pattern"', src)
        if "data:image" in after:
            break
        await asyncio.sleep(0.2)
    assert int(re.search(r"kernel execution \[(\d+)\]", after).group(1)) > count
    assert after != md  # another prompt: another picture
    await run_cell(notebook, "logits, cache = model.run_with_cache(clean_tokens)")


async def test_neovim_gets_a_text_table(nvim_client, notebook):
    client = nvim_client
    uris = open_notebook(client, (client.root / "nvim.ipynb").as_uri(), CELLS)
    src = CELLS[2][1]
    await attach(client, notebook)
    md = await hover_at(client, uris[2], 0, '"pattern"', src)
    assert "data:image" not in md and "command:" not in md
    assert re.search(r"H\d \(rows: query, columns: key\):\n```\n", md), md
    neuron = await hover_at(client, uris[2], 2, '"post"', src)
    assert "| pos | token | value |" in neuron and "| 1 | `When` |" in neuron
