"""Live-kernel mode over LSP: the server attaches to a kernel that a notebook front end drives.

The kernel is started by the test through jupyter-client and runs cells non-silently, as a
notebook would (``tests/notebook_kernel.py``); the server attaches with ``tlens.attachKernel``.
TL 4.x (TransformerBridge, this environment) and TL 2.x (HookedTransformer, ``TLENS_HT_PYTHON``).
"""

from __future__ import annotations

import ast
import asyncio
import sys

import pytest
from lsprotocol import types

from ..kernel.tiny_models import bridge_setup, ht_setup
from ..notebook_kernel import NotebookKernel, kernel_python
from .helpers import hover_text, open_doc, pos_of
from .test_notebooks import open_notebook, wait_for

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

HOOKS_CELL = '''
def ablate_top_head_hook(z, hook):
    z[:, :, 0] = 0.0
    return z
model.add_hook("blocks.1.attn.hook_z", ablate_top_head_hook)
model.add_perma_hook("blocks.0.hook_resid_pre", lambda x, hook: x)
'''




def _setup(env: str) -> str:
    return bridge_setup() if env == "tl4" else ht_setup()


def _doc_setup(env: str) -> str:
    """The setup cell as the document shows it; static analysis does not follow `Model(cfg).eval()`."""
    return _setup(env).replace("model = HookedTransformer(cfg, tokenizer=tokenizer).eval()",
                               "model = HookedTransformer(cfg, tokenizer=tokenizer)\nmodel.eval()")


@pytest.fixture(scope="module", params=["tl4", pytest.param("ht", marks=pytest.mark.ht)])
def notebook(request):
    kernel = NotebookKernel(kernel_python(request.param))
    try:
        kernel.run(_setup(request.param) + "\nlogits, cache = model.run_with_cache(clean_tokens)\n")
        kernel.env = request.param
        yield kernel
    finally:
        kernel.shutdown()


async def run_cell(notebook, code: str) -> None:
    await asyncio.to_thread(notebook.run, code)


async def kernel_value(notebook, expression: str):
    return ast.literal_eval(await asyncio.to_thread(notebook.value, expression))


async def command(client, name: str, args: dict | None = None, timeout: float = 120):
    params = types.ExecuteCommandParams(command=name, arguments=[args] if args is not None else [])
    return await asyncio.wait_for(client.workspace_execute_command_async(params), timeout)


async def attach(client, notebook) -> dict:
    if notebook.env == "tl4":
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"settings": {"transformerLensVersion": "4.3.0"}}))
    status = await command(client, "tlens.attachKernel", {"connectionFile": notebook.connection_file})
    assert "error" not in status, status
    state = await command(client, "tlens.refreshLiveState")
    assert state["status"] == "ready", state
    return state


def codes(client, uri: str) -> list[tuple[str, int]]:
    return [(d.code, d.range.start.line) for d in client.diagnostics.get(uri, ())]


# ------------------------------------------------------------------------------ hover


async def test_cache_hover_shows_the_live_shape(client, notebook):
    nb = (client.root / "live_hover.ipynb").as_uri()
    uris = open_notebook(client, nb, [("code", _setup(notebook.env)),
                                      ("code", "logits, cache = model.run_with_cache(clean_tokens)"),
                                      ("code", "pattern = cache['pattern', 1]\nresid = cache['blocks.0.hook_resid_pre']")])
    at = types.Position(line=0, character=20)
    before = await hover_text(client, uris[2], at)
    assert before.startswith("`blocks.1.attn.hook_pattern`") and "live" not in before
    state = await attach(client, notebook)
    assert [c["var"] for c in state["caches"]] == ["cache"] and state["cost"]["bytes"] > 0
    shape = await kernel_value(notebook, "list(cache['pattern', 1].shape)")
    first = (await hover_text(client, uris[2], at)).splitlines()[0]
    assert first.endswith(f" · live: `{shape}` float32 cpu"), first
    assert "= `[batch, 4, query_pos, key_pos]`" in first
    resid = (await hover_text(client, uris[2], types.Position(line=1, character=16))).splitlines()[0]
    resid_shape = await kernel_value(notebook, "list(cache['blocks.0.hook_resid_pre'].shape)")
    assert f"live: `{resid_shape}` float32 cpu" in resid


# ------------------------------------------------------------------------------ hooks


async def test_attached_hooks_are_listed_and_reset_from_the_code_action(client, notebook):
    await run_cell(notebook, HOOKS_CELL)
    try:
        nb = (client.root / "live_hooks.ipynb").as_uri()
        setup = _setup(notebook.env)
        uris = open_notebook(client, nb, [("code", setup), ("code", "logits = model(clean_tokens)")])
        await wait_for(lambda: uris[0] in client.diagnostics)
        assert "live-hooks" not in [c for c, _ in codes(client, uris[0])]
        await attach(client, notebook)
        model_line = setup.splitlines().index(next(l for l in setup.splitlines() if l.startswith("model = ")))
        await wait_for(lambda: ("live-hooks", model_line) in codes(client, uris[0]), 30)
        diag = next(d for d in client.diagnostics[uris[0]] if d.code == "live-hooks")
        assert diag.message.startswith("2 hooks still attached to model in the kernel: ")
        assert "blocks.1.attn.hook_z (ablate_top_head_hook)" in diag.message
        assert "blocks.0.hook_resid_pre (<lambda>, permanent)" in diag.message and "permanent hooks stay" in diag.message
        assert diag.severity == types.DiagnosticSeverity.Warning

        actions = await client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uris[0]), range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag])))
        reset = next(a for a in actions if a.title == "Reset hooks in kernel")
        assert reset.command.command == "tlens.resetKernelHooks" and list(reset.command.arguments) == [{"model": "model"}]
        result = await command(client, reset.command.command, reset.command.arguments[0])
        assert result["models"] == [{"var": "model", "removed": 1, "permanent_left": 1}], result
        assert "1 permanent hook stay" in result["message"]
        # Really gone in the kernel; the permanent one stays.
        assert await kernel_value(notebook, "len(model.hook_dict['blocks.1.attn.hook_z'].fwd_hooks)") == 0
        assert await kernel_value(notebook, "len(model.hook_dict['blocks.0.hook_resid_pre'].fwd_hooks)") == 1
        await wait_for(lambda: any(d.code == "live-hooks" and d.message.startswith("1 hook still attached")
                                   for d in client.diagnostics.get(uris[0], ())), 30)
        # A cell that removes the last one: the refresh after it clears the diagnostic.
        await run_cell(notebook, "model.reset_hooks(including_permanent=True)")
        await wait_for(lambda: "live-hooks" not in [c for c, _ in codes(client, uris[0])], 30)
    finally:
        await run_cell(notebook, "model.reset_hooks(including_permanent=True)")


async def test_reset_without_a_kernel_says_how_to_attach(client):
    result = await command(client, "tlens.resetKernelHooks", {"model": "model"})
    assert "attach the notebook's kernel" in result["error"]


# ------------------------------------------------------------------------------ spec override


async def test_flag_switched_on_in_the_kernel_makes_the_gated_hook_valid(client, notebook):
    await run_cell(notebook, "model.set_use_attn_result(True)\nlogits, cache = model.run_with_cache(clean_tokens)")
    try:
        nb = (client.root / "live_spec.ipynb").as_uri()
        uris = open_notebook(client, nb, [("code", _doc_setup(notebook.env)),
                                          ("code", "logits, cache = model.run_with_cache(clean_tokens)\nresult = cache['result', 1]\n"
                                                   "missing = cache['q_input', 1]")])
        await wait_for(lambda: ("hook-not-enabled", 1) in codes(client, uris[1]))
        await attach(client, notebook)
        # use_attn_result is on in the kernel: no hook-not-enabled; use_split_qkv_input is off: still flagged,
        # and the kernel's cache lacks the key as well.
        await wait_for(lambda: ("hook-not-enabled", 1) not in codes(client, uris[1]), 30)
        assert ("hook-not-enabled", 2) in codes(client, uris[1]) and ("not-cached", 2) not in codes(client, uris[1])
        text = await hover_text(client, uris[1], types.Position(line=1, character=18))
        shape = await kernel_value(notebook, "list(cache['result', 1].shape)")
        assert f"live: `{shape}` float32 cpu" in text.splitlines()[0]
        assert "dims from live kernel: model (" in text
    finally:
        await run_cell(notebook, "model.set_use_attn_result(False)\nlogits, cache = model.run_with_cache(clean_tokens)")


async def test_key_dropped_by_names_filter_is_not_cached(client, notebook):
    await run_cell(notebook, "logits, small = model.run_with_cache(clean_tokens, names_filter=lambda n: n.endswith('hook_resid_pre'))")
    try:
        nb = (client.root / "live_filter.ipynb").as_uri()
        uris = open_notebook(client, nb, [("code", _setup(notebook.env)),
                                          ("code", "logits, small = model.run_with_cache(clean_tokens, names_filter=lambda n: n.endswith('hook_resid_pre'))\n"
                                                   "ok = small['resid_pre', 1]\nbad = small['pattern', 1]")])
        await attach(client, notebook)
        await wait_for(lambda: ("not-cached", 2) in codes(client, uris[1]), 30)
        assert ("not-cached", 1) not in codes(client, uris[1])
        with pytest.raises(Exception, match="KeyError"):  # the kernel agrees
            await asyncio.to_thread(notebook.value, "small['pattern', 1]")
    finally:
        await run_cell(notebook, "del small")


@pytest.mark.parametrize("notebook", [pytest.param("ht", marks=pytest.mark.ht)], indirect=True)
async def test_the_kernels_transformer_lens_version_wins_over_the_servers(client, notebook):
    # The server runs TL 4 (no HookedTransformer); the notebook's kernel runs TL 2.18, where the
    # code is right. Without a version setting the kernel decides once attached.
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"transformerLensVersion": ""}}))
    nb = (client.root / "live_version.ipynb").as_uri()
    uris = open_notebook(client, nb, [("code", _doc_setup(notebook.env))])
    await wait_for(lambda: any(code == "removed-api" for code, _ in codes(client, uris[0])))
    info = await command(client, "tlens.serverInfo")
    assert info["transformerLens"].startswith("4.") and info["transformerLensSource"] == "the server's environment"
    await command(client, "tlens.attachKernel", {"connectionFile": notebook.connection_file})
    await command(client, "tlens.refreshLiveState")
    await wait_for(lambda: not any(code == "removed-api" for code, _ in codes(client, uris[0])), 30)
    info = await command(client, "tlens.serverInfo")
    assert info["transformerLens"].startswith("2.18") and info["transformerLensSource"] == "the attached kernel"


# ------------------------------------------------------------------------------ tokenizer

TOKENS = '''\
from transformer_lens.model_bridge import TransformerBridge
model = TransformerBridge.boot_transformers("acme/private-model")
mary = model.to_single_token(" Mary")
tower = model.to_single_token(" Eiffel Tower")
print(model.to_str_tokens("When Mary and John went to the store"))
'''


@pytest.mark.parametrize("notebook", ["tl4"], indirect=True)  # one backend is enough for the tokenizer path (TL 2.x runs the same payload code)
async def test_token_checks_use_the_kernels_tokenizer(client, notebook):
    # The document is TL 4 code: say so, or the client's 2.18 setting flags its import (unavailable-api).
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"transformerLensVersion": "4.3.0"}}))
    uri = (client.root / "live_tokens.py").as_uri()
    open_doc(client, uri, TOKENS)
    await wait_for(lambda: uri in client.diagnostics)
    assert client.diagnostics[uri] == [] or client.diagnostics[uri] == ()  # acme/private-model: no tokenizer offline
    state = await attach(client, notebook)
    assert state["models"][0]["tokenizer"] == "loaded", state
    await wait_for(lambda: ("multi-token", 3) in codes(client, uri), 30)
    assert codes(client, uri) == [("multi-token", 3)]
    assert await kernel_value(notebook, "len(model.to_tokens(' Eiffel Tower', prepend_bos=False)[0])") > 1
    kernel_tokens = await kernel_value(notebook, "model.to_str_tokens('When Mary and John went to the store')")
    text = await hover_text(client, uri, pos_of(TOKENS, '"When', 1))
    assert f"**{len(kernel_tokens)} tokens**" in text.splitlines()[0], text


# ------------------------------------------------------------------------------ busy kernel


@pytest.mark.parametrize("notebook", ["tl4"], indirect=True)  # scheduling does not depend on the TL version
async def test_no_introspection_while_a_user_cell_runs(client, notebook):
    before = await attach(client, notebook)
    msg_id = notebook.start_cell("import time\ntime.sleep(3)\nlate_cache = cache")

    async def kernel_busy() -> bool:
        return (await command(client, "tlens.liveState"))["kernelState"] == "busy"

    for _ in range(200):
        if await kernel_busy():
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the server never saw the cell make the kernel busy")
    refresh = asyncio.ensure_future(command(client, "tlens.refreshLiveState"))
    seen_waiting = False
    for _ in range(15):  # 1.5 s of the 3 s cell
        state = await command(client, "tlens.liveState")
        assert state["introspections"] == before["introspections"] and not state["inFlight"], state
        seen_waiting |= state["waitingForKernel"]
        await asyncio.sleep(0.1)
    assert seen_waiting and not refresh.done()
    await asyncio.to_thread(notebook.finish, msg_id)
    after = await refresh
    assert after["introspections"] > before["introspections"] and "late_cache" in [c["var"] for c in after["caches"]]
    await run_cell(notebook, "del late_cache")


# ------------------------------------------------------------------------------ a kernel that dies


async def test_kernel_dying_during_introspection_leaves_the_server_serving(client):
    notebook = NotebookKernel(sys.executable)
    try:
        await run_cell(notebook, "import transformer_lens")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"settings": {"transformerLensVersion": "4.3.0"}}))
        uri = (client.root / "dies.py").as_uri()
        text = "model = load()\n_, cache = model.run_with_cache(x)\nr = cache['resid_pre', 0]\n"
        open_doc(client, uri, text)
        notebook.env = "tl4"
        await attach(client, notebook)
        # A "model" whose attribute access takes the process down (a segfault, the OOM killer).
        await run_cell(notebook, "import os\nclass HookedTransformer:\n    @property\n    def cfg(self):\n        os._exit(1)\n"
                                 "bomb = HookedTransformer()")
        for _ in range(300):
            state = await command(client, "tlens.liveState")
            if state["status"] == "dead":
                break
            await asyncio.sleep(0.05)
        assert state["status"] == "dead" and state["kernelState"] == "dead", state
        assert not notebook.alive()
        assert (await command(client, "tlens.kernelStatus"))["state"] == "dead"
        hover = await hover_text(client, uri, pos_of(text, "'resid_pre'", 1))
        assert hover.startswith("`blocks.0.hook_resid_pre`") and "live" not in hover
        result = await command(client, "tlens.resetKernelHooks", {})
        assert "attach the notebook's kernel" in result["error"]
    finally:
        await asyncio.to_thread(notebook.shutdown)
