"""Tolerant, incremental parsing with tree-sitter.

tree-sitter keeps a usable tree around syntax errors (a half-typed line breaks one statement, not
the file) and re-parses an edit in a few milliseconds; stdlib ``ast`` fails on the first error and
takes 90–230 ms on 5,000 lines. IPython syntax (``%timeit``, ``!pip``, ``obj?``) is masked
byte-for-byte before parsing, so every offset stays valid in the user's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter
import tree_sitter_python

from .textscan import IncrementalScan, edit_between

LANGUAGE = tree_sitter.Language(tree_sitter_python.language())
TYPED_PARAMETERS = frozenset({"typed_parameter", "typed_default_parameter"})  # `x: T`, `x: T = v`
Node = tree_sitter.Node

# IPython-only lines (group 1: what is blanked): a line magic or shell escape (`%timeit`, `!pip`; up to the
# end of the line), an assignment from one (`x = !ls`), or a help request (`obj?`; up to the end of the line).
_MAGIC = re.compile(rb"^[ \t]*([%!])(?!=)", re.M)
_MAGIC_ASSIGN = re.compile(rb"^[ \t]*[A-Za-z_][\w, ]*=[ \t]*([%!]\S.*)$", re.M)
_HELP = re.compile(rb"^[ \t]*([A-Za-z_][\w.]*\?)\??[ \t]*$", re.M)
# Constructs inside which a line starting with '%' is a continuation (``a\n % b``), not a magic.
_OPEN_CONTEXTS = frozenset({
    "string", "parenthesized_expression", "argument_list", "list", "tuple", "dictionary", "set",
    "subscript", "list_comprehension", "dictionary_comprehension", "set_comprehension",
    "generator_expression", "parameters", "string_content",
})


@dataclass
class Parsed:
    """A parse of one text version; ``source`` is the masked text the tree describes."""

    source: bytes
    tree: tree_sitter.Tree

    @property
    def root(self) -> Node:
        return self.tree.root_node


class SyntaxParser:
    """Parses text versions of one document, re-using the previous trees when it can."""

    def __init__(self) -> None:
        self._parser = tree_sitter.Parser(LANGUAGE)
        self._scans: dict[re.Pattern, IncrementalScan] = {}
        self._raw: Parsed | None = None  # the text as typed
        self._masked: Parsed | None = None  # the text with IPython syntax blanked, if it had any
        # What the analysis of the previous version left for the next one, by stage ("statements": see
        # Scopes; "keys": see reuse.KeyResolutions).
        self.memo: dict = {}

    def parse(self, source: bytes) -> Parsed:
        self._raw = raw = self._reparse(self._raw, source)
        masked_source = _mask_ipython(source, raw.tree, self.scan)
        if masked_source is source:
            return raw
        self._masked = masked = self._reparse(self._masked, masked_source)
        return masked

    def scan(self, pattern: re.Pattern, source: bytes) -> list[tuple[int, int]]:
        """Group-1 spans of ``pattern`` in ``source``, updated incrementally from the last version."""
        scan = self._scans.get(pattern)
        if scan is None:
            scan = self._scans[pattern] = IncrementalScan(pattern)
        return scan.spans(source)

    def _reparse(self, old: Parsed | None, source: bytes) -> Parsed:
        if old is None:
            return Parsed(source, self._parser.parse(source))
        if old.source == source:
            return old
        tree = old.tree.copy()  # snapshots being read elsewhere keep their own tree
        tree.edit(**_single_edit(old.source, source))
        return Parsed(source, self._parser.parse(source, tree))


def parse(source: bytes) -> Parsed:
    """One-off parse (the document cache uses :class:`SyntaxParser` for incremental updates)."""
    return SyntaxParser().parse(source)


def _mask_ipython(source: bytes, tree: tree_sitter.Tree, scan=None) -> bytes:
    """Turn IPython-only syntax into plain Python without moving any byte.

    A magic, shell escape or help line becomes a no-op statement of the same width (``pass``), so
    a block holding only ``%pip install ...`` under ``if IN_COLAB:`` stays a valid block for the
    parser and for the kernel that runs the file's setup code. ``x = !ls`` keeps its assignment.
    ``scan(pattern, source)``: group-1 spans of a pattern (a parser's incremental scan; default: a fresh one).
    """
    if b"%" not in source and b"!" not in source and b"?" not in source:
        return source
    out: bytearray | None = None
    root = tree.root_node

    def statement_start(pos: int) -> bool:
        node = root.descendant_for_byte_range(pos, pos + 1)
        while node is not None:
            if node.type in _OPEN_CONTEXTS:
                return False
            node = node.parent
        return True

    scan = scan or (lambda pattern, text: [m.span(1) for m in pattern.finditer(text)])
    for pattern in (_MAGIC, _MAGIC_ASSIGN, _HELP):
        for start, end in scan(pattern, source):
            # Where the IPython syntax begins: the `%`/`!` (magic, assignment) or the `?` (help).
            if not statement_start(start if pattern is _MAGIC_ASSIGN else end - 1):
                continue
            if out is None:
                out = bytearray(source)
            if pattern is _MAGIC_ASSIGN:
                out[start:end] = b"0".ljust(end - start)  # `x = !ls` -> `x = 0`
                continue
            end = source.find(b"\n", start)
            end = len(source) if end < 0 else end
            if source[end - 1:end] == b"\r":
                end -= 1
            out[start:end] = _no_op(end - start)
    return bytes(out) if out is not None else source


def _no_op(width: int) -> bytes:
    """A statement that does nothing, exactly ``width`` bytes wide (``pass``, ``...``, ``0``)."""
    for statement in (b"pass", b"...", b"0"):
        if len(statement) <= width:
            return statement.ljust(width)
    return b""


def _point(source: bytes, offset: int) -> tuple[int, int]:
    line = source.count(b"\n", 0, offset)
    col = offset - (source.rfind(b"\n", 0, offset) + 1)
    return line, col


def _single_edit(old: bytes, new: bytes) -> dict:
    """The one contiguous edit turning ``old`` into ``new``, in tree-sitter's ``Tree.edit`` terms."""
    start, old_end, new_end = edit_between(old, new)
    return {
        "start_byte": start,
        "old_end_byte": old_end,
        "new_end_byte": new_end,
        "start_point": _point(old, start),
        "old_end_point": _point(old, old_end),
        "new_end_point": _point(new, new_end),
    }


# ----------------------------------------------------------------------------- node helpers


def text(node: Node | None) -> str:
    raw = node.text if node is not None else None
    return raw.decode("utf-8", "replace") if raw is not None else ""


def string_value(node: Node) -> str | None:
    """The value of a plain string literal (no interpolation, no implicit concatenation)."""
    if node.type != "string":
        return None
    parts: list[str] = []
    for child in node.children:
        if child.type == "string_start":
            prefix = text(child).lower()
            if "f" in prefix or "b" in prefix:
                if "f" in prefix and not any(c.type == "interpolation" for c in node.children):
                    continue
                return None
        elif child.type == "string_content":
            parts.append(text(child))
        elif child.type == "interpolation":
            return None
    raw = "".join(parts)
    if "\\" in raw:
        try:
            raw = raw.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError):
            return None
    return raw


def string_content_range(node: Node) -> tuple[int, int]:
    """Byte range of a string literal's content (inside the quotes)."""
    start, end = node.start_byte, node.end_byte
    for child in node.children:
        if child.type == "string_start":
            start = child.end_byte
        elif child.type == "string_end":
            end = child.start_byte
    return start, end


def call_name(call: Node) -> tuple[str | None, str | None, Node | None]:
    """(object text, function or method name, object node) of a call: ``a.b.c(...)`` -> ("a.b", "c", a.b)."""
    fn = call.child_by_field_name("function")
    if fn is None:
        return None, None, None
    if fn.type == "identifier":
        return None, text(fn), None
    if fn.type == "attribute":
        obj = fn.child_by_field_name("object")
        attr = fn.child_by_field_name("attribute")
        return text(obj), text(attr), obj
    return None, None, None


def call_args(call: Node) -> tuple[list[Node], dict[str, Node]]:
    """Positional argument nodes and keyword argument value nodes of a call."""
    args = call.child_by_field_name("arguments")
    positional: list[Node] = []
    keywords: dict[str, Node] = {}
    if args is None or args.type != "argument_list":
        return positional, keywords
    for child in args.named_children:
        if child.type == "keyword_argument":
            name = child.child_by_field_name("name")
            value = child.child_by_field_name("value")
            if name is not None and value is not None:
                keywords[text(name)] = value
        elif child.type in ("comment", "list_splat", "dictionary_splat"):
            continue
        else:
            positional.append(child)
    return positional, keywords


def enclosing(node: Node, *types: str) -> Node | None:
    parent = node.parent
    while parent is not None:
        if parent.type in types:
            return parent
        parent = parent.parent
    return None


def statement_of(node: Node) -> Node:
    """The innermost statement containing ``node`` (for insertion points and ordering)."""
    current = node
    while current.parent is not None and current.parent.type not in ("module", "block"):
        current = current.parent
    return current


TL_SUBMODULES = frozenset({"blocks", "embed", "pos_embed", "unembed", "ln_final", "hook_dict", "mod_dict"})


def dotted(node: Node) -> bool:
    """A name or a dotted name: ``model``, ``self.model``."""
    while node.type == "attribute":
        node = node.child_by_field_name("object")
        if node is None:
            return False
    return node.type == "identifier"


@dataclass(frozen=True)
class HookPointPath:
    """``model.blocks[l].attn.hook_z``: a hook point reached through the model's modules (``HookPoint.add_hook``)."""

    model: Node  # the model expression
    label: str  # the hook point's name, a non-literal index as `{expr}`: `blocks.{l}.attn.hook_z`
    name_text: str  # that name as Python: `f"blocks.{l}.attn.hook_z"`; `hook_dict[key]`: the key expression
    layer: Node | None = None  # `blocks[layer]`: the layer expression, when it is not a literal
    key: Node | None = None  # `hook_dict[key]` / `mod_dict[key]`: the key expression


def hook_point_path(recv: Node) -> HookPointPath | None:
    """``model.blocks[l].attn.hook_z``, ``model.hook_embed``, ``model.hook_dict[name]``: the path to a hook point."""
    chain: list[Node] = []
    n = recv
    while n.type in ("attribute", "subscript"):
        chain.append(n)
        n = n.child_by_field_name("object") if n.type == "attribute" else n.child_by_field_name("value")
        if n is None:
            return None
    chain.reverse()  # innermost (closest to the root) first
    split = None
    for i, node in enumerate(chain):
        if node.type == "attribute":
            attr = text(node.child_by_field_name("attribute"))
            if attr in TL_SUBMODULES or attr.startswith("hook_"):
                split = i
                break
    if split is None:
        return None
    model_node = chain[split].child_by_field_name("object")
    if model_node is None or not (model_node.type == "identifier" or (model_node.type == "attribute" and dotted(model_node))):
        return None
    last = chain[-1]
    parts: list[str] = []
    layer = None
    for node in chain[split:]:
        if node.type == "attribute":
            parts.append(text(node.child_by_field_name("attribute")))
        else:
            sub = node.child_by_field_name("subscript")
            if sub is None:
                return None
            if parts and parts[-1] in ("hook_dict", "mod_dict"):
                if node is not last:
                    return None
                label = sub.text.decode().strip("'\"") if sub.type == "string" else text(sub)
                return HookPointPath(model_node, label, text(sub), key=sub)
            if sub.type == "integer":
                parts.append(text(sub))
            elif layer is None and parts == ["blocks"]:
                parts.append("{" + text(sub) + "}")
                layer = sub
            else:
                return None
    if last.type != "attribute" or not parts[-1].startswith("hook_"):
        return None
    name = ".".join(parts)
    return HookPointPath(model_node, name, f'f"{name}"' if layer is not None else f'"{name}"', layer=layer)


def descendants(node: Node, *types: str) -> list[Node]:
    """Named descendants of ``node`` (itself included) whose type is one of ``types``, in source order."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if n.type in types:
            out.append(n)
        stack.extend(reversed(n.named_children))
    return out
