"""Secrets over a full session: kernel keys never reach the server's log, the LSP trace, error messages,
``.tlens/`` or any other file in the workspace; connection files are read, never written into the workspace;
the server opens no network port.

The server runs behind ``lsp_tap.py``, which records the LSP traffic both ways (the trace) and the server's
stderr at ``-v`` (its log). The session starts a kernel and runs a patch sweep in it (results in ``.tlens/``),
attaches a notebook's kernel through its connection file, and fails to attach malformed connection files
that hold a key.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from ..notebook_kernel import NotebookKernel
from .conftest import _client_factory, _fail_on_server_errors, capabilities
from .helpers import open_doc, pos_of
from .test_sweep_lsp import SCRIPT

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

TAP_DIR = Path(tempfile.mkdtemp(prefix="tlens-tap-"))
TRACE, LOG = TAP_DIR / "lsp-trace.bin", TAP_DIR / "server.log"
TAPPED = [sys.executable, str(Path(__file__).with_name("lsp_tap.py")), str(TRACE), str(LOG),
          sys.executable, "-m", "lsp_server", "serve", "-v"]
MALFORMED_KEY = "5ec7e7-ma1f0rmed-c0nnect10n-f11e-key"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=TAPPED, client_factory=_client_factory))
async def client(lsp_client: LanguageClient, tmp_path, request):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=tmp_path.as_uri(),
        initialization_options={"settings": {"interpreter": sys.executable, "transformerLensVersion": "4.3.0"}}))
    lsp_client.root = tmp_path
    yield
    _fail_on_server_errors(lsp_client, request)


async def command(client, name: str, args: dict | None = None, timeout: float = 240):
    params = types.ExecuteCommandParams(command=name, arguments=[args] if args is not None else [])
    return await asyncio.wait_for(client.workspace_execute_command_async(params), timeout)


def listening(process: psutil.Process) -> list[str]:
    """The process's TCP sockets that listen, and its bound UDP sockets."""
    return [f"{c.laddr.ip}:{c.laddr.port}" for c in process.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM]


def assert_no_port_open(tap_pid: int) -> None:
    """The server listens on nothing. A kernel it starts (over Unix sockets) listens only on ipykernel's own
    loopback pipe for its subprocesses' output (one port, a random token guards it; ipykernel offers no switch)."""
    (server,) = psutil.Process(tap_pid).children()
    assert listening(server) == [], f"the server listens on {listening(server)}"
    for kernel in server.children(recursive=True):
        ports = listening(kernel)
        assert len(ports) <= 1 and all(p.startswith("127.0.0.1:") for p in ports), (kernel.cmdline(), ports)


def malformed_connection_files(folder: Path, good: dict) -> list[Path]:
    """Connection files that fail in different ways, each holding a key."""
    folder.mkdir()
    broken = {"truncated": json.dumps({**good, "key": MALFORMED_KEY})[:-20],
              "key-in-a-port": json.dumps({**good, "key": MALFORMED_KEY, "shell_port": MALFORMED_KEY}),
              "no-transport": json.dumps({k: v for k, v in {**good, "key": MALFORMED_KEY}.items() if k != "transport"}),
              # well formed, but no kernel answers there: the wrong-key / dead-kernel error
              "nobody-listens": json.dumps({**good, "key": MALFORMED_KEY, "shell_port": 9, "iopub_port": 9,
                                            "stdin_port": 9, "control_port": 9, "hb_port": 9})}
    paths = []
    for name, text in broken.items():
        (path := folder / f"kernel-{name}.json").write_text(text)
        paths.append(path)
    return paths


@pytest.mark.server_errors("could not attach the kernel")
async def test_no_key_in_logs_trace_messages_or_workspace_files_and_no_listening_port(client, tmp_path_factory):
    root: Path = client.root
    server_pid = client._server.pid  # the tap; the server and its kernels are its descendants
    assert_no_port_open(server_pid)

    # 1. A kernel the server starts, and a sweep in it (the file's setup code runs there; results in .tlens/).
    status = await command(client, "tlens.startKernel", {})
    assert status["state"] == "idle" and status["owned"] is True, status
    started_file = Path(status["connectionFile"])
    assert root not in started_file.parents, f"a connection file was written into the workspace: {started_file}"
    started_key = json.loads(started_file.read_text())["key"]
    uri = (root / "sweep.py").as_uri()
    open_doc(client, uri, SCRIPT)
    result = await command(client, "tlens.runSweep", {"uri": uri, "line": pos_of(SCRIPT, "get_act_patch_resid_pre").line})
    assert "error" not in result, result
    assert psutil.Process(server_pid).children()[0].children(), "the kernel the server started runs"
    assert_no_port_open(server_pid)

    # 2. A notebook's kernel, attached through its connection file (the owned kernel is shut down).
    notebook = NotebookKernel()
    try:
        good = json.loads(Path(notebook.connection_file).read_text())
        notebook_key = good["key"]
        status = await command(client, "tlens.attachKernel", {"connectionFile": notebook.connection_file})
        assert status["state"] == "idle" and status["owned"] is False, status
        state = await command(client, "tlens.refreshLiveState")
        assert state["status"] == "ready", state
        assert_no_port_open(server_pid)

        # 3. Connection files that fail, each with a key in it.
        for path in malformed_connection_files(tmp_path_factory.mktemp("outside") / "runtime", good):
            answer = await command(client, "tlens.attachKernel", {"connectionFile": str(path)})
            assert "error" in answer and str(path) in answer["error"], answer
        await command(client, "tlens.kernelStatus")
    finally:
        await client.shutdown_session()  # the log and the trace are complete once the server has exited
        notebook.shutdown()
    await asyncio.wait_for(client._server.wait(), 30)

    keys = {"started kernel": started_key, "notebook kernel": notebook_key, "malformed file": MALFORMED_KEY}
    assert all(len(k) >= 16 for k in keys.values()), keys
    workspace_files = [p for p in root.rglob("*") if p.is_file()]
    saved = [p for p in workspace_files if ".tlens" in p.parts]
    assert {p.suffix for p in saved} >= {".png", ".json"}, saved  # the sweep's results are there to grep
    assert not [p for p in workspace_files if p.name.startswith("kernel-")], workspace_files
    places = {"the server log": LOG, "the LSP trace": TRACE, **{str(p.relative_to(root)): p for p in workspace_files}}
    assert LOG.stat().st_size > 0 and TRACE.stat().st_size > 10_000
    trace = TRACE.read_bytes()
    assert b"could not attach the kernel" in trace and b"did not reply" in trace  # the errors are in what we grep
    leaks = [f"the {what} key in {where}" for what, key in keys.items() for where, path in places.items()
             if key.encode() in path.read_bytes()]
    assert not leaks, leaks
