"""pytest-lsp fixtures: the real server over stdio, a VS Code-like client with notebook support."""

from __future__ import annotations

import re
import sys
from typing import Union

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities


def _converter():
    """lsprotocol 2025.0.0 structures any Command|CodeAction with a "command" key as Command;
    discriminate on the field's type so CodeActions that carry a command survive."""
    from pygls.protocol import default_converter

    conv = default_converter()

    def hook(obj, _):
        if isinstance(obj.get("command"), str):
            return conv.structure(obj, types.Command)
        return conv.structure(obj, types.CodeAction)

    conv.register_structure_hook(Union[types.Command, types.CodeAction], hook)
    return conv


def _client_factory():
    from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

    client = LanguageClient(converter_factory=_converter)
    defaults = {m: f for m, f in DEFAULT_CLIENT_FEATURES.items() if m != types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS}
    register_lsp_features(client, defaults)
    client.diagnostic_versions = {}
    client.notifications = []

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def publish_diagnostics(params: types.PublishDiagnosticsParams):
        client.diagnostics[params.uri] = params.diagnostics
        client.diagnostic_versions[params.uri] = params.version

    client.code_lens_refreshes = 0

    @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def code_lens_refresh(params):
        client.code_lens_refreshes += 1

    client.registrations = []

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams):
        client.registrations += params.registrations

    for method in ("tlens/kernelStatus", "tlens/sweepResult"):
        client.feature(method)(lambda params, method=method: client.notifications.append((method, params)))
    return client


def capabilities() -> types.ClientCapabilities:
    caps = client_capabilities("visual-studio-code")
    caps.notebook_document = types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities()
    )
    caps.window = types.WindowClientCapabilities(work_done_progress=True)
    return caps


SERVER = [sys.executable, "-m", "lsp_server", "serve"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, client_factory=_client_factory))
async def client(lsp_client: LanguageClient, tmp_path, request):
    result = await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(),
            root_uri=tmp_path.as_uri(),
            initialization_options={"settings": {"transformerLensVersion": "2.18.0"}},
        )
    )
    lsp_client.init_result = result
    lsp_client.root = tmp_path
    yield
    await lsp_client.shutdown_session()
    _fail_on_server_errors(lsp_client, request)


def _fail_on_server_errors(client: LanguageClient, request) -> None:
    """A crash fails the test: the server's error boundary keeps users served, but a handler that raised
    (a traceback in the log) is a bug, and so is any Error-level message a test does not expect.

    ``@pytest.mark.server_errors("pattern", ...)``: Error-level messages matching one of the patterns
    are expected (a failed sweep setup, a bad connection file); tracebacks never are.
    """
    marker = request.node.get_closest_marker("server_errors")
    expected = [re.compile(p) for p in (marker.args if marker else ())]
    errors = [m.message for m in client.log_messages if m.type == types.MessageType.Error]
    crashes = [m for m in errors if "Traceback (most recent call last)" in m]
    unexpected = [m for m in errors if m not in crashes and not any(p.search(m) for p in expected)]
    assert not crashes, "a server handler raised:\n" + "\n".join(crashes)
    assert not unexpected, "unexpected Error-level server messages:\n" + "\n".join(unexpected)
