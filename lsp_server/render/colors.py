"""Diverging colour map (ColorBrewer RdBu, reversed): blue < 0 < red, white at zero."""

from __future__ import annotations

_RDBU = [  # from -1 to +1
    (5, 48, 97),
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
    (103, 0, 31),
]
MISSING = (205, 205, 205)  # cells with no value (not computed, or NaN)


def diverging(t: float) -> tuple[int, int, int]:
    """Colour for ``t`` in [-1, 1] (clipped); 0 is white."""
    t = max(-1.0, min(1.0, t))
    x = (t + 1.0) / 2.0 * (len(_RDBU) - 1)
    i = min(int(x), len(_RDBU) - 2)
    f = x - i
    a, b = _RDBU[i], _RDBU[i + 1]
    return tuple(round(a[k] + (b[k] - a[k]) * f) for k in range(3))  # type: ignore[return-value]


def color_for(value: float | None, vmax: float) -> tuple[int, int, int]:
    """Colour of a cell: symmetric scale [-vmax, vmax] centred at zero."""
    if value is None or value != value:
        return MISSING
    return diverging(value / vmax if vmax > 0 else 0.0)
