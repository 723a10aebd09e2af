"""Drives the VS Code workbench served by code-server through Playwright (sync API).

Only DOM facts that hold on VS Code 1.100 are used: `.view-line` rows, `.monaco-hover`, the suggest
widget, the action widget (code-action menu), `.statusbar-item` and the webview iframes. Keys reach
the workbench only after a click in the editor, so every action starts with a click on a line.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

SERVER_START_TIMEOUT_MS = 90_000
# The status bar item reads "TLens: no kernel" (or another kernel state) once the server is up.
READY_TEXT = re.compile(r"TLens: (no kernel|kernel \w+|busy)")

# Source text of a view line: inlay hints are injected as extra spans (class dyn-rule-*), which are
# skipped; Monaco renders spaces as U+00A0, compared as plain spaces.
_LINE_JS = """
const sourceNodes = line => {
  const out = [];
  const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.closest('[class*="dyn-rule"]')) out.push(node);
  }
  return out;
};
const sourceText = line => sourceNodes(line).map(n => n.data).join('').replace(/\\u00a0/g, ' ');
const findLine = needle =>
  [...document.querySelectorAll('.monaco-editor .view-line')].find(l => sourceText(l).includes(needle));
"""

# Centre of source character `offset` of the first occurrence of `needle` on screen, or null.
_CHAR_RECT_JS = "([needle, offset]) => {" + _LINE_JS + """
  const line = findLine(needle);
  if (!line) return null;
  let target = sourceText(line).indexOf(needle) + offset;
  for (const node of sourceNodes(line)) {
    if (target < node.length) {
      const range = document.createRange();
      range.setStart(node, target); range.setEnd(node, target + 1);
      const r = range.getBoundingClientRect();
      return {x: r.left + r.width / 2, y: r.top + r.height / 2};
    }
    target -= node.length;
  }
  return null;
}"""

# Bounding box of the view line holding `needle`, or null.
_LINE_BOX_JS = "(needle) => {" + _LINE_JS + """
  const line = findLine(needle);
  if (!line) return null;
  const r = line.getBoundingClientRect();
  return {x: r.left, y: r.top, width: r.width, height: r.height};
}"""


class VSCode:
    """One workbench page showing one workspace folder."""

    def __init__(self, page: Page, base_url: str, folder: Path):
        self.page = page
        self.base_url = base_url
        self.folder = folder
        self.current = ""  # workspace-relative path of the file open in the editor

    # --- navigation --------------------------------------------------------------------------

    def open(self, relpath: str, wait_for_text: str, wait_for_server: bool = True) -> None:
        """Opens a workspace file by URL payload and waits for the text (and the TLens server)."""
        # The authority must be code-server's host: a file opened as vscode-remote:///path is a different
        # resource from the workspace's, and the server's diagnostics would never reach its editor.
        authority = urllib.parse.urlparse(self.base_url).netloc
        payload = json.dumps([["openFile", f"vscode-remote://{authority}{self.folder / relpath}"]])
        self.page.goto(f"{self.base_url}/?folder={self.folder}&payload={urllib.parse.quote(payload)}")
        self.current = relpath
        self.wait_line(wait_for_text, timeout=60_000)
        if wait_for_server:
            self.wait_server_ready()

    def open_from_explorer(self, name: str, wait_for_text: str) -> None:
        """Opens a top-level workspace file by clicking it in the explorer, i.e. with its default editor
        (the URL payload always opens a text editor, even for .ipynb).

        Call after `open`: until the extensions are registered, a click opens a .ipynb as JSON text.
        """
        self.page.locator(".explorer-folders-view .monaco-list-row", has_text=name).first.click()
        self.current = name
        self.wait_line(wait_for_text, timeout=60_000)
        self.wait_server_ready()

    def status_item(self) -> Locator:
        return self.page.locator(".statusbar-item", has_text="TLens")

    def wait_server_ready(self) -> None:
        expect(self.status_item().first).to_have_text(READY_TEXT, timeout=SERVER_START_TIMEOUT_MS)

    def wait_line(self, needle: str, timeout: float = 30_000) -> None:
        """Waits until a line holding `needle` (inlay hints aside) is on screen."""
        self.page.wait_for_function(_LINE_BOX_JS, arg=needle, timeout=timeout)

    def line_box(self, needle: str) -> dict:
        box = self.page.evaluate(_LINE_BOX_JS, needle)
        assert box, f"{needle!r} is not on screen"
        return box

    # --- pointer and keys --------------------------------------------------------------------

    def reveal(self, needle: str) -> None:
        """Scrolls the line holding `needle` into view (Ctrl+G with its line number in the file on disk)."""
        if self.page.evaluate(_CHAR_RECT_JS, [needle, 0]):
            return
        if self.current.endswith(".ipynb"):  # Ctrl+G moves within a cell: step through the cells instead
            self.page.locator(".monaco-editor .view-line").first.click()
            self.page.keyboard.press("Escape")  # command mode: Down focuses (and reveals) the next cell
            for _ in range(40):
                self.page.keyboard.press("ArrowDown")
                if self.page.evaluate(_CHAR_RECT_JS, [needle, 0]):
                    return
            raise AssertionError(f"{needle!r} is not in the notebook")
        lines = (self.folder / self.current).read_text().splitlines()
        number = next((i + 1 for i, text in enumerate(lines) if needle in text), None)
        assert number, f"{needle!r} is not in {self.current}"
        self.page.locator(".monaco-editor .view-line").first.click()  # focus the editor
        self.page.keyboard.press("Control+G")
        self.page.keyboard.type(str(number))
        self.page.keyboard.press("Enter")
        self.wait_line(needle)

    def char_position(self, needle: str, offset: int = 0) -> dict:
        self.reveal(needle)
        pos = self.page.evaluate(_CHAR_RECT_JS, [needle, offset])
        assert pos, f"{needle!r} is not on screen"
        return pos

    def click_text(self, needle: str, offset: int = 0) -> None:
        """Puts the caret before character `offset` of `needle` (a click focuses the workbench), once the character
        stays where it is: a code lens the server adds above its line moves it down (a click at the old place can
        land on the lens)."""
        pos = self.char_position(needle, offset)
        for _ in range(20):
            self.page.wait_for_timeout(100)
            settled, pos = pos, self.char_position(needle, offset)
            if settled == pos:
                break
        self.page.mouse.click(pos["x"] - 1, pos["y"])

    def click_line_end(self, needle: str) -> None:
        self.click_text(needle)
        self.page.keyboard.press("End")

    def chord(self, *keys: str) -> None:
        for key in keys:
            self.page.keyboard.press(key)

    def run_command(self, title: str) -> None:
        """Runs a command palette entry by its title."""
        self.page.keyboard.press("F1")
        box = self.page.locator(".quick-input-widget input")
        box.wait_for()
        box.fill(">" + title)
        self.page.locator(".quick-input-list .monaco-list-row", has_text=title).first.click()

    # --- what the editor shows -----------------------------------------------------------------

    def hover_at(self, needle: str, offset: int, expect_text: str, timeout: float = 20_000) -> Locator:
        """Shows the hover at a character via Ctrl+K Ctrl+I, retrying until it holds `expect_text`.

        Retries because the first request can race the server's first analysis of the file.
        """
        hover = self.page.locator(".monaco-hover:visible", has_text=expect_text).first
        deadline = time.monotonic() + timeout / 1000
        while True:
            self.click_text(needle, offset)
            self.chord("Control+K", "Control+I")
            try:
                hover.wait_for(timeout=3_000)
                return hover
            except Exception:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"no hover with {expect_text!r} at {needle!r}+{offset}; hovers shown: {self.visible_hover_texts()}"
                    ) from None
                self.page.keyboard.press("Escape")

    def visible_hover_texts(self) -> list[str]:
        return self.page.locator(".monaco-hover:visible").all_inner_texts()

    def open_problems(self) -> Locator:
        self.page.keyboard.press("Control+Shift+M")
        panel = self.page.locator(".markers-panel")
        panel.wait_for()
        return panel

    def code_action_menu(self, needle: str, offset: int = 0, timeout: float = 30_000) -> Locator:
        """Opens the code-action (light bulb) menu at a character; returns the menu. Retried, as :meth:`hover_at`:
        a click the editor's layout moved from under leaves the caret elsewhere, with no actions."""
        menu = self.page.locator(".action-widget")
        deadline = time.monotonic() + timeout / 1000
        while True:
            self.click_text(needle, offset)
            self.page.keyboard.press("Control+.")
            try:
                menu.wait_for(timeout=5_000)
                return menu
            except Exception:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no code-action menu at {needle!r}+{offset}") from None
                self.page.keyboard.press("Escape")

    def choose_code_action(self, menu: Locator, title: re.Pattern[str], exclude: bool = False) -> str:
        """Applies the first action whose title matches (or, with `exclude`, does not match) `title`.

        Uses the keyboard: the menu's pointer shield swallows mouse clicks on its rows.
        """
        rows = menu.locator(".monaco-list-row.action")
        rows.first.wait_for()
        labels = [rows.nth(i).get_attribute("aria-label") or "" for i in range(rows.count())]
        picked = next((i for i, label in enumerate(labels) if bool(title.search(label)) != exclude), None)
        assert picked is not None, f"no code action {'without' if exclude else 'matching'} {title.pattern!r} in {labels}"
        focused = next((i for i in range(len(labels)) if "focused" in (rows.nth(i).get_attribute("class") or "")), 0)
        key = "ArrowDown" if picked >= focused else "ArrowUp"
        for _ in range(abs(picked - focused)):
            self.page.keyboard.press(key)
        self.page.keyboard.press("Enter")
        return labels[picked]

    def suggestions(self) -> Locator:
        return self.page.locator(".suggest-widget.visible .monaco-list-row")

    def webview_frame(self):
        """The content frame of the extension's webview panel (a notebook editor has a webview of its own)."""
        return self.page.frame_locator('iframe.webview.ready[src*="extensionId=tlens.tlens-lsp"]').frame_locator("#active-frame")

    def run_sweep_from_code_action(self, needle: str, timeout: float = 180_000) -> Locator:
        """Picks "Run patch sweep" in the light-bulb menu at `needle`; returns the panel's image once shown."""
        menu = self.code_action_menu(needle, 4)
        self.choose_code_action(menu, re.compile("Run patch sweep", re.I))
        img = self.webview_frame().locator("img#heatmap")
        img.wait_for(timeout=timeout)
        return img

    def read_heatmap_cell(self, strongest: bool = False) -> tuple[str, dict]:
        """Moves the mouse to a cell of the panel's first grid; returns (readout, expected cell).

        The middle cell, or with `strongest` the one with the largest |value|. The grid geometry comes
        from the sweep result embedded in the webview (`panels`, PNG pixels).
        """
        frame = self.webview_frame()
        img = frame.locator("img#heatmap")
        panels = json.loads(frame.locator("#sweep-data").text_content())["panels"]
        assert panels, "the sweep result has no `panels` geometry, so the panel cannot show cell values"
        p = panels[0]
        row, col = len(p["values"]) // 2, len(p["values"][0]) // 2
        if strongest:
            cells = [(abs(v), i, j) for i, r in enumerate(p["values"]) for j, v in enumerate(r) if v is not None]
            _, row, col = max(cells, default=(0, row, col))
        natural = img.evaluate("img => img.naturalWidth")
        box = img.bounding_box()
        scale = box["width"] / natural
        x = box["x"] + (p["x"] + (col + 0.5) * p["width"] / len(p["values"][0])) * scale
        y = box["y"] + (p["y"] + (row + 0.5) * p["height"] / len(p["values"])) * scale
        self.page.mouse.move(x, y)
        readout = frame.locator("#readout")
        expect(readout).to_contain_text(" = ")
        cell = {"row": p["rowLabels"][row], "col": p["colLabels"][col], "value": p["values"][row][col]}
        return readout.inner_text(), cell

    def save_heatmap_png(self) -> tuple[Path, bytes]:
        """Clicks Save PNG in the heatmap panel and accepts the proposed path in VS Code's file dialog.

        Returns the saved path and the PNG bytes the panel shows (from its data: URI).
        """
        frame = self.webview_frame()
        src = frame.locator("img#heatmap").get_attribute("src")
        shown = base64.b64decode(src.split(",", 1)[1])
        frame.locator("button#save").click()
        path_box = self.page.locator(".quick-input-widget input")
        expect(path_box).to_have_value(re.compile(r"\.png$"))  # the dialog fills it in steps
        proposed = Path(path_box.input_value())
        path_box.press("Enter")
        expect(self.page.locator(".notification-toast", has_text="TLens: saved")).to_be_visible()
        return proposed, shown

    def split_editors_at(self, x: float) -> None:
        """Drags the sash between the two editor groups (side by side) to page x-coordinate `x`."""
        sash = self.page.locator(".part.editor .monaco-sash.vertical:visible").first
        box = sash.bounding_box()
        assert box, "no sash between editor groups"
        y = box["y"] + box["height"] / 2
        self.page.mouse.move(box["x"] + box["width"] / 2, y)
        self.page.mouse.down()
        self.page.mouse.move(x, y, steps=8)
        self.page.mouse.up()

    def clear_notifications(self) -> None:
        """Closes every notification toast (for screenshots)."""
        self.run_command("Notifications: Clear All Notifications")
        expect(self.page.locator(".notification-toast")).to_have_count(0)

    def save(self) -> None:
        self.page.keyboard.press("Control+S")

    def wait_saved(self, relpath: str, changed_from: str, timeout: float = 10) -> str:
        """Waits until the file on disk differs from `changed_from`; returns its text."""
        path = self.folder / relpath
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = path.read_text()
            if text != changed_from:
                return text
            time.sleep(0.1)
        raise AssertionError(f"{relpath} was not saved with a change within {timeout} s")
