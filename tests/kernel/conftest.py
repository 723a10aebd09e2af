"""Fixtures for real-kernel tests: kernels are started through jupyter-client, one per module.

``kernel_factory`` starts kernels and guarantees they are shut down at the end of the module
(and that no kernel process outlives the test session, checked by ``_no_stray_kernels``).
``ht_python`` is the TL 2.x interpreter from ``$TLENS_HT_PYTHON`` (tests skip without it).
``filtered_python`` builds a real interpreter whose sys.path lacks chosen packages (e.g.
transformer_lens) by linking the rest of this environment's site-packages into a fresh venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest
import pytest_asyncio

from lsp_server.kernel import KernelBridge
from lsp_server.sweeps.setup_code import run_setup


@pytest.fixture(scope="session")
def ht_python() -> str:
    path = os.environ.get("TLENS_HT_PYTHON")
    if not path:
        pytest.skip("TLENS_HT_PYTHON is not set (make builds .venv-ht with TransformerLens 2.18)")
    if not Path(path).exists():
        pytest.skip(f"TLENS_HT_PYTHON={path} does not exist")
    return path


class KernelFactory:
    """Starts kernels (optionally running setup code) and shuts them all down."""

    def __init__(self) -> None:
        self.bridges: list[KernelBridge] = []

    async def start(self, interpreter: str = sys.executable, setup: str | None = None) -> KernelBridge:
        bridge = await KernelBridge.start(interpreter, timeout=120)
        self.bridges.append(bridge)
        if setup is not None:
            res = await run_setup(bridge, setup, timeout=300)
            assert res.ok, res.message + "\n" + res.traceback
        return bridge

    async def attach(self, connection_file: str) -> KernelBridge:
        bridge = await KernelBridge.attach(connection_file)
        self.bridges.append(bridge)
        return bridge

    async def close(self) -> None:
        # Attached clients first, then the kernels we own.
        for bridge in sorted(self.bridges, key=lambda b: b.owned):
            await bridge.shutdown()
        self.bridges.clear()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel_factory():
    factory = KernelFactory()
    yield factory
    await factory.close()


# Set at collection, before any test starts a process: every kernel of this session inherits it.
os.environ["TLENS_TEST_SESSION"] = uuid.uuid4().hex


@pytest.fixture(scope="session", autouse=True)
def _no_stray_kernels():
    """Fail loudly if a test leaves a kernel process of ours running. "Ours": started by this test
    session (kernels inherit its environment marker), so that suites running side by side on one
    machine do not see each other's kernels."""
    marker = b"TLENS_TEST_SESSION=" + os.environ["TLENS_TEST_SESSION"].encode()
    yield
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    ours = [line for line in out.splitlines() if "ipykernel_launcher" in line and "kernel-tlens-" in line
            and marker in _environment(int(line.split()[0]))]
    assert not ours, "kernels left running:\n" + "\n".join(ours)


def _environment(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []  # gone meanwhile


@pytest.fixture(scope="session")
def filtered_python(tmp_path_factory):
    """Factory: a real interpreter that has this environment's packages minus ``exclude``."""
    made: dict[tuple[str, ...], str] = {}

    def make(exclude: tuple[str, ...]) -> str:
        if exclude in made:
            return made[exclude]
        root = tmp_path_factory.mktemp("venv-without-" + "-".join(exclude))
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
        linked = root / "linked"
        linked.mkdir()
        site = Path(sysconfig.get_paths()["purelib"])
        for entry in site.iterdir():
            name = entry.name.lower()
            if any(name.startswith(x) for x in exclude) or name.endswith(".pth"):
                continue
            (linked / entry.name).symlink_to(entry)
        py = root / "venv" / "bin" / "python"
        venv_site = subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        Path(venv_site, "tlens_test_linked.pth").write_text(str(linked) + "\n")
        made[exclude] = str(py)
        return str(py)

    yield make
    for py in made.values():
        shutil.rmtree(Path(py).parents[2], ignore_errors=True)


def kernel_json(bridge_result_text: str):
    """Decode a user-expression value that holds a JSON string."""
    import ast

    return json.loads(ast.literal_eval(bridge_result_text))
