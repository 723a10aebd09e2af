"""VS Code's Restricted Mode, in code-server with workspace trust on: a folder the user has not trusted gets
static analysis only. The workspace's own interpreter settings are ignored (package.json's
restrictedConfigurations), commands and code lenses that would run code say why, and trusting the folder
restarts the server with everything on."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CodeServer, run_code_server
from playwright.sync_api import expect

pytestmark = pytest.mark.editor

RESTRICTED = re.compile("TLens: Restricted Mode")
UNAVAILABLE = "is unavailable in Restricted Mode"


@pytest.fixture(scope="session")
def code_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeServer]:
    """This module's code-server: workspace trust on, so the test's folder opens in Restricted Mode."""
    yield from run_code_server(tmp_path_factory.mktemp("code-server-trust"), workspace_trust=True)


def workspace_interpreter(folder: Path) -> tuple[Path, Path]:
    """A Python inside the workspace that leaves a marker whenever it runs (then runs the real one)."""
    marker = folder.parent / "workspace-python-ran"
    python = folder / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\ntouch "{marker}"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return python, marker


def go_to_line(vscode, needle: str) -> None:
    """Scrolls the line holding `needle` to the middle of the editor (its code lens shows above it)."""
    number = next(i + 1 for i, text in enumerate((vscode.folder / vscode.current).read_text().splitlines()) if needle in text)
    vscode.page.locator(".monaco-editor .view-line").first.click()
    vscode.page.keyboard.press("Control+G")
    vscode.page.keyboard.type(str(number))
    vscode.page.keyboard.press("Enter")


def test_an_untrusted_folder_gets_analysis_only_until_trusted(vscode, code_server):
    python, marker = workspace_interpreter(vscode.folder)
    (vscode.folder / ".vscode").mkdir()
    (vscode.folder / ".vscode" / "settings.json").write_text(json.dumps(
        {"tlens.interpreter": str(python), "tlens.kernel.interpreter": str(python)}, indent=2))

    vscode.open("typo_hook.py", wait_for_text="hook_resid_pree", wait_for_server=False)
    status = vscode.status_item().first
    expect(status).to_have_text(RESTRICTED, timeout=90_000)
    problems = vscode.open_problems()  # static analysis still runs
    expect(problems).to_contain_text("unknown-hook", timeout=30_000)
    vscode.hover_at('"pattern", 3', 2, "blocks.3.attn.hook_pattern")
    vscode.page.keyboard.press("Escape")

    vscode.run_command("TLens: Start Kernel")
    toast = vscode.page.locator(".notification-toast", has_text=UNAVAILABLE).first
    expect(toast).to_contain_text("Starting a kernel is unavailable in Restricted Mode", timeout=20_000)
    expect(toast.get_by_role("button", name="Manage Workspace Trust")).to_be_visible()
    vscode.clear_notifications()

    vscode.open("sweep_tiny.py", wait_for_text="get_act_patch_resid_pre", wait_for_server=False)
    expect(status).to_have_text(RESTRICTED, timeout=90_000)
    go_to_line(vscode, "patching.get_act_patch_resid_pre")
    lens = vscode.page.locator(".codelens-decoration", has_text="Run patch sweep: unavailable in Restricted Mode")
    expect(lens.first).to_be_visible(timeout=60_000)
    lens.first.locator("a").first.click()
    toast = vscode.page.locator(".notification-toast", has_text=UNAVAILABLE).first
    expect(toast).to_contain_text("Running a patch sweep is unavailable in Restricted Mode", timeout=20_000)
    assert not marker.exists(), "the interpreter that the workspace's settings name ran in Restricted Mode"
    log = code_server.tlens_log()
    assert "Restricted Mode" in log and "Starting the server" in log and str(python) not in log, log[-3000:]

    # Trusting the folder: VS Code now applies its interpreter settings; the server restarts with them.
    toast.get_by_role("button", name="Manage Workspace Trust").click()
    trust_editor = vscode.page.locator(".workspace-trust-editor")
    trust_editor.get_by_role("button", name=re.compile("^Trust")).first.click()
    expect(status).to_have_text(re.compile(r"TLens: (no kernel|kernel \w+)"), timeout=90_000)
    assert marker.exists(), "after trust, the workspace's own interpreter runs the server"
    # One restart (trust granted and the interpreter setting that now applies come within its debounce).
    assert re.search(r"Server restart: (the workspace is now trusted|tlens.interpreter changed)", code_server.tlens_log())
