"""tlens in-kernel payload, part: pictures of one live cache tensor, for hovers and the panel.

  live_picture(cache, key, index=None, direction=None, tokens=None, size="hover", max_chars=60000, stack=None)
      -> {kind, png (base64), width, height, notes, summary, table (text for editors without images),
        tokens, marked, panels (size "large": each cell grid's pixel box and values), execution_count}

What is drawn follows the axes left after the indexing written in the code:
  heads x query x key (``cache["pattern", 5]``)  -> one small tile per head, the head with the most
                                                    attention off the diagonal and off BOS framed
  query x key (``cache["pattern", 5][0, 7]``)    -> that head, large
  pos (``cache["post", 3][..., 42]``, ``@ dir``)  -> a token strip of the values
  pos x d (``cache["resid_post", 5]``)           -> a token strip of the L2 norm per position
  layer x pos (``cache.accumulated_resid(apply_ln=True) @ logit_dir``, ``stack``) -> a logit-lens
                                                    heatmap (the L2 norm per component without a direction)
  any other two axes                             -> a heatmap; more than two: no picture
The batch axis, when one is left, is batch element 0 (``tokens`` gives the axis labels).

Rules: read-only (the tensor is indexed, then only the drawn slice is copied to the CPU); ``direction``
and ``tokens`` are *names* looked up in the user's namespace, never code; the hover picture keeps its
base64 under ``max_chars`` (VS Code cuts hover markdown at 100,000 characters), downsampling by mean
over bins and saying so; answers are memoised per kernel execution count.
"""

import json
import time

from .core import _API, TlensError, _user_ns
from .live import _live_is_cache
from .picture_png import _PIC_FRAME, _PIC_MARK, _pic_cells, _pic_frame, _pic_png, _pic_pool, _pic_tile_grid

# Per picture size: (cap on one axis of a heatmap / strip, cap on a head tile's axis, width in pixels).
_PIC_SIZES = {"hover": (96, 32, 420), "large": (512, 128, 1100)}
_PIC_MEMO = {}  # (execution count, arguments) -> answer; emptied when the count changes
_PIC_MEMO_MAX = 32
_PIC_SHADES = " ░▒▓█"
_PIC_SPARK = "▁▂▃▄▅▆▇█"
_PIC_HEAD_KEYS = ("hook_z", "hook_q", "hook_k", "hook_v", "hook_result", "hook_rot_q", "hook_rot_k")


def _pic_execution_count():
    shell = _user_ns().get("get_ipython")
    try:
        return int(shell().execution_count) if callable(shell) else None
    except Exception:  # noqa: BLE001 - not an IPython kernel
        return None


def _pic_axes(key, ndim, has_batch):
    """Names of the cached tensor's axes, from its hook name."""
    last = key.rsplit(".", 1)[-1]
    if last.endswith(("pattern", "attn_scores")):
        names = ["batch", "head", "query", "key"]
    elif last in _PIC_HEAD_KEYS:
        names = ["batch", "pos", "head", "d"]
    else:
        names = ["batch", "pos"] + ["d"] * max(ndim - 2, 0)
    if not has_batch:
        names = names[1:]
    if len(names) != ndim:  # an unexpected layout: positions first, the rest features
        names = (["batch"] if has_batch else []) + ["pos"] + ["d"] * max(ndim - 1 - has_batch, 0)
        names = names[:ndim]
    return names


def _pic_index(items):
    """The index written in the code (int, None for ``:``, ``"..."``) as a Python index tuple."""
    return tuple(Ellipsis if it == "..." else slice(None) if it is None else int(it) for it in items)


def _pic_indexed_axes(names, items):
    """The axis names an index leaves (an int drops its axis, ``:`` keeps it)."""
    if "..." in items:
        k = items.index("...")
        left, right = items[:k], items[k + 1:]
    else:
        left, right = items, []
    kept = [n for n, it in zip(names, left) if it is None]
    rest = names[len(left):]
    middle, tail = rest[:len(rest) - len(right)], rest[len(rest) - len(right):]
    return kept + middle + [n for n, it in zip(tail, right) if it is None]


def _pic_stack(cache, method, kwargs):
    """``cache.<method>(**kwargs)`` of a stacking method, its axis names and component labels."""
    has_batch = bool(getattr(cache, "has_batch_dim", True))
    if method == "stack_activation":
        value = cache.stack_activation(**kwargs)
        name = str(kwargs.get("activation_name", ""))
        labels = [f"L{i}" for i in range(value.shape[0])]
        return value, ["layer"] + _pic_axes("hook_" + name, len(value.shape) - 1, has_batch), labels
    if method not in ("accumulated_resid", "decompose_resid", "stack_head_results"):
        raise TlensError("bad-stack", f"`{method}` is not a cache stacking method tlens draws.")
    value, labels = getattr(cache, method)(**dict(kwargs, return_labels=True))
    names = ["layer"] + (["batch"] if has_batch else []) + ["pos"] + ["d"] * (len(value.shape) - 2 - has_batch)
    return value, names[:len(value.shape)], [str(label) for label in labels]


def _pic_tensor(cache_var, key, index, direction, notes, stack=None):
    """(the tensor to draw, its axis names, batch size or None, component labels or None) after the
    stacking call, the index, the direction and batch element 0."""
    cache = _user_ns().get(cache_var)
    if cache is None or not _live_is_cache(cache):
        raise TlensError("missing-cache", f"`{cache_var}` is not an ActivationCache in the kernel.")
    components = None
    if stack:
        value, names, components = _pic_stack(cache, stack["method"], stack.get("kwargs") or {})
    else:
        value = cache.cache_dict.get(key)
        if value is None or not hasattr(value, "shape"):
            raise TlensError("not-cached", f"`{cache_var}` holds no tensor `{key}`.")
        names = _pic_axes(key, len(value.shape), bool(getattr(cache, "has_batch_dim", True)))
    if index:
        try:
            value = value[_pic_index(index)]
        except (IndexError, TypeError) as e:
            raise TlensError("bad-index", f"the index does not apply to `{key}` {list(value.shape)}: {e}") from None
        names = _pic_indexed_axes(names, index)
    if direction:
        vec = _user_ns().get(direction)
        shape = tuple(getattr(vec, "shape", ()))
        if len(shape) != 1 or not value.shape or shape[0] != value.shape[-1]:
            raise TlensError("bad-direction", f"`{direction}` is not a vector of length {value.shape[-1] if value.shape else '?'}.")
        value = value @ vec.to(device=value.device, dtype=value.dtype)
        names = names[:-1]
        notes.append(f"projected on `{direction}`")
    batch = None
    if "batch" in names:
        at = names.index("batch")
        batch = int(value.shape[at])
        value = value.select(at, 0)
        names = names[:at] + names[at + 1:]
    return value.detach().float().cpu().numpy(), names, batch, components


def _pic_tokens(cache_var, tokens, length):
    """Labels for a position axis of ``length``: the prompt's string tokens when they fit, else None."""
    import numpy as np

    if not tokens:
        return None
    model = getattr(_user_ns().get(cache_var), "model", None)
    value = _user_ns().get(tokens["name"]) if tokens.get("name") else tokens.get("text")
    if model is None or value is None or not hasattr(model, "to_str_tokens"):
        return None
    try:
        if hasattr(value, "shape") and len(value.shape) == 2:
            value = value[0]
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            value = value[0]
        labels = [str(t) for t in np.asarray(model.to_str_tokens(value), dtype=object).tolist()]
    except Exception:  # noqa: BLE001 - labels are a nicety
        return None
    return labels if len(labels) == length else None


def _pic_offdiagonal(pattern):
    """Per head: mean attention a query (from the third on) gives off the diagonal and off position 0."""
    import numpy as np

    heads, q, k = pattern.shape
    if q != k or q < 3:
        return None
    probs = np.nan_to_num(pattern)
    if np.nanmin(pattern) < 0 or np.nanmax(pattern) > 1.0001:  # attention scores: softmax them first
        masked = np.where(np.isnan(pattern), -np.inf, pattern)
        masked = masked - masked.max(axis=-1, keepdims=True)
        probs = np.exp(masked)
        probs = probs / probs.sum(axis=-1, keepdims=True)
    keep = np.tril(np.ones((q, k)), -1)
    keep[:, 0] = 0
    return (probs * keep).sum(axis=-1)[:, 2:].mean(axis=-1)


def _pic_range(values, signed_ok=True):
    """(low, high, diverging) colour range of ``values``."""
    import numpy as np

    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0, False
    low, high = float(finite.min()), float(finite.max())
    if signed_ok and low < 0 < high:
        m = max(-low, high)
        return -m, m, True
    return (0.0 if low >= 0 else low), (high if high > 0 else 0.0) or 1.0, False


def _pic_labels(labels, edges, n, prefix):
    if labels is None:
        labels = [f"{prefix}{i}" for i in range(n)]
    if edges is None:
        return list(labels)
    return [labels[a] if b - a == 1 else f"{labels[a]}…{labels[b - 1]}" for a, b in zip(edges[:-1], edges[1:])]


def _pic_panel(label, x, y, values, cw, ch, rows, cols):
    import numpy as np

    rounded = [[None if not np.isfinite(v) else float(f"{v:.4g}") for v in row] for row in values.tolist()]
    return {"label": label, "x": x, "y": y, "width": values.shape[1] * cw, "height": values.shape[0] * ch,
            "values": rounded, "rowLabels": rows, "colLabels": cols}


def _pic_heads(pattern, labels, size, notes):
    """Tiles per head; the off-diagonal head framed. (image, panels, marked, text)."""
    import numpy as np

    _, tile_cap, width = _PIC_SIZES[size]
    pooled, edges = _pic_pool(pattern, 1, tile_cap)
    pooled, _ = _pic_pool(pooled, 2, tile_cap)
    if edges is not None:
        notes.append(f"downsampled: {pattern.shape[1]} → {pooled.shape[1]} positions per axis (mean over bins)")
    heads, q, k = pooled.shape
    columns = min(heads, 6)  # 12 heads in two rows: a hover keeps them above its fold
    cell = max(1, min(12, (width // columns - 6) // max(q, k)))
    low, high, diverging = _pic_range(pooled)
    scores = _pic_offdiagonal(pattern)
    marked = int(np.argmax(scores)) if scores is not None else None
    tiles = [_pic_frame(_pic_cells(pooled[h], cell, cell, low, high, diverging), 2,
                        _PIC_MARK if h == marked else _PIC_FRAME) for h in range(heads)]
    image, places = _pic_tile_grid(tiles, columns, 4)
    rows = _pic_labels(labels, edges, pattern.shape[1], "q")
    cols = _pic_labels(labels, edges, pattern.shape[2], "k")
    panels = [_pic_panel(f"H{h}", x + 2, y + 2, pooled[h], cell, cell, rows, cols) for h, (x, y) in enumerate(places)]
    summary = ("attention off the diagonal and off BOS, per head: " + " · ".join(
        f"**H{h} {s:.2f}**" if h == marked else f"H{h} {s:.2f}" for h, s in enumerate(scores))) if scores is not None else ""
    table = _pic_shade_table(pattern[marked if marked is not None else 0], labels, f"H{marked or 0}")
    info = {"head": marked, "score": round(float(scores[marked]), 4)} if marked is not None else None
    return image, panels, info, (summary, table)


def _pic_shade_table(matrix, labels, name, cap=24):
    """A query x key matrix as shade characters (a code block), for editors without images."""
    import numpy as np

    m, _ = _pic_pool(matrix, 0, cap)
    m, _ = _pic_pool(m, 1, cap)
    low, high, _ = _pic_range(m, signed_ok=False)
    span = (high - low) or 1.0
    pooled = m.shape[0] < matrix.shape[0]
    rows = [labels[i] if labels and not pooled else str(i) for i in range(m.shape[0])]
    width = min(max(len(r) for r in rows), 10)
    lines = [f"{name} (rows: query, columns: key{', downsampled' if pooled else ''}):", "```"]
    for r, row in zip(rows, m):
        cells = "".join(" " if not np.isfinite(v) else _PIC_SHADES[int((v - low) / span * (len(_PIC_SHADES) - 1) + 0.5)]
                        for v in row)
        lines.append(f"{r[:width]:>{width}} {cells}")
    lines.append("```")
    return "\n".join(lines)


def _pic_grid(values, row_labels, col_labels, size, notes, label, square=False):
    """A 1-D strip or a 2-D heatmap (``square``: square cells). (image, panels, text)."""
    import numpy as np

    cap, _, width = _PIC_SIZES[size]
    two_d = values.ndim == 2
    grid = values if two_d else values[None, :]
    pooled, col_edges = _pic_pool(grid, 1, cap)
    pooled, row_edges = _pic_pool(pooled, 0, cap)
    if col_edges is not None or row_edges is not None:
        notes.append(f"downsampled: {grid.shape[0]}×{grid.shape[1]} → {pooled.shape[0]}×{pooled.shape[1]} (mean over bins)")
    rows, cols = pooled.shape
    cw = max(1, min(28, width // cols))
    ch = 28 if not two_d else max(1, min(20, (300 if size == "hover" else 700) // rows))
    if square:
        cw = ch = min(cw, ch)
    low, high, diverging = _pic_range(pooled)
    image = _pic_frame(_pic_cells(pooled, cw, ch, low, high, diverging), 1, _PIC_FRAME)
    rl = _pic_labels(row_labels, row_edges, grid.shape[0], "") if two_d else [label]
    cl = _pic_labels(col_labels, col_edges, grid.shape[1], "")
    panels = [_pic_panel(label, 1, 1, pooled, cw, ch, rl, cl)]
    finite = values[np.isfinite(values)]
    summary = f"min {finite.min():.4g} · max {finite.max():.4g}" if finite.size else "no finite values"
    table = _pic_shade_table(values, row_labels, label) if two_d else _pic_strip_text(values, col_labels)
    return image, panels, (summary, table)


def _pic_strip_text(values, labels, cap=24):
    """Per position: token and value (a sparkline when there are many positions)."""
    import numpy as np

    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    span = (high - low) or 1.0
    if len(values) > cap:
        pooled, _ = _pic_pool(values, 0, 64)
        return "`" + "".join(_PIC_SPARK[int((v - low) / span * (len(_PIC_SPARK) - 1))] for v in np.nan_to_num(pooled, nan=low)) + "`"
    if not labels:
        return "\n".join(["| pos | value |", "|---:|---:|"] + [f"| {i} | {v:.3g} |" for i, v in enumerate(values)])
    lines = ["| pos | token | value |", "|---:|---|---:|"]
    for i, v in enumerate(values):
        token = labels[i].replace("|", "\\|").replace("`", "'")
        lines.append(f"| {i} | `{token}` | {v:.3g} |")
    return "\n".join(lines)


def _pic_draw(array, names, labels, size, notes, key, components=None):
    """Dispatch on the axes left: (kind, image, panels, marked, (summary, table), axes drawn, their sizes)."""
    import numpy as np

    if names == ["head", "query", "key"]:
        image, panels, marked, text = _pic_heads(array, labels, size, notes)
        return "heads", image, panels, marked, text, names, array.shape
    feature = [i for i, n in enumerate(names) if n == "d"]
    if feature:
        notes.append("L2 norm over the last axis" + ("es" if len(feature) > 1 else "") + " per position")
        array = np.sqrt(np.nansum(np.square(array), axis=tuple(feature)))
        names = [n for n in names if n != "d"]
    if not names or len(names) > 2:
        return None, None, None, None, (f"nothing to draw for axes {names or 'none (a scalar)'}", ""), names, array.shape
    if len(names) == 2 and names[0] in ("pos", "key", "query") and names[1] == "head":
        array, names = array.T, names[::-1]  # heads as rows, positions as columns
    position_axis = lambda n: n in ("pos", "query", "key")  # noqa: E731
    col_labels = labels if position_axis(names[-1]) else None
    row_labels = labels if len(names) == 2 and position_axis(names[0]) else (
        [f"H{h}" for h in range(array.shape[0])] if names[0] == "head" else components if names[0] == "layer" else None)
    if len(names) == 2:
        kind = "head" if names == ["query", "key"] else "heatmap"
        image, panels, text = _pic_grid(array, row_labels, col_labels, size, notes, key, square=kind == "head")
        return kind, image, panels, None, text, names, array.shape
    image, panels, text = _pic_grid(array, None, col_labels, size, notes, key.rsplit(".", 1)[-1])
    return "strip", image, panels, None, text, names, array.shape


def live_picture(cache, key, index=None, direction=None, tokens=None, size="hover", max_chars=60000, stack=None):
    """A picture of ``cache[key][index]`` (``@ direction``): PNG (base64), its cells' values, a text table."""
    import base64

    t0 = time.perf_counter()
    if size not in _PIC_SIZES:
        raise TlensError("bad-size", f"size must be one of {sorted(_PIC_SIZES)}")
    count = _pic_execution_count()
    memo_key = (count, json.dumps([cache, key, index, direction, tokens, size, max_chars, stack], sort_keys=True))
    if memo_key in _PIC_MEMO:
        return dict(_PIC_MEMO[memo_key], memo=True, elapsed_ms=round((time.perf_counter() - t0) * 1000, 2))
    if any(k[0] != count for k in _PIC_MEMO) or len(_PIC_MEMO) >= _PIC_MEMO_MAX:
        _PIC_MEMO.clear()
    notes = []
    array, names, batch, components = _pic_tensor(cache, key, index or [], direction, notes, stack)
    if batch is not None and batch > 1:
        notes.append(f"batch element 0 of {batch}")
    position = next((n for n in names if n in ("pos", "query", "key")), None)
    labels = _pic_tokens(cache, tokens, array.shape[names.index(position)]) if position else None
    kind, image, panels, marked, text, axes, shape = _pic_draw(array, names, labels, size, notes, key, components)
    out = {"kind": kind, "key": key, "shape": [int(d) for d in shape], "axes": axes, "notes": notes,
           "summary": text[0], "table": text[1], "tokens": labels if labels and len(labels) <= 64 else None, "marked": marked,
           "execution_count": count, "png": None, "width": 0, "height": 0, "panels": []}
    if image is not None:
        png = base64.b64encode(_pic_png(image)).decode()
        while len(png) > max_chars and image.shape[0] > 8 and image.shape[1] > 8:
            image = image[::2, ::2]  # whole-pixel cells: halving keeps every second pixel row and column
            png = base64.b64encode(_pic_png(image)).decode()
            if "halved to fit the size limit" not in notes:
                notes.append("halved to fit the size limit")
            for p in panels:
                p.update(x=p["x"] // 2, y=p["y"] // 2, width=p["width"] // 2, height=p["height"] // 2)
        out.update(png=png, width=int(image.shape[1]), height=int(image.shape[0]),
                   panels=panels if size == "large" else [])
    out["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    _PIC_MEMO[memo_key] = out
    return dict(out, memo=False)


_API.update({"live_picture": live_picture})
