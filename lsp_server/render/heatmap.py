"""Patching heatmaps as PNG (pillow only).

``render_heatmap(result, size)`` draws a ``SweepResult`` (or its dict): layers as rows
(L0 at the top), positions (token strings, whitespace made visible) or heads as columns, a
diverging colour map centred at zero with a colour bar, the metric in the title and a red
PARTIAL badge and frame when the sweep did not finish. ``block`` shows three panels side by
side, ``heads_by_pos`` one small panel per head, ``attribution`` the three layer × position
panels plus a layer × head panel. Cells without a value are grey.

``size="hover"`` keeps the base64 data URI under ``HOVER_URI_LIMIT`` characters (shrinking
cells if needed, down to 48 layers × 64 positions and beyond); ``size="large"`` draws big
cells and fonts for a webview or a saved file.

``render_heatmap_with_layout(result, size)`` also returns where each panel's cells lie in the
PNG (``PanelGeometry``), so a viewer can show the value under the mouse without re-deriving
the layout.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from ..sweeps.kinds import HEATMAP_TITLES
from ..sweeps.spec import SweepResult
from .colors import MISSING, color_for, diverging
from .text import fmt, font, plain, token_label

HOVER_URI_LIMIT = 100_000


@dataclass
class _Style:
    font: int
    title: int
    max_w: int  # width budget of the plot area (all panels)
    max_h: int
    cw: tuple[int, int]  # cell width range
    ch: tuple[int, int]
    gap: int
    pad: int


_STYLES = {
    "hover": _Style(font=11, title=13, max_w=720, max_h=520, cw=(2, 30), ch=(2, 22), gap=10, pad=8),
    # Cells at most 56 px wide: the panel scales the PNG to its width, so text must stay big relative to cells.
    "large": _Style(font=22, title=28, max_w=2300, max_h=1600, cw=(6, 56), ch=(6, 48), gap=26, pad=18),
}


@dataclass(frozen=True)
class PanelGeometry:
    """One panel's cell grid in the PNG: pixel box of the cells only, uniform rows and columns.

    ``values[i][j]`` is drawn in the box ``[x + j*width/cols, x + (j+1)*width/cols)`` ×
    ``[y + i*height/rows, ...)``; ``None`` is a grey (not computed or NaN) cell.
    """

    label: str | None
    x: int
    y: int
    width: int
    height: int
    values: list[list[float | None]]
    row_labels: list[str]
    col_labels: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The camelCase object of ``tlens/sweepResult``'s ``panels`` list."""
        out: dict[str, Any] = {"x": self.x, "y": self.y, "width": self.width, "height": self.height,
                               "values": self.values, "rowLabels": self.row_labels, "colLabels": self.col_labels}
        if self.label:
            out["label"] = self.label
        return out


@dataclass
class _Panel:
    title: str | None
    rows: list[list[float | None]]
    row_labels: list[str]
    col_labels: list[str]
    tokens: bool  # column labels are token strings

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_cols(self) -> int:
        return len(self.rows[0]) if self.rows else 0


def render_heatmap(result: SweepResult | dict[str, Any], size: str = "hover") -> bytes:
    """PNG bytes of the sweep's heatmap.

    Args:
        result: a ``SweepResult`` or its ``to_dict()``.
        size: "hover" (compact; data URI <= 100,000 chars) or "large" (sharp, big).
    """
    return render_heatmap_with_layout(result, size)[0]


def render_heatmap_with_layout(
    result: SweepResult | dict[str, Any], size: str = "large"
) -> tuple[bytes, list[PanelGeometry]]:
    """PNG bytes of the sweep's heatmap and the pixel geometry of each panel in that PNG.

    Args:
        result: a ``SweepResult`` or its ``to_dict()``.
        size: "hover" (compact; data URI <= 100,000 chars) or "large" (sharp, big).

    Returns:
        ``(png, panels)``; ``panels`` describe the image actually encoded (for "hover", the
        attempt that fit the budget, e.g. the strongest-head panel for ``heads_by_pos``).
    """
    if size not in _STYLES:
        raise ValueError(f"size must be 'hover' or 'large', not {size!r}")
    r = result if isinstance(result, SweepResult) else SweepResult.from_dict(result)
    panels = _panels(r)
    if size == "large":
        img, layout = _draw(r, panels, _STYLES["large"])
        return _encode(img, palette=False), layout
    style = _STYLES["hover"]
    attempts = [(panels, k) for k in (1.0, 0.8, 0.64)]
    if r.kind == "heads_by_pos":
        # Too many cells for a hover: one layer x pos panel of the strongest head per cell.
        attempts.append(([_strongest_head(r, panels)], 1.0))
    attempts += [(attempts[-1][0], k) for k in (0.8, 0.64, 0.5, 0.4, 0.3)]
    for ps, k in attempts:
        img, layout = _draw(r, ps, _scaled(style, k))
        png = _encode(img, palette=True)
        if len(data_uri(png)) <= HOVER_URI_LIMIT:
            break
    return png, layout


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for markdown hovers and HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _scaled(s: _Style, k: float) -> _Style:
    if k == 1.0:
        return s
    return _Style(
        font=max(8, round(s.font * max(k, 0.8))),
        title=max(9, round(s.title * max(k, 0.8))),
        max_w=round(s.max_w * k),
        max_h=round(s.max_h * k),
        cw=(max(1, round(s.cw[0] * k)), max(2, round(s.cw[1] * k))),
        ch=(max(1, round(s.ch[0] * k)), max(2, round(s.ch[1] * k))),
        gap=s.gap,
        pad=s.pad,
    )


# ------------------------------------------------------------------------------ panels


def _panels(r: SweepResult) -> list[_Panel]:
    rows, pos, heads = r.row_labels, r.col_labels, r.head_labels or []
    tokens = not r.position_labels  # labels of a position labelling are shown as they are
    if r.kind in ("heads",):
        return [_Panel(None, r.values, rows, r.col_labels, tokens=False)]
    if r.kind == "heads_by_pos":
        n_heads = len(r.values[0][0]) if r.values and r.values[0] else 0
        labels = heads or [f"H{h}" for h in range(n_heads)]
        return [
            _Panel(labels[h], [[cell[h] for cell in row] for row in r.values], rows, pos, tokens=tokens)
            for h in range(n_heads)
        ]
    if r.kind in ("block", "attribution"):
        names = r.panel_labels or ["resid_pre", "attn_out", "mlp_out"]
        out = [_Panel(n, grid, rows, pos, tokens=tokens) for n, grid in zip(names, r.values)]
        if r.kind == "attribution" and r.head_values:
            out.append(_Panel("heads (z)", r.head_values, rows, heads, tokens=False))
        return out
    return [_Panel(None, r.values, rows, pos, tokens=tokens)]


def _strongest_head(r: SweepResult, panels: list[_Panel]) -> _Panel:
    """Per (layer, pos) the head value with the largest magnitude (sign kept)."""
    rows = []
    for row in r.values:
        out = []
        for cell in row:
            vals = [v for v in cell if v is not None and v == v]
            out.append(max(vals, key=abs) if vals else None)
        rows.append(out)
    return _Panel("strongest head per cell (max |value| over heads)", rows, r.row_labels, r.col_labels,
                  tokens=not r.position_labels)


def _vmax(r: SweepResult, panels: list[_Panel]) -> float:
    vals = [abs(v) for p in panels for row in p.rows for v in row if v is not None and v == v]
    vmax = max(vals, default=0.0)
    if r.normalized:
        vmax = max(vmax, 1.0)  # full colour = full recovery of the clean behaviour
    return vmax if vmax > 0 else 1.0


# ------------------------------------------------------------------------------ drawing


def _draw(r: SweepResult, panels: list[_Panel], s: _Style) -> tuple[Image.Image, list[PanelGeometry]]:
    f_small, f_title, f_bold = font(s.font), font(s.title, bold=True), font(s.font, bold=True)
    line_h = _text_h(f_small)
    n = len(panels)
    grid_cols = n if n <= 4 else math.ceil(math.sqrt(n * 1.6))
    grid_rows = math.ceil(n / grid_cols)
    L = max(p.n_rows for p in panels)
    row_lbl_w = max(_text_w(f_small, lbl) for lbl in panels[0].row_labels) + 6 if L else 0
    cbar_w = 16 + 8 + max(_text_w(f_small, "-8.88e-8"), 40) + line_h + 6
    col_widths = [max(panels[c::grid_cols], key=lambda p: p.n_cols).n_cols for c in range(grid_cols)]
    gaps = s.gap * (grid_cols - 1)
    cw = (s.max_w - row_lbl_w - cbar_w - gaps) // max(1, sum(col_widths))
    cw = max(s.cw[0], min(s.cw[1], cw))
    title_band = (line_h + 4) if any(p.title for p in panels) else 0
    ch = (s.max_h - grid_rows * title_band) // max(1, L * grid_rows)
    ch = max(s.ch[0], min(s.ch[1], ch, max(2 * cw, s.ch[1] // 2)))

    # Column labels: rotated when they do not fit the cell; thinned when cells are tiny.
    labels = [[_col_label(p, i, f_small) for i in range(p.n_cols)] for p in panels]
    widest = max((_text_w(f_small, t) for ls in labels for t in ls), default=0)
    rotate = widest + 4 > cw
    col_step = max(1, math.ceil((line_h + 1) / cw)) if rotate else 1
    label_band = (widest + 6) if rotate else (line_h + 6)
    row_step = max(1, math.ceil((line_h - 1) / ch))

    panel_w = [w * cw for w in col_widths]
    plot_w = row_lbl_w + sum(panel_w) + gaps
    panel_h = L * ch
    plot_h = grid_rows * (title_band + panel_h) + (grid_rows - 1) * s.gap // 2 + label_band
    width = max(s.pad * 2 + plot_w + cbar_w, 320)
    badge = f"PARTIAL {r.cells_done}/{r.cells_total}" if r.partial else ""
    badge_w = _text_w(f_title, badge) + 20 if badge else 0
    kind_title = plain(HEATMAP_TITLES.get(r.kind, r.kind), f_title)
    metric = plain(r.metric, f_title)
    one_line = f"{kind_title} · {metric}"
    avail = width - 2 * s.pad - badge_w
    titles = [one_line] if _text_w(f_title, one_line) <= avail else [kind_title, _fit(metric, f_title, avail)]
    parts = [f"{r.backend} · TL {r.tl_version} · {r.device}"]
    if r.clean_value is not None and r.corrupted_value is not None:
        parts.append(f"clean {fmt(r.clean_value)} · corrupted {fmt(r.corrupted_value)}")
    parts.append("normalised: 0 = corrupted, 1 = clean" if r.normalized else "raw metric")
    subs = _pack([plain(p, f_small) for p in parts], f_small, width - 2 * s.pad)
    head_h = len(titles) * (_text_h(f_title) + 2) + len(subs) * line_h + 10
    height = s.pad * 2 + head_h + plot_h + (line_h + 4 if r.partial or r.notes else 0)
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)

    # Header: title (wrapped once), PARTIAL badge, provenance line.
    x0, y = s.pad, s.pad
    if badge:
        bw = badge_w - 10
        d.rectangle([width - s.pad - bw, y - 2, width - s.pad, y + _text_h(f_title) + 2], fill=(200, 30, 30))
        d.text((width - s.pad - bw + 5, y), badge, font=f_title, fill="white")
    for t in titles:
        d.text((x0, y), _fit(t, f_title, avail), font=f_title, fill=(20, 20, 20))
        y += _text_h(f_title) + 2
    y += 2
    for sub in subs:
        d.text((x0, y), _fit(sub, f_small, width - 2 * s.pad), font=f_small, fill=(90, 90, 90))
        y += line_h
    y += 6

    # Panels.
    vmax = _vmax(r, panels)
    top = y
    layout: list[PanelGeometry] = []
    for i, p in enumerate(panels):
        gr, gc = divmod(i, grid_cols)
        px = x0 + row_lbl_w + sum(panel_w[:gc]) + gc * s.gap
        py = top + gr * (title_band + panel_h + s.gap // 2)
        if p.title:
            d.text((px, py), plain(p.title, f_bold), font=f_bold, fill=(40, 40, 40))
        py += title_band
        _cells(img, p, px, py, cw, ch, vmax)
        layout.append(_geometry(p, px, py, cw, ch))
        d.rectangle([px - 1, py - 1, px + p.n_cols * cw, py + p.n_rows * ch], outline=(150, 150, 150))
        if gc == 0:
            for li in range(0, p.n_rows, row_step):
                lbl = p.row_labels[li]
                d.text(
                    (px - 4 - _text_w(f_small, lbl), py + li * ch + (ch - line_h) // 2),
                    lbl, font=f_small, fill=(60, 60, 60),
                )
        if gr == grid_rows - 1 or i + grid_cols >= n:
            _col_labels(img, labels[i], px, py + p.n_rows * ch + 3, cw, rotate, col_step, f_small)

    # Colour bar.
    _colorbar(img, r, vmax, x0 + plot_w + 14, top + title_band, min(panel_h * grid_rows, 400 if s.font < 16 else 900), f_small)

    # Footer and PARTIAL frame.
    if r.partial or r.notes:
        foot = (
            f"grey = not computed ({r.cells_total - r.cells_done} cells)" + (f" · {r.error}" if r.error else "")
            if r.partial else r.notes[0]
        )
        d.text((x0, height - s.pad - line_h), _fit(plain(foot, f_small), f_small, width - 2 * s.pad),
               font=f_small, fill=(200, 30, 30) if r.partial else (90, 90, 90))
    if r.partial:
        d.rectangle([0, 0, width - 1, height - 1], outline=(200, 30, 30), width=3)
    return img, layout


def _geometry(p: _Panel, x: int, y: int, cw: int, ch: int) -> PanelGeometry:
    """Pixel box and readout labels of a panel painted at (x, y) with cw × ch cells."""
    cols = [
        (f"pos {i} {p.col_labels[i]!r}" if p.tokens else str(p.col_labels[i])) if i < len(p.col_labels)
        else (f"pos {i}" if p.tokens else str(i))
        for i in range(p.n_cols)
    ]
    rows = [p.row_labels[i] if i < len(p.row_labels) else str(i) for i in range(p.n_rows)]
    # NaN is not JSON; it is drawn grey like a missing cell, so it is reported as one.
    values = [[None if v is None or v != v else v for v in row] for row in p.rows]
    return PanelGeometry(p.title, x, y, p.n_cols * cw, p.n_rows * ch, values, rows, cols)


def _cells(img: Image.Image, p: _Panel, x: int, y: int, cw: int, ch: int, vmax: float) -> None:
    """Paint a panel: one pixel per cell, scaled up with nearest-neighbour (crisp edges)."""
    small = Image.new("RGB", (max(1, p.n_cols), max(1, p.n_rows)))
    small.putdata([color_for(v, vmax) for row in p.rows for v in row] or [MISSING])
    img.paste(small.resize((p.n_cols * cw, p.n_rows * ch), Image.NEAREST), (x, y))


def _col_label(p: _Panel, i: int, f) -> str:
    raw = p.col_labels[i] if i < len(p.col_labels) else str(i)
    return token_label(raw, f) if p.tokens else plain(raw, f)


def _col_labels(img, labels, x, y, cw, rotate, step, f) -> None:
    d = ImageDraw.Draw(img)
    h = _text_h(f)
    for i in range(0, len(labels), step):
        text = labels[i]
        if not rotate:
            d.text((x + i * cw + (cw - _text_w(f, text)) // 2, y), text, font=f, fill=(50, 50, 50))
            continue
        tw = _text_w(f, text)
        tile = Image.new("L", (tw + 2, h + 2), 0)
        ImageDraw.Draw(tile).text((1, 0), text, font=f, fill=255)
        tile = tile.rotate(90, expand=True)  # reads bottom-to-top, ends at the cell
        img.paste((50, 50, 50), (x + i * cw + (cw - tile.width) // 2, y), tile)


def _colorbar(img, r: SweepResult, vmax: float, x: int, y: int, h: int, f) -> None:
    d = ImageDraw.Draw(img)
    h = max(h, 60)
    w = 14
    for j in range(h):
        d.line([x, y + j, x + w, y + j], fill=diverging(1 - 2 * j / max(1, h - 1)))
    d.rectangle([x, y, x + w, y + h], outline=(120, 120, 120))
    th = _text_h(f)
    for frac, value in ((0.0, vmax), (0.25, vmax / 2), (0.5, 0.0), (0.75, -vmax / 2), (1.0, -vmax)):
        ty = y + round(frac * (h - 1))
        d.line([x + w, ty, x + w + 4, ty], fill=(80, 80, 80))
        d.text((x + w + 6, ty - th // 2), plain(fmt(value), f), font=f, fill=(50, 50, 50))
    label = "normalised: 0 = corrupted, 1 = clean" if r.normalized else "metric (white = 0)"
    label = plain(label, f)
    tile = Image.new("L", (_text_w(f, label) + 2, th + 2), 0)
    ImageDraw.Draw(tile).text((1, 0), label, font=f, fill=255)
    tile = tile.rotate(90, expand=True)
    lx = x + w + 8 + _text_w(f, "-8.88e-8")
    if tile.height <= h + 40:
        img.paste((70, 70, 70), (lx, y + (h - tile.height) // 2), tile)


def _pack(parts: list[str], f, width: int) -> list[str]:
    """Join parts with ' · ' into as few lines as fit ``width``."""
    lines: list[str] = []
    for part in parts:
        joined = f"{lines[-1]} · {part}" if lines else part
        if lines and _text_w(f, joined) <= width:
            lines[-1] = joined
        else:
            lines.append(part)
    return lines


def _fit(text: str, f, width: int) -> str:
    if _text_w(f, text) <= width:
        return text
    while text and _text_w(f, text + "...") > width:
        text = text[:-1]
    return text + "..."


def _text_w(f, text: str) -> int:
    return int(math.ceil(f.getlength(text)))


def _text_h(f) -> int:
    a, b = f.getmetrics()
    return a + b


def _encode(img: Image.Image, palette: bool) -> bytes:
    buf = io.BytesIO()
    if palette:
        img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
