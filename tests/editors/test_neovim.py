"""Neovim (Debian's 0.7, or newer) as an LSP client of the real server, headless.

The probe loads the shipped user config extension/neovim/tlens.lua, so these tests also check the
snippet the README shows.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import NVIM, REPO, WORKSPACE_FIXTURES, end_process_group, require_or_skip, server_python

pytestmark = pytest.mark.editor

PROBE = Path(__file__).parent / "nvim" / "lsp_probe.lua"
TLENS_LUA = REPO / "extension" / "neovim" / "tlens.lua"


def run_probe(tmp_path: Path, file: str, **env: str) -> dict:
    require_or_skip([] if NVIM else ["nvim"], "Neovim tests")
    path = tmp_path / file
    path.write_text((WORKSPACE_FIXTURES / file).read_text())
    proc = subprocess.Popen(
        [NVIM, "--headless", "--clean", "-u", str(PROBE)],
        env=dict(os.environ, TLENS_LUA=str(TLENS_LUA), TLENS_PYTHON=server_python(), PROBE_FILE=str(path),
                 XDG_STATE_HOME=str(tmp_path / "state"), XDG_DATA_HOME=str(tmp_path / "data"), **env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path,
    )
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        end_process_group(proc)  # nvim and the server it spawned
    lines = [line for line in stdout.splitlines() if line.startswith("PROBE_RESULT ")]
    assert lines, f"no probe result (rc {proc.returncode})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    result = json.loads(lines[-1].removeprefix("PROBE_RESULT "))
    assert result["error"] is None, f"probe error: {result['error']}\nstderr:\n{stderr}"
    assert proc.returncode == 0, stderr
    return result


def position_of(file: str, needle: str, offset: int = 0) -> tuple[int, int]:
    for number, line in enumerate((WORKSPACE_FIXTURES / file).read_text().splitlines()):
        if needle in line:
            return number, line.index(needle) + offset
    raise AssertionError(f"{needle!r} not in {file}")


def test_neovim_hover_on_cache_key_shows_hook_name(tmp_path):
    line, col = position_of("ioi_patching.py", '"pattern", 3]', 2)
    result = run_probe(tmp_path, "ioi_patching.py", PROBE_HOVER_LINE=str(line), PROBE_HOVER_COL=str(col))
    assert result["attached"]
    assert result["hover"] and "blocks.3.attn.hook_pattern" in result["hover"], result["hover"]
    assert "[batch, n_heads, query_pos, key_pos]" in result["hover"]


def test_neovim_receives_unknown_hook_diagnostic(tmp_path):
    result = run_probe(tmp_path, "typo_hook.py", PROBE_DIAGNOSTIC_CODE="unknown-hook")
    line, col = position_of("typo_hook.py", "blocks.0.hook_resid_pree")
    unknown = [d for d in result["diagnostics"] if d["code"] == "unknown-hook"]
    assert unknown, f"no unknown-hook diagnostic; got {result['diagnostics']}"
    assert unknown[0]["lnum"] == line


def test_neovim_config_sends_settings_the_server_reads_without_a_warning(tmp_path):
    """The shipped config's settings, as Neovim encodes them (an empty Lua table is a JSON array), both in
    init_options and for workspace/configuration: read with no problem and equal to the defaults."""
    require_or_skip([] if NVIM else ["nvim"], "Neovim tests")
    from lsp_server.settings import Settings, parse_settings

    lua = ("local t = dofile(vim.env.TLENS_LUA); t.setup({ python = 'python3' }); local c = t.client_config(0); "
           "io.stdout:write(vim.fn.json_encode({ init = c.init_options.settings, pulled = c.settings.tlens }))")
    out = subprocess.run([NVIM, "--headless", "--clean", "-c", f"lua {lua}", "-c", "qa!"], capture_output=True, text=True,
                         env=dict(os.environ, TLENS_LUA=str(TLENS_LUA), XDG_STATE_HOME=str(tmp_path)), timeout=60)
    sent = json.loads(out.stdout)
    for raw in (sent["init"], sent["pulled"]):
        assert parse_settings(raw) == (Settings(interpreter="python3"), [])
