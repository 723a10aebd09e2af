"""Takes the README screenshots from a real session (hover with shape; heatmap panel).

They go to test-artifacts/editors/screenshots/ on every run; with TLENS_UPDATE_SCREENSHOTS=1 they
replace docs/images/ (kept out of ordinary runs so that `make test` leaves the tree clean).
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pytest
from conftest import REPO, artifact_dir
from playwright.sync_api import expect

pytestmark = pytest.mark.editor


def screenshot_dir() -> Path:
    if os.environ.get("TLENS_UPDATE_SCREENSHOTS"):
        path = REPO / "docs" / "images"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return artifact_dir("screenshots")


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def clip_around(*boxes: dict, pad: int = 16) -> dict:
    left = min(b["x"] for b in boxes) - pad
    top = min(b["y"] for b in boxes) - pad
    right = max(b["x"] + b["width"] for b in boxes) + pad
    bottom = max(b["y"] + b["height"] for b in boxes) + pad
    return {"x": max(left, 0), "y": max(top, 0), "width": right - max(left, 0), "height": bottom - max(top, 0)}


def test_screenshot_hover_with_shape(vscode):
    code = 'attn_pattern = cache["pattern", 3]'
    vscode.open("ioi_patching.py", wait_for_text=code)
    hover = vscode.hover_at(code, code.index('"pattern"') + 2, "blocks.3.attn.hook_pattern")
    vscode.page.wait_for_timeout(400)  # the hover fades in
    editor = vscode.page.locator(".editor-instance .monaco-editor").first.bounding_box()  # with line numbers
    line = vscode.line_box(code)
    clip = clip_around(hover.bounding_box(), dict(line, x=editor["x"], height=line["height"] * 2))
    out = screenshot_dir() / "hover.png"
    vscode.page.screenshot(path=str(out), clip=clip)
    width, height = png_size(out)
    assert width > 200 and height > 40
    print(f"\nwrote {out} ({width}x{height})")


@pytest.mark.kernel
@pytest.mark.ht
def test_screenshot_heatmap_panel(vscode):
    if not os.environ.get("TLENS_HT_PYTHON"):
        pytest.skip("TLENS_HT_PYTHON is not set (a Python with TransformerLens 2.x for the sweep kernel)")
    # An IOI prompt pair on a random 6-layer GPT-2-shaped model with GPT-2's tokenizer: token labels,
    # and the normalised sweep shows the S2 -> END structure even without trained weights.
    sweep_line = "resid_pre_results = patching.get_act_patch_resid_pre("
    vscode.open("ioi_sweep.py", wait_for_text=sweep_line)
    img = vscode.run_sweep_from_code_action(sweep_line)
    assert img.evaluate("img => img.complete && img.naturalWidth") > 0
    expect(vscode.status_item().first).to_have_text(re.compile(r"TLens: kernel idle"), timeout=30_000)
    vscode.page.keyboard.press("Control+B")  # hide the side bar: more room for code and heatmap
    vscode.split_editors_at(705)  # the code's longest line fits; the heatmap gets the rest
    vscode.clear_notifications()  # the "ran the setup code" messages would cover the code
    vscode.page.wait_for_timeout(300)
    readout, cell = vscode.read_heatmap_cell(strongest=True)  # shows a cell value in the readout
    assert cell["value"] is not None and abs(cell["value"]) > 0.5, cell  # a sweep with structure
    out = screenshot_dir() / "heatmap.png"
    vscode.page.screenshot(path=str(out))
    width, height = png_size(out)
    assert (width, height) == (1400, 900)
    print(f"\nwrote {out} ({width}x{height})")
