"""Notebooks and kernels in the real workbench: hovers in .ipynb cells (the built-in Jupyter notebook
type, analysed as one program), and attaching to a running kernel from the status bar picker."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from conftest import end_process_group, session_env
from playwright.sync_api import expect

pytestmark = pytest.mark.editor


def test_hover_in_notebook_cell_uses_earlier_cells(vscode):
    code = 'cell_pattern = cache["pattern", 3]'
    vscode.open("typo_hook.py", wait_for_text="hook_resid_pree")  # workbench and extensions up
    vscode.open_from_explorer("ioi_cells.ipynb", wait_for_text=code)
    # `cache` and `model` (gpt2-small) come from earlier cells.
    hover = vscode.hover_at(code, code.index('"pattern"') + 2, "blocks.3.attn.hook_pattern")
    expect(hover).to_contain_text("[batch, n_heads, query_pos, key_pos]")


@pytest.fixture
def running_kernel(code_server):
    """An ipykernel with its connection file in the session's Jupyter runtime dir (its own process group)."""
    runtime = code_server.jupyter_runtime_dir
    runtime.mkdir(parents=True, exist_ok=True)
    connection_file = runtime / "kernel-editor-test.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection_file)],
        env=session_env(code_server.marker), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not connection_file.exists() or connection_file.stat().st_size == 0:
        assert proc.poll() is None, "the test kernel exited during start-up"
        assert time.monotonic() < deadline, "the test kernel wrote no connection file within 60 s"
        time.sleep(0.1)
    yield connection_file
    end_process_group(proc)
    connection_file.unlink(missing_ok=True)


@pytest.mark.kernel
def test_attach_to_running_kernel_from_status_bar(vscode, running_kernel):
    vscode.open("ioi_patching.py", wait_for_text="from_pretrained")
    vscode.status_item().first.click()
    picker = vscode.page.locator(".quick-input-widget")
    # Newest connection file first, then Browse… and Start a new kernel.
    first = picker.locator(".quick-input-list .monaco-list-row").first
    expect(first).to_contain_text(running_kernel.name, timeout=10_000)
    first.click()
    expect(vscode.status_item().first).to_have_text(re.compile(r"TLens: kernel (idle|busy)"), timeout=60_000)
    # The tooltip names the kernel's connection file.
    expect(vscode.status_item().first).to_have_attribute("aria-label", re.compile(re.escape(running_kernel.name)))


@pytest.mark.kernel
def test_notebook_kernel_by_hand_without_jupyter_extension(vscode, running_kernel):
    """With a notebook open, the picker offers its kernel first; without the Jupyter extension (none is
    installed here) it says so and takes the path the user printed in the notebook."""
    vscode.open("typo_hook.py", wait_for_text="hook_resid_pree")  # workbench and extensions up
    vscode.open_from_explorer("ioi_cells.ipynb", wait_for_text="logits, cache = model.run_with_cache(tokens)")
    vscode.status_item().first.click()
    picker = vscode.page.locator(".quick-input-widget")
    rows = picker.locator(".quick-input-list .monaco-list-row")
    first = rows.first
    expect(first).to_contain_text("This notebook's kernel", timeout=10_000)
    expect(first).to_contain_text("the Jupyter extension is not installed")
    expect(first).to_contain_text("get_connection_file()")
    expect(rows.filter(has_text=running_kernel.name).first).to_be_attached()  # the list is still there
    first.click()

    # An input box says what to run and where, and checks the path it is given.
    box = picker.locator("input")
    expect(picker).to_contain_text("import ipykernel; print(ipykernel.get_connection_file())")
    expect(picker).to_contain_text("ioi_cells.ipynb")
    box.fill(str(running_kernel.parent / "kernel-missing.json"))
    expect(picker).to_contain_text("No such file on this machine")
    box.fill(str(running_kernel))
    expect(picker).not_to_contain_text("No such file on this machine")
    box.press("Enter")
    expect(vscode.status_item().first).to_have_text(re.compile(r"TLens: kernel (idle|busy)"), timeout=60_000)
    expect(vscode.status_item().first).to_have_attribute("aria-label", re.compile(re.escape(running_kernel.name)))
