"""The ``removed-api`` migration fixes: HookedTransformer code rewritten for TransformerBridge (TL 4).

``HookedTransformer.from_pretrained(name, ...)`` becomes ``TransformerBridge.boot_transformers(name)`` and,
on the next line, ``enable_compatibility_mode(...)`` with the loader's processing: the processing keywords
``from_pretrained`` took (``fold_ln=False``, ...; boot_transformers rejects them) move there, and
``from_pretrained_no_processing`` becomes ``enable_compatibility_mode(no_processing=True)``, so every hook
keeps the numbers it had. ``HookedTransformer(cfg)`` becomes ``boot_native``.
"""

from __future__ import annotations

import functools
import re

from .findings import Edit, Fix, LazyFix
from .syntax import Node, call_args, text

# Literal-first patterns (re scans for a leading literal at C speed; a leading \b makes it ~40x slower),
# whole words checked by `_words`.
_FROM_PRETRAINED = re.compile(rb"HookedTransformer\.from_pretrained(?:_no_processing)?\(")
_CTOR = re.compile(rb"HookedTransformer\(")
_CFG = re.compile(rb"HookedTransformerConfig\(")
# from_pretrained's weight processing, which enable_compatibility_mode takes under the same names.
PROCESSING = ("fold_ln", "center_writing_weights", "center_unembed", "fold_value_biases", "refactor_factored_attn_matrices")
# `model = ...`, also through a module: `model = transformer_lens.HookedTransformer.from_pretrained(...)`.
_TARGET = re.compile(rb"([ \t]*)(\w+)\s*=\s*(?:\w+\.)*$")


def migrate_hooked_transformer(ident: Node, name_node: Node, source: bytes) -> Fix:
    """Rewrite the import and every ``HookedTransformer`` construction in the file (worked out when asked)."""
    return LazyFix("Migrate to TransformerBridge (TransformerLens 4)", lambda: _migrate_hooked_transformer(ident, name_node, source), True)


def _migrate_hooked_transformer(ident: Node, name_node: Node, source: bytes) -> tuple[Edit, ...]:
    edits = [Edit(ident.start_byte, ident.end_byte, "TransformerBridge")]
    imp = name_node.parent
    if imp is not None and imp.type == "import_from_statement":
        # TransformerBridge lives in transformer_lens.model_bridge.
        module = imp.child_by_field_name("module_name")
        if any(n != name_node for n in imp.children_by_field_name("name")):
            edits = _split_import(imp, name_node, source)
        elif module is not None:
            edits.append(Edit(module.start_byte, module.end_byte, "transformer_lens.model_bridge"))
    return tuple(edits) + _bridge_call_edits(source, _root(ident))


def migrate_config(ident: Node, source: bytes) -> Fix:
    return LazyFix("Migrate to TransformerBridgeConfig + TransformerBridge.boot_native", lambda: _migrate_config(ident, source), True)


def _migrate_config(ident: Node, source: bytes) -> tuple[Edit, ...]:
    edits = [Edit(ident.start_byte, ident.end_byte, "TransformerBridgeConfig")]
    edits += [Edit(m.start(), m.end() - 1, "TransformerBridgeConfig") for m in _words(_CFG, source)]
    edits += [e for e in _bridge_call_edits(source, _root(ident)) if e.new_text == "TransformerBridge.boot_native("]
    return tuple(edits)


def _words(pattern: re.Pattern, source: bytes):
    """Matches of ``pattern`` that start a word (``MyHookedTransformer(`` is not ``HookedTransformer(``)."""
    for m in pattern.finditer(source):
        if not (m.start() and (source[m.start() - 1:m.start()].isalnum() or source[m.start() - 1] == 95)):  # 95: "_"
            yield m


def _root(node: Node) -> Node:
    while node.parent is not None:
        node = node.parent
    return node


@functools.lru_cache(maxsize=16)
def _bridge_call_edits(source: bytes, root: Node) -> tuple[Edit, ...]:
    """Every construction's rewrite (``root``: the tree of ``source``). Computed once per text (every
    import of the file offers the same migration)."""
    edits = []
    for m in _words(_FROM_PRETRAINED, source):
        edits.append(Edit(m.start(), m.end(), "TransformerBridge.boot_transformers("))
        call = _call_opening_at(root, m.end() - 1)
        moved, removals = _processing_arguments(call) if call is not None else ([], [])
        edits += removals
        if m.group().endswith(b"_no_processing("):
            moved = ["no_processing=True"]
        line_start = source.rfind(b"\n", 0, m.start()) + 1
        target = _TARGET.match(source[line_start:m.start()])
        if target is not None:
            end = call.end_byte if call is not None else _statement_end(source, m.end() - 1)
            indent, var = target.group(1).decode(), target.group(2).decode()
            edits.append(Edit(end, end, f"\n{indent}{var}.enable_compatibility_mode({', '.join(moved)})"))
    for m in _words(_CTOR, source):
        edits.append(Edit(m.start(), m.end(), "TransformerBridge.boot_native("))
    return tuple(edits)


def _call_opening_at(root: Node, paren: int) -> Node | None:
    """The call whose argument list opens at byte ``paren`` (None inside strings and comments)."""
    node = root.descendant_for_byte_range(paren, paren + 1)
    args = node if node is not None and node.type == "argument_list" else node.parent if node is not None else None
    if args is None or args.type != "argument_list" or args.start_byte != paren:
        return None
    return args.parent if args.parent is not None and args.parent.type == "call" else None


def _processing_arguments(call: Node) -> tuple[list[str], list[Edit]]:
    """(the processing keywords as written, edits that take them out of the call with their commas)."""
    _, keywords = call_args(call)
    moved, removals = [], []
    for name in PROCESSING:
        value = keywords.get(name)
        argument = value.parent if value is not None else None
        before = argument.prev_named_sibling if argument is not None else None
        if argument is None or before is None:
            continue
        moved.append(text(argument))
        removals.append(Edit(before.end_byte, argument.end_byte, ""))
    return moved, removals


def _split_import(imp: Node, name_node: Node, source: bytes) -> list[Edit]:
    """``from transformer_lens import HookedTransformer, utils`` -> drop it and add a bridge import."""
    names = imp.children_by_field_name("name")
    i = names.index(name_node)
    if i + 1 < len(names):
        start, end = name_node.start_byte, names[i + 1].start_byte
    else:
        start, end = names[i - 1].end_byte, name_node.end_byte
    line_start = source.rfind(b"\n", 0, imp.start_byte) + 1
    indent = source[line_start:imp.start_byte].decode()
    return [Edit(start, end, ""),
            Edit(imp.end_byte, imp.end_byte, f"\n{indent}from transformer_lens.model_bridge import TransformerBridge")]


def _statement_end(source: bytes, open_paren: int) -> int:
    """Offset just after the call whose '(' is at ``open_paren`` (string-unaware bracket match)."""
    depth = 0
    for i in range(open_paren, len(source)):
        c = source[i]
        if c in b"([{":
            depth += 1
        elif c in b")]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(source)
