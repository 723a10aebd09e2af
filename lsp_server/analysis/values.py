"""Constant evaluation of the expressions that build hook names.

Covers what research code writes: string and int literals, negative numbers, f-strings with holes
(``f"blocks.{layer}.hook_resid_post"``), ``+`` concatenation, ``get_act_name(...)``, tuples and lists,
and one step of local data flow through names (``name = "blocks.0.hook_z"; cache[name]``).
A hole keeps the expression text so a hover can say "for every ``layer``".
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, Union

from ..knowledge.act_names import get_act_name
from .scopes import Scopes
from .syntax import Node, call_args, call_name, string_value, text

MAX_DEPTH = 4


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


Value = Union[str, int, float, bool, None, Pattern, Seq, Hole]

ACT_NAME_FUNCS = ("get_act_name",)


_INT_OPS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}


def is_int(v: Value) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def concat(a: Value, b: Value) -> Value:
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    pa, pb = as_pattern(a), as_pattern(b)
    if pa is None or pb is None:
        return None
    return _normalise(pa.parts + pb.parts)


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


def _normalise(parts: tuple) -> Pattern:
    out: list = []
    for p in parts:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        elif p != "":
            out.append(p)
    return Pattern(tuple(out))


class Evaluator:
    """Evaluates expression nodes of one document to :data:`Value` s (``None`` = unknown)."""

    def __init__(self, scopes: Scopes):
        self.scopes = scopes
        # Values of attributes such as ``model.cfg.n_layers``, once the models are known (set by
        # the analysis after it has found them; until then attributes are unknown).
        self.attribute: Callable[[Node], Value] | None = None

    def eval(self, node: Node | None, depth: int = 0) -> Value:
        if node is None or depth > MAX_DEPTH:
            return None
        kind = node.type
        if kind == "string":
            value = string_value(node)
            return value if value is not None else self._fstring(node, depth)
        if kind == "concatenated_string":
            result: Value = ""
            for child in node.named_children:
                result = concat(result, self.eval(child, depth + 1))
            return result
        if kind == "integer":
            try:
                return int(text(node), 0)
            except ValueError:
                return None
        if kind == "unary_operator":
            operand = self.eval(node.child_by_field_name("argument"), depth + 1)
            op = text(node.child_by_field_name("operator"))
            if isinstance(operand, int) and op == "-":
                return -operand
            return None
        if kind in ("true", "false"):
            return kind == "true"
        if kind == "none":
            return None
        if kind == "parenthesized_expression" and node.named_child_count == 1:
            return self.eval(node.named_children[0], depth + 1)
        if kind in ("tuple", "list", "expression_list"):
            return Seq(tuple(self.eval(c, depth + 1) for c in node.named_children if c.type != "comment"))
        if kind == "binary_operator":
            return self._binary(node, depth)
        if kind == "identifier":
            return self._name(node, depth)
        if kind == "call":
            return self._call(node, depth)
        if kind == "attribute" and self.attribute is not None:
            return self.attribute(node)
        return None

    def _binary(self, node: Node, depth: int) -> Value:
        """``a + b`` on strings (concatenation) and ``+ - * // %`` on ints (``n_layers - 1``)."""
        op = text(node.child_by_field_name("operator"))
        left = self.eval(node.child_by_field_name("left"), depth + 1)
        right = self.eval(node.child_by_field_name("right"), depth + 1)
        if is_int(left) and is_int(right):
            arithmetic = _INT_OPS.get(op)
            if arithmetic is None or (op in ("//", "%") and right == 0):
                return None
            return arithmetic(left, right)
        if op == "+" and not is_int(left) and not is_int(right):
            return concat(left, right)
        return None

    def eval_or_hole(self, node: Node | None, depth: int = 0) -> Value:
        """Like :meth:`eval`, but an unknown expression becomes a :class:`Hole` with its text."""
        value = self.eval(node, depth)
        if value is None and node is not None and node.type != "none":
            return Hole(text(node))
        return value

    def _name(self, node: Node, depth: int) -> Value:
        d = self.scopes.lookup(text(node), node.start_byte)
        if d is None or d.kind != "assign" or d.target.type != "identifier":
            return None
        return self.eval(d.node, depth + 1)

    def _fstring(self, node: Node, depth: int) -> Value:
        parts: list = []
        for child in node.children:
            if child.type == "string_content":
                parts.append(text(child))
            elif child.type == "interpolation":
                expr = child.child_by_field_name("expression") or (child.named_children[0] if child.named_children else None)
                value = self.eval(expr, depth + 1)
                if isinstance(value, (str, int)) and not isinstance(value, bool):
                    parts.append(str(value))
                else:
                    parts.append(Hole(text(expr)))
            elif child.type == "string_start" and "b" in text(child).lower():
                return None
        pattern = _normalise(tuple(parts))
        return pattern.literal() if pattern.literal() is not None else pattern

    def _call(self, node: Node, depth: int) -> Value:
        receiver, fname, _ = call_name(node)
        if fname in ACT_NAME_FUNCS:
            return self.act_name(node, depth)
        if fname == "str" and receiver is None:
            positional, _ = call_args(node)
            value = self.eval(positional[0], depth + 1) if len(positional) == 1 else None
            return str(value) if isinstance(value, int) and not isinstance(value, bool) else None
        return None

    def act_name_args(self, call: Node) -> tuple[str, object, object, bool] | None:
        """(name, layer, layer_type, layer given) of a ``get_act_name`` call; ``...`` for unknown values."""
        positional, keywords = call_args(call)
        args: dict[str, Node] = dict(zip(["name", "layer", "layer_type"], positional))
        args.update({k: v for k, v in keywords.items() if k in ("name", "layer", "layer_type")})
        name = self.eval(args.get("name"))
        if not isinstance(name, str):
            return None

        def literal(key: str) -> object:
            node = args.get(key)
            if node is None or node.type == "none":
                return None
            value = self.eval(node)
            return value if isinstance(value, (int, str)) else ...

        return name, literal("layer"), literal("layer_type"), "layer" in args

    def act_name(self, call: Node, depth: int = 0) -> Value:
        """The value of ``get_act_name(name, layer, layer_type)`` (a Pattern when the layer is unknown)."""
        positional, keywords = call_args(call)
        names = ["name", "layer", "layer_type"]
        args: dict[str, Node] = dict(zip(names, positional))
        args.update({k: v for k, v in keywords.items() if k in names})
        name = self.eval(args.get("name"), depth + 1)
        if not isinstance(name, str):
            return None
        layer: Value = None
        if "layer" in args:
            layer = self.eval_or_hole(args["layer"], depth + 1)
        layer_type = self.eval(args.get("layer_type"), depth + 1) if "layer_type" in args else None
        if layer_type is None and "layer_type" in args and args["layer_type"].type != "none":
            return None  # an unknown layer type is not "no layer type"
        if layer_type is not None and not isinstance(layer_type, str):
            return None
        if isinstance(layer, Hole):
            marker = "\x00"
            full = get_act_name(name, marker, layer_type)
            before, _, after = full.partition(marker)
            return _normalise((before, layer, after))
        if layer is not None and not isinstance(layer, (int, str)):
            return None
        return get_act_name(name, layer, layer_type)  # type: ignore[arg-type]
