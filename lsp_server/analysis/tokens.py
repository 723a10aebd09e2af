"""Tokenization diagnostics: multi-token strings where one token is needed, missing leading spaces.

Two checks, both only with the model's exact tokenizer (``AnalysisContext.tokenizer_for``; no
tokenizer, no finding — never a guess):

* ``multi-token``: ``model.to_single_token(s)`` / ``model.get_token_position(s, ...)`` where ``s``
  resolves statically (a literal, a variable, an element of a literal list iterated by a loop or a
  comprehension, ``" " + name``, f-strings and ``.format`` over those) to a string of more than one
  token. That call raises AssertionError at run time.
* ``leading-space``: ``to_single_token("Paris")`` while a prompt of the same scope (a string given to
  ``to_tokens``/``to_str_tokens``/``run_with_cache``/``generate``/``model(...)``) holds ``" Paris"``
  after a space, tokenizes to the spaced token and never to the bare one. The code runs and scores
  the wrong token.

Strings are resolved by :class:`StringResolver`, which keeps every string a loop may produce
together with the loop iteration it came from, so ``for a, b in answers`` keeps ``a`` and ``b`` of
the same tuple together. Anything it cannot follow makes the whole value unknown.
"""

from __future__ import annotations

import json
import re
import string as string_module
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .findings import Edit, Finding, Fix, Related
from .models import ModelInfo
from .scopes import function_of, mutated_in
from .syntax import Node, call_args, call_name, string_content_range, text

if TYPE_CHECKING:  # pragma: no cover
    from .document import Analysis

# Methods whose first argument must be exactly one token, with that argument's keyword name.
SINGLE_TOKEN_METHODS = {"to_single_token": "string", "get_token_position": "single_token"}
# Methods that tokenize a prompt (BOS rules apply), with the prompt argument's keyword name.
PROMPT_METHODS = {
    "to_tokens": "input", "to_str_tokens": "input", "generate": "input", "forward": "input",
    "run_with_cache": None, "run_with_hooks": None,
}
TOKEN_HOVER_METHODS = frozenset({"to_tokens", "to_str_tokens", "to_single_token", "get_token_position"})

MAX_CANDIDATES = 256  # more strings than this from one expression: treat it as unknown
MAX_DEPTH = 12
_WRAPPERS = frozenset({"list", "tuple", "sorted", "reversed", "set"})
_PRIMARY = frozenset({"identifier", "attribute", "subscript", "call", "string", "concatenated_string",
                      "parenthesized_expression"})

Env = tuple[tuple[int, int], ...]  # (loop key, element index) choices a string depends on


@dataclass(frozen=True)
class Candidate:
    """One string an expression may evaluate to."""

    value: str
    env: Env = ()
    literal: Node | None = None  # the plain literal whose value this is, when it is exactly one
    anchor: Node | None = None  # the literal in an iterated list this string came from
    origin: str | None = None  # the list it came from (``names``), for messages
    caller: Node | None = None  # the call that passed it as an argument (prompts of the caller's scope count too)


@dataclass
class _Elem:
    """One element of an iterable: a node, a virtual tuple (``zip``), or already-resolved strings."""

    node: Node | None = None
    items: tuple[_Elem, ...] | None = None
    cands: list[Candidate] | None = None
    origin: str | None = None

    def part(self, k: int, n: int) -> _Elem | None:
        """Element ``k`` of this element unpacked into ``n`` targets, if statically possible."""
        if self.items is not None:
            return self.items[k] if len(self.items) == n else None
        node = self.node
        while node is not None and node.type == "parenthesized_expression" and node.named_child_count == 1:
            node = node.named_children[0]
        if node is None or node.type not in ("tuple", "list", "parenthesized_expression"):
            return None
        children = [c for c in node.named_children if c.type != "comment"]
        if len(children) != n or any(c.type in ("list_splat", "yield") for c in children):
            return None
        return _Elem(children[k], origin=self.origin)


def _merge(a: Env, b: Env) -> Env | None:
    if not a:
        return b
    if not b:
        return a
    out = dict(a)
    for k, v in b:
        if out.setdefault(k, v) != v:
            return None  # two different iterations of the same loop: not a real combination
    return tuple(sorted(out.items()))


def _unique(nodes: list) -> Any:
    present = {(n.start_byte, n.end_byte): n for n in nodes if n is not None}
    return next(iter(present.values())) if len(present) == 1 else None


def _unescape(raw: str, prefix: str) -> str | None:
    if "\\" not in raw or "r" in prefix:
        return raw
    try:
        return raw.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None


class StringResolver:
    """Resolves expressions to the strings they may hold (``None``: unknown). Memoised per node."""

    def __init__(self, analysis: Analysis):
        self.scopes = analysis.scopes
        self.evaluator = analysis.evaluator
        self.source = analysis.parsed.source
        self._memo: dict[tuple[int, int, str], list[Candidate] | None] = {}
        self._mutated: dict[str, bool] = {}
        self._stmt_names: set[str] | None = None

    # -- public

    def strings(self, node: Node | None, depth: int = 0) -> list[Candidate] | None:
        """The strings ``node`` evaluates to (several when it depends on loop variables)."""
        if node is None or depth > MAX_DEPTH:
            return None
        key = (node.start_byte, node.end_byte, node.type)
        if key not in self._memo:
            self._memo[key] = None  # cycle guard
            result = self._strings(node, depth)
            self._memo[key] = result if result is None or len(result) <= MAX_CANDIDATES else None
        return self._memo[key]

    def items(self, node: Node | None, depth: int = 0) -> list[Candidate] | None:
        """Strings of ``node``, or of each element when it is a list of strings (a batch of prompts)."""
        if node is None or depth > MAX_DEPTH:
            return None
        if node.type in ("list", "tuple"):
            return self._concat([self.strings(c, depth + 1) for c in node.named_children if c.type != "comment"])
        if node.type == "list_comprehension":
            return self._comprehension(node, depth)
        if node.type == "identifier":
            d = self.scopes.lookup(text(node), node.start_byte)
            if d is not None and d.kind == "assign" and d.target.type == "identifier" \
                    and d.node.type in ("list", "tuple", "list_comprehension"):
                return None if self._is_mutated(d.name) else self.items(d.node, depth + 1)
        return self.strings(node, depth)

    # -- expressions

    def _strings(self, node: Node, depth: int) -> list[Candidate] | None:
        kind = node.type
        if kind == "string":
            return self._string(node, depth)
        if kind == "concatenated_string":
            return self._product([self.strings(c, depth + 1) for c in node.named_children], "".join)
        if kind == "parenthesized_expression" and node.named_child_count == 1:
            return self.strings(node.named_children[0], depth + 1)
        if kind == "binary_operator" and text(node.child_by_field_name("operator")) == "+":
            return self._product([self.strings(node.child_by_field_name("left"), depth + 1),
                                  self.strings(node.child_by_field_name("right"), depth + 1)], "".join)
        if kind == "identifier":
            return self._name(node, depth)
        if kind == "call":
            return self._format(node, depth)
        if kind == "subscript":
            return self._subscript(node, depth)
        return None

    def _subscript(self, node: Node, depth: int) -> list[Candidate] | None:
        """``names[0]``, ``templates[-1]``: a constant index into a literal list or tuple."""
        index = node.child_by_field_name("subscript")
        if index is None or index.type not in ("integer", "unary_operator"):
            return None
        try:
            i = int(text(index).replace(" ", ""), 0)
        except ValueError:
            return None
        elems = self._elements(node.child_by_field_name("value"), depth + 1)
        if elems is None or not -len(elems) <= i < len(elems) or elems[i].node is None:
            return None  # resolved-string elements come from comprehensions: no fixed order
        return self.strings(elems[i].node, depth + 1)

    def _string(self, node: Node, depth: int) -> list[Candidate] | None:
        prefix, parts, holes = "", [], False
        for child in node.children:
            if child.type == "string_start":
                prefix = "".join(ch for ch in text(child).lower() if ch.isalpha())
                if "b" in prefix:
                    return None
            elif child.type == "string_content":
                raw = text(child)
                if "f" in prefix:
                    raw = raw.replace("{{", "{").replace("}}", "}")
                value = _unescape(raw, prefix)
                if value is None:
                    return None
                parts.append([Candidate(value)])
            elif child.type == "interpolation":
                holes = True
                if any(c.type in ("type_conversion", "format_specifier", "=") for c in child.children):
                    return None  # `{x!r}`, `{x:>5}`, `{x=}` change the text
                expr = child.child_by_field_name("expression") or next(iter(child.named_children), None)
                parts.append(self.strings(expr, depth + 1))
        if not holes:
            return [Candidate("".join(p[0].value for p in parts), literal=node)]
        return self._product(parts, "".join)

    def _name(self, node: Node, depth: int) -> list[Candidate] | None:
        name = text(node)
        d = self.scopes.lookup(name, node.start_byte)
        if d is None or self._is_mutated(name):
            return None
        if d.kind == "assign" and d.target.type == "identifier":
            return self.strings(d.node, depth + 1)
        if d.kind == "for":
            return self._loop_variable(d, name, node, depth)
        if d.kind == "param":
            return self._parameter(d, depth)
        return None

    def _parameter(self, d, depth: int) -> list[Candidate] | None:
        """A parameter's strings: the arguments the file's calls of its function pass (``token_of("Berlin")``),
        each pointing at its call site. Calls whose argument is unknown add nothing: a finding is about
        one call's string, so what other calls pass does not matter."""
        fn = function_of(d.node)
        passed = self.evaluator.passed(fn, d.name) if fn is not None and fn.type == "function_definition" else None
        out: list[Candidate] = []
        for p in passed or ():
            if p.evaluator is self.evaluator and p.argument is not None:
                for c in self.strings(p.argument, depth + 1) or ():
                    out.append(Candidate(c.value, c.env, c.literal, c.literal or c.anchor, c.origin, p.call))
        return out or None

    def _loop_variable(self, d, name: str, use: Node, depth: int) -> list[Candidate] | None:
        loop = d.target.parent
        if loop is not None and loop.type == "for_statement":
            body = loop.child_by_field_name("body")
            if body is None or not (body.start_byte <= use.start_byte < body.end_byte):
                return None  # after the loop (or in its `else:`), the variable holds the last element only
        elif loop is not None and loop.type == "for_in_clause":
            comprehension = loop.parent
            if comprehension is None or any(c.type == "if_clause" for c in comprehension.named_children):
                return None  # `[f(w) for w in words if ...]`: which elements remain is not known
        target = d.target
        pick: int | None = None
        width = 0
        if target.type != "identifier":
            names = [c for c in target.named_children if c.type != "comment"]
            if any(c.type != "identifier" for c in names):
                return None  # nested or starred unpacking
            width = len(names)
            pick = next((i for i, c in enumerate(names) if text(c) == name), None)
            if pick is None:
                return None
        elems = self._elements(d.node, depth + 1, top=True)
        if elems is None:
            return None
        key = target.start_byte
        out: list[Candidate] = []
        for i, elem in enumerate(elems):
            sub = elem if pick is None else elem.part(pick, width)
            if sub is None:
                return None
            cands = sub.cands if sub.cands is not None else self.strings(sub.node, depth + 1)
            if cands is None:
                return None
            for c in cands:
                env = _merge(c.env, ((key, i),))
                if env is not None:
                    out.append(Candidate(c.value, env, None, c.literal or c.anchor, sub.origin or c.origin, c.caller))
            if len(out) > MAX_CANDIDATES:
                return None
        return out

    def _elements(self, node: Node | None, depth: int, top: bool = False, origin: str | None = None) -> list[_Elem] | None:
        """The elements a ``for`` iterates over, when they are statically known."""
        if node is None or depth > MAX_DEPTH:
            return None
        kind = node.type
        if kind in ("list", "tuple") or (kind == "set" and top):  # a set's order is arbitrary: not in zip
            children = [c for c in node.named_children if c.type != "comment"]
            if any(c.type in ("list_splat", "dictionary_splat") for c in children):
                return None
            return [_Elem(c, origin=origin) for c in children]  # an inline list needs no name
        if kind == "parenthesized_expression" and node.named_child_count == 1:
            return self._elements(node.named_children[0], depth + 1, top, origin)
        if kind == "identifier":
            name = text(node)
            d = self.scopes.lookup(name, node.start_byte)
            if d is None or d.kind != "assign" or d.target.type != "identifier" or self._is_mutated(name):
                return None
            return self._elements(d.node, depth + 1, top, name)
        if kind == "list_comprehension":
            cands = self._comprehension(node, depth)
            return None if cands is None else [_Elem(cands=[c], origin=origin) for c in cands]
        if kind == "call":
            receiver, fname, _ = call_name(node)
            positional, keywords = call_args(node)
            if receiver is not None:
                return None
            if fname == "zip" and positional and set(keywords) <= {"strict"}:
                columns = [self._elements(p, depth + 1) for p in positional]
                if any(c is None or any(e.node is None for e in c) for c in columns):
                    return None  # comprehension results may not line up one-to-one with the other lists
                size = min(len(c) for c in columns)  # type: ignore[arg-type]
                return [_Elem(items=tuple(c[i] for c in columns)) for i in range(size)]  # type: ignore[index]
            if fname == "enumerate" and len(positional) == 1 and set(keywords) <= {"start"}:
                inner = self._elements(positional[0], depth + 1)
                return None if inner is None else [_Elem(items=(_Elem(), e)) for e in inner]
            if top and fname in _WRAPPERS and len(positional) == 1 and set(keywords) <= {"key", "reverse"}:
                # Order does not matter for one loop's own variables; inside zip it would.
                return self._elements(positional[0], depth + 1, top, origin)
        return None

    def _comprehension(self, node: Node, depth: int) -> list[Candidate] | None:
        clauses = [c for c in node.named_children if c.type in ("for_in_clause", "if_clause")]
        if len(clauses) != 1 or clauses[0].type != "for_in_clause":
            return None  # filters or nested loops: the element set is not known statically
        body = node.child_by_field_name("body") or (node.named_children[0] if node.named_children else None)
        return self.strings(body, depth + 1)

    def _format(self, call: Node, depth: int) -> list[Candidate] | None:
        """``template.format(a, b, key=c)`` with plain ``{}``, ``{0}`` and ``{key}`` fields."""
        _, fname, receiver = call_name(call)
        if fname != "format" or receiver is None:
            return None
        templates = self.strings(receiver, depth + 1)
        if templates is None:
            return None
        positional, keywords = call_args(call)
        args = call.child_by_field_name("arguments")
        if args is not None and any(c.type in ("list_splat", "dictionary_splat") for c in args.named_children):
            return None
        out: list[Candidate] = []
        for template in templates:
            try:
                fields = list(string_module.Formatter().parse(template.value))
            except ValueError:
                return None
            pieces: list[list[Candidate] | None] = []
            auto = 0
            for literal, field_name, spec, conversion in fields:
                pieces.append([Candidate(literal)])
                if field_name is None:
                    continue
                if spec or conversion:
                    return None
                if field_name == "":
                    arg = positional[auto] if auto < len(positional) else None
                    auto += 1
                elif field_name.isdigit():
                    arg = positional[int(field_name)] if int(field_name) < len(positional) else None
                else:
                    arg = keywords.get(field_name)
                if arg is None:
                    return None
                pieces.append(self.strings(arg, depth + 1))
            combined = self._product([[template]] + pieces, lambda vs: "".join(vs[1:]))
            if combined is None:
                return None
            out += combined
        return out

    # -- combining

    def _product(self, parts: list[list[Candidate] | None], join) -> list[Candidate] | None:
        if any(p is None for p in parts):
            return None
        combos: list[tuple[list[Candidate], Env]] = [([], ())]
        for options in parts:
            nxt = []
            for chosen, env in combos:
                for c in options:  # type: ignore[union-attr]
                    merged = _merge(env, c.env)
                    if merged is not None:
                        nxt.append((chosen + [c], merged))
            if len(nxt) > MAX_CANDIDATES:
                return None
            combos = nxt
        out = []
        for chosen, env in combos:
            value = join([c.value for c in chosen])
            anchor = _unique([c.anchor for c in chosen])
            origin = next((c.origin for c in chosen if c.anchor is not None and c.anchor is anchor), None)
            out.append(Candidate(value, env, None, anchor, origin, _unique([c.caller for c in chosen])))
        return out

    @staticmethod
    def _concat(lists: list[list[Candidate] | None]) -> list[Candidate] | None:
        if any(x is None for x in lists):
            return None
        return [c for x in lists for c in x]  # type: ignore[union-attr]

    def _is_mutated(self, name: str) -> bool:
        """True when the file changes ``name`` in place (``+=``, ``x[i] =``, ``.pop()``, ``del``)."""
        if name not in self._mutated:
            self._mutated[name] = name in self._statement_names() or mutated_in(self.source, name)
        return self._mutated[name]

    def _statement_names(self) -> set[str]:
        """Names in ``del`` / ``global`` / ``nonlocal`` statements (found once)."""
        if self._stmt_names is None:
            self._stmt_names = set()
            for pattern in _NAME_STATEMENTS:
                for m in pattern.finditer(self.source):
                    line_start = self.source.rfind(b"\n", 0, m.start()) + 1
                    if not self.source[line_start:m.start()].strip():
                        self._stmt_names.update(n.decode() for n in _IDENT.findall(m.group(1)))
        return self._stmt_names


_IDENT = re.compile(rb"[A-Za-z_]\w*")
# Patterns start with a literal so the regex engine scans for it at C speed.
_NAME_STATEMENTS = [re.compile(kw + rb"[ \t]+([^\n#]*)") for kw in (rb"del", rb"global", rb"nonlocal")]
# What may follow a name to change it in place: augmented assignment, item assignment, removal.
def quoted(s: str) -> str:
    """A string as Python-ish source with double quotes, for messages (``" Neel"``)."""
    return json.dumps(s, ensure_ascii=False)


# ------------------------------------------------------------------------------ models + tokenizers


def model_for_receiver(analysis: Analysis, receiver: Node | None) -> ModelInfo | None:
    """The model a method is called on; a bare ``model`` parameter or ``self.model`` means the
    file's only model (the same rule hook-name checks use)."""
    if receiver is None:
        return None
    models = analysis.models
    model = models.model_at(receiver) if receiver.type == "identifier" else None
    if model is not None and not (model.kind == "param" and not model.spec.structure_known):
        return model
    if model is None and not text(receiver).rsplit(".", 1)[-1].endswith("model"):
        return None
    sole = models.sole_model()
    if sole is not None and (model is None or not model.backend_known or model.spec.backend == sole.spec.backend):
        return sole
    return model


def tokenizer_of(analysis: Analysis, model: ModelInfo | None):
    """The exact tokenizer of ``model`` from the analysis context, or None."""
    get = analysis.context.tokenizer_for
    if get is None or model is None or not model.effective_spec.tokenizer:
        return None
    return get(model.effective_spec)


def model_label(model: ModelInfo, tok: Any) -> str:
    return model.effective_spec.name or getattr(tok, "name", "this model")


def argument(call: Node, index: int, keyword: str | None) -> Node | None:
    positional, keywords = call_args(call)
    if index < len(positional):
        return positional[index]
    return keywords.get(keyword) if keyword else None


# ------------------------------------------------------------------------------ the check


@dataclass
class _Prompt:
    value: str
    node: Node  # where it is written (the literal, or the argument)
    ids: list[int]


class _TokenCheck:
    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.resolver = StringResolver(analysis)
        self.findings: list[Finding] = []
        self._seen: set[tuple] = set()
        self._prompts: dict[tuple, list[_Prompt]] = {}
        self._scored: dict[Any, set[str]] = {}
        self._encoded: dict[tuple[int, str], list[tuple[int, str]]] = {}  # research code repeats its strings
        self._toks: dict[str, Any] = {}  # tokenizer family -> Tok (one context lookup per family)
        self._sites: dict[Any, list[tuple[Node, Node, Node | None]]] | None = None
        self._calls: list[Node] = []

    def _tok(self, model: ModelInfo | None):
        family = model.effective_spec.tokenizer if model is not None else None
        if not family:
            return None
        if family not in self._toks:
            self._toks[family] = tokenizer_of(self.analysis, model)
        return self._toks[family]

    def run(self, calls: list[Node]) -> list[Finding]:
        self._calls = calls
        for call in calls:
            _, method, receiver = call_name(call)
            model = model_for_receiver(self.analysis, receiver)
            tok = self._tok(model)
            if tok is None:
                continue
            arg = argument(call, 0, SINGLE_TOKEN_METHODS[method])  # type: ignore[index]
            cands = self.resolver.strings(arg) if arg is not None else None
            for cand in cands or ():
                self._check(call, method, arg, cand, model, tok)  # type: ignore[arg-type]
        return self.findings

    def _encode(self, tok, value: str) -> list[tuple[int, str]]:
        key = (id(tok), value)
        if key not in self._encoded:
            self._encoded[key] = tok.encode_with_ids(value)
        return self._encoded[key]

    def _encode_ids(self, tok, value: str) -> list[int]:
        return [i for i, _ in self._encode(tok, value)]

    def _check(self, call: Node, method: str, arg: Node, cand: Candidate, model: ModelInfo, tok) -> None:
        site = cand.anchor or arg
        key = (site.start_byte, site.end_byte, cand.value)
        if key in self._seen:
            return  # one finding per offending string, even when several calls use it
        tokens = self._encode(tok, cand.value)
        if len(tokens) != 1 and _guarded(call, bool(cand.env)):
            return  # `try: to_single_token(w) except AssertionError:` filters on purpose
        around = [call] if cand.caller is None else [call, cand.caller]  # whose scopes' prompts count
        spaced = self._spaced_in_prompt(around, cand.value, tok)
        from_list = f" (from {cand.origin})" if cand.anchor is not None and cand.origin else ""
        related = ()
        if cand.anchor is not None:
            related = (Related(call.start_byte, call.end_byte, f"passed to {method} here"),)
        if len(tokens) != 1:
            split = "[" + ", ".join(quoted(t) for _, t in tokens) + "]"
            message = (f"{quoted(cand.value)}{from_list} is {len(tokens)} token{'s' if len(tokens) != 1 else ''} "
                       f"for {model_label(model, tok)}: {split}; {method} needs exactly one (AssertionError)")
            fixes: tuple[Fix, ...] = ()
            if spaced is not None:
                prompt, spaced_id = spaced
                message += (f". The prompt has {quoted(' ' + cand.value)} (one token, id {spaced_id}): "
                            f"add the leading space")
                fixes = (self._space_fix(arg, cand),)
                related += (Related(prompt.node.start_byte, prompt.node.end_byte,
                                    f"prompt containing {quoted(' ' + cand.value)}"),)
            self._seen.add(key)
            self.findings.append(Finding(site.start_byte, site.end_byte, "multi-token", "warning", message, fixes, related))
            return
        if spaced is None or self._bare_in_prompt(around, tokens[0][0], tok) or self._also_scored(call, arg, cand):
            return  # the spaced form is scored too: comparing both is deliberate
        prompt, spaced_id = spaced
        effect = "scores a different token from the one in the prompt"
        if method == "get_token_position":
            own = self.resolver.items(argument(call, 1, "input"))
            if own and all(tokens[0][0] not in self._encode_ids(tok, p.value) for p in own):
                effect = "raises AssertionError (\"The token does not occur in the prompt\")"
            else:
                effect = "looks for a different token from the one in the prompt"
        message = (f"{quoted(cand.value)}{from_list} is token {tokens[0][0]}, but the prompt has "
                   f"{quoted(' ' + cand.value)} (token {spaced_id}) after a space: {method} {effect}; "
                   f"add the leading space")
        related += (Related(prompt.node.start_byte, prompt.node.end_byte,
                            f"prompt containing {quoted(' ' + cand.value)}"),)
        self._seen.add(key)
        self.findings.append(Finding(site.start_byte, site.end_byte, "leading-space", "warning", message,
                                     (self._space_fix(arg, cand),), related))

    @staticmethod
    def _space_fix(arg: Node, cand: Candidate) -> Fix:
        title = f"Add the leading space: {quoted(' ' + cand.value)}"
        if cand.literal is not None and (cand.literal == arg or cand.caller is not None):  # the literal passed
            start, _ = string_content_range(cand.literal)
            return Fix(title, (Edit(start, start, " "),), preferred=True)
        if arg.type in _PRIMARY:
            return Fix(title, (Edit(arg.start_byte, arg.start_byte, '" " + '),), preferred=True)
        return Fix(title, (Edit(arg.start_byte, arg.start_byte, '" " + ('), Edit(arg.end_byte, arg.end_byte, ")")),
                   preferred=True)

    # -- prompts of a scope

    def _spaced_in_prompt(self, calls: list[Node], value: str, tok) -> tuple[_Prompt, int] | None:
        """A prompt of the calls' scopes holding ``" " + value`` as one token after a space."""
        if not value or value[0].isspace():
            return None
        spaced = " " + value
        spaced_ids = self._encode_ids(tok, spaced)
        if len(spaced_ids) != 1:
            return None
        for prompt in (p for call in calls for p in self._scope_prompts(call, tok)):
            if spaced in prompt.value and spaced_ids[0] in prompt.ids:
                return prompt, spaced_ids[0]
        return None

    def _also_scored(self, call: Node, arg: Node, cand: Candidate) -> bool:
        """True when the spaced form of ``cand`` is scored too: by a single-token call of the same scope, or,
        for a string passed in by a call, passed in by another call of the caller's scope."""
        value, scopes = " " + cand.value, self.analysis.scopes
        if cand.caller is not None:
            where = scopes.scope_of(cand.caller.start_byte)
            return any(c.value == value and c.caller is not None and scopes.scope_of(c.caller.start_byte) == where
                       for c in self.resolver.strings(arg) or ())
        scope = scopes.scope_of(call.start_byte)
        if scope not in self._scored:
            values: set[str] = set()
            for other in self._calls:
                if self.analysis.scopes.scope_of(other.start_byte) == scope:
                    arg = argument(other, 0, SINGLE_TOKEN_METHODS[call_name(other)[1]])  # type: ignore[index]
                    values.update(c.value for c in (self.resolver.strings(arg) if arg is not None else None) or ())
            self._scored[scope] = values
        return value in self._scored[scope]

    def _bare_in_prompt(self, calls: list[Node], bare_id: int, tok) -> bool:
        return any(bare_id in p.ids for call in calls for p in self._scope_prompts(call, tok))

    def _scope_prompts(self, call: Node, tok) -> list[_Prompt]:
        scope = self.analysis.scopes.scope_of(call.start_byte)
        key = (scope, id(tok))
        if key not in self._prompts:
            self._prompts[key] = self._collect_prompts(scope, tok)
        return self._prompts[key]

    def _prompt_sites(self) -> dict[Any, list[tuple[Node, Node, Node | None]]]:
        """(call, prompt argument, receiver) of every prompt-taking call, by scope (found once)."""
        if self._sites is None:
            a = self.analysis
            self._sites = {}
            found: list[tuple[Node, Node | None, Node | None]] = []
            for call in a.method_calls:
                _, method, receiver = call_name(call)
                if method in PROMPT_METHODS:
                    found.append((call, argument(call, 0, PROMPT_METHODS[method]), receiver))
                elif method == "get_token_position":
                    found.append((call, argument(call, 1, "input"), receiver))
            model_vars = {m.var for m in a.models.all_models}
            for call in a.ident_calls:
                fn = call.child_by_field_name("function")
                if fn is not None and text(fn) in model_vars:
                    found.append((call, argument(call, 0, "input"), fn))
            for call, arg, receiver in found:
                if arg is not None:
                    self._sites.setdefault(a.scopes.scope_of(call.start_byte), []).append((call, arg, receiver))
        return self._sites

    def _collect_prompts(self, scope, tok) -> list[_Prompt]:
        out: list[_Prompt] = []
        ids_memo: dict[str, list[int]] = {}
        for call, arg, receiver in self._prompt_sites().get(scope, ()):
            if self._tok(model_for_receiver(self.analysis, receiver)) is not tok:
                continue
            for cand in self.resolver.items(arg) or ():
                if cand.value not in ids_memo:
                    ids_memo[cand.value] = tok.ids(cand.value)
                out.append(_Prompt(cand.value, cand.literal or cand.anchor or arg, ids_memo[cand.value]))
        return out


_LOOPS = frozenset({"for_statement", "list_comprehension", "set_comprehension", "dictionary_comprehension",
                    "generator_expression"})
_CONDITIONALS = frozenset({"if_statement", "conditional_expression", "boolean_operator", "while_statement"})
_CATCHES_ASSERT = re.compile(r"\b(AssertionError|Exception|BaseException)\b")


def _guarded(call: Node, from_loop: bool) -> bool:
    """True when a failing ``to_single_token`` is caught, or (for loop elements) filtered first."""
    node, child = call.parent, call
    loop_seen = False
    while node is not None and node.type not in ("function_definition", "module"):
        if node.type == "try_statement" and child == node.child_by_field_name("body"):
            for clause in node.named_children:
                if clause.type == "except_clause":
                    caught = [c for c in clause.named_children if c.type != "block"]
                    if not caught or _CATCHES_ASSERT.search(text(caught[0])):
                        return True
        if from_loop and not loop_seen:
            if node.type in _CONDITIONALS:
                return True  # `if len(model.to_str_tokens(w)) == 1: model.to_single_token(w)`
            if node.type == "for_statement":
                body = node.child_by_field_name("body")
                if body is not None and _jumps_before(body, call.start_byte):
                    return True  # `if ...: continue` before the call
            loop_seen = node.type in _LOOPS
        node, child = node.parent, node
    return False


def _jumps_before(body: Node, offset: int) -> bool:
    """A ``continue``/``break`` in ``body`` before ``offset`` (nested loops' own jumps included)."""
    chunk = body.text[: max(offset - body.start_byte, 0)] if body.text else b""
    return re.search(rb"\b(continue|break)\b", chunk) is not None


def check_tokens(analysis: Analysis) -> list[Finding]:
    """``multi-token`` and ``leading-space`` findings (none without a tokenizer)."""
    if analysis.context.tokenizer_for is None:
        return []
    calls = analysis.calls_of(*SINGLE_TOKEN_METHODS)
    if not calls:
        return []
    return _TokenCheck(analysis).run(calls)
