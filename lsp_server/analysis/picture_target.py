"""Which live tensor a hover could draw: the cache key under the cursor, the literal index written after
it, a ``@ direction`` and the prompt's tokens, as arguments of the payload's ``live_picture``.

Pure syntax and live facts: no kernel, no protocol. ``lsp_server.live_pictures`` asks the kernel.

    cache["pattern", 5]               -> every head of layer 5 (batch element 0)
    cache["pattern", 5][0, 7]         -> head 7, large
    cache["post", 3][..., 42]         -> neuron 42 along the positions
    cache["resid_post", 5] @ logit_dir -> the projection along the positions
    cache.accumulated_resid(apply_ln=True) @ logit_dir -> logit lens: component × position

Only literal indices are passed on (ints, ``:``, ``...``); ``direction`` and the tokens are names the
payload looks up (or a string literal), never code it runs.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field

from .cache_stacks import SIGNATURES, stack_call
from .document import Analysis
from .live_facts import live_tensor_of
from .syntax import Node, call_args, text

# The index item of a `:` (a whole axis) and of `...`, as the payload takes them.
WHOLE_AXIS = None
ELLIPSIS = "..."


@dataclass(frozen=True)
class PictureTarget:
    cache: str  # the kernel variable
    key: str  # the key the kernel's cache holds
    shape: tuple[int, ...]  # the cached tensor's live shape
    start: int  # the expression drawn (the key, or the whole `cache[...][...] @ d`), for the hover range
    end: int
    index: tuple[int | str | None, ...] = ()
    direction: str | None = None
    tokens: dict | None = None  # {"name": var} or {"text": prompt}
    notes: tuple[str, ...] = field(default=())  # what was written but is not drawn
    stack: dict | None = None  # a stacking call instead of a key: {"method", "kwargs"} (literal arguments)

    def args(self) -> dict:
        """The ``live_picture`` arguments (without the size)."""
        return {"cache": self.cache, "key": self.key, "index": list(self.index) or None,
                "direction": self.direction, "tokens": self.tokens, "stack": self.stack}

    @property
    def id(self) -> str:
        """A short stable name for these arguments (the "Open in panel" link carries it)."""
        return hashlib.sha256(json.dumps(self.args(), sort_keys=True).encode()).hexdigest()[:16]

    def expression(self) -> str:
        """What is drawn, as code: ``cache['blocks.5.attn.hook_pattern'][0, 7]``."""
        if self.stack is not None:
            kwargs = ", ".join(f"{k}={v!r}" for k, v in self.stack["kwargs"].items())
            shown = f"{self.cache}.{self.stack['method']}({kwargs})"
        else:
            shown = f"{self.cache}[{self.key!r}]"
        if self.index:
            shown += "[" + ", ".join(":" if i is WHOLE_AXIS else str(i) for i in self.index) + "]"
        return shown + (f" @ {self.direction}" if self.direction else "")


def picture_target(analysis: Analysis, offset: int) -> PictureTarget | None:
    """The live tensor the cache key (or stacking call) at ``offset`` reads, with what the code does to it next."""
    ref = analysis.ref_at(offset)
    if ref is None or ref.context != "cache" or ref.cache is None:
        return stack_target(analysis, offset)
    found = live_tensor_of(analysis, ref)
    if found is None or found[2].shape is None:
        return None
    cache, key, tensor = found
    lookup = _cache_subscript(analysis, ref.start, ref.end, cache.var)
    notes: list[str] = []
    index: tuple = ()
    direction = None
    outer = lookup
    if lookup is not None:
        parent = lookup.parent
        if parent is not None and parent.type == "subscript" and parent.child_by_field_name("value") == lookup:
            items = _literal_index(parent)
            if items is None:
                notes.append(f"`{text(parent)[len(text(lookup)):]}` is not drawn (only literal indices are)")
            else:
                index, outer = items, parent
        above = outer.parent
        if above is not None and above.type == "binary_operator" and above.child_by_field_name("left") == outer:
            right = above.child_by_field_name("right")
            operator = above.child_by_field_name("operator")
            if operator is not None and text(operator) == "@" and right is not None and right.type == "identifier":
                direction, outer = text(right), above
    start, end = (outer.start_byte, outer.end_byte) if outer is not None and outer is not lookup else (ref.start, ref.end)
    return PictureTarget(cache.var, key, tensor.shape, start, end, index, direction, _tokens(ref.cache.call), tuple(notes))


def stack_target(analysis: Analysis, offset: int) -> PictureTarget | None:
    """``cache.accumulated_resid(...)`` (or another stacking method) under the cursor, on a live cache,
    called with literal arguments: the stack, projected on ``@ direction`` when the code does."""
    node = analysis.parsed.root.descendant_for_byte_range(offset, offset)
    attr = node.parent if node is not None and node.type == "identifier" and text(node) in SIGNATURES else None
    call = attr.parent if attr is not None and attr.type == "attribute" else None
    if call is None or call.type != "call" or call.child_by_field_name("function") != attr:
        return None
    found = stack_call(analysis, call)
    live = analysis.context.live
    if found is None or live is None or found.cache.var not in live.caches:
        return None
    if not any(d.offset == found.cache.offset for d in analysis.scopes.definitions(found.cache.var)):
        return None  # a function's own `cache`, not the notebook's
    positional, keywords = call_args(call)
    try:
        kwargs = {name: ast.literal_eval(text(n)) for (name, _), n in zip(SIGNATURES[found.method], positional)}
        kwargs.update({k: ast.literal_eval(text(v)) for k, v in keywords.items()})
    except (ValueError, SyntaxError):
        return None  # computed arguments: the kernel would have to run code
    kwargs.pop("return_labels", None)
    above, direction, outer = call.parent, None, call
    if above is not None and above.type == "binary_operator" and above.child_by_field_name("left") == call:
        right, operator = above.child_by_field_name("right"), above.child_by_field_name("operator")
        if operator is not None and text(operator) == "@" and right is not None and right.type == "identifier":
            direction, outer = text(right), above
    return PictureTarget(found.cache.var, found.method, (), outer.start_byte, outer.end_byte, direction=direction,
                         tokens=_tokens(found.cache.call), stack={"method": found.method, "kwargs": kwargs})


def _cache_subscript(analysis: Analysis, start: int, end: int, var: str) -> Node | None:
    """The ``cache[...]`` subscript node around the key at ``start..end``."""
    node = analysis.parsed.root.descendant_for_byte_range(start, end)
    while node is not None and node.type != "subscript":
        node = node.parent
    if node is None:
        return None
    value = node.child_by_field_name("value")
    return node if value is not None and text(value) == var else None


def _literal_index(subscript: Node) -> tuple | None:
    """The items of ``x[0, :, -1, ...]`` as ints, WHOLE_AXIS and ELLIPSIS; None if any is not literal."""
    items = []
    for child in subscript.children_by_field_name("subscript"):
        if child.type == "integer" or (child.type == "unary_operator" and text(child).replace(" ", "").lstrip("-").isdigit()):
            items.append(int(text(child).replace(" ", ""), 0))
        elif child.type == "slice" and text(child).strip() == ":":
            items.append(WHOLE_AXIS)
        elif child.type == "ellipsis":
            items.append(ELLIPSIS)
        else:
            return None
    return tuple(items)


def _tokens(call: Node | None) -> dict | None:
    """The prompt a ``run_with_cache(...)`` call ran on: a variable's name, or a string literal."""
    args = call.child_by_field_name("arguments") if call is not None else None
    first = next((a for a in args.named_children if a.type not in ("keyword_argument", "comment")), None) if args else None
    if first is None:
        return None
    if first.type == "identifier":
        return {"name": text(first)}
    if first.type == "string":
        try:
            value = ast.literal_eval(text(first))
        except (ValueError, SyntaxError):
            return None
        return {"text": value} if isinstance(value, str) else None
    return None
