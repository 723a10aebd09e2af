"""tlens in-kernel payload, part: small PNG pictures from numpy arrays, with no imaging library.

Used by ``pictures.py``. A picture is a grid of value cells scaled up by whole pixels (blocky on
purpose: one cell is one number), so a plain zlib-compressed RGB PNG stays a few kilobytes; no
pillow, matplotlib or fonts are needed in the kernel. Imports are inside the functions (numpy ships
with torch; the rest is stdlib): the payload imports only its fixed stdlib set when installed.
"""

# Colour ramps, as anchor colours from low to high (RGB 0-255).
_PIC_SEQUENTIAL = ((247, 251, 255), (107, 174, 214), (8, 48, 107))  # white -> blue: weights, norms
_PIC_DIVERGING = ((33, 102, 172), (247, 247, 247), (178, 24, 43))  # blue -> white -> red: signed values
_PIC_MISSING = (200, 200, 200)  # NaN / masked cells (attention scores above the diagonal)
_PIC_MARK = (255, 140, 0)  # the frame of the marked head
_PIC_FRAME = (160, 160, 160)
_PIC_BACKGROUND = (255, 255, 255)


def _pic_png(rgb):
    """PNG bytes of an ``[height, width, 3]`` uint8 array (filter 0 on every row, zlib level 6)."""
    import struct
    import zlib

    import numpy as np

    height, width = rgb.shape[:2]
    rows = np.zeros((height, width * 3 + 1), dtype=np.uint8)
    rows[:, 1:] = rgb.reshape(height, width * 3)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))


def _pic_colours(values, low, high, diverging):
    """``[rows, cols]`` float array -> ``[rows, cols, 3]`` uint8 colours; NaN is grey."""
    import numpy as np

    ramp = np.array(_PIC_DIVERGING if diverging else _PIC_SEQUENTIAL, dtype=np.float64)
    span = (high - low) or 1.0
    t = np.clip((np.nan_to_num(values, nan=low) - low) / span, 0.0, 1.0) * (len(ramp) - 1)
    i = np.minimum(t.astype(int), len(ramp) - 2)
    f = (t - i)[..., None]
    out = ramp[i] * (1 - f) + ramp[i + 1] * f
    out[np.isnan(values)] = _PIC_MISSING
    return out.round().astype(np.uint8)


def _pic_cells(values, cell_w, cell_h, low, high, diverging):
    """The value grid as an image, each cell ``cell_w`` x ``cell_h`` pixels."""
    import numpy as np

    colours = _pic_colours(values, low, high, diverging)
    return np.repeat(np.repeat(colours, cell_h, axis=0), cell_w, axis=1)


def _pic_frame(tile, width, colour):
    """``tile`` inside a frame ``width`` pixels wide."""
    import numpy as np

    h, w = tile.shape[:2]
    out = np.empty((h + 2 * width, w + 2 * width, 3), dtype=np.uint8)
    out[:] = colour
    out[width:width + h, width:width + w] = tile
    return out


def _pic_tile_grid(tiles, columns, gap):
    """Same-sized tiles in rows of ``columns``, ``gap`` pixels apart.

    Returns:
        (image, [(x, y) of each tile]).
    """
    import numpy as np

    th, tw = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    image = np.empty((rows * th + (rows - 1) * gap, columns * tw + (columns - 1) * gap, 3), dtype=np.uint8)
    image[:] = _PIC_BACKGROUND
    places = []
    for n, tile in enumerate(tiles):
        y, x = (n // columns) * (th + gap), (n % columns) * (tw + gap)
        image[y:y + th, x:x + tw] = tile
        places.append((x, y))
    return image, places


def _pic_pool(values, axis, cap):
    """Mean over equal bins so that ``axis`` has at most ``cap`` entries (NaN-aware); the bin edges."""
    import numpy as np

    n = values.shape[axis]
    if n <= cap:
        return values, None
    edges = np.linspace(0, n, cap + 1).round().astype(int)
    moved = np.moveaxis(values, axis, 0)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN bin stays NaN
            pooled = np.stack([np.nanmean(moved[a:b], axis=0) for a, b in zip(edges[:-1], edges[1:])])
    return np.moveaxis(pooled, 0, axis), edges
