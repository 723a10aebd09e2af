"""Code that runs inside the user's kernel, and how to install it there.

The payload is shipped as *source text*: the kernel may use another interpreter than the server,
so nothing is imported across. It is written as several stdlib-only files, the ``PARTS``, one job
each (``core.py`` describes the protocol). In the kernel they form ONE module, ``__tlens__``:
``install_code()`` returns one statement that executes every part, in the declared order, into a
fresh module object and binds it to the single global ``__tlens__``; it assigns no other name in
the user's namespace.

A part may import what it uses from earlier parts (``from .core import TlensError``), so that it
reads, imports and tests on its own; those relative imports are blanked in the text sent to the
kernel, where all parts share one namespace, and line numbers stay those of the file. Each part
is compiled under its own file name, ``<tlens-payload/sweep_replay.py>``, so a traceback from the
kernel names the part and the line in this folder. ``payload_source()`` is the parts joined in
order: the hash that tells whether a kernel's payload is current covers all of it.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from importlib import resources

GLOBAL_NAME = "__tlens__"

# Executed in this order; a part imports only from parts before it (tests/kernel/test_payload_parts.py).
PARTS = (
    "core",  # call/take protocol, TlensError, the user's namespace
    "environment",  # probe: versions, backends, the TL models in scope
    "inputs",  # user expressions -> values, tokens, answer ids, labels
    "positions",  # batches of prompt pairs: padding, position labellings
    "metrics",  # logit difference / callable metric
    "metric_reads",  # which logit positions a callable metric reads
    "sweep_grid",  # sweep kinds, cells, grid shapes, hook names
    "sweep_memory",  # free device memory, what forwards and kept activations cost
    "sweep_prefix",  # the compute floor: reuse the corrupted keys/values before a patch
    "sweep_baseline",  # the clean and corrupted runs, split over forwards to fit the memory
    "sweep_plan",  # clean + corrupted runs, the cell queue, chunk sizes
    "sweep_replay",  # patched forwards: batched replay or model(tokens)
    "attribution",  # gradient estimate of every cell
    "sweep",  # the sweep object, run/collect, prepare/run/collect/release
    "setup_code",  # the file's setup code, one statement at a time
    "live",  # read-only view of models, caches and hooks
    "picture_png",  # value grids -> PNG bytes (numpy + zlib)
    "pictures",  # pictures of one live cache tensor, for hovers and the panel
)


def part_filename(part: str) -> str:
    """The file name a part is compiled under in the kernel (what its tracebacks show)."""
    return f"<tlens-payload/{part}.py>"


def kernel_text(source: str) -> str:
    """A part's source as the kernel gets it: its relative imports blanked, line numbers kept.

    Raises:
        ValueError: a relative import that is not at the top level of the part (it would run in
            the kernel, where the parts are no package).
    """
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    lines = source.splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            if id(node) not in top:
                raise ValueError(f"line {node.lineno}: a relative import must be at the top level of a payload part")
            for i in range(node.lineno - 1, node.end_lineno or node.lineno):
                lines[i] = "\n"
    return "".join(lines)


@lru_cache(maxsize=1)
def payload_parts() -> tuple[tuple[str, str], ...]:
    """(part name, kernel text) for every part, in execution order."""
    folder = resources.files(__package__)
    return tuple((part, kernel_text(folder.joinpath(f"{part}.py").read_text(encoding="utf-8"))) for part in PARTS)


@lru_cache(maxsize=1)
def payload_source() -> str:
    """The payload as one module source: the parts' kernel texts joined in order."""
    return "".join(f"# ---- {part_filename(part)}\n{text}" for part, text in payload_parts())


@lru_cache(maxsize=1)
def payload_hash() -> str:
    """Short content hash: the kernel reinstalls the payload when it changes."""
    return hashlib.sha256(payload_source().encode()).hexdigest()[:16]


def install_code() -> str:
    """One silent statement that (re)installs the payload as ``__tlens__``."""
    chunks = tuple((part_filename(part), text) for part, text in payload_parts())
    chunks += (("<tlens-payload>", f"PAYLOAD_HASH = {payload_hash()!r}\n"),)
    # A lambda keeps the module object out of the user's namespace until it is complete; the
    # comprehension's names stay inside it.
    return (
        "(lambda m: ([exec(compile(s, f, 'exec'), m.__dict__) for f, s in {chunks!r}], "
        "m._bind(globals()), globals().__setitem__({g!r}, m)))"
        "(__import__('types').ModuleType({g!r}))"
    ).format(chunks=chunks, g=GLOBAL_NAME)


def installed_hash_expression() -> str:
    """User expression giving the installed payload's hash (or None)."""
    return f"getattr(globals().get({GLOBAL_NAME!r}), 'PAYLOAD_HASH', None)"


def call_code(name: str, args_json: str) -> str:
    """Statement that runs payload function ``name``; read the answer with ``TAKE_EXPRESSION``."""
    return f"{GLOBAL_NAME}.call({name!r}, {args_json!r})"


TAKE_EXPRESSION = f"{GLOBAL_NAME}.take()"
