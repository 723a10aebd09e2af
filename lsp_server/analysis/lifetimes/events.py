"""What the lifetime steps pass between them: the events of a scope, one table of what each kind does,
the hooks being followed, and what calling a function does.

A model is identified by a key: ``("g", name)`` a global (or unresolved) name, ``("l", scope, name)`` a
local, ``("p", offset, name)`` a parameter, ``("a", "self.model")`` a dotted attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal

from ..syntax import Node

Key = tuple
# A reset whose model we cannot tell (`hp.remove_hooks()` on some HookPoint): it may remove any hook.
ANY_MODEL: Key = ("*",)

EventKind = Literal[
    "add",  # add_hook: the hook stays until something removes it
    "temp",  # run_with_* / `with hooks(...)` given reset_hooks_end=False: its hooks stay after it
    "forward",  # a forward pass on a model
    "reset",  # reset_hooks() / remove_all_hook_fns(), a HookPoint's remove_hooks(), a method that resets
    "barrier",  # the model handed to code we cannot follow: what it does to the hooks is unknown
    "call",  # a function defined in this file that runs, resets or leaves hooks on models we follow
]


@dataclass(eq=False)
class Event:
    kind: EventKind
    node: Node  # the call; for a `with model.hooks(...)` temp: the with statement
    pos: int  # ordering position in the scope
    key: Key | None
    recv: str = ""  # the model expression as written
    what: str = ""  # forward: "model(...)", "run_with_cache", "patching", "helper", "hooks-context"
    model_node: Node | None = None  # the model expression (its backend is looked up only for messages)
    # add: hook point label, name/fn expressions, direction; temp: method and the keyword node
    label: str = ""
    name_text: str | None = None
    fn_node: Node | None = None
    direction: str = "fwd"
    method: str = ""
    kw_node: Node | None = None
    extra: tuple = ()  # add: arguments besides name and function (dir, is_permanent, ...)
    callee: Node | None = None  # call: the def it runs
    effects: Summary | None = None  # call: the callee's summary with keys mapped to this call's arguments


@dataclass(eq=False)
class Pending:
    """A hook that is attached and being followed through the rest of its scope."""

    ev: Event  # the add / temp event (possibly inside a helper)
    key: Key
    anchor: Node  # where it became attached, in the current scope (the add, or the helper call)
    recv: str  # the model expression in the current scope
    use: Node | None = None  # the statement holding the forwards it is meant for
    first: Event | None = None
    leak: Event | None = None
    via: Node | None = None  # helper call that left it attached


@dataclass
class Summary:
    """What calling a function does to the models it can reach (keys of the function's scope)."""

    forwards: set = field(default_factory=set)
    resets: set = field(default_factory=set)
    # Pending hooks still attached on return (non-local models); in a call's effects (Pending, key, recv)
    leaks: list = field(default_factory=list)


def _none(ev: Event) -> Collection[Key]:
    return ()


def _own_model(ev: Event) -> Collection[Key]:
    return (ev.key,)


@dataclass(frozen=True)
class KindRule:
    """What an event of one kind does to the hooks being followed: one row of RULES."""

    rank: int  # order among events at one position: removals, then forwards, then new hooks
    forwards: Callable[[Event], Collection[Key]] = _none  # the models it runs a forward pass on
    removes: Callable[[Event], Collection[Key]] = _none  # the models whose hooks it removes, or may remove
    certain: bool = True  # its removals happen (a barrier only ends what we can follow)
    attaches: bool = False  # it attaches hooks whose lifetime is followed from here


RULES: dict[EventKind, KindRule] = {
    "barrier": KindRule(0, removes=_own_model, certain=False),
    "reset": KindRule(1, removes=_own_model),
    "forward": KindRule(2, forwards=_own_model),
    "call": KindRule(2, forwards=lambda ev: ev.effects.forwards, removes=lambda ev: ev.effects.resets),
    "add": KindRule(3, attaches=True),
    "temp": KindRule(4, attaches=True),
}
