"""payload/pictures.py and picture_png.py in-process: what live_picture draws for each kind of tensor and
index, the marked head, downsampling and the size cap, tokens, text tables, errors, the memo.

tests/lsp/test_live_pictures_lsp.py asks the same through the server and a real kernel.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
import torch

from .installed import answer
from .test_live_part import ActivationCache, LiveModel

PATTERN = "blocks.3.attn.hook_pattern"


def causal_pattern(batch=2, heads=4, n=6, strong=None, seed=0):
    """Random causal attention; head ``strong`` attends to the previous token (off the diagonal)."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, heads, n, n, generator=g).masked_fill(torch.triu(torch.ones(n, n), 1).bool(), float("-inf"))
    pattern = scores.softmax(-1)
    if strong is not None:
        prev = torch.zeros(n, n)
        prev[0, 0] = 1
        prev[torch.arange(1, n), torch.arange(0, n - 1)] = 1
        pattern[:, strong] = prev
    return pattern


@pytest.fixture
def ns(user_ns):
    model = LiveModel()
    model.to_str_tokens = lambda value: ["<bos>"] + (list(value[:5]) if isinstance(value, str)
                                                     else [chr(96 + int(i)) for i in value[1:]])
    cache = ActivationCache(model, n_keys=0)
    cache.cache_dict = {PATTERN: causal_pattern(strong=2), "blocks.3.hook_resid_post": torch.randn(2, 6, 8),
                        "blocks.0.mlp.hook_post": torch.arange(2 * 6 * 5, dtype=torch.float32).reshape(2, 6, 5),
                        "blocks.0.attn.hook_z": torch.ones(2, 6, 4, 3)}
    user_ns.update(cache=cache, tokens=torch.tensor([[0, 1, 2, 3, 4, 5]]), direction=torch.ones(8))
    return user_ns


def picture(tlens, **args) -> dict:
    out = answer(tlens, "live_picture", cache="cache", **args)
    assert out["ok"], out
    return out["value"]


def decode(png_b64: str) -> tuple[int, int, bytes]:
    """(width, height, raw RGB rows) of our PNG, checked chunk by chunk."""
    data = base64.b64decode(png_b64)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(tag + body) & 0xFFFFFFFF
        chunks[tag] = body
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    return width, height, zlib.decompress(chunks[b"IDAT"])


def pixel(png_b64: str, x: int, y: int) -> tuple[int, int, int]:
    width, _, raw = decode(png_b64)
    row = raw[y * (width * 3 + 1) + 1:(y + 1) * (width * 3 + 1)]
    return tuple(row[3 * x:3 * x + 3])


def test_the_pattern_of_every_head_with_the_off_diagonal_head_framed(tlens, ns):
    out = picture(tlens, key=PATTERN, tokens={"name": "tokens"})
    assert out["kind"] == "heads" and out["axes"] == ["head", "query", "key"] and out["shape"] == [4, 6, 6]
    assert out["marked"]["head"] == 2 and out["marked"]["score"] == pytest.approx(1.0)  # queries 2-5 read the token before
    assert "**H2 1.00**" in out["summary"] and out["notes"] == ["batch element 0 of 2"]
    assert out["tokens"] == ["<bos>", "a", "b", "c", "d", "e"]
    width, height, _ = decode(out["png"])
    assert (width, height) == (out["width"], out["height"]) and width > height > 0  # 4 tiles in a row
    tile = (width - 3 * 4) // 4
    assert pixel(out["png"], 2 * (tile + 4), 0) == (255, 140, 0)  # H2's frame is the mark colour
    assert pixel(out["png"], 0, 0) == (160, 160, 160)
    assert out["table"].startswith("H2 (rows: query, columns: key):\n```") and "    e " in out["table"]
    assert out["panels"] == []  # cells only for the panel's large picture


def test_large_picture_has_every_cell(tlens, ns):
    out = picture(tlens, key=PATTERN, size="large", tokens={"name": "tokens"})
    assert [p["label"] for p in out["panels"]] == ["H0", "H1", "H2", "H3"]
    h2 = out["panels"][2]
    assert h2["values"][3] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0] and h2["rowLabels"][3] == "c"
    assert h2["x"] + h2["width"] <= out["width"] and h2["y"] + h2["height"] <= out["height"]


def test_one_head_when_indexed_and_a_strip_for_activations(tlens, ns):
    head = picture(tlens, key=PATTERN, index=[1, 2])
    assert head["kind"] == "head" and head["axes"] == ["query", "key"] and head["width"] == head["height"]
    neuron = picture(tlens, key="blocks.0.mlp.hook_post", index=["...", 3], tokens={"text": "abcdef"})
    assert neuron["kind"] == "strip" and neuron["shape"] == [6] and neuron["summary"] == "min 3 · max 28"
    assert neuron["height"] < 40 and "| 1 | `a` | 8 |" in neuron["table"]
    norm = picture(tlens, key="blocks.3.hook_resid_post")
    assert norm["kind"] == "strip" and "L2 norm over the last axis per position" in norm["notes"]
    proj = picture(tlens, key="blocks.3.hook_resid_post", direction="direction")
    want = ns["cache"].cache_dict["blocks.3.hook_resid_post"][0].sum(-1)
    assert proj["summary"] == f"min {want.min():.4g} · max {want.max():.4g}" and "projected on `direction`" in proj["notes"]
    heads = picture(tlens, key="blocks.0.attn.hook_z")  # [pos, head, d]: heads as rows, positions as columns
    assert heads["kind"] == "heatmap" and heads["axes"] == ["head", "pos"] and heads["shape"] == [4, 6]


def test_long_prompts_are_downsampled_and_the_hover_picture_fits_its_cap(tlens, ns):
    ns["cache"].cache_dict[PATTERN] = causal_pattern(batch=1, heads=12, n=200, strong=5)
    out = picture(tlens, key=PATTERN)
    assert "downsampled: 200 → 32 positions per axis (mean over bins)" in out["notes"] and out["marked"]["head"] == 5
    small = picture(tlens, key=PATTERN, max_chars=3000)
    assert len(small["png"]) <= 3000 and "halved to fit the size limit" in small["notes"]


def test_answers_are_memoised_per_execution_count(tlens, ns):
    count = [7]
    ns["get_ipython"] = lambda: type("Shell", (), {"execution_count": count[0]})()
    first = picture(tlens, key=PATTERN)
    assert first["execution_count"] == 7 and first["memo"] is False
    assert picture(tlens, key=PATTERN)["memo"] is True
    count[0] = 8
    again = picture(tlens, key=PATTERN)
    assert again["memo"] is False and again["execution_count"] == 8


@pytest.mark.parametrize("args, code, message", [
    ({"key": "blocks.9.hook_resid_post"}, "not-cached", "`cache` holds no tensor `blocks.9.hook_resid_post`"),
    ({"key": PATTERN, "index": [5]}, "bad-index", "the index does not apply"),
    ({"key": PATTERN, "direction": "direction"}, "bad-direction", "`direction` is not a vector of length 6"),
    ({"key": PATTERN, "size": "huge"}, "bad-size", "size must be one of"),
])
def test_errors_say_what_is_wrong(tlens, ns, args, code, message):
    out = answer(tlens, "live_picture", cache="cache", **args)
    assert not out["ok"] and out["code"] == code and message in out["error"], out


def test_the_png_opens_in_pillow(tlens, ns):
    from PIL import Image

    out = picture(tlens, key=PATTERN)
    img = Image.open(io.BytesIO(base64.b64decode(out["png"])))
    assert img.size == (out["width"], out["height"]) and img.mode == "RGB"


def test_a_stacking_call_projected_on_a_direction_is_a_logit_lens(tlens, ns):
    calls = []

    def accumulated_resid(**kwargs):
        calls.append(kwargs)
        return torch.arange(3 * 2 * 6 * 8, dtype=torch.float32).reshape(3, 2, 6, 8), ["0_pre", "1_pre", "final_post"]

    ns["cache"].accumulated_resid = accumulated_resid
    out = picture(tlens, key="accumulated_resid", direction="direction", tokens={"name": "tokens"},
                  stack={"method": "accumulated_resid", "kwargs": {"apply_ln": True}})
    assert calls == [{"apply_ln": True, "return_labels": True}]
    assert out["kind"] == "heatmap" and out["axes"] == ["layer", "pos"] and out["shape"] == [3, 6]
    assert out["notes"] == ["projected on `direction`", "batch element 0 of 2"]
    want = torch.arange(3 * 2 * 6 * 8, dtype=torch.float32).reshape(3, 2, 6, 8)[:, 0].sum(-1)
    assert out["summary"] == f"min {want.min():.4g} · max {want.max():.4g}"
    assert out["table"].splitlines()[2].startswith("     0_pre ")  # components label the rows
    large = picture(tlens, key="accumulated_resid", direction="direction", size="large",
                    stack={"method": "accumulated_resid", "kwargs": {"apply_ln": True}})
    assert large["panels"][0]["rowLabels"] == ["0_pre", "1_pre", "final_post"]
    bad = answer(tlens, "live_picture", cache="cache", key="x", stack={"method": "__class__", "kwargs": {}})
    assert bad["code"] == "bad-stack"
