"""Fonts and label text for heatmaps.

A Unicode TrueType font from the system (DejaVu Sans, Arial, Segoe UI, ...) is used when
one exists, else Pillow's bundled scalable font (``ImageFont.load_default(size=...)``,
Pillow >= 10.1). Characters the font cannot draw are written as escapes, never as boxes.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import ImageFont

_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:/Windows/Fonts/segoeui.ttf",
    "C:/Windows/Fonts/arial.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
_BOLD = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf": "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf": "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
}
# Whitespace made visible; the escape is used when the font lacks the symbol.
_VISIBLE = {" ": ("·", "·"), "\n": ("⏎", "\\n"), "\t": ("⇥", "\\t"), "\r": ("␍", "\\r")}


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """A scalable font at ``size`` pixels."""
    for path in _CANDIDATES:
        try:
            return ImageFont.truetype(_BOLD.get(path, path) if bold else path, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=4096)
def _has_glyph(f: ImageFont.FreeTypeFont, ch: str) -> bool:
    return bytes(f.getmask(ch)) != bytes(f.getmask("\ue000")) or ch == "\ue000"


def token_label(token: str, f: ImageFont.FreeTypeFont, max_chars: int = 12) -> str:
    """Token text with whitespace made visible (' Mary' -> '·Mary') and long tokens cut."""
    out = []
    for ch in token:
        if ch in _VISIBLE:
            sym, esc = _VISIBLE[ch]
            out.append(sym if _has_glyph(f, sym) else esc)
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        elif _has_glyph(f, ch):
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    text = "".join(out) or "∅"
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text


def plain(text: str, f: ImageFont.FreeTypeFont) -> str:
    """Arbitrary text (titles) with undrawable characters replaced by close ASCII."""
    swaps = {"−": "-", "·": "|", "…": "...", "×": "x", "≈": "~", "’": "'"}
    return "".join(ch if _has_glyph(f, ch) or ch == " " else swaps.get(ch, "?") for ch in text)


def fmt(value: float) -> str:
    """Compact number for ticks and titles."""
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 1000 or a < 0.01:
        return f"{value:.2e}".replace("e+0", "e").replace("e-0", "e-")
    return f"{value:.3g}"
