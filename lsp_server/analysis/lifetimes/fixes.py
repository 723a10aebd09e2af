"""Quick fixes of the lifetime findings: reset the model after the forward a hook is meant for, scope the
hook with ``with model.hooks(...)``, reset at the end of a loop body, drop an argument."""

from __future__ import annotations

from ..findings import Edit, Fix
from ..syntax import Node
from .doc import Doc
from .events import Event, Pending
from .syntax import literal, use_statement


def line_end(src: bytes, offset: int) -> int:
    end = src.find(b"\n", offset)
    return len(src) if end < 0 else end


def indent_of(src: bytes, node: Node) -> bytes | None:
    start = src.rfind(b"\n", 0, node.start_byte) + 1
    indent = src[start:node.start_byte]
    return indent if not indent.strip() else None


def insert_after(src: bytes, stmt: Node, code: str) -> Edit | None:
    indent = indent_of(src, stmt)
    if indent is None:
        return None
    pos = line_end(src, stmt.end_byte)
    return Edit(pos, pos, "\n" + indent.decode() + code)


def insert_before(src: bytes, stmt: Node, code: str) -> Edit | None:
    indent = indent_of(src, stmt)
    if indent is None:
        return None
    start = stmt.start_byte - len(indent)
    return Edit(start, start, indent.decode() + code + "\n")


def insert_at_block_end(src: bytes, block: Node, code: str) -> Edit | None:
    stmts = [c for c in block.named_children if c.type != "comment"]
    if not stmts:
        return None
    last = stmts[-1]
    if last.type in ("continue_statement", "break_statement", "return_statement", "raise_statement"):
        return insert_before(src, last, code)
    return insert_after(src, last, code)


def delete_argument(kw: Node) -> Edit | None:
    """Delete one argument with its separating comma."""
    prev = kw.prev_sibling
    if prev is not None and prev.type == ",":
        before = prev.prev_sibling
        return Edit(before.end_byte if before is not None else prev.start_byte, kw.end_byte, "")
    nxt = kw.next_sibling
    if nxt is not None and nxt.type == ",":
        after = nxt.next_sibling
        return Edit(kw.start_byte, after.start_byte if after is not None else nxt.end_byte, "")
    return Edit(kw.start_byte, kw.end_byte, "")


class Fixes:
    def __init__(self, doc: Doc, backwards: list[int]):
        self.doc = doc
        self.src = doc.a.source
        self.backwards = backwards  # offsets of the `.backward(` calls

    def reset_after_use(self, p: Pending) -> tuple[Fix, ...]:
        """Scope the hook around its forward, or reset the model after it (after the backward pass, for a
        backward hook)."""
        fixes: list[Fix] = []
        if p.use is None:
            return ()
        wrap = self.wrap(p.ev, p.first.node) if p.via is None and p.first is not None else None
        if wrap is not None:
            fixes.append(wrap)
        anchor = p.use
        # Backward hooks need the graph's backward pass: reset after it, not right after the forward.
        nxt = anchor.next_named_sibling
        while p.ev.direction == "bwd" and nxt is not None:
            if any(nxt.start_byte <= b < nxt.end_byte for b in self.backwards):
                anchor = nxt
                break
            nxt = nxt.next_named_sibling
        edit = insert_after(self.src, anchor, f"{p.recv}.reset_hooks()")
        if edit is not None:
            fixes.append(Fix(f"Insert `{p.recv}.reset_hooks()` after {self.doc.where(anchor)}", (edit,),
                             preferred=not fixes))
        return tuple(fixes)

    def reset_before(self, recv: str, stmt: Node) -> Fix | None:
        edit = insert_before(self.src, stmt, f"{recv}.reset_hooks()")
        if edit is None:
            return None
        return Fix(f"Insert `{recv}.reset_hooks()` before {self.doc.where(stmt)}", (edit,), preferred=True)

    def reset_at_loop_end(self, recv: str, loop: Node, preferred: bool) -> Fix | None:
        body = loop.child_by_field_name("body")
        edit = insert_at_block_end(self.src, body, f"{recv}.reset_hooks()") if body is not None else None
        if edit is None:
            return None
        return Fix(f"Insert `{recv}.reset_hooks()` at the end of the loop body", (edit,), preferred=preferred)

    def wrap(self, ev: Event, forward: Node) -> Fix | None:
        """Replace the add_hook statement by ``with model.hooks(...):`` around the statements up to the forward."""
        if ev.name_text is None or ev.fn_node is None or self.doc.notebook:
            return None  # in a notebook the statements may sit in different cells: one edit cannot span them
        if any(literal(n) not in ("fwd", "bwd") for n in ev.extra):
            return None  # is_permanent / level / prepend: not expressible in hooks()
        add_stmt = ev.node.parent
        if add_stmt is None or add_stmt.type != "expression_statement":
            return None
        use = use_statement(add_stmt, forward)
        if use is None or use.parent != add_stmt.parent or use.start_byte < add_stmt.end_byte:
            return None
        src = self.src
        start = src.rfind(b"\n", 0, add_stmt.start_byte) + 1
        indent = src[start:add_stmt.start_byte]
        if indent.strip():
            return None
        end = line_end(src, use.end_byte)
        body_start = line_end(src, add_stmt.end_byte)
        trailing = src[add_stmt.end_byte:body_start].strip()
        region = src[body_start + 1:end] if body_start < end else b""
        if b'"""' in region or b"'''" in region or (trailing and not trailing.startswith(b"#")):
            return None
        unit = "\t" if indent.startswith(b"\t") else "    "
        lines = region.decode("utf-8", "replace").split("\n")
        body = "\n".join(unit + line if line.strip() else line for line in lines)
        kw = "bwd_hooks" if ev.direction == "bwd" else "fwd_hooks"
        fn_text = self.doc.source(ev.fn_node)
        header = f"{indent.decode()}with {ev.recv}.hooks({kw}=[({ev.name_text}, {fn_text})]):"
        if trailing:
            header += "  " + trailing.decode("utf-8", "replace")
        return Fix(f"Scope the hook with `with {ev.recv}.hooks(...)` around the forward at {self.doc.where(forward)}",
                   (Edit(start, end, header + "\n" + body),), preferred=True)
