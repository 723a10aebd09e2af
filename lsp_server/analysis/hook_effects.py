"""Whether a hook function only records what it sees: it changes no forward pass it runs in.

TransformerLens replaces an activation with what its hook returns (unless None), and a hook may also write
into the activation in place. A function that does neither (it stores, appends or prints the activation)
leaves every forward's result as it was: still attached during a later forward, it records that one too.

Read conservatively: the activation (or a name bound to it) handed to a call that is not a known store,
any write through it, an in-place method anywhere on it, a returned value: not a recorder.
"""

from __future__ import annotations

from .hook_signatures import hook_function, parameters_of, uses_of
from .scopes import Scopes
from .syntax import Node, text

# Methods of containers that store their arguments (and return None), and calls that only show or save them.
_STORES = frozenset({"append", "extend", "add", "update", "insert", "setdefault", "put", "__setitem__"})
_SINKS = frozenset({"print", "torch.save", "t.save", "np.save", "pickle.dump"})
# Expressions that make a new value of their operands: what they compute is not the activation (`act or x` may be).
_NEW_VALUES = frozenset({"binary_operator", "comparison_operator", "unary_operator", "interpolation",
                         "format_expression", "not_operator"})
# Containers an activation may sit in on its way to a store (`cache.update({hook.name: act})`).
_CONTAINERS = frozenset({"list", "tuple", "dictionary", "pair", "set", "parenthesized_expression", "expression_list"})
_MAX_ALIASES = 8


def records_only(scopes: Scopes, fn_node: Node | None) -> bool:
    """Whether the hook function ``fn_node`` (a name, lambda or ``partial``) certainly only records its activation."""
    target = hook_function(scopes, fn_node)
    params = parameters_of(target.fn) if target is not None else None
    if target is None or params is None:
        return False
    positional = [p.name for p in params if p.kind in ("posonly", "poskw")]
    body = target.fn.child_by_field_name("body")
    if len(positional) <= target.bound_pos or body is None:
        return False
    activation = positional[target.bound_pos]
    if target.fn.type == "lambda":
        returns_none = body.type == "call" and _is_store(body)
    else:
        returns_none = all(_value_is_none(r) for r in _returns(body))
    return returns_none and _only_read(body, activation)


def _only_read(body: Node, name: str) -> bool:
    """No write through ``name`` or any local bound to what it holds, and no call that could make one."""
    names, checked = [name], set()
    while names:
        current = names.pop()
        if current in checked:
            continue
        checked.add(current)
        uses = uses_of(body, current)
        if uses is None or len(checked) > _MAX_ALIASES:
            return False  # a nested function rebinds it, or too many aliases to follow
        for use in uses:
            alias = _read_into(use)
            if alias is False:
                return False
            if isinstance(alias, str):
                names.append(alias)
    return True


def _read_into(use: Node) -> bool | str:
    """How a use of the activation's name treats it: True (only read), False (may write into it), or the local
    name it is bound to (whose uses count as the activation's)."""
    node = use
    while True:  # up the chain built on it: `act.detach().cpu()`, `act[:, 0]`
        parent = node.parent
        if parent is None:
            return False
        if parent.type == "attribute" and parent.child_by_field_name("object") == node:
            if _in_place(text(parent.child_by_field_name("attribute"))):
                return False
        elif not (parent.type == "call" and parent.child_by_field_name("function") == node
                  or parent.type == "subscript" and parent.child_by_field_name("value") == node):
            break
        node = parent
    while node.parent is not None and node.parent.type in _CONTAINERS:
        node = node.parent
    parent = node.parent
    if parent is None:
        return False
    if parent.type in _NEW_VALUES or parent.type == "expression_statement":
        return True
    if parent.type in ("assignment", "augmented_assignment"):
        if parent.child_by_field_name("left") == node:
            # `x = ...` rebinds the name (the tensor is untouched); `x[...] = ...` and `x += ...` write into it.
            return parent.type == "assignment" and node.type == "identifier"
        left = parent.child_by_field_name("left")
        if parent.type == "assignment" and left is not None and left.type in ("subscript", "attribute"):
            return True  # stored: `cache[hook.name] = act`
        if parent.type == "assignment" and left is not None and left.type == "identifier":
            return text(left)  # bound to a local: follow it
        return parent.type == "augmented_assignment"  # `total += act`: into another value
    if parent.type == "keyword_argument":
        keyword = parent.child_by_field_name("name")
        if keyword is None or text(keyword) == "inplace":
            return False
        parent = parent.parent
    if parent.type == "argument_list":
        call = parent.parent
        return call is not None and call.type == "call" and _is_store(call)
    return False


def _in_place(method: str) -> bool:
    """``mul_``, ``copy_``, ``index_put_``: torch's in-place methods end with one underscore."""
    return method.endswith("_") and not method.endswith("__")


def _is_store(call: Node) -> bool:
    function = call.child_by_field_name("function")
    if function is None:
        return False
    if function.type == "attribute" and text(function.child_by_field_name("attribute")) in _STORES:
        return True
    return text(function) in _SINKS


def _returns(body: Node) -> list[Node]:
    """The return statements of this function (not of functions nested in it)."""
    out, stack = [], [body]
    while stack:
        node = stack.pop()
        if node.type == "return_statement":
            out.append(node)
        elif node.type not in ("function_definition", "lambda", "class_definition"):
            stack.extend(node.named_children)
    return out


def _value_is_none(ret: Node) -> bool:
    value = ret.named_children[0] if ret.named_children else None
    return value is None or value.type == "none"
