"""Extension behaviour around the server: settings reach it without a restart; a server that cannot
start gets a message that says why and offers the fix."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from conftest import server_python
from playwright.sync_api import expect

pytestmark = pytest.mark.editor


def write_workspace_settings(folder: Path, settings: dict) -> None:
    (folder / ".vscode").mkdir(exist_ok=True)
    (folder / ".vscode" / "settings.json").write_text(json.dumps(settings, indent=2))


def test_severity_setting_reaches_server_without_restart(vscode, code_server):
    vscode.open("typo_hook.py", wait_for_text="hook_resid_pree")
    problems = vscode.open_problems()
    expect(problems).to_contain_text("unknown-hook", timeout=30_000)

    write_workspace_settings(vscode.folder, {"tlens.diagnostics.severity": {"unknown-hook": "off"}})
    expect(problems).not_to_contain_text("unknown-hook", timeout=30_000)

    write_workspace_settings(vscode.folder, {"tlens.diagnostics.severity": {"unknown-hook": "warning"}})
    expect(problems).to_contain_text("unknown-hook", timeout=30_000)
    expect(vscode.page.locator(".view-overlays .squiggly-warning").first).to_be_visible(timeout=30_000)
    # didChangeConfiguration, not a new server process.
    assert code_server.tlens_log().count("Starting the server") == 1, code_server.tlens_log()


def python_without_server(tmp_path: Path) -> Path:
    """A real Python that cannot import lsp_server (no site-packages)."""
    wrapper = tmp_path / "python-no-site"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.parametrize(
    "case, message, buttons",
    [
        ("missing", re.compile(r"needs Python, but '.*/no/such/python3' was not found"), ["Set tlens.interpreter"]),
        ("not-installed", re.compile(r"cannot import lsp_server.*pip install tlens-lsp"), ["Install tlens-lsp", "Set tlens.interpreter"]),
    ],
    ids=["python-missing", "server-not-installed"],
)
def test_server_that_cannot_start_explains_the_fix(vscode, tmp_path, case, message, buttons):
    python = tmp_path / "no" / "such" / "python3" if case == "missing" else python_without_server(tmp_path)
    write_workspace_settings(vscode.folder, {"tlens.interpreter": str(python)})
    vscode.open("ioi_patching.py", wait_for_text="from_pretrained", wait_for_server=False)

    toast = vscode.page.locator(".notification-toast", has_text="TLens").first
    expect(toast).to_contain_text(message, timeout=60_000)
    for label in buttons:
        expect(toast.get_by_role("button", name=label)).to_be_visible()
    expect(vscode.status_item().first).to_have_text(re.compile("TLens: server stopped"))

    # "Set tlens.interpreter" opens the settings editor on that setting.
    toast.get_by_role("button", name="Set tlens.interpreter").click()
    expect(vscode.page.locator(".settings-editor")).to_contain_text("Interpreter", timeout=20_000)

    # Fixing the setting restarts the server, which then comes up.
    write_workspace_settings(vscode.folder, {"tlens.interpreter": server_python()})
    vscode.wait_server_ready()
