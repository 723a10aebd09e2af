"""stdio: read on the event loop when stdin is a pipe (what editors give), through a thread otherwise."""

from __future__ import annotations

import json
import subprocess
import sys

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}, "rootUri": None}}
SHUTDOWN = [{"jsonrpc": "2.0", "id": 3, "method": "shutdown", "params": None}, {"jsonrpc": "2.0", "method": "exit", "params": None}]
TEXT = 'cache = model.run_with_cache(x)[1]\nx = cache["resid_post", 3]\n'


def framed(*messages: dict) -> bytes:
    out = b""
    for message in messages:
        body = json.dumps(message).encode()
        out += b"Content-Length: %d\r\n\r\n" % len(body) + body
    return out


def read_message(stream) -> dict:
    length = None
    while (line := stream.readline()) not in (b"\r\n", b""):
        if line.startswith(b"Content-Length:"):
            length = int(line.split(b":")[1])
    assert length is not None, "the server closed stdout"
    return json.loads(stream.read(length))


def response(stream, request_id: int) -> dict:
    while "method" in (message := read_message(stream)) or message.get("id") != request_id:
        pass  # notifications (diagnostics, logs) and the server's own requests
    return message


def test_served_over_pipes(tmp_path):
    log = (tmp_path / "stderr").open("w+b")  # (a pipe nobody reads would fill up with the verbose log)
    server = subprocess.Popen([sys.executable, "-m", "lsp_server", "serve", "-v"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=log)
    try:
        server.stdin.write(framed(INITIALIZE)); server.stdin.flush()
        assert response(server.stdout, 1)["result"]["capabilities"]["hoverProvider"]
        server.stdin.write(framed(
            {"jsonrpc": "2.0", "method": "initialized", "params": {}},
            {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": "file:///tmp/a.py", "languageId": "python", "version": 1, "text": TEXT}}},
            {"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {
                "textDocument": {"uri": "file:///tmp/a.py"}, "position": {"line": 1, "character": 12}}}))
        server.stdin.flush()
        assert "blocks.3.hook_resid_post" in response(server.stdout, 2)["result"]["contents"]["value"]
        # A hover and the edit after it, arriving together: the hover is about the text it was asked on.
        server.stdin.write(framed(
            {"jsonrpc": "2.0", "id": 4, "method": "textDocument/hover", "params": {
                "textDocument": {"uri": "file:///tmp/a.py"}, "position": {"line": 1, "character": 12}}},
            {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": "file:///tmp/a.py", "version": 2}, "contentChanges": [{"range": {
                    "start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "y = 1\n"}]}}))
        server.stdin.flush()
        assert "blocks.3.hook_resid_post" in response(server.stdout, 4)["result"]["contents"]["value"]
        server.stdin.write(framed(SHUTDOWN[0])); server.stdin.flush()
        assert response(server.stdout, 3)["result"] is None  # (a client waits for it before it sends exit)
        server.stdin.write(framed(SHUTDOWN[1])); server.stdin.flush()
        assert server.wait(timeout=60) == 0
    finally:
        server.kill()
    log.seek(0)
    assert b"through a thread" not in log.read()


def test_served_from_a_file_through_a_thread(tmp_path):
    """stdin redirected from a file (asyncio has no pipe transport for it): read as pygls reads it."""
    messages = tmp_path / "session.jsonrpc"
    messages.write_bytes(framed(INITIALIZE, *SHUTDOWN))
    with messages.open("rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "lsp_server", "serve", "-v"], stdin=stdin, capture_output=True, timeout=120)
    assert b"stdin is not a pipe" in done.stderr
    assert response(iter_lines(done.stdout), 1)["result"]["capabilities"]["hoverProvider"]


class iter_lines:
    """A file-like view of bytes, for read_message."""

    def __init__(self, data: bytes):
        import io
        self._io = io.BytesIO(data)
        self.readline, self.read = self._io.readline, self._io.read
