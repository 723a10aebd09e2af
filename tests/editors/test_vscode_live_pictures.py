"""Live pictures in the real workbench: a notebook attached to a running kernel; the hover on
``cache["pattern", 3]`` shows the kernel's picture of the live attention pattern, and its "Open in
panel" link opens it large in the heatmap panel with the value under the mouse. Saves the README
screenshot (docs/images/live-pattern-hover.png with TLENS_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from test_readme_screenshots import clip_around, png_size, screenshot_dir
from test_vscode_notebook_kernel import running_kernel  # noqa: F401 - the fixture

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.kernel.tiny_models import bridge_setup  # noqa: E402

pytestmark = [pytest.mark.editor, pytest.mark.kernel]

CODE = 'cell_pattern = cache["pattern", 3]'
# What the notebook's cells would leave in the kernel (ioi_cells.ipynb: model, tokens, cache), on a random
# 4-layer GPT-2 (gpt2-small's widths) with GPT-2's tokenizer: the notebook loads gpt2-small, a download.
# Larger initial weights than GPT-2's 0.02: attention with structure to look at, even untrained.
KERNEL_CELL = bridge_setup(n_layers=4, d_model=768, n_heads=12).replace(
    "n_positions=128,", "n_positions=128, initializer_range=0.08,") + (
    'tokens = model.to_tokens("When John and Mary went to the shops, John gave the bag to")\n'
    "logits, cache = model.run_with_cache(tokens)\n")


def run_in_kernel(connection_file: Path, code: str) -> None:
    """Runs ``code`` in the kernel as a notebook cell would (stored in its history)."""
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(code, store_history=True, timeout=300, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()


def attach(vscode, connection_file: Path) -> None:
    vscode.status_item().first.click()
    rows = vscode.page.locator(".quick-input-widget .quick-input-list .monaco-list-row")
    row = rows.filter(has_text=connection_file.name).first
    expect(row).to_be_visible(timeout=10_000)
    row.click()
    expect(vscode.status_item().first).to_have_text(re.compile(r"TLens: kernel (idle|busy)"), timeout=60_000)


def hover_with_picture(vscode, timeout: float = 60):
    """The hover on `cache["pattern", 3]` once it holds the live picture (the live state comes after attaching)."""
    deadline = time.monotonic() + timeout
    while True:
        hover = vscode.hover_at(CODE, CODE.index('"pattern"') + 2, "blocks.3.attn.hook_pattern")
        image = hover.locator("img[src^='data:image/png']")
        try:
            image.wait_for(timeout=3_000)
            return hover, image
        except Exception:
            assert time.monotonic() < deadline, f"no picture in the hover: {vscode.visible_hover_texts()}"
            vscode.page.keyboard.press("Escape")
            time.sleep(0.5)


def test_live_pattern_hover_and_open_in_panel(vscode, running_kernel):  # noqa: F811
    run_in_kernel(running_kernel, KERNEL_CELL)
    vscode.open("typo_hook.py", wait_for_text="hook_resid_pree")  # workbench and extensions up
    vscode.open_from_explorer("ioi_cells.ipynb", wait_for_text=CODE)
    attach(vscode, running_kernel)

    hover, image = hover_with_picture(vscode)
    expect(image).to_have_js_property("complete", True)
    hover_width = image.evaluate("img => img.naturalWidth")
    assert hover_width > 0 and image.evaluate("img => img.naturalHeight") > 0
    expect(hover).to_contain_text("12 heads (query × key each, left to right, top to bottom); framed: H")
    expect(hover).to_contain_text("kernel execution [")
    vscode.page.wait_for_timeout(400)  # the hover fades in
    editor = vscode.page.locator(".notebook-editor").first.bounding_box() or hover.bounding_box()
    line = vscode.line_box(CODE)
    shot = screenshot_dir() / "live-pattern-hover.png"
    vscode.page.screenshot(path=str(shot), clip=clip_around(hover.bounding_box(), dict(line, x=editor["x"])))
    width, height = png_size(shot)
    assert width > 300 and height > 150
    print(f"\nwrote {shot} ({width}x{height})")

    hover.get_by_role("link", name="Open in panel").click()
    vscode.page.keyboard.press("Escape")  # the hover would cover the panel
    frame = vscode.webview_frame()
    large = frame.locator("img#heatmap")
    large.wait_for(timeout=30_000)
    assert large.evaluate("img => img.complete && img.naturalWidth") > hover_width
    expect(vscode.page.locator(".tab", has_text="TLens: Live: cache['blocks.3.attn.hook_pattern']")).to_be_visible()
    readout, cell = vscode.read_heatmap_cell()  # the first head's middle cell: query × key = its attention
    # (innerText collapses the space a GPT-2 token starts with)
    assert readout.startswith(f"H0 · {cell['row'].strip()} × {cell['col'].strip()} = "), (readout, cell)
    assert abs(float(readout.rsplit(" = ", 1)[1]) - cell["value"]) <= 1e-3 * max(1.0, abs(cell["value"])), (readout, cell)
