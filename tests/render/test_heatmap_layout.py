"""Panel geometry from render_heatmap_with_layout matches the cells actually drawn in the PNG.

The check reads the PNG back: the pixel at every cell's centre (and near its corners) must have the
colour-map colour of the value the geometry reports for that cell, and just outside each box there
must be no cell colour. A wrong offset, cell size or value order makes some cell disagree.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from lsp_server.render import PanelGeometry, render_heatmap, render_heatmap_with_layout
from lsp_server.render.colors import color_for

from .test_heatmap import decode, make

KINDS = ["resid_pre", "attn_out", "heads", "heads_by_pos", "block", "attribution"]


def vmax_of(layout: list[PanelGeometry], normalized: bool) -> float:
    """The renderer's colour scale: symmetric around zero, at least 1 when normalised."""
    vals = [abs(v) for p in layout for row in p.values for v in row if v is not None]
    vmax = max(vals, default=0.0)
    if normalized:
        vmax = max(vmax, 1.0)
    return vmax or 1.0


def close(a, b, tol: int) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def check_cells(img, layout: list[PanelGeometry], vmax: float, tol: int = 0) -> int:
    """Asserts every cell's pixels have its value's colour; returns how many cells were checked."""
    checked = 0
    for p in layout:
        rows, cols = len(p.values), len(p.values[0])
        assert p.width % cols == 0 and p.height % rows == 0, "cells are not whole pixels"
        cw, ch = p.width // cols, p.height // rows
        assert 0 <= p.x and p.x + p.width <= img.width and 0 <= p.y and p.y + p.height <= img.height
        for i, row in enumerate(p.values):
            for j, v in enumerate(row):
                want = color_for(v, vmax)
                x0, y0 = p.x + j * cw, p.y + i * ch
                probes = [(x0 + cw // 2, y0 + ch // 2), (x0, y0), (x0 + cw - 1, y0 + ch - 1)]
                for x, y in probes:
                    got = img.getpixel((x, y))
                    assert close(got, want, tol), (
                        f"panel {p.label!r} cell [{i}][{j}] ({p.row_labels[i]}, {p.col_labels[j]}) = {v}: "
                        f"pixel {x},{y} is {got}, colour map says {want}"
                    )
                checked += 1
    return checked


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("normalized", [False, True])
def test_large_layout_matches_drawn_cells(kind, normalized):
    r = make(kind, L=5, P=9, H=4, normalized=normalized, seed=3)
    png, layout = render_heatmap_with_layout(r, "large")
    img = decode(png)
    expected_panels = {"heads_by_pos": 4, "block": 3, "attribution": 4}.get(kind, 1)
    assert len(layout) == expected_panels
    n = check_cells(img, layout, vmax_of(layout, normalized))
    assert n == sum(len(p.values) * len(p.values[0]) for p in layout) > 0


@pytest.mark.parametrize("kind", KINDS)
def test_boxes_hold_only_the_cells(kind):
    """One pixel outside each box is frame or background, never a cell's colour."""
    r = make(kind, L=5, P=9, H=4, seed=5)
    png, layout = render_heatmap_with_layout(r, "large")
    img = decode(png)
    vmax = vmax_of(layout, False)
    for p in layout:
        colours = {color_for(v, vmax) for row in p.values for v in row}
        rows, cols = len(p.values), len(p.values[0])
        cw, ch = p.width // cols, p.height // rows
        outside = [(p.x - 1, p.y + ch // 2), (p.x + p.width, p.y + ch // 2),
                   (p.x + cw // 2, p.y - 1), (p.x + cw // 2, p.y + p.height)]
        for x, y in outside:
            assert img.getpixel((x, y)) not in colours, f"panel {p.label!r}: ({x},{y}) is inside the cells"


def test_missing_and_nan_cells_are_grey_and_null():
    r = make("resid_pre", L=3, P=6, partial=True, seed=1)
    r.values[1][2] = float("nan")
    png, layout = render_heatmap_with_layout(r, "large")
    (p,) = layout
    assert p.values[1][2] is None
    assert any(v is None for row in p.values for v in row if row is not p.values[1])
    check_cells(decode(png), layout, vmax_of(layout, False))
    json.dumps([g.to_dict() for g in layout], allow_nan=False)  # the notification stays valid JSON


def test_hover_layout_describes_the_encoded_attempt():
    # heads_by_pos this big does not fit a hover with one panel per head: the layout must follow
    # the fallback (one strongest-head panel), not the first attempt.
    # 81 levels: noisy enough to overflow the budget, few enough colours for the hover's 256-colour
    # palette to keep every cell colour exact.
    rnd = random.Random(0)
    levels = [-1 + i / 40 for i in range(81)]
    r = make("heads_by_pos", L=48, P=64, H=25)
    r.values = [[[rnd.choice(levels) for _ in range(25)] for _ in range(64)] for _ in range(48)]
    png, layout = render_heatmap_with_layout(r, "hover")
    assert png == render_heatmap(r, "hover")
    assert len(layout) == 1 and "strongest head" in (layout[0].label or "")
    check_cells(decode(png), layout, 1.0)


def test_hover_layout_of_a_small_sweep():
    rnd = random.Random(1)
    r = make("block", L=4, P=7)
    r.values = [[[rnd.choice([-2.0, 0.0, 1.0, 2.0]) for _ in range(7)] for _ in range(4)] for _ in range(3)]
    png, layout = render_heatmap_with_layout(r, "hover")
    assert [p.label for p in layout] == ["resid_pre", "attn_out", "mlp_out"]
    check_cells(decode(png), layout, 2.0)


def test_labels_and_payload_shape():
    r = make("block", L=2, P=4)
    _, layout = render_heatmap_with_layout(r, "large")
    d = layout[0].to_dict()
    assert set(d) == {"label", "x", "y", "width", "height", "values", "rowLabels", "colLabels"}
    assert d["label"] == "resid_pre" and d["rowLabels"] == ["L0", "L1"]
    # Token columns name the position and the token (whitespace kept, quoted).
    assert d["colLabels"] == ["pos 0 '<|endoftext|>'", "pos 1 'When'", "pos 2 ' Mary'", "pos 3 ' and'"]
    assert d["values"] == r.values[0]
    heads = render_heatmap_with_layout(make("heads", L=2, H=3), "large")[1][0].to_dict()
    assert "label" not in heads and heads["colLabels"] == ["H0", "H1", "H2"]
    assert all(isinstance(d[k], int) for k in ("x", "y", "width", "height"))


def test_render_heatmap_is_the_png_of_the_layout_call():
    r = make("attribution", seed=7)
    for size in ("hover", "large"):
        assert render_heatmap(r, size) == render_heatmap_with_layout(r, size)[0]
    assert not math.isnan(vmax_of(render_heatmap_with_layout(r, "large")[1], False))
