"""A real Jupyter kernel that tests drive the way a notebook front end does.

Cells run from our own jupyter-client connection, non-silently and with history (so they show as
``busy`` to every other client, like a notebook cell); the language server or a ``KernelBridge``
attaches to the same kernel through its connection file.
"""

from __future__ import annotations

import json
import queue
import sys
import tempfile
import time
import uuid
from pathlib import Path

import os

import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager


def kernel_python(env: str) -> str:
    """The interpreter of a kernel environment: "tl4" (this one) or "tl2" (TLENS_HT_PYTHON, else skip)."""
    if env == "tl4":
        return sys.executable
    path = os.environ.get("TLENS_HT_PYTHON")
    if not path:
        pytest.skip("TLENS_HT_PYTHON is not set (make builds .venv-ht with TransformerLens 2.18)")
    return path


class CellError(AssertionError):
    """A cell raised; the message carries the kernel's traceback."""


class NotebookKernel:
    """One kernel on ``python``; ``run`` a cell and wait, or ``start_cell`` and ``finish`` later."""

    def __init__(self, python: str = sys.executable, timeout: float = 120.0) -> None:
        self._spec_dir = tempfile.TemporaryDirectory(prefix="tlens-test-kernelspec-")
        spec = Path(self._spec_dir.name) / "nbkernel"
        spec.mkdir()
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "test notebook kernel", "language": "python", "interrupt_mode": "signal"}))
        runtime = Path(tempfile.gettempdir())
        # "kernel-tlens-" in the name: tests/kernel's stray-kernel check sees it if it outlives us.
        self.km = KernelManager(kernel_name="nbkernel", kernel_spec_manager=KernelSpecManager(kernel_dirs=[self._spec_dir.name]),
                                connection_file=str(runtime / f"kernel-tlens-nb-{uuid.uuid4()}.json"))
        self.km.start_kernel(stdout=sys.stderr, stderr=sys.stderr)
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=timeout)

    @property
    def connection_file(self) -> str:
        return self.km.connection_file

    def run(self, code: str, timeout: float = 300.0) -> dict:
        """Run a cell (non-silent, stored in history) and wait for it; raise CellError if it fails."""
        return self.finish(self.start_cell(code), timeout)

    def start_cell(self, code: str, user_expressions: dict | None = None) -> str:
        return self.kc.execute(code, silent=False, store_history=True, user_expressions=user_expressions or {})

    def finish(self, msg_id: str, timeout: float = 300.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TimeoutError(f"cell {msg_id} did not finish within {timeout} s") from None
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        self._drain_iopub()
        content = msg["content"]
        if content["status"] != "ok":
            raise CellError(f"{content.get('ename')}: {content.get('evalue')}\n" + "\n".join(content.get("traceback", [])))
        return content

    def value(self, expression: str, timeout: float = 60.0) -> str:
        """text/plain of ``expression`` evaluated in the kernel (as a user expression of an empty cell)."""
        content = self.finish(self.kc.execute("", silent=True, store_history=False,
                                              user_expressions={"v": expression}), timeout)
        v = content["user_expressions"]["v"]
        if v["status"] != "ok":
            raise CellError(f"{v.get('ename')}: {v.get('evalue')}")
        return v["data"]["text/plain"]

    def _drain_iopub(self) -> None:
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.01)
            except queue.Empty:
                return

    def alive(self) -> bool:
        return self.km.is_alive()

    def shutdown(self) -> None:
        self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=not self.km.is_alive())
        self._spec_dir.cleanup()
