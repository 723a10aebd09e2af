"""One way to register a handler: the LSP method (or tlens command), its options, and the answer
given when it fails.

Every handler runs behind an error boundary: a bug in one feature logs its traceback (at Error level,
which the test suite turns into a failure) and answers the default, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, Callable

from lsprotocol import types

from .protocol import RUNS_CODE
from .trust import unavailable

if TYPE_CHECKING:
    from .server import TlensServer

Handler = Callable[..., Any]


def handles(server: "TlensServer", method: str, options: Any = None, default: Any = None) -> Callable[[Handler], Handler]:
    """Decorator: register ``fn`` for an LSP ``method`` (with its registration ``options``)."""

    def register(fn: Handler) -> Handler:
        guarded = _guarded(method, default, fn)
        server.feature(method, options)(guarded)
        return fn

    return register


def command(server: "TlensServer", name: str, default: Any = None) -> Callable[[Handler], Handler]:
    """Decorator: register ``fn(ls, args: dict)`` for the ``workspace/executeCommand`` ``name``.

    ``args`` is the command's options object (``{}`` when none was sent): every tlens command takes one.
    A command that runs code (``protocol.RUNS_CODE``) is refused in an untrusted workspace.
    """
    runs_code = name in RUNS_CODE

    def register(fn: Handler) -> Handler:
        if asyncio.iscoroutinefunction(fn):
            async def run(ls, *args):
                if runs_code and not ls.trusted:
                    return refuse(ls, name)
                return await fn(ls, command_args(args))
        else:
            def run(ls, *args):
                if runs_code and not ls.trusted:
                    return refuse(ls, name)
                return fn(ls, command_args(args))
        # Not functools.wraps: pygls checks the arguments sent against the signature it sees, and
        # an editor may send none (the wrapper takes any number).
        run.__name__, run.__doc__ = fn.__name__, fn.__doc__
        server.command(name)(_guarded(name, default, run))
        return fn

    return register


def refuse(ls, name: str) -> dict[str, Any]:
    """The answer to a command that would run code in an untrusted workspace, also shown to the user."""
    message = unavailable(name)
    ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))
    return {"error": message, "restricted": True}


def command_args(args: tuple) -> dict[str, Any]:
    """The options object of a ``workspace/executeCommand`` call (``{}`` when none was sent)."""
    return args[0] if args and isinstance(args[0], dict) else {}


def _guarded(what: str, default: Any, fn: Handler) -> Handler:
    # Wrappers' parameters stay unannotated: pygls resolves the first parameter's type hint, and
    # TlensServer is not importable here (it imports this module).
    if asyncio.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(ls, *args):
            try:
                return await fn(ls, *args)
            except Exception:
                ls.report_error(what)
                return default
        return run_async

    @functools.wraps(fn)
    def run(ls, *args):
        try:
            return fn(ls, *args)
        except Exception:
            ls.report_error(what)
            return default
    return run
