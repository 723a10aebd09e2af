"""tlens in-kernel payload: code that runs INSIDE the user's kernel. This part: the call/take protocol.

The payload is sent as source text to the user's Jupyter kernel and executed into ONE
namespaced module object, ``__tlens__``, in the kernel's globals. Its parts (the files of this
folder, joined in the order ``PARTS`` of ``__init__.py`` declares) share that one namespace; the
relative imports at the top of each part are only for reading and testing a part on its own and
are blanked before the text is sent. Every part must stay self-contained: stdlib at import time,
``torch`` and ``transformer_lens`` only inside functions (so that ``probe`` works in a kernel that
has neither). Nothing is imported from ``lsp_server``; the server and the kernel may run
different interpreters (TL 2.x, 3.x or 4.x).

Protocol (driven by ``lsp_server.kernel.sweeps`` and ``lsp_server.live``): the server executes
``__tlens__.call(NAME, ARGS_JSON)`` silently and reads the JSON answer through the user
expression ``__tlens__.take()``. ``call`` turns every ordinary exception into a JSON error;
``KeyboardInterrupt`` (cancel) propagates so the execute reply says so.

Functions behind ``call`` (each part registers its own in ``_API``):
  probe()                -> python / torch / transformer_lens versions, backends, TL models in scope
                            (environment.py)
  prepare(spec)          -> clean + corrupted runs, baselines, labels, the cell queue (sweep.py)
  run(max_seconds)       -> patches queued cells chunk by chunk until the time budget is spent
  collect(resend=False)  -> results finished before an interrupt that were not yet reported
                            (resend: the last hand-over again, its reply may have been lost)
  release()              -> drops every tensor the sweep holds
  planned() / assign(cells) -> the queued cells in plan order / queue exactly these: one sweep
                            shared out among several kernels (lsp_server.sweeps.shards)
  setup_begin / setup_step          -> the file's setup code, one statement at a time (setup_code.py)
  live_state / live_tokenizer / live_reset_hooks -> read-only view of models and caches (live.py)
  live_picture           -> a PNG and a text table of one cached tensor (pictures.py, picture_png.py)
"""

import contextlib
import io
import json
import math
import traceback
import warnings

PAYLOAD_API = 1

_NS = None  # the kernel's user namespace (globals of the notebook), bound at install time
_LAST = None  # JSON answer of the last call(), read once by take()
_API = {}  # name -> function behind call(); filled by the parts that define them


class TlensError(Exception):
    """An error with a message meant for the user (what happened, how to fix it)."""

    def __init__(self, code, message, **details):
        super().__init__(message)
        self.code = code
        self.details = details


def _bind(namespace):
    global _NS
    _NS = namespace


def _user_ns():
    """The kernel's user namespace (an empty dict before ``_bind``).

    A function, not the name ``_NS``: a part tested on its own imports this from ``core``, and an
    imported name would keep the value it had at import time.
    """
    return _NS if _NS is not None else {}


def call(name, args_json="{}"):
    """Run API function ``name`` and keep its JSON answer for ``take()``."""
    global _LAST
    _LAST = None
    out_buf, err_buf = io.StringIO(), io.StringIO()
    caught = []
    try:
        fn = _API.get(name)
        if fn is None:
            raise TlensError("bad-call", f"unknown payload function {name!r}")
        # Keep the user's notebook quiet: TL/transformers may print or warn.
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(
            out_buf
        ), contextlib.redirect_stderr(err_buf):
            warnings.simplefilter("default")
            value = fn(**json.loads(args_json))
        out = {"ok": True, "value": value}
    except TlensError as e:
        out = {"ok": False, "code": e.code, "error": str(e), "details": e.details}
    except Exception as e:  # noqa: BLE001 - every failure must come back as JSON
        out = {
            "ok": False,
            "code": "exception",
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc()[-6000:],
        }
    log = (out_buf.getvalue() + err_buf.getvalue()).strip()
    if log:
        out["log"] = log[-2000:]
    if caught:
        out["warnings"] = sorted({str(w.message)[:300] for w in caught})[:8]
    _LAST = json.dumps(out, default=_json_default)


def take():
    """Return (and forget) the JSON answer of the last ``call``."""
    global _LAST
    out, _LAST = _LAST, None
    return out


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _finite(x):
    """JSON has no NaN/inf: map them to None (the renderer shows 'no value')."""
    x = float(x)
    return x if math.isfinite(x) else None
