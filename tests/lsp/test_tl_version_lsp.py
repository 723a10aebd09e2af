"""Which TransformerLens version the server assumes when no setting names one."""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .conftest import SERVER, _client_factory, capabilities
from .helpers import diagnostics_for, open_doc

pytestmark = pytest.mark.ht

CODE = "from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained('gpt2')\n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, client_factory=_client_factory))
async def client(lsp_client: LanguageClient, tmp_path):
    ht_python = os.environ.get("TLENS_HT_PYTHON")
    if not ht_python:
        pytest.skip("TLENS_HT_PYTHON is not set (make builds .venv-ht with TransformerLens 2.18)")
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=tmp_path.as_uri(),
        initialization_options={"settings": {"kernel": {"interpreter": ht_python}}}))
    lsp_client.root = tmp_path
    yield
    await lsp_client.shutdown_session()


async def command(client, name: str) -> dict:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command=name, arguments=[]))


async def test_the_kernel_interpreters_version_is_used(client):
    # The server runs TL 4.x; kernels it starts run TL 2.18, where HookedTransformer exists.
    for _ in range(200):
        info = await command(client, "tlens.serverInfo")
        if info["transformerLens"].startswith("2."):
            break
        await asyncio.sleep(0.05)
    assert info["transformerLens"].startswith("2.18") and info["transformerLensSource"] == f"the interpreter {os.environ['TLENS_HT_PYTHON']}"
    uri = (client.root / "ht.py").as_uri()
    open_doc(client, uri, CODE)
    assert [d.code for d in await diagnostics_for(client, uri)] == []


async def test_a_version_setting_wins(client):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"transformerLensVersion": "4.3.0"}}))
    info = await command(client, "tlens.serverInfo")
    assert info["transformerLens"] == "4.3.0" and info["transformerLensSource"] == "the setting tlens.transformerLensVersion"
    uri = (client.root / "ht.py").as_uri()
    open_doc(client, uri, CODE)
    assert "removed-api" in [d.code for d in await diagnostics_for(client, uri)]


async def test_bridge_code_on_the_kernel_interpreters_tl2_is_flagged(client):
    """The kernel interpreter has TL 2.18: TransformerBridge imports fail there (ModuleNotFoundError)."""
    for _ in range(200):
        if (await command(client, "tlens.serverInfo"))["transformerLens"].startswith("2."):
            break
        await asyncio.sleep(0.05)
    uri = (client.root / "bridge.py").as_uri()
    open_doc(client, uri, "from transformer_lens.model_bridge import TransformerBridge\n")
    (diag,) = await diagnostics_for(client, uri)
    assert diag.code == "unavailable-api" and "the interpreter " in diag.message and "≥ 3.0" in diag.message
