"""Hook functions TransformerLens cannot call: ``hook-signature`` errors.

Every TransformerLens version calls a hook as ``fn(activation, hook=hook_point)`` (``HookPoint.add_hook``'s
``full_hook``), so the function must accept one positional argument plus a keyword ``hook``. This module
resolves the function registered at each hook site (through names, ``functools.partial`` and lambdas),
binds that call the way Python would, and reports the TypeError the first forward pass would raise.

``partial``: bound positionals come first and bound keywords are merged *under* the call's keywords
(``{**partial.keywords, **call_keywords}``), so ``partial(f, hook=x)`` never supplies ``hook`` (the call's
``hook=`` wins) and never makes a function without a ``hook`` parameter callable.
"""

from __future__ import annotations

from dataclasses import dataclass

from .findings import Edit, Finding, Fix, Related
from .objects import self_attribute_value
from .scopes import Scopes
from .syntax import Node, call_args, call_name, text

# Decorators that keep the signature (anything else may change it: no finding).
_TRANSPARENT_DECORATORS = ("torch.no_grad", "t.no_grad", "no_grad", "torch.inference_mode", "inference_mode",
                           "torch.enable_grad", "staticmethod")


@dataclass(frozen=True)
class HookSite:
    """A place that hands a function to TransformerLens as a hook."""

    fn_node: Node  # the expression passed as the hook function
    how: str  # "model.add_hook", "run_with_hooks", ... for messages


@dataclass(frozen=True)
class _Param:
    name: str
    kind: str  # "posonly" | "poskw" | "varpos" | "kwonly" | "varkw"
    has_default: bool
    node: Node  # the identifier


@dataclass(frozen=True)
class HookTarget:
    fn: Node  # function_definition or lambda
    bound_pos: int  # positional arguments partial() binds in front
    bound_kw: frozenset[str]  # keywords partial() binds
    via_partial: bool


def check_hook_signatures(scopes: Scopes, sites: list[HookSite], where) -> list[Finding]:
    """Findings for hook sites whose function would raise TypeError when TransformerLens calls it.

    ``where(node)`` names a place for a message ("line 12", or the statement in a notebook).
    """
    inherent: dict[int, tuple[HookTarget, list[HookSite], str, list[_Param]]] = {}
    findings: list[Finding] = []
    seen_sites: set[int] = set()
    for site in sites:
        target = hook_function(scopes, site.fn_node, 0)
        if target is None:
            continue
        params = parameters_of(target.fn)
        if params is None:
            continue
        problem = _bind(params, target)
        if problem is None:
            continue
        kind, detail = problem
        if kind == "no-hook":
            entry = inherent.setdefault(target.fn.start_byte, (target, [], detail, params))
            entry[1].append(site)
        elif site.fn_node.start_byte not in seen_sites:
            seen_sites.add(site.fn_node.start_byte)
            findings.append(_site_finding(site, target, detail, where))
    for target, hook_sites, detail, params in inherent.values():
        findings.append(_inherent_finding(scopes, target, hook_sites, detail, params, where))
    return findings


# ----------------------------------------------------------------------------- resolution


def hook_function(scopes: Scopes, node: Node | None, depth: int = 0) -> HookTarget | None:
    """The def/lambda a hook expression calls, with what partial() binds in front of it."""
    if node is None or depth > 4:
        return None
    if node.type == "lambda":
        return HookTarget(node, 0, frozenset(), False)
    if node.type == "identifier":
        name = text(node)
        d = scopes.lookup(name, node.start_byte)
        if d is None:
            return None
        # Two bindings of the name in one scope (redefinitions, if/else variants): which one runs is unknown.
        same_scope = [x for x in scopes.definitions(name, scopes.scope_of(d.target.start_byte)) if x.kind in ("def", "assign")]
        if len(same_scope) > 1:
            return None
        if d.kind == "def":
            return HookTarget(d.node, 0, frozenset(), False) if _plain_function(d.node) else None
        if d.kind == "assign" and d.target.type == "identifier":
            return hook_function(scopes, d.node, depth + 1)
        return None
    if node.type == "call":
        _, fname, _ = call_name(node)
        if fname != "partial":
            return None
        args = node.child_by_field_name("arguments")
        if args is None or any(c.type in ("list_splat", "dictionary_splat") for c in args.named_children):
            return None  # *args / **kwargs in partial: what it binds is unknown
        positional, keywords = call_args(node)
        if not positional:
            return None
        inner = hook_function(scopes, positional[0], depth + 1)
        if inner is None:
            return None
        return HookTarget(inner.fn, inner.bound_pos + len(positional) - 1, inner.bound_kw | frozenset(keywords), True)
    if node.type == "attribute":  # `self.hook_fn`, set once in the class (`self.hook_fn = partial(hook_fn_base, ...)`)
        value = self_attribute_value(node, scopes.parsed.source)
        return hook_function(scopes, value, depth + 1) if value is not None else None
    return None


def _plain_function(fn: Node) -> bool:
    """A module- or function-level def whose signature is what TransformerLens will call."""
    parent = fn.parent
    if parent is not None and parent.type == "decorated_definition":
        for dec in parent.children:
            if dec.type == "decorator":
                expr = text(dec).lstrip("@").strip()
                if not expr.startswith(_TRANSPARENT_DECORATORS):
                    return False
        parent = parent.parent
    # A def in a class body is a method: reached as self.fn, which we do not resolve anyway.
    return not (parent is not None and parent.type == "block" and parent.parent is not None
                and parent.parent.type == "class_definition")


def parameters_of(fn: Node) -> list[_Param] | None:
    params = fn.child_by_field_name("parameters")
    if params is None:
        return [] if fn.type == "lambda" else None
    out: list[_Param] = []
    kw_only = False
    for p in params.named_children:
        t = p.type
        if t == "positional_separator":
            out = [_Param(x.name, "posonly", x.has_default, x.node) for x in out]
            continue
        if t == "keyword_separator":
            kw_only = True
            continue
        inner = p.named_children[0].type if t == "typed_parameter" and p.named_children else None
        if t == "list_splat_pattern" or inner == "list_splat_pattern":
            ident = _first_identifier(p)
            out.append(_Param(text(ident) if ident else "*", "varpos", True, ident or p))
            kw_only = True
            continue
        if t == "dictionary_splat_pattern" or inner == "dictionary_splat_pattern":
            ident = _first_identifier(p)
            out.append(_Param(text(ident) if ident else "**", "varkw", True, ident or p))
            continue
        if t == "identifier":
            ident, default = p, False
        elif t in ("default_parameter", "typed_default_parameter"):
            ident, default = p.child_by_field_name("name"), True
        elif t == "typed_parameter":
            ident, default = _first_identifier(p), False
        else:
            return None  # tuple parameters and other forms we do not model
        if ident is None or ident.type != "identifier":
            return None
        out.append(_Param(text(ident), "kwonly" if kw_only else "poskw", default, ident))
    return out


def _first_identifier(node: Node) -> Node | None:
    stack = [node]
    while stack:
        n = stack.pop(0)
        if n.type == "identifier":
            return n
        stack.extend(n.named_children)
    return None


def _bind(params: list[_Param], target: HookTarget) -> tuple[str, str] | None:
    """Bind ``fn(*bound, activation, **{**bound_kw, 'hook': hp})`` like Python; (kind, reason) on TypeError."""
    positional = [p for p in params if p.kind in ("posonly", "poskw")]
    varpos = any(p.kind == "varpos" for p in params)
    varkw = any(p.kind == "varkw" for p in params)
    by_name = {p.name: p for p in params if p.kind in ("poskw", "kwonly")}
    n_pos = target.bound_pos + 1
    if "hook" not in by_name and not varkw:
        return "no-hook", "has no parameter named `hook` and no `**kwargs`"
    if n_pos > len(positional) and not varpos:
        return "positional", (f"takes {len(positional)} positional argument{'s' if len(positional) != 1 else ''} but "
                              f"{n_pos} are given ({target.bound_pos} bound by partial + the activation)")
    bound = {p.name for p in positional[:n_pos]}
    for kw in sorted(target.bound_kw | {"hook"}):
        if kw in by_name:
            if kw in bound:
                filled = ", ".join(f"`{p.name}`" for p in positional[:target.bound_pos])
                receiver = positional[target.bound_pos].name
                how = (f"partial(...) fills {filled} positionally and the activation goes to `{receiver}`"
                       if target.bound_pos else f"the activation fills `{kw}`")
                return "multiple", f"gets two values for `{kw}` ({how}, then `{kw}=` arrives by keyword)"
            bound.add(kw)
        elif not varkw:
            return "unexpected", f"gets an unexpected keyword argument `{kw}`"
    missing = [p.name for p in params if p.kind in ("posonly", "poskw", "kwonly") and not p.has_default and p.name not in bound]
    if missing:
        names = ", ".join(f"`{m}`" for m in missing)
        return "missing", f"is missing required argument{'s' if len(missing) > 1 else ''} {names}"
    return None


# ----------------------------------------------------------------------------- findings


def _fn_label(fn: Node) -> str:
    params = fn.child_by_field_name("parameters")
    if fn.type == "lambda":
        return f"`lambda {text(params)}: ...`" if params is not None else "`lambda: ...`"
    return f"`{text(fn.child_by_field_name('name'))}{text(params)}`"


def _site_finding(site: HookSite, target: HookTarget, detail: str, where) -> Finding:
    call = "fn(*partial_args, activation, hook=hook_point)" if target.via_partial else "fn(activation, hook=hook_point)"
    message = (f"Hook function {_fn_label(target.fn)} ({where(target.fn)}) {detail} when TransformerLens calls it as "
               f"`{call}`: the first forward pass raises TypeError.")
    if "missing" in detail:
        message += " Bind the extra arguments by keyword with `functools.partial(fn, name=value)`."
    elif "two values" in detail:
        message += " Bind extra arguments by keyword in `partial(...)`, not positionally."
    return Finding(site.fn_node.start_byte, site.fn_node.end_byte, "hook-signature", "error", message,
                   related=(Related(target.fn.start_byte, target.fn.start_byte + len(text(target.fn).split("\n", 1)[0]),
                                    "the hook function"),))


def _inherent_finding(scopes: Scopes, target: HookTarget, sites: list[HookSite], detail: str, params: list[_Param],
                      where) -> Finding:
    fn = target.fn
    params_node = fn.child_by_field_name("parameters")
    start, end = (params_node.start_byte, params_node.end_byte) if params_node is not None else (fn.start_byte, fn.start_byte + 6)
    message = (f"Hook function {_fn_label(fn)} {detail}: TransformerLens calls every hook as "
               f"`fn(activation, hook=hook_point)` (the hook point is passed by keyword), so the first forward pass "
               f"raises `TypeError: got an unexpected keyword argument 'hook'`.")
    related = tuple(Related(s.fn_node.start_byte, s.fn_node.end_byte, f"registered here ({s.how}, {where(s.fn_node)})")
                    for s in sites[:5])
    fix = _rename_fix(fn, params, target.bound_pos)
    return Finding(start, end, "hook-signature", "error", message, fixes=(fix,) if fix else (), related=related)


def _rename_fix(fn: Node, params: list[_Param], bound_pos: int) -> Fix | None:
    """Rename the parameter after the activation to ``hook`` (and its uses), or add a ``hook`` parameter."""
    positional = [p for p in params if p.kind in ("posonly", "poskw")]
    body = fn.child_by_field_name("body")
    if body is None:
        return None
    if _uses_name(body, "hook"):
        return None  # the body already reads some other `hook`: renaming would shadow it
    if len(positional) > bound_pos + 1 and positional[bound_pos + 1].kind == "poskw":
        old = positional[bound_pos + 1]
        uses = uses_of(body, old.name)
        if uses is None:
            return None
        edits = [Edit(old.node.start_byte, old.node.end_byte, "hook")]
        edits += [Edit(n.start_byte, n.end_byte, "hook") for n in uses]
        return Fix(f"Rename parameter `{old.name}` to `hook`", tuple(sorted(edits, key=lambda e: e.start)), preferred=True)
    if len(positional) == bound_pos + 1 and not any(p.kind == "varpos" for p in params):
        last = positional[-1]
        anchor = last.node.parent if last.node.parent is not None and last.node.parent.type in (
            "typed_parameter", "default_parameter", "typed_default_parameter") else last.node
        if last.has_default:
            return None  # `hook` without a default cannot follow a defaulted parameter
        return Fix("Add a `hook` parameter", (Edit(anchor.end_byte, anchor.end_byte, ", hook"),), preferred=True)
    return None


def _uses_name(body: Node, name: str) -> bool:
    return name.encode() in (body.text or b"") and bool(uses_of(body, name))


def uses_of(body: Node, name: str) -> list[Node] | None:
    """Identifier nodes in ``body`` that read or write the variable ``name`` (None: a nested scope rebinds it)."""
    out: list[Node] = []
    if name.encode() not in (body.text or b""):
        return out
    stack = [body]
    while stack:
        n = stack.pop()
        if n is not body and n.type in ("function_definition", "lambda"):
            nested = parameters_of(n)
            if nested is None or any(p.name == name for p in nested):
                return None
        if n.type == "identifier" and text(n) == name:
            parent = n.parent
            if parent is not None and parent.type == "attribute" and parent.child_by_field_name("attribute") == n:
                continue
            if parent is not None and parent.type == "keyword_argument" and parent.child_by_field_name("name") == n:
                continue
            out.append(n)
            continue
        stack.extend(n.named_children)
    return out
