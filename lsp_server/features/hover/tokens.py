"""Token hover: how the model's tokenizer splits a string given to a tokenization method.

Hovering a string (or a variable holding one, or a list of prompts) passed to ``to_tokens``,
``to_str_tokens``, ``to_single_token`` or ``get_token_position`` shows its tokens for the model the
call is made on, with ids, the count and the BOS token when ``prepend_bos`` applies:

``"The Eiffel Tower is in Paris"`` · **9 tokens** for gpt2 (BOS + 8)

Leading spaces are shown as ``·`` (``·Paris`` is a different token from ``Paris``). No tokenizer
loaded, no hover (the tokenizer loads in the background; the next hover has it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...analysis.document import Analysis
from ...analysis.models import ModelInfo
from ...analysis.syntax import Node, call_args, call_name, text
from ...analysis.tokens import (SINGLE_TOKEN_METHODS, TOKEN_HOVER_METHODS, Candidate, StringResolver, model_for_receiver,
                               model_label, quoted, tokenizer_of)
from .text import HoverText

MAX_STRINGS = 6  # strings shown for a list of prompts or a loop variable
MAX_TOKENS = 64  # tokens shown per string
_VISIBLE = str.maketrans({" ": "·", "\n": "↵", "\t": "→", "\r": "␍"})


@dataclass(frozen=True)
class _Site:
    call: Node
    method: str
    node: Node  # the hovered string or name
    single: bool  # the argument must be one token (no BOS)


def token_hover(analysis: Analysis, offset: int) -> HoverText | None:
    """Token hover for the string or name at ``offset``, if it is a tokenization argument."""
    site = _site_at(analysis, offset)
    if site is None:
        return None
    model = model_for_receiver(analysis, call_name(site.call)[2])
    tok = tokenizer_of(analysis, model)
    if tok is None or model is None:
        return None
    resolver = StringResolver(analysis)
    cands = resolver.strings(site.node) if site.node.type == "string" else resolver.items(site.node)
    if not cands:
        return None
    bos, bos_note = (False, f"No BOS: `{site.method}` never prepends one.") if site.single else _bos_rule(site, model, tok)
    distinct = _distinct(cands)
    sections = [_describe(c, tok, bos, site, model) for c in distinct[:MAX_STRINGS]]
    if len(distinct) > MAX_STRINGS:
        sections.append(f"… and {len(distinct) - MAX_STRINGS} more strings")
    if bos_note:
        sections.append(bos_note)
    return HoverText("\n\n".join(sections), site.node.start_byte, site.node.end_byte)


def _site_at(analysis: Analysis, offset: int) -> _Site | None:
    node = analysis.parsed.root.descendant_for_byte_range(offset, offset)
    while node is not None and node.type not in ("string", "identifier"):
        if node.type not in ("string_start", "string_content", "string_end", "escape_sequence",
                             "escape_interpolation"):
            return None
        node = node.parent
    if node is None:
        return None
    hovered, child, parent = node, node, node.parent
    if parent is not None and parent.type in ("list", "tuple") and hovered.type == "string":
        child, parent = parent, parent.parent  # one prompt of a batch: `to_tokens(["a", "b"])`
    keyword = None
    if parent is not None and parent.type == "keyword_argument":
        if parent.child_by_field_name("value") != child:
            return None
        keyword = text(parent.child_by_field_name("name"))
        child, parent = parent, parent.parent
    if parent is None or parent.type != "argument_list" or parent.parent is None:
        return None
    call = parent.parent
    _, method, _ = call_name(call)
    if method not in TOKEN_HOVER_METHODS:
        return None
    positional, _ = call_args(call)
    index = next((i for i, p in enumerate(positional) if p == child), None)
    if method in SINGLE_TOKEN_METHODS and (index == 0 or keyword == SINGLE_TOKEN_METHODS[method]):
        return _Site(call, method, hovered, True)
    prompt_index = 1 if method == "get_token_position" else 0
    if index == prompt_index or keyword == "input":
        return _Site(call, method, hovered, False)
    return None


def _bos_rule(site: _Site, model: ModelInfo, tok: Any) -> tuple[bool, str]:
    """Whether BOS comes first, and a sentence saying why."""
    bos = f"`{tok.bos_token}`" if tok.bos_token else "BOS"
    _, keywords = call_args(site.call)
    given = keywords.get("prepend_bos")
    if given is not None:
        if text(given) in ("True", "False"):
            on = text(given) == "True"
            return on, (f"{bos} first: `prepend_bos=True`." if on else "No BOS: `prepend_bos=False`.")
        return True, f"{bos} first unless `prepend_bos={text(given)}` is False."
    default = model.effective_spec.default_prepend_bos
    label = model_label(model, tok)
    if default is True:
        return True, f"{bos} first: {label}'s `default_prepend_bos` is True (`prepend_bos=False` drops it)."
    if default is False:
        return False, f"No BOS: {label}'s `default_prepend_bos` is False (`prepend_bos=True` adds it)."
    return True, (f"BOS prepended unless the model's `default_prepend_bos` is False "
                  f"({label}'s default is not known statically" + (f"; BOS is {bos})." if tok.bos_token else ")."))


def _describe(cand: Candidate, tok: Any, bos: bool, site: _Site, model: ModelInfo) -> str:
    pairs = tok.encode_with_ids(cand.value)
    count = len(pairs)
    if bos:
        bos_id = tok.token_id(tok.bos_token) if tok.bos_token else None
        pairs = [(bos_id, tok.bos_token or "<BOS>")] + pairs
    shown = _short(quoted(cand.value))
    total = len(pairs)
    head = f"{_code(shown)} · **{total} token{'s' if total != 1 else ''}** for {model_label(model, tok)}"
    if bos:
        head += f" (BOS + {count})"
    if site.single:
        head += " ✓ a single token" if count == 1 else f" ⚠ not a single token: `{site.method}` raises AssertionError"
    tokens = " ".join(_code(t.translate(_VISIBLE)) for _, t in pairs[:MAX_TOKENS])
    ids = ", ".join("?" if i is None else str(i) for i, _ in pairs[:MAX_TOKENS])
    more = f" … {total - MAX_TOKENS} more" if total > MAX_TOKENS else ""
    return f"{head}\n\n{tokens}{more}\n\nids: {ids}{more}"


def _distinct(cands: list[Candidate]) -> list[Candidate]:
    seen: dict[str, Candidate] = {}
    for c in cands:
        seen.setdefault(c.value, c)
    return list(seen.values())


def _short(s: str, limit: int = 80) -> str:
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _code(s: str) -> str:
    """A Markdown code span holding ``s`` verbatim (backticks inside included)."""
    if "`" not in s:
        return f"`{s}`"
    return f"`` {s} ``"
