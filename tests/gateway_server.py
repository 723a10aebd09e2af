"""A real Jupyter Kernel Gateway for tests: token auth, a free port on 127.0.0.1, kernels on this
interpreter (the main .venv's ipykernel), kernel listing on.

``LocalGateway.start()`` waits until the REST API answers; ``stop()`` checks that the tests left no
kernel on it (every kernel started through it was shut down), stops it, and checks that none of the
kernel processes it spawned outlives it. Also: a TLS server with a self-signed certificate, for the
TLS error (any HTTPS client that verifies certificates refuses it during the handshake).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from lsp_server.kernel.gateway_config import GatewayConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))


class LocalGateway:
    """One ``jupyter kernelgateway`` process (Kernel Gateway 3.x) for the tests."""

    def __init__(self) -> None:
        self.token = "tok-" + secrets.token_hex(16)
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="tlens-test-gateway-", suffix=".log")[1])
        self.kernel_pids: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> GatewayConfig:
        return GatewayConfig(self.url, self.token)

    def start(self, timeout: float = 60.0) -> "LocalGateway":
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_GATEWAY_")}
        for _ in range(3):  # a free port can be taken between our probe and the gateway's bind
            self.port = free_port()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kernel_gateway", "--KernelGatewayApp.ip=127.0.0.1",
                 f"--KernelGatewayApp.port={self.port}", "--KernelGatewayApp.port_retries=0",
                 f"--KernelGatewayApp.auth_token={self.token}", "--JupyterWebsocketPersonality.list_kernels=True"],
                stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                with contextlib.suppress(OSError):
                    self.request("GET", "/api")
                    return self
                time.sleep(0.2)
            self._terminate()
        raise RuntimeError(f"the Kernel Gateway did not start:\n{self.log.read_text()[-3000:]}")

    def request(self, method: str, path: str, token: str | None = None) -> object:
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {token or self.token}"})
        with urllib.request.urlopen(req, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernels(self) -> list[dict]:
        kernels = self.request("GET", "/api/kernels")
        self.kernel_pids.update(p for p in _children(self.process.pid))
        return kernels

    def delete_kernel(self, kernel_id: str) -> None:
        """What a gateway's idle culler does to a kernel."""
        self.kernel_pids.update(_children(self.process.pid))
        self.request("DELETE", f"/api/kernels/{kernel_id}")

    def stop(self, check: bool = True) -> None:
        """Stop the gateway; with ``check``, fail if a kernel was left on it or outlived it."""
        left: list[dict] = []
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(OSError):
                left = self.kernels()
        self._terminate()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in self.kernel_pids):
            time.sleep(0.2)
        survivors = [p for p in self.kernel_pids if _alive(p)]
        for pid in survivors:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        if check:
            assert not left, f"kernels left running on the gateway: {left}"
            assert not survivors, f"kernel processes outlived the gateway: {survivors}"
        self.log.unlink(missing_ok=True)

    def _terminate(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.kernel_pids.update(_children(self.process.pid))
        self.process.terminate()  # the gateway shuts its kernels down on SIGTERM
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@contextlib.contextmanager
def tls_server():
    """``https://127.0.0.1:PORT`` served with a self-signed certificate (needs the ``openssl`` tool)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        import pytest

        pytest.skip("the openssl tool is needed to make a self-signed certificate")
    folder = Path(tempfile.mkdtemp(prefix="tlens-test-tls-"))
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError, ssl.SSLError), context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1024)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)
