"""The values hook-name expressions evaluate to, and the operations on them (pure: no syntax trees).

A string or int is known; a :class:`Hole` is a part of a string that is not; a :class:`Pattern`
mixes both (``blocks.{layer}.hook_z``); a :class:`OneOf` lists every possible value.
"""

from __future__ import annotations

import itertools
import operator
import re
from dataclasses import dataclass
from typing import Callable, Union

from ..knowledge.act_names import get_act_name

MAX_OPTIONS = 16  # more possible values than this: unknown


@dataclass(frozen=True)
class Hole:
    """A part of a string the server cannot compute (``{layer}`` in an f-string)."""

    expr: str


@dataclass(frozen=True)
class Pattern:
    """A string made of literal parts and holes."""

    parts: tuple[Union[str, Hole], ...]

    def literal(self) -> str | None:
        return "".join(self.parts) if all(isinstance(p, str) for p in self.parts) else None  # type: ignore[arg-type]


@dataclass(frozen=True)
class Seq:
    items: tuple["Value", ...]


@dataclass(frozen=True)
class Items:
    """A sequence of unknown length, each item one of ``item``'s options: a comprehension
    (``[f"blocks.{l}.hook_z" for l in layers]``), or sequences joined with one."""

    item: "Value"


@dataclass(frozen=True)
class OneOf:
    """Several possible values, each known: a loop over a literal list, a parameter passed different
    values at its call sites."""

    options: tuple["Value", ...]


Value = Union[str, int, float, bool, None, Pattern, Seq, Items, Hole, OneOf]


def options_of(v: Value) -> tuple[Value, ...]:
    return v.options if isinstance(v, OneOf) else (v,)


def one_of(values) -> Value:
    """The union of ``values``: unknown if any is unknown or there are too many."""
    flat: list[Value] = []
    for v in values:
        if v is None:
            return None
        for option in options_of(v):
            if option not in flat:
                flat.append(option)
    if not flat or len(flat) > MAX_OPTIONS:
        return None
    return flat[0] if len(flat) == 1 else OneOf(tuple(flat))


def item_options(sequence: Seq | Items) -> tuple[Value, ...]:
    """What each item of a sequence may be (an unknown item: None among them)."""
    return sequence.items if isinstance(sequence, Seq) else (sequence.item,)


def lift(fn: Callable[..., Value], *values: Value) -> Value:
    """``fn`` applied to every combination of the values' options (``fn`` itself when none has several)."""
    if not any(isinstance(v, OneOf) for v in values):
        return fn(*values)
    combos = list(itertools.islice(itertools.product(*(options_of(v) for v in values)), MAX_OPTIONS + 1))
    return one_of(fn(*combo) for combo in combos) if len(combos) <= MAX_OPTIONS else None

ACT_NAME_FUNCS = ("get_act_name",)


_INT_OPS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}


def is_int(v: Value) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def concat(a: Value, b: Value) -> Value:
    if isinstance(a, OneOf) or isinstance(b, OneOf):
        return lift(concat, a, b)
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    if isinstance(a, Seq) and isinstance(b, Seq):
        return Seq(a.items + b.items)
    if isinstance(a, (Seq, Items)) and isinstance(b, (Seq, Items)):  # `["hook_embed"] + [... for l in layers]`
        item = one_of(item_options(a) + item_options(b))
        return Items(item) if item is not None else None
    pa, pb = as_pattern(a), as_pattern(b)
    if pa is None or pb is None:
        return None
    return normalise(pa.parts + pb.parts)


def binary_value(op: str, left: Value, right: Value) -> Value:
    if is_int(left) and is_int(right):
        arithmetic = _INT_OPS.get(op)
        if arithmetic is None or (op in ("//", "%") and right == 0):
            return None
        return arithmetic(left, right)  # type: ignore[arg-type]
    if op == "+" and not is_int(left) and not is_int(right):
        return concat(left, right)
    return None


def as_pattern(v: Value) -> Pattern | None:
    if isinstance(v, str):
        return Pattern((v,))
    if isinstance(v, Pattern):
        return v
    if isinstance(v, Hole):
        return Pattern((v,))
    if isinstance(v, int) and not isinstance(v, bool):
        return Pattern((str(v),))
    return None


def normalise(parts: tuple) -> Pattern:
    out: list = []
    for p in parts:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        elif p != "":
            out.append(p)
    return Pattern(tuple(out))


def act_name_value(name: Value, layer: Value, layer_type: Value) -> Value:
    if isinstance(name, Pattern) and (compact := _compact_with_hole(name)) is not None:
        name, layer, layer_type = compact  # `f"normalized{layer}ln2"`: the name's own layer wins, as in TL
    if not isinstance(name, str) or (layer_type is not None and not isinstance(layer_type, str)):
        return None
    if isinstance(layer, Hole):
        marker = "\x00"
        full = get_act_name(name, marker, layer_type)
        before, _, after = full.partition(marker)
        return normalise((before, layer, after))
    if layer is not None and not isinstance(layer, (int, str)):
        return None
    return get_act_name(name, layer, layer_type)  # type: ignore[arg-type]


def _compact_with_hole(name: Pattern) -> tuple[str, Hole, str | None] | None:
    """``get_act_name``'s compact form with the layer interpolated (``f"normalized{layer}ln2"``, ``f"z{l}"``):
    (name, the layer, the layer type). TL matches ``[a-z]+\\d+[a-z]?.*`` and takes all three from the name."""
    parts = name.parts
    if len(parts) not in (2, 3) or not isinstance(parts[0], str) or not isinstance(parts[1], Hole) or \
            not re.fullmatch(r"[a-z]+", parts[0]) or len(parts) == 3 and not (isinstance(parts[2], str) and re.fullmatch(r"[a-z]\w*", parts[2])):
        return None
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def interpolated(v: Value) -> Value:
    return str(v) if isinstance(v, (str, int)) and not isinstance(v, bool) else None
