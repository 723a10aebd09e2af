"""tlens in-kernel payload, part: running the file's setup code in a kernel tlens started.

A kernel tlens started has nothing defined: the file's setup code (the top-level code above the
experiment) runs first, one statement per call so the editor can say which line runs and cancel
between statements. Each file (a script, or one notebook cell) is compiled under the name the
user knows it by ("ioi.ipynb, cell 4"), at its own line numbers, so tracebacks point at the
user's lines; its text goes into linecache so they also show the source.
"""

import contextlib
import io
import traceback

from .core import _API, TlensError, _user_ns

_SETUP_FILES = {}  # file label -> [lines, compiler flags of the __future__ imports seen so far]


def setup_begin(files):
    """Register the setup files' texts (label -> text); forget any earlier setup."""
    import linecache

    for name in _SETUP_FILES:
        linecache.cache.pop(name, None)
    _SETUP_FILES.clear()
    for name, text in files.items():
        lines = text.splitlines(True)
        linecache.cache[name] = (len(text), None, lines, name)  # mtime None: checkcache keeps it
        _SETUP_FILES[name] = [lines, 0]
    return True


def setup_step(file, first_line, last_line):
    """Run lines ``first_line..last_line`` (1-based) of a registered file in the user namespace."""
    import __future__

    entry = _SETUP_FILES.get(file)
    if entry is None:
        raise TlensError("bad-call", f"setup file {file!r} was not registered (setup_begin)")
    lines, flags = entry
    source = "\n" * (first_line - 1) + "".join(lines[first_line - 1:last_line])
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = compile(source, file, "exec", flags, True)
            for feature in __future__.all_feature_names:  # `from __future__ import annotations` holds for the file
                flag = getattr(__future__, feature).compiler_flag
                if code.co_flags & flag:
                    entry[1] |= flag
            exec(code, _user_ns())
    except Exception as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt propagate
        where = _setup_location(e)
        raise TlensError("setup-failed", f"{type(e).__name__}: {e}", file=where[0], line=where[1],
                         traceback=_setup_traceback(e), stdout=out.getvalue()[-4000:]) from None
    return {"stdout": out.getvalue()[-4000:]}


def _setup_location(error):
    """(file, line) of the innermost frame in the setup code (a SyntaxError's own position)."""
    if isinstance(error, SyntaxError) and error.filename in _SETUP_FILES:
        return error.filename, error.lineno
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename in _SETUP_FILES]
    return (frames[-1].filename, frames[-1].lineno) if frames else (None, None)


def _setup_traceback(error):
    """The traceback from the first setup frame on (the payload's own frames are noise)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename not in _SETUP_FILES:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))[-6000:]


_API.update({"setup_begin": setup_begin, "setup_step": setup_step})
