"""What a new user hit in VS Code on real research notebooks (issue 14), replayed in the workbench.

Each test failed before its fix: a Colab set-up cell broke the sweep's setup, a failed setup left its
progress notification and its kernel behind, the first edit in a notebook was not analysed, typo fixes
were missing for short names, reloading the window logged request failures, and the kernels the
extension started showed up as TCP ports.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from conftest import processes_with_marker
from playwright.sync_api import expect

pytestmark = pytest.mark.editor

# Lines languageclient and pygls write to the TLens output channel when something is wrong.
NOISE = re.compile(r"Starting server failed|Request \S+ failed|Cancel notification for unknown message id"
                   r"|Ignoring notification for unknown method|Traceback")


def _needs_sweep_kernel() -> None:
    if not os.environ.get("TLENS_HT_PYTHON"):
        pytest.skip("TLENS_HT_PYTHON is not set (a Python with TransformerLens 2.x for the sweep kernel)")


class OutputChannel:
    """The TLens output channel text written after a point in time (all extension hosts of the session)."""

    def __init__(self, code_server):
        self.code_server = code_server
        self.sizes = {p: p.stat().st_size for p in self._logs()}

    def _logs(self) -> list[Path]:
        return sorted(self.code_server.logs_dir.glob("*/exthost*/tlens.tlens-lsp/TLens.log"))

    def new_text(self) -> str:
        parts = []
        for p in self._logs():
            with p.open("rb") as f:
                f.seek(self.sizes.get(p, 0))
                parts.append(f.read().decode(errors="replace"))
        return "".join(parts)


def _listening_tcp_ports(pid: int) -> list[int]:
    """TCP ports process `pid` listens on (its socket inodes looked up in /proc/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                ports.append(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def _kernel_pids(code_server) -> list[int]:
    return [pid for pid, cmd in processes_with_marker(code_server.marker) if "ipykernel_launcher" in cmd]


def test_first_notebook_edit_is_analysed_and_a_short_name_typo_is_fixed_as_written(vscode, code_server):
    channel = OutputChannel(code_server)
    vscode.open("typo_hook.py", wait_for_text="hook_resid_pree")  # workbench and extensions up
    code = 'cell_pattern = cache["pattern", 3]'
    vscode.open_from_explorer("ioi_cells.ipynb", wait_for_text=code)
    # The first edit: VS Code may send it with the notebook version of didOpen.
    vscode.click_line_end(code)
    vscode.page.keyboard.type('\ntypo = cache["patern", 0]')
    menu = vscode.code_action_menu('typo = cache["patern"', 16)
    expect(menu).to_contain_text("Replace with 'pattern'")  # the short form written, not blocks.{l}...
    vscode.choose_code_action(menu, re.compile(r"Replace with 'pattern'"))
    vscode.wait_line('typo = cache["pattern", 0]')
    hover = vscode.hover_at('typo = cache["pattern"', 16, "blocks.0.attn.hook_pattern")
    expect(hover).to_contain_text("[batch, n_heads, query_pos, key_pos]")
    vscode.save()  # notebookDocument/didSave: handled, not "Ignoring notification"
    deadline = time.monotonic() + 10
    while 'cache[\\"pattern\\", 0]' not in (vscode.folder / "ioi_cells.ipynb").read_text():
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.2)
    assert not NOISE.search(channel.new_text()), channel.new_text()


def test_reloading_the_window_leaves_the_output_channel_clean(vscode, code_server):
    channel = OutputChannel(code_server)
    vscode.open("ioi_patching.py", wait_for_text="from_pretrained")
    vscode.hover_at('attn_pattern = cache["pattern", 3]', 22, "blocks.3.attn.hook_pattern")
    # The cursor moving over lines: the editor asks for code actions and cancels those it outran.
    for needle in ("model.add_hook(utils.get_act_name", 'attn_pattern = cache["pattern", 3]', "from_pretrained"):
        vscode.click_text(needle)
    vscode.code_action_menu("model.add_hook(utils.get_act_name", 2)
    vscode.page.keyboard.press("Escape")
    vscode.run_command("Developer: Reload Window")
    vscode.wait_line("from_pretrained", timeout=60_000)
    vscode.wait_server_ready()
    vscode.hover_at('attn_pattern = cache["pattern", 3]', 22, "blocks.3.attn.hook_pattern")
    text = channel.new_text()
    assert "Server started." in text, text  # the reloaded window's host logged its start
    assert not NOISE.search(text), text


@pytest.mark.kernel
@pytest.mark.ht
def test_a_colab_notebook_sweeps_to_a_heatmap_in_a_kernel_without_tcp_ports(vscode, code_server):
    _needs_sweep_kernel()
    sweep_line = "resid_pre_results = patching.get_act_patch_resid_pre("
    vscode.open("typo_hook.py", wait_for_text="hook_resid_pree")
    vscode.open_from_explorer("colab_sweep.ipynb", wait_for_text="%pip install transformer_lens")
    # The set-up cell's `if IN_COLAB:` block holds only magics: it runs as a same-width no-op.
    img = vscode.run_sweep_from_code_action(sweep_line)
    assert img.evaluate("img => img.complete && img.naturalWidth") > 0
    expect(vscode.status_item().first).to_have_text(re.compile(r"TLens: kernel idle"), timeout=30_000)
    pids = _kernel_pids(code_server)
    assert pids, "no kernel process found for the sweep"
    # IPC transport: the kernel's sockets are files. ipykernel still binds one loopback TCP port (a pipe
    # for subprocesses' output), which the extension's default remote.portsAttributes keeps from being
    # forwarded: VS Code's Ports view listed six ports per kernel before.
    ports = {pid: _listening_tcp_ports(pid) for pid in pids}
    assert all(len(p) <= 1 for p in ports.values()), ports
    time.sleep(3)  # VS Code polls for new listening ports every second
    forwarded = " ".join(vscode.page.locator(".statusbar-item").evaluate_all(
        "els => els.filter(e => e.id === 'status.forwardedPorts').map(e => e.getAttribute('aria-label'))"))
    assert not any(str(port) in forwarded for p in ports.values() for port in p), forwarded


@pytest.mark.kernel
@pytest.mark.ht
def test_a_failed_setup_names_the_users_line_ends_its_progress_and_stops_its_kernel(vscode, code_server):
    _needs_sweep_kernel()
    sweep_line = "resid_pre_results = patching.get_act_patch_resid_pre("
    vscode.open("setup_fails.py", wait_for_text=sweep_line)
    menu = vscode.code_action_menu(sweep_line, 4)
    vscode.choose_code_action(menu, re.compile("Run patch sweep", re.I))
    error = vscode.page.locator(".notification-toast", has_text="load_prompts_from_drive")
    expect(error).to_be_visible(timeout=180_000)
    expect(error).to_contain_text("setup_fails.py, line 13")
    expect(error).to_contain_text("NameError")
    # No progress notification left with its Cancel button, and no kernel left idling.
    expect(vscode.page.locator(".notification-toast", has_text=re.compile("Patch sweep:"))).to_have_count(0, timeout=10_000)
    expect(vscode.status_item().first).to_have_text(re.compile(r"TLens: no kernel"), timeout=30_000)
    deadline = time.monotonic() + 15
    while _kernel_pids(code_server):
        assert time.monotonic() < deadline, f"the sweep's kernel is still running: {_kernel_pids(code_server)}"
        time.sleep(0.5)
