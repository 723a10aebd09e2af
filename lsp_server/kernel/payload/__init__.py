"""Code that runs inside the user's kernel, and how to install it there.

The payload (``tlens_payload.py``) is shipped as *source text*: the kernel may use another
interpreter than the server, so nothing is imported across. ``install_code()`` returns one
statement that executes the source into a fresh module object and binds it to the single
global ``__tlens__``; it assigns no other name in the user's namespace.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

GLOBAL_NAME = "__tlens__"


@lru_cache(maxsize=1)
def payload_source() -> str:
    """The payload's source text."""
    return resources.files(__package__).joinpath("tlens_payload.py").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def payload_hash() -> str:
    """Short content hash: the kernel reinstalls the payload when it changes."""
    return hashlib.sha256(payload_source().encode()).hexdigest()[:16]


def install_code() -> str:
    """One silent statement that (re)installs the payload as ``__tlens__``."""
    src = payload_source() + f"\nPAYLOAD_HASH = {payload_hash()!r}\n"
    # A lambda keeps the module object out of the user's namespace until it is complete.
    return (
        "(lambda m: (exec(compile({src!r}, '<tlens-payload>', 'exec'), m.__dict__), "
        "m._bind(globals()), globals().__setitem__({g!r}, m)))"
        "(__import__('types').ModuleType({g!r}))"
    ).format(src=src, g=GLOBAL_NAME)


def installed_hash_expression() -> str:
    """User expression giving the installed payload's hash (or None)."""
    return f"getattr(globals().get({GLOBAL_NAME!r}), 'PAYLOAD_HASH', None)"


def call_code(name: str, args_json: str) -> str:
    """Statement that runs payload function ``name``; read the answer with ``TAKE_EXPRESSION``."""
    return f"{GLOBAL_NAME}.call({name!r}, {args_json!r})"


TAKE_EXPRESSION = f"{GLOBAL_NAME}.take()"
