"""Heatmap PNGs: every kind renders, hover size stays under the data-URI budget, partial is marked."""

from __future__ import annotations

import base64
import io
import random

import pytest
from PIL import Image

from lsp_server.sweeps.spec import SweepResult
from lsp_server.render import HOVER_URI_LIMIT, data_uri, render_heatmap
from lsp_server.render.colors import MISSING, color_for, diverging
from lsp_server.render.text import font, token_label

TOKENS = ["<|endoftext|>", "When", " Mary", " and", " John", " went", " to", " the", " store", ",",
          " John", " gave", " a", " drink", " to"]


def make(kind, L=4, P=15, H=4, partial=False, normalized=False, seed=0, fill=None):
    rnd = random.Random(seed)

    def v():
        if partial and rnd.random() < 0.4:
            return None
        return fill if fill is not None else rnd.gauss(0, 1)

    pos = (TOKENS * (P // len(TOKENS) + 1))[:P]
    if kind in ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"):
        values = [[v() for _ in range(P)] for _ in range(L)]
    elif kind == "heads":
        values = [[v() for _ in range(H)] for _ in range(L)]
    elif kind == "heads_by_pos":
        values = [[[v() for _ in range(H)] for _ in range(P)] for _ in range(L)]
    else:
        values = [[[v() for _ in range(P)] for _ in range(L)] for _ in range(3)]
    done = sum(1 for x in _flat(values) if x is not None)
    return SweepResult(
        kind=kind, values=values, row_labels=[f"L{i}" for i in range(L)],
        col_labels=[f"H{h}" for h in range(H)] if kind == "heads" else pos,
        metric="logit diff ' Mary' − ' John' at last position", clean_value=2.5, corrupted_value=-1.0,
        normalized=normalized, partial=partial, cells_done=done, cells_total=len(_flat(values)),
        elapsed_s=1.0, backend="TransformerBridge", tl_version="4.3.0", device="cpu",
        head_labels=[f"H{h}" for h in range(H)],
        panel_labels=["resid_pre", "attn_out", "mlp_out"] if kind in ("block", "attribution") else None,
        head_values=[[v() for _ in range(H)] for _ in range(L)] if kind == "attribution" else None,
    )


def _flat(x):
    return [v for item in x for v in _flat(item)] if isinstance(x, list) else [x]


def decode(png: bytes) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(png))
    img.load()
    return img.convert("RGB")


@pytest.mark.parametrize("kind", ["resid_pre", "attn_out", "heads", "heads_by_pos", "block", "attribution"])
@pytest.mark.parametrize("size", ["hover", "large"])
def test_every_kind_renders(kind, size):
    img = decode(render_heatmap(make(kind), size))
    assert img.width >= 300 and img.height >= 150


def test_large_is_sharper_than_hover():
    r = make("resid_pre", L=12, P=15)
    hover, large = decode(render_heatmap(r, "hover")), decode(render_heatmap(r, "large"))
    assert large.width > 1.6 * hover.width and large.height > 1.6 * hover.height


@pytest.mark.parametrize("kind, L, P, H", [("resid_pre", 48, 64, 25), ("block", 48, 64, 25),
                                           ("heads_by_pos", 48, 64, 25), ("attribution", 48, 64, 25)])
def test_hover_data_uri_fits_even_for_big_noisy_grids(kind, L, P, H):
    # Random values are the worst case for PNG compression.
    png = render_heatmap(make(kind, L=L, P=P, H=H), "hover")
    uri = data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert len(uri) <= HOVER_URI_LIMIT
    assert base64.b64decode(uri.split(",", 1)[1]) == png
    img = decode(png)
    assert img.width <= 900 and img.height <= 800  # readable in a hover, not a poster


def test_partial_is_marked_and_complete_is_not():
    red = (200, 30, 30)
    partial = decode(render_heatmap(make("resid_pre", partial=True), "hover"))
    complete = decode(render_heatmap(make("resid_pre"), "hover"))
    assert partial.getpixel((0, 0)) == red and partial.getpixel((partial.width - 1, partial.height - 1)) == red
    assert complete.getpixel((0, 0)) == (255, 255, 255)
    reds = sum(1 for px in partial.getdata() if px == red)
    assert reds > 2000  # frame + the PARTIAL badge


def test_missing_cells_are_grey_and_colours_diverge_around_white():
    assert color_for(None, 1.0) == MISSING and color_for(float("nan"), 1.0) == MISSING
    assert diverging(0.0) == (247, 247, 247)
    r, g, b = diverging(1.0)
    assert r > 100 and b < 60  # red for positive
    r, g, b = diverging(-1.0)
    assert b > 90 and r < 10  # blue for negative
    assert color_for(5.0, 1.0) == diverging(1.0)  # clipped


def test_constant_grid_does_not_divide_by_zero():
    img = decode(render_heatmap(make("resid_pre", fill=0.0), "hover"))
    assert img.width > 0


def test_all_missing_cells_render():
    r = make("resid_pre", partial=True)
    r.values = [[None] * 15 for _ in range(4)]
    r.cells_done = 0
    assert decode(render_heatmap(r, "hover")).width > 0


def test_token_labels_show_whitespace():
    f = font(11)
    assert token_label(" Mary", f) == "·Mary"
    assert token_label("\n", f) in ("⏎", "\\n")
    assert token_label("\t", f) in ("⇥", "\\t")
    assert token_label("\x00", f) == "\\x00"
    assert token_label("", f) == "∅"
    assert token_label("a" * 30, f).endswith("…") and len(token_label("a" * 30, f)) == 12


def test_accepts_result_dict_and_rejects_bad_size():
    r = make("heads")
    assert decode(render_heatmap(r.to_dict(), "hover")).width > 0
    with pytest.raises(ValueError, match="hover"):
        render_heatmap(r, "huge")
