"""The extension in a real VS Code (code-server 4.100.3 = VS Code 1.100.3) driven by Chromium.

Each test opens a private copy of tests/editors/workspace/ in a fresh page; the extension starts the
real server (`<TLENS_EDITOR_PYTHON or this python> -m lsp_server serve`).
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.editor

IOI = "ioi_patching.py"
PATTERN_KEY = 'attn_pattern = cache["pattern", 3]'
STALE_HOOK = "model.add_hook(utils.get_act_name"


def test_status_bar_shows_kernel_state(vscode):
    vscode.open(IOI, wait_for_text="from_pretrained")
    item = vscode.status_item().first
    expect(item).to_have_text(re.compile(r"TLens: no kernel"))
    # Clicking it opens the attach picker (connection files, Browse…, Start a new kernel).
    item.click()
    picker = vscode.page.locator(".quick-input-widget")
    expect(picker).to_contain_text("Browse…")
    expect(picker).to_contain_text("Start a new kernel")
    expect(picker).not_to_contain_text("This notebook's kernel")  # only offered with a notebook open
    vscode.page.keyboard.press("Escape")


def test_palette_lists_tlens_commands(vscode):
    vscode.open(IOI, wait_for_text="from_pretrained")
    vscode.click_text("from_pretrained")
    vscode.page.keyboard.press("F1")
    box = vscode.page.locator(".quick-input-widget input")
    box.fill(">TLens:")
    rows = vscode.page.locator(".quick-input-list .monaco-list-row")
    for title in ["Attach to Jupyter Kernel…", "Start Kernel", "Interrupt Kernel", "Reset Hooks in Kernel",
                  "Run Patch Sweep at Cursor", "Show Sweep Heatmap", "Restart Language Server"]:
        expect(rows.filter(has_text=f"TLens: {title}").first).to_be_attached()
    # Before any sweep, the heatmap command says how to get one.
    rows.filter(has_text="TLens: Show Sweep Heatmap").first.click()
    expect(vscode.page.locator(".notification-toast", has_text="no sweep result yet")).to_be_visible()


def test_hover_on_cache_key_shows_hook_name_and_shape(vscode):
    vscode.open(IOI, wait_for_text=PATTERN_KEY)
    hover = vscode.hover_at(PATTERN_KEY, PATTERN_KEY.index('"pattern"') + 2, "blocks.3.attn.hook_pattern")
    expect(hover).to_contain_text("[batch, n_heads, query_pos, key_pos]")


def test_stale_hook_is_flagged_and_quick_fix_edits_file(vscode):
    original = (vscode.folder / IOI).read_text()
    vscode.open(IOI, wait_for_text=STALE_HOOK)
    # The squiggle in the editor and the entry (with its code) in the Problems panel.
    expect(vscode.page.locator(".view-overlays .squiggly-warning, .view-overlays .squiggly-error").first).to_be_visible(
        timeout=30_000
    )
    problems = vscode.open_problems()
    expect(problems).to_contain_text("stale-hook", timeout=30_000)

    menu = vscode.code_action_menu(STALE_HOOK, 2)
    vscode.choose_code_action(menu, re.compile("patch sweep", re.I), exclude=True)
    vscode.save()
    edited = vscode.wait_saved(IOI, original)
    assert edited != original
    # The fix resolves the finding: the code disappears from the Problems panel.
    expect(problems).not_to_contain_text("stale-hook", timeout=30_000)


def test_completion_inside_cache_key_lists_hook_names(vscode):
    vscode.open(IOI, wait_for_text='resid = cache["resid_post", 9]')
    vscode.click_line_end('resid = cache["resid_post", 9]')
    vscode.page.keyboard.press("Enter")
    vscode.page.keyboard.type('probe = cache["')
    rows = vscode.suggestions()
    try:
        rows.first.wait_for(timeout=5_000)
    except Exception:
        vscode.page.keyboard.press("Control+Space")  # in case `"` is not a trigger character
    # Model-wide hooks first (an alias with its full name), then per-layer names once a layer is typed.
    expect(rows.filter(has_text="hook_embed").first).to_be_visible(timeout=20_000)
    # The list is virtualised (only visible rows are in the DOM): narrow it the way a user would.
    vscode.page.keyboard.type("blocks.5.hook_resid_po")
    row = rows.filter(has_text="blocks.5.hook_resid_post").first
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("[batch, pos, 768]")  # gpt2-small's d_model in the detail


@pytest.mark.kernel
@pytest.mark.ht
def test_patch_sweep_from_code_action_shows_heatmap(vscode):
    if not os.environ.get("TLENS_HT_PYTHON"):
        pytest.skip("TLENS_HT_PYTHON is not set (a Python with TransformerLens 2.x for the sweep kernel)")
    sweep_line = "resid_pre_results = patching.get_act_patch_resid_pre("
    vscode.open("sweep_tiny.py", wait_for_text=sweep_line)
    # The extension starts a kernel (none was attached), the server runs the sweep in it.
    panel_img = vscode.run_sweep_from_code_action(sweep_line)
    assert panel_img.evaluate("img => img.complete && img.naturalWidth") > 0
    expect(vscode.status_item().first).to_have_text(re.compile(r"TLens: kernel idle"), timeout=30_000)

    # The readout names the cell under the mouse and its value.
    readout, cell = vscode.read_heatmap_cell()
    assert f"{cell['row']} × {cell['col']} = " in readout, (readout, cell)
    if cell["value"] is not None:
        assert abs(float(readout.rsplit("= ", 1)[1]) - cell["value"]) <= 1e-3 * max(1.0, abs(cell["value"]))

    # Save PNG writes the image the panel shows (into the workspace by default).
    saved, shown = vscode.save_heatmap_png()
    assert saved.parent == vscode.folder, saved
    assert saved.read_bytes() == shown

    # The hover on the sweep line shows the heatmap too.
    hover = vscode.hover_at(sweep_line, 4, "")
    img = hover.locator("img").first
    expect(img).to_be_visible(timeout=20_000)
    assert img.evaluate("img => img.complete && img.naturalWidth") > 0


def test_go_to_definition_on_a_hook_name_opens_the_transformer_lens_source(vscode):
    vscode.open("ioi_patching.py", wait_for_text="from_pretrained")
    vscode.hover_at('attn_pattern = cache["pattern", 3]', 22, "blocks.3.attn.hook_pattern")  # analysed
    vscode.page.keyboard.press("Escape")
    vscode.click_text('attn_pattern = cache["pattern", 3]', 22)
    vscode.page.keyboard.press("F12")
    # TL 2.x (TLENS_HT_PYTHON as the kernel interpreter): components/abstract_attention.py; else the
    # server's TL 4: the bridge's attention component.
    tab = vscode.page.locator(".tab", has_text=re.compile(r"^(abstract_)?attention\.py"))
    expect(tab.first).to_be_visible(timeout=30_000)
    vscode.wait_line("hook_pattern", timeout=30_000)
