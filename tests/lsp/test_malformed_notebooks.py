"""Notebooks an editor may hand over that are odd or huge: the server keeps serving and reports no error."""

from __future__ import annotations

import base64
import os

from lsprotocol import types

from .helpers import hover_text
from .test_notebooks import open_notebook, wait_for

BIG = base64.b64encode(os.urandom(3_000_000)).decode()  # a 4 MB image pasted into a cell as a string


async def test_odd_and_huge_cells(client):
    nb = (client.root / "odd.ipynb").as_uri()
    cells = [
        ("code", ""),
        ("markdown", ""),
        ("code", "from transformer_lens import HookedTransformer\x00\nmodel = HookedTransformer.from_pretrained('gpt2')"),
        ("code", f"img = '{BIG}'\r\n_, cache = model.run_with_cache('hi')\r\nx = cache['blocks.0.hook_resid_pree']"),
        ("code", "%%bash\n" + "\t\ufeff🙂 f'{" * 50),
        ("code", "def f(:\n  cache[" * 200),
    ]
    uris = open_notebook(client, nb, cells)
    await wait_for(lambda: uris[3] in client.diagnostics, timeout=60)
    assert [d.code for d in client.diagnostics[uris[3]]] == ["unknown-hook"]
    line = f"img = '{BIG}'"
    text = await hover_text(client, uris[3], types.Position(line=2, character=15))
    assert text is not None and text.startswith("`blocks.0.hook_resid_pre")
    assert len(line) > 1_000_000
