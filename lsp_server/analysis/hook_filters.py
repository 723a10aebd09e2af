"""Which hook points a filter selects (``lambda name: name.endswith("z")``, ``"hook_z" in name``).

Used to check a filter (does it match anything at all?) and to know the hook points a hook function
registered through a filter runs on (``model.add_hook(lambda n: n.endswith("z"), patch)``, so that
``hook.name`` inside ``patch`` is ``blocks.{l}.attn.hook_z``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

MAX_LAYERS = 100  # layers tried for a model whose depth is unknown

TESTS: dict[str, Callable[[str, str], bool]] = {
    "exact": str.__eq__, "suffix": str.endswith, "prefix": str.startswith, "substring": str.__contains__}
SAID = {"exact": "is", "suffix": "ends with", "prefix": "starts with", "substring": "contains"}


@lru_cache(maxsize=65536)  # a file asks the same question for every filter it registers, on every edit
def matching_layers(template: str, needle: str, match: str, n_layers: int | None) -> tuple[int | None, ...]:
    """The layers of ``template`` whose name the filter matches (``(None,)`` for a global hook it matches)."""
    test = TESTS[match]
    if "{l}" not in template:
        return (None,) if test(template, needle) else ()
    return tuple(layer for layer in range(n_layers or MAX_LAYERS) if test(template.replace("{l}", str(layer)), needle))


def selected(needles: list[tuple[str, str]], templates: list[str], n_layers: int | None,
             limit: int = 8) -> list[tuple[str, int | None]] | None:
    """(template, layer) of each hook point any of the ``(needle, match)`` tests selects: layer None for
    every layer (or a global hook). None when the selection is not that simple (some but not all layers
    of a hook point, other than exactly one) or holds more than ``limit`` hook points."""
    chosen = _selected(tuple(needles), tuple(templates), n_layers, limit)
    return list(chosen) if chosen is not None else None


@lru_cache(maxsize=4096)  # the same filters, on the same catalog, on every edit
def _selected(needles: tuple[tuple[str, str], ...], templates: tuple[str, ...], n_layers: int | None,
              limit: int) -> tuple[tuple[str, int | None], ...] | None:
    out: list[tuple[str, int | None]] = []
    for template in templates:
        layers = {layer for needle, match in needles for layer in matching_layers(template, needle, match, n_layers)}
        if not layers:
            continue
        every = "{l}" not in template or len(layers) == (n_layers or MAX_LAYERS)
        if not every and len(layers) != 1:
            return None
        out.append((template, None if every else next(iter(layers))))
    return tuple(out) if out and len(out) <= limit else None
