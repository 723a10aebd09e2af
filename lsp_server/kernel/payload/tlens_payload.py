"""tlens in-kernel payload: activation-patching sweeps that run INSIDE the user's kernel.

This file is sent as source text to the user's Jupyter kernel and executed into ONE
namespaced module object, ``__tlens__``, in the kernel's globals. It must stay
self-contained: stdlib at import time, ``torch`` and ``transformer_lens`` only inside
functions (so that ``probe`` works in a kernel that has neither). It never imports
anything from ``lsp_server``; the server and the kernel may run different interpreters.

Protocol (driven by ``lsp_server.kernel.sweeps``): the server executes
``__tlens__.call(NAME, ARGS_JSON)`` silently and reads the JSON answer through the
user expression ``__tlens__.take()``. ``call`` turns every ordinary exception into a
JSON error; ``KeyboardInterrupt`` (cancel) propagates so the execute reply says so.

Functions behind ``call``:
  probe()                -> python / torch / transformer_lens versions, backends, TL models in scope
  prepare(spec)          -> clean + corrupted runs, baselines, labels, the cell queue
  run(max_seconds)       -> patches queued cells chunk by chunk until the time budget is spent
  collect(resend=False)  -> results finished before an interrupt that were not yet reported
                            (resend: the last hand-over again, its reply may have been lost)
  release()              -> drops every tensor the sweep holds

Works on HookedTransformer (TL 2.x/3.x) and TransformerBridge (TL 3.x/4.x), GQA included.
Speed: cells are batched (one forward patches many cells), rows enter the forward at the
layer they are patched at (layers below equal the corrupted run, whose residual is cached),
cells whose clean and corrupted activations are bit-identical are not run at all (the
patched run IS the corrupted run), and only the positions the metric reads are unembedded.
The fast path is checked against the model's own forward before it is trusted; if it
disagrees, every chunk runs through ``model.hooks(...)`` + ``model(tokens)`` instead.
Hooks are added with ``model.hooks(...)`` (removed on exit, also on KeyboardInterrupt) and
torch pre-hooks are removed in ``finally`` blocks, so nothing stays attached.
"""

import ast
import builtins
import contextlib
import io
import json
import math
import sys
import time
import traceback
import warnings

PAYLOAD_API = 1

# Kinds of exact sweeps: name -> (grid axes, activation patched).
_LAYER_POS_KINDS = {
    "resid_pre": "hook_resid_pre",
    "resid_mid": "hook_resid_mid",
    "resid_post": "hook_resid_post",
    "attn_out": "hook_attn_out",
    "mlp_out": "hook_mlp_out",
}
KINDS = tuple(_LAYER_POS_KINDS) + ("heads", "heads_by_pos", "block", "attribution")
_BLOCK_PANELS = ("resid_pre", "attn_out", "mlp_out")

# Per model object: (id, class, n_layers, batch, pos) -> None (batched replay ok) or why not;
# ("tail", id, class, n_layers) -> whether ln_final + unembed reproduce the logits.
_VALIDATED = {}
_NS = None  # the kernel's user namespace (globals of the notebook), bound at install time
_LAST = None  # JSON answer of the last call(), read once by take()
_SWEEP = None  # state of the prepared sweep


class TlensError(Exception):
    """An error with a message meant for the user (what happened, how to fix it)."""

    def __init__(self, code, message, **details):
        super().__init__(message)
        self.code = code
        self.details = details


# ----------------------------------------------------------------------------- protocol


def _bind(namespace):
    global _NS
    _NS = namespace


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


# ----------------------------------------------------------------------------- probe


def probe():
    """Describe the kernel's environment without failing when torch/TL are missing."""
    info = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "torch": None,
        "cuda": False,
        "mps": False,
        "transformer_lens": None,
        "backends": [],
        "models": [],
        "errors": [],
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = bool(torch.cuda.is_available())
        mps = getattr(torch.backends, "mps", None)
        info["mps"] = bool(mps is not None and mps.is_available())
    except Exception as e:  # noqa: BLE001
        info["errors"].append(f"import torch: {type(e).__name__}: {e}")
        return info
    try:
        import transformer_lens  # noqa: F401
    except Exception as e:  # noqa: BLE001
        info["errors"].append(f"import transformer_lens: {type(e).__name__}: {e}")
        return info
    info["transformer_lens"] = _tl_version()
    try:
        from transformer_lens import HookedTransformer  # noqa: F401  (removed in 4.0)

        info["backends"].append("HookedTransformer")
    except Exception:  # noqa: BLE001
        pass
    try:
        from transformer_lens.model_bridge import TransformerBridge  # noqa: F401

        info["backends"].append("TransformerBridge")
    except Exception:  # noqa: BLE001
        pass
    for name, value in list((_NS or {}).items()):
        if name.startswith("_") or not _is_tl_model(value):
            continue
        cfg = value.cfg
        info["models"].append(
            {
                "name": name,
                "class": type(value).__name__,
                "n_layers": int(cfg.n_layers),
                "d_model": int(cfg.d_model),
                "n_heads": int(cfg.n_heads),
                "device": str(_model_device(value)),
            }
        )
    return info


def _tl_version():
    try:
        from importlib.metadata import version

        return version("transformer-lens")
    except Exception:  # noqa: BLE001
        import transformer_lens

        return getattr(transformer_lens, "__version__", "unknown")


def _is_tl_model(obj):
    names = {c.__name__ for c in type(obj).__mro__}
    return bool(names & {"HookedTransformer", "TransformerBridge", "HookedRootModule"}) and hasattr(
        obj, "cfg"
    )


def _model_device(model):
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        import torch

        return torch.device("cpu")


# ----------------------------------------------------------------------------- user input


def _missing_names(expressions):
    """Free names in the spec's expressions that the kernel does not define."""
    ns = _NS or {}
    missing = []
    for expr in expressions:
        if not expr:
            continue
        try:
            tree = ast.parse(expr, mode="eval")
        except SyntaxError as e:
            raise TlensError("bad-expression", f"cannot parse {expr!r}: {e.msg}") from None
        bound = {
            n.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        for a in ast.walk(tree):  # lambda / comprehension parameters are bound too
            if isinstance(a, ast.arguments):
                bound |= {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
                bound |= {p.arg for p in (a.vararg, a.kwarg) if p is not None}
        for n in ast.walk(tree):
            if (
                isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load)
                and n.id not in bound
                and n.id not in ns
                and not hasattr(builtins, n.id)
                and n.id not in missing
            ):
                missing.append(n.id)
    return missing


def _eval(expr, what):
    try:
        return eval(expr, _NS if _NS is not None else {})  # noqa: S307 - the user's own code
    except Exception as e:  # noqa: BLE001
        raise TlensError(
            "eval-failed", f"evaluating {what} `{expr}` in the kernel failed: {type(e).__name__}: {e}"
        ) from None


def _as_tokens(model, value, what):
    import torch

    device = _model_device(model)
    if isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point or value.dtype == torch.bool:
            raise TlensError(
                "bad-tokens",
                f"{what} is a {value.dtype} tensor; expected integer token ids "
                "(e.g. model.to_tokens(prompt)).",
            )
        tokens = value
    elif isinstance(value, str):
        tokens = _to_tokens(model, value, what)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        lengths = [int(_to_tokens(model, v, what).shape[-1]) for v in value]
        if len(set(lengths)) > 1:
            raise TlensError(
                "ragged-prompts",
                f"the {what} prompts tokenize to different lengths {lengths}; activation "
                "patching needs positions that line up. Use prompts with the same number of "
                "tokens, or pass a token tensor.",
            )
        tokens = _to_tokens(model, list(value), what)
    elif isinstance(value, (list, tuple)) and value:
        try:
            tokens = torch.tensor(value, dtype=torch.long)
        except Exception:  # noqa: BLE001
            raise TlensError(
                "bad-tokens",
                f"{what} must be a token tensor, a prompt string or a list of prompts; "
                f"got a {type(value).__name__} that is none of these.",
            ) from None
    else:
        raise TlensError(
            "bad-tokens",
            f"{what} must be a token tensor, a prompt string or a list of prompts; got "
            f"{type(value).__name__}.",
        )
    if tokens.ndim == 1:
        tokens = tokens.unsqueeze(0)
    if tokens.ndim != 2 or tokens.shape[-1] == 0:
        raise TlensError(
            "bad-tokens", f"{what} tokens must have shape [batch, pos]; got {list(tokens.shape)}."
        )
    return tokens.to(device)


def _to_tokens(model, text, what):
    try:
        return model.to_tokens(text)
    except Exception as e:  # noqa: BLE001
        raise TlensError(
            "tokenize-failed", f"model.to_tokens({what}) failed: {type(e).__name__}: {e}"
        ) from None


def _token_ids(model, value, nb, what):
    """answer / wrong -> LongTensor [nb]."""
    import torch

    if isinstance(value, torch.Tensor):
        ids = value.flatten().tolist()
    elif isinstance(value, (list, tuple)):
        ids = list(value)
    else:
        ids = [value]
    out = []
    for v in ids:
        if isinstance(v, str):
            try:
                out.append(int(model.to_single_token(v)))
            except Exception:  # noqa: BLE001
                n = int(_to_tokens_nobos(model, v))
                raise TlensError(
                    "multi-token",
                    f"{what} {v!r} is {n} tokens, not one; the logit difference needs single "
                    "tokens (mind the leading space: ' Mary' vs 'Mary').",
                ) from None
        elif isinstance(v, (int,)) or (hasattr(v, "__index__") and not isinstance(v, float)):
            out.append(int(v))
        else:
            raise TlensError(
                "bad-answer", f"{what} must be token ids or strings; got {type(v).__name__}."
            )
    if len(out) == 1:
        out = out * nb
    if len(out) != nb:
        raise TlensError(
            "bad-answer",
            f"{what} gives {len(out)} tokens but there are {nb} prompts; give one per prompt "
            "or a single one for all.",
        )
    return torch.tensor(out, dtype=torch.long)


def _to_tokens_nobos(model, text):
    try:
        return model.to_tokens(text, prepend_bos=False).shape[-1]
    except Exception:  # noqa: BLE001
        return 0


def _str_tokens(model, tokens_row):
    """Token strings of one prompt (a 1-D tensor); '#id' when there is no tokenizer."""
    try:
        toks = model.to_str_tokens(tokens_row)
        if len(toks) == len(tokens_row):
            return [str(t) for t in toks]
    except Exception:  # noqa: BLE001
        pass
    return [f"#{int(t)}" for t in tokens_row.tolist()]


# ----------------------------------------------------------------------------- metrics


class _LogitDiff:
    """Mean over prompts of logits[b, -1, answer_b] - logits[b, -1, wrong_b]."""

    def __init__(self, answer, wrong, description):
        self.answer = answer
        self.wrong = wrong
        self.description = description
        self.reads = None  # set by _Sweep: [P - 1]
        self.differentiable = True

    def scalar(self, logits):
        """logits [nb, P, V] -> scalar tensor (differentiable)."""
        last = logits[:, -1, :]
        a = self.answer.to(last.device)
        w = self.wrong.to(last.device)
        return (last.gather(1, a[:, None]) - last.gather(1, w[:, None])).mean()

    def scalar_at(self, logits_sel):
        """Differentiable metric from logits at ``self.reads`` only ([nb, 1, V])."""
        last = logits_sel[:, -1, :]
        a, w = self.answer.to(last.device), self.wrong.to(last.device)
        return (last.gather(1, a[:, None]) - last.gather(1, w[:, None])).mean()

    def values(self, logits_sel, n_cells, nb):
        """logits_sel [n_cells*nb, k, V] at self.reads (last entry = position P-1)."""
        last = logits_sel[:, -1, :]
        a = self.answer.to(last.device).repeat(n_cells)
        w = self.wrong.to(last.device).repeat(n_cells)
        diff = last.gather(1, a[:, None]) - last.gather(1, w[:, None])
        return diff.view(n_cells, nb).mean(1).tolist()


class _CallableMetric:
    """A user callable f(logits[nb, P, V]) -> scalar, called once per cell."""

    def __init__(self, fn, description, n_pos):
        self.fn = fn
        self.description = description
        self.n_pos = n_pos
        self.reads = None  # None = all positions; else sorted list
        self.differentiable = True

    def scalar(self, logits):
        out = self.fn(logits)
        return out

    def value(self, logits):
        return _to_float(self.fn(logits), self.description)

    def values(self, logits_sel, n_cells, nb):
        import torch

        out = []
        if self.reads is None:
            for c in range(n_cells):
                out.append(_to_float(self.fn(logits_sel[c * nb : (c + 1) * nb]), self.description))
            return out
        # Positions the metric never reads are NaN: if that ever mattered, the result is NaN.
        buf = torch.full(
            (nb, self.n_pos, logits_sel.shape[-1]),
            float("nan"),
            dtype=logits_sel.dtype,
            device=logits_sel.device,
        )
        for c in range(n_cells):
            buf[:, self.reads] = logits_sel[c * nb : (c + 1) * nb]
            out.append(_to_float(self.fn(buf), self.description))
        return out


def _to_float(v, description):
    import torch

    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise TlensError(
                "metric-not-scalar",
                f"the metric {description} returned a tensor of shape {list(v.shape)}; it must "
                "return a scalar (e.g. take .mean() over the batch).",
            )
        return float(v.detach().float().item())
    if isinstance(v, (int, float)):
        return float(v)
    raise TlensError(
        "metric-not-scalar",
        f"the metric {description} returned {type(v).__name__}; expected a scalar tensor or float.",
    )


def _metric_reads(fn, logits):
    """Which positions of ``logits`` [nb, P, V] does ``fn`` read? None if unknown.

    Runs ``fn`` once on a tracing tensor subclass: indexing records the positions it
    selects, a few position-wise ops (softmax over vocab, dtype casts, arithmetic with
    Python scalars) keep tracking, anything else marks the read set unknown. The answer
    is then double-checked by re-running ``fn`` with every other position set to NaN.
    """
    import torch

    P = logits.shape[1]
    state = {"positions": set(), "unknown": False}

    def unwrap(o):
        if isinstance(o, _Tracer):
            return o.as_subclass(torch.Tensor)
        if isinstance(o, (list, tuple)):
            return type(o)(unwrap(x) for x in o)
        if isinstance(o, dict):
            return {k: unwrap(v) for k, v in o.items()}
        return o

    def wrap(t, pos_dim):
        if not isinstance(t, torch.Tensor):
            state["unknown"] = True
            return t
        w = t.as_subclass(_Tracer)
        w._tl_pos_dim = pos_dim
        return w

    meta_funcs = {"size", "dim", "__len__", "numel", "ndimension", "nelement", "get_device",
                  "is_floating_point", "element_size", "__format__", "__repr__"}
    meta_props = {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "layout", "is_leaf"}
    keep_funcs = {"float", "double", "half", "bfloat16", "to", "clone", "detach", "contiguous",
                  "cpu", "cuda"}
    elementwise = {"__mul__", "__rmul__", "__truediv__", "__add__", "__radd__", "__sub__",
                   "__rsub__", "__neg__", "mul", "div", "add", "sub", "neg", "exp", "log", "abs",
                   "sigmoid", "tanh", "relu"}
    along_dim = {"log_softmax", "softmax"}

    class _Tracer(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            with torch._C.DisableTorchFunctionSubclass():
                plain_args, plain_kwargs = unwrap(args), unwrap(kwargs)
                result = func(*plain_args, **plain_kwargs)
            name = getattr(func, "__name__", "")
            if name == "__get__":
                prop = getattr(getattr(func, "__self__", None), "__name__", "")
                if prop not in meta_props:
                    state["unknown"] = True
                return result
            if name in meta_funcs:
                return result
            src = args[0] if args and isinstance(args[0], _Tracer) else None
            others = list(args[1:]) + list(kwargs.values())
            if src is None or any(isinstance(o, _Tracer) for o in others):
                state["unknown"] = True
                return result
            d = src._tl_pos_dim
            if name == "__getitem__":
                return _trace_getitem(src, args[1], d, result)
            if name in keep_funcs:
                return wrap(result, d)
            if name in elementwise and all(isinstance(o, (int, float)) for o in args[1:]):
                return wrap(result, d)
            if name in along_dim:
                dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
                if isinstance(dim, int) and dim % src.ndim != d:
                    return wrap(result, d)
            state["unknown"] = True
            return result

    def _trace_getitem(src, index, d, result):
        nd = src.ndim
        idx = index if isinstance(index, tuple) else (index,)
        if any(i is None or isinstance(i, bool) or isinstance(i, _Tracer) for i in idx):
            state["unknown"] = True
            return result
        if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in idx):
            state["unknown"] = True
            return result
        if sum(1 for i in idx if i is Ellipsis) > 1:
            state["unknown"] = True
            return result
        if Ellipsis in idx:
            k = idx.index(Ellipsis)
            idx = idx[:k] + (slice(None),) * (nd - len(idx) + 1) + idx[k + 1 :]
        if d >= len(idx):  # position axis untouched: the result still holds every position
            if any(not isinstance(i, (int, slice)) for i in idx):
                state["unknown"] = True
                return result
            return wrap(result, d - sum(1 for i in idx if isinstance(i, int)))
        item = idx[d]
        n = src.shape[d]
        if isinstance(item, int):
            state["positions"].add(item % n)
        elif isinstance(item, slice):
            state["positions"].update(range(n)[item])
        else:
            try:
                vals = torch.as_tensor(item).flatten().tolist()
                state["positions"].update(int(v) % n for v in vals)
            except Exception:  # noqa: BLE001
                state["unknown"] = True
        return result

    try:
        traced = wrap(logits.detach(), 1)
        fn(traced)
    except Exception:  # noqa: BLE001 - an unusual metric: just unembed everything
        return None
    if state["unknown"] or not state["positions"] or len(state["positions"]) >= P:
        return None
    return sorted(state["positions"])


# ----------------------------------------------------------------------------- the sweep


class _Cell:
    """One patched run: where to patch and which flat grid index receives the value."""

    __slots__ = ("flat", "layer", "site", "pos", "head", "entry", "work")

    def __init__(self, flat, layer, site, pos, head, n_layers):
        self.flat = flat
        self.layer = layer
        self.site = site  # resid_pre | resid_post | resid_mid | attn_out | mlp_out | z
        self.pos = pos  # int or None (all positions, heads kind)
        self.head = head  # int or None
        # The stage whose input the patched row first differs at: layers below are the
        # corrupted run, so the row joins the batch there (resid_post(l) == input of l+1).
        self.entry = layer + 1 if site == "resid_post" else layer
        self.work = n_layers - self.entry + 1


def _site_hook_name(site, layer):
    if site == "z":
        return f"blocks.{layer}.attn.hook_z"
    return f"blocks.{layer}.hook_{site}"


class _Sweep:
    def __init__(self, spec):
        import torch

        self.torch = torch
        self.kind = spec.get("kind", "resid_pre")
        if self.kind not in KINDS:
            raise TlensError("bad-kind", f"unknown sweep kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        exprs = [spec.get(k) for k in ("model", "clean", "corrupted", "metric", "answer", "wrong")]
        missing = _missing_names(exprs)
        if missing:
            raise TlensError(
                "missing-variables",
                "not defined in the kernel: "
                + ", ".join(missing)
                + ". Run the cells (or the file's setup code) that define them, then retry.",
                names=missing,
            )
        model = _eval(spec["model"], "the model")
        if not _is_tl_model(model) or not hasattr(model, "blocks") or not hasattr(model, "hooks"):
            raise TlensError(
                "not-a-model",
                f"`{spec['model']}` is a {type(model).__name__}, not a TransformerLens model "
                "(HookedTransformer or TransformerBridge).",
            )
        if getattr(model, "training", False):
            raise TlensError(
                "training-mode",
                f"`{spec['model']}` is in training mode (dropout is active, so patched runs are "
                f"random). Call {spec['model']}.eval() first.",
            )
        self.model = model
        self.cfg = model.cfg
        self.L = int(model.cfg.n_layers)
        self.H = int(model.cfg.n_heads)
        self.device = _model_device(model)
        self.clean_tokens = _as_tokens(model, _eval(spec["clean"], "clean"), "clean")
        self.corr_tokens = _as_tokens(model, _eval(spec["corrupted"], "corrupted"), "corrupted")
        if tuple(self.clean_tokens.shape) != tuple(self.corr_tokens.shape):
            raise TlensError(
                "shape-mismatch",
                f"clean tokens have shape {list(self.clean_tokens.shape)} but corrupted tokens "
                f"have {list(self.corr_tokens.shape)}; patching needs the same batch and positions.",
            )
        self.nb, self.P = (int(s) for s in self.clean_tokens.shape)
        self.metric = self._build_metric(spec)
        self.backend = type(model).__name__
        self.is_bridge = "TransformerBridge" in {c.__name__ for c in type(model).__mro__}
        self.path = "fast"
        self.fallback_reason = None
        self.queue = []
        self.pending = []  # (flat indices, values) finished but not yet reported
        self.sent = []  # the last batches reported
        self.done = 0
        self.work_done = 0
        self.work_total = 0
        self.rows_per_chunk = 1

    # -- metric ----------------------------------------------------------------------

    def _build_metric(self, spec):
        has_metric = bool(spec.get("metric"))
        has_ans = bool(spec.get("answer")) or bool(spec.get("wrong"))
        if has_metric == has_ans:
            raise TlensError(
                "bad-metric",
                "give either `metric` (a callable f(logits) -> scalar) or both `answer` and "
                "`wrong` (token ids or strings for a logit difference), not both or neither.",
            )
        if has_metric:
            fn = _eval(spec["metric"], "the metric")
            if not callable(fn):
                raise TlensError(
                    "bad-metric",
                    f"the metric `{spec['metric']}` is a {type(fn).__name__}, not a callable "
                    "f(logits) -> scalar tensor.",
                )
            return _CallableMetric(fn, f"{spec['metric']}(logits)", self.P)
        if not spec.get("answer") or not spec.get("wrong"):
            raise TlensError("bad-metric", "a logit difference needs both `answer` and `wrong`.")
        a = _token_ids(self.model, _eval(spec["answer"], "answer"), self.nb, "answer")
        w = _token_ids(self.model, _eval(spec["wrong"], "wrong"), self.nb, "wrong")
        desc = f"logit diff {_tok_desc(self.model, a)} − {_tok_desc(self.model, w)} at last position"
        if self.nb > 1:
            desc += f" (mean of {self.nb} prompts)"
        m = _LogitDiff(a.to(self.device), w.to(self.device), desc)
        m.reads = [self.P - 1]
        return m

    # -- clean and corrupted runs ----------------------------------------------------

    def _site_names(self):
        k = self.kind
        if k in _LAYER_POS_KINDS:
            sites = [k]
        elif k in ("heads", "heads_by_pos"):
            sites = ["z"]
        elif k == "block":
            sites = list(_BLOCK_PANELS)
        else:
            sites = ["resid_pre", "attn_out", "mlp_out", "z"]
        return sites

    def _check_hooks_exist(self, names):
        hook_dict = getattr(self.model, "hook_dict", {})
        absent = [n for n in names if n not in hook_dict]
        if absent:
            raise TlensError(
                "missing-hook",
                f"this {self.backend} has no hook point {absent[0]} (e.g. attn-only or parallel "
                f"attention models have no resid_mid/mlp_out); pick another sweep kind.",
                names=absent,
            )

    def _cache_run(self, tokens, names, record_blocks=False):
        """run_with_cache on ``names``; optionally record each block's call arguments."""
        torch = self.torch
        model = self.model
        recorded = {}
        handles = []

        def make_pre(layer):
            def pre(module, args, kwargs):
                recorded[layer] = (args, kwargs)

            return pre

        try:
            if record_blocks:
                for layer, block in enumerate(model.blocks):
                    handles.append(block.register_forward_pre_hook(make_pre(layer), with_kwargs=True))
            with torch.no_grad():
                logits, cache = model.run_with_cache(tokens, names_filter=list(names))
        finally:
            for h in handles:
                h.remove()
        acts = {}
        for n in names:
            try:
                acts[n] = cache[n]
            except KeyError:
                raise TlensError(
                    "missing-activation",
                    f"{n} did not fire on this model, so it cannot be patched (gated hook or a "
                    "layer type the model lacks).",
                ) from None
        del cache
        return logits, acts, recorded

    def prepare(self):
        t0 = time.perf_counter()
        sites = self._site_names()
        site_names = [_site_hook_name(s, l) for s in sites for l in range(self.L)]
        stream = [f"blocks.{l}.hook_resid_pre" for l in range(self.L)]
        stream.append(f"blocks.{self.L - 1}.hook_resid_post")
        self._check_hooks_exist(site_names + stream)
        if self.kind == "attribution":
            return self._attribution(sites, site_names, t0)

        clean_names = list(dict.fromkeys(site_names))
        clean_logits, self.clean, _ = self._cache_run(self.clean_tokens, clean_names)
        corr_names = list(dict.fromkeys(site_names + stream))
        corr_logits, corr, recorded = self._cache_run(self.corr_tokens, corr_names, record_blocks=True)
        self.stream = [corr[n] for n in stream]  # residual entering stage s (s = L: final)
        self.block_args = recorded
        self.clean_value = self._metric_full(clean_logits)
        self.corr_value = self._metric_full(corr_logits)
        if isinstance(self.metric, _CallableMetric):
            self._settle_reads(clean_logits, corr_logits)
        self.reads = self.metric.reads
        del clean_logits, corr_logits

        cells = self._cells()
        skipped = self._identical_cells(cells, corr)
        del corr
        self.queue = [c for c in cells if c.flat not in skipped]
        self.queue.sort(key=lambda c: (c.entry, _SITE_ORDER[c.site], c.layer, c.pos or 0, c.head or 0))
        self.total = len(cells)
        self.done = len(skipped)
        self.rows_per_chunk = self._rows_per_chunk()  # the fast-path size, for the check
        self._choose_path()
        self.rows_per_chunk = self._rows_per_chunk()
        return {
            "kind": self.kind,
            "grid_shape": self._grid_shape(),
            "total": self.total,
            "precomputed": {"cells": sorted(skipped), "values": [self.corr_value] * len(skipped)},
            "clean_value": _finite(self.clean_value),
            "corrupted_value": _finite(self.corr_value),
            **self._describe(),
            "work_total": self.work_total,
            "prepare_s": time.perf_counter() - t0,
        }

    def _metric_full(self, logits):
        torch = self.torch
        with torch.no_grad():
            if isinstance(self.metric, _LogitDiff):
                return float(self.metric.scalar(logits).item())
            return self.metric.value(logits)

    def _settle_reads(self, clean_logits, corr_logits):
        """Find the metric's read positions and prove them on both baselines with NaNs."""
        torch = self.torch
        m = self.metric
        with torch.no_grad():
            reads = _metric_reads(m.fn, clean_logits)
            if reads is None:
                return
            for logits in (clean_logits, corr_logits):
                ref = m.value(logits)
                buf = torch.full_like(logits, float("nan"))
                buf[:, reads] = logits[:, reads]
                try:
                    got = m.value(buf)
                except Exception:  # noqa: BLE001
                    return
                if not (math.isfinite(got) and abs(got - ref) <= 1e-6 * (1 + abs(ref))):
                    return
        m.reads = reads

    def _describe(self):
        labels = _str_tokens(self.model, self.clean_tokens[0])
        return {
            "row_labels": [f"L{l}" for l in range(self.L)],
            "pos_labels": labels,
            "head_labels": [f"H{h}" for h in range(self.H)],
            "panel_labels": list(_BLOCK_PANELS) if self.kind in ("block", "attribution") else None,
            "metric": self.metric.description,
            "backend": self.backend,
            "tl_version": _tl_version(),
            "torch": self.torch.__version__,
            "device": str(self.device),
            "dtype": str(getattr(self.cfg, "dtype", "")).replace("torch.", ""),
            "n_prompts": self.nb,
            "n_pos": self.P,
            "path": self.path,
            "fallback_reason": self.fallback_reason,
            "reads": self.reads if getattr(self, "reads", None) is not None else "all",
            "rows_per_chunk": self.rows_per_chunk,
            "notes": self._notes(),
        }

    def _notes(self):
        notes = []
        if self.is_bridge and self.kind == "resid_mid":
            notes.append(
                "resid_mid is patched in the residual stream (as on HookedTransformer). On "
                "TransformerBridge, transformer_lens.patching with gradients enabled patches a "
                "copy, which reaches only the MLP input; under torch.no_grad it agrees with this."
            )
        return notes

    def _grid_shape(self):
        k = self.kind
        if k in _LAYER_POS_KINDS:
            return [self.L, self.P]
        if k == "heads":
            return [self.L, self.H]
        if k == "heads_by_pos":
            return [self.L, self.P, self.H]
        return [3, self.L, self.P]  # block, attribution

    def _cells(self):
        L, P, H = self.L, self.P, self.H
        k = self.kind
        out = []
        if k in _LAYER_POS_KINDS:
            for l in range(L):
                for p in range(P):
                    out.append(_Cell(l * P + p, l, k, p, None, L))
        elif k == "heads":
            for l in range(L):
                for h in range(H):
                    out.append(_Cell(l * H + h, l, "z", None, h, L))
        elif k == "heads_by_pos":
            for l in range(L):
                for p in range(P):
                    for h in range(H):
                        out.append(_Cell((l * P + p) * H + h, l, "z", p, h, L))
        elif k == "block":
            for i, site in enumerate(_BLOCK_PANELS):
                for l in range(L):
                    for p in range(P):
                        out.append(_Cell((i * L + l) * P + p, l, site, p, None, L))
        return out

    def _identical_cells(self, cells, corr):
        """Cells whose clean and corrupted activations are bit-identical.

        Patching such a cell changes nothing, so the patched run is the corrupted run and
        its value is exactly the corrupted baseline. This covers every position before the
        first token where clean and corrupted prompts differ (causal attention).
        """
        same = {}
        for name, clean in self.clean.items():
            c = corr[name]
            eq = clean == c
            if name.endswith("hook_z"):  # [nb, P, H, d_head]
                same[name] = (eq.all(dim=3).all(dim=0), eq.all(dim=3).all(dim=0).all(dim=0))
            else:  # [nb, P, d]
                same[name] = eq.all(dim=2).all(dim=0)
        skipped = set()
        for c in cells:
            name = _site_hook_name(c.site, c.layer)
            s = same[name]
            if c.site == "z":
                hit = s[0][c.pos, c.head] if c.pos is not None else s[1][c.head]
            else:
                hit = s[c.pos]
            if bool(hit):
                skipped.add(c.flat)
        return skipped

    # -- chunk sizing ------------------------------------------------------------------

    def _rows_per_chunk(self):
        """Cells per forward: bounded by a memory budget and, on CPU, a token target."""
        torch = self.torch
        cfg = self.cfg
        d_model = int(cfg.d_model)
        d_mlp = int(getattr(cfg, "d_mlp", None) or 4 * d_model)
        elem = torch.finfo(getattr(cfg, "dtype", torch.float32) or torch.float32).bits // 8
        P, nb = self.P, self.nb
        per_row = P * (8 * d_model + 3 * d_mlp + 4 * self.H * P) * elem
        vocab = int(getattr(cfg, "d_vocab_out", None) or getattr(cfg, "d_vocab", 50000))
        if self.path == "fast":
            k = len(self.reads) if self.reads is not None else P
            per_row += min(k, 4) * vocab * elem  # the tail is sub-batched beyond this
        else:
            per_row += P * vocab * elem  # model(tokens) returns logits at every position
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            budget = int(free * 0.4)
            token_target = 1 << 17
        else:
            budget = min(4 << 30, int(_mem_available() * 0.25))
            token_target = 1024
        rows_mem = max(1, budget // per_row)
        rows_eff = max(1, token_target // P)
        return max(1, min(rows_mem, rows_eff) // nb)

    # -- fast path: rows join at their layer ----------------------------------------------

    def _choose_path(self):
        """Trust the batched replay only if it matches patched forwards of the model itself.

        Two queued cells are computed both ways: by the replay (rows entering at their
        layer, recorded block arguments, tail on the read positions) and by plain
        ``model.hooks(...)`` + ``model(tokens)``, which is what transformer_lens.patching
        does. Their exact values are kept as results. The verdict is remembered per model
        object and input shape for the rest of the kernel session.
        """
        key = (id(self.model), type(self.model).__name__, self.L, self.nb, self.P)
        if key in _VALIDATED:
            reason = _VALIDATED[key]
        elif not self.queue:
            return
        else:
            probe = list(dict.fromkeys([self.queue[len(self.queue) // 2], self.queue[-1]]))
            full = self._chunk_full(probe)
            try:
                fast = self._chunk_fast(probe)
                bad = [(f, u) for f, u in zip(fast, full) if not abs(f - u) <= 1e-4 * (1 + abs(u))]
                reason = f"the batched replay differs from patched forwards {bad}" if bad else None
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - an architecture the replay cannot drive
                reason = f"the batched replay failed: {type(e).__name__}: {e}"
            _VALIDATED[key] = reason
            self.pending.append(([c.flat for c in probe], full))
            for c in probe:
                self.queue.remove(c)
            self.done += len(probe)
        if reason is not None:
            self.path = "fallback"
            self.fallback_reason = reason
        self.work_total = sum(self._work(c) for c in self.queue)

    def _work(self, cell):
        return cell.work if self.path == "fast" else self.L + 1

    def _block(self, layer, x):
        args, kwargs = self.block_args[layer]
        rows = x.shape[0]
        rest = tuple(_tile(a, self.nb, rows, self.torch) for a in args[1:])
        kw = {k: _tile(v, self.nb, rows, self.torch) for k, v in kwargs.items()}
        if "use_cache" in kw:
            kw["use_cache"] = False
        block = self.model.blocks[layer]
        dev = _module_device(block)
        if dev is not None and x.device != dev:
            x = x.to(dev)
        if args:
            out = block(x, *rest, **kw)
        else:
            kw["hidden_states"] = x
            out = block(**kw)
        return out[0] if isinstance(out, tuple) else out

    def _select(self, logits):
        return logits if self.reads is None else logits[:, self.reads]

    def _metric_at(self, logits_sel):
        """Differentiable metric from logits at ``self.reads`` (all positions if None)."""
        if isinstance(self.metric, _LogitDiff):
            return self.metric.scalar_at(logits_sel)
        return self.metric.scalar(logits_sel)

    def _capture_pass(self, tokens, names, stop, leaf):
        """Forward capturing ``names``; returns (activations, logits at the read positions).

        With ``stop`` the forward ends at the final residual (a hook raises) and only the
        read positions are unembedded by ``_tail``.
        """
        captured = {}
        first = _site_hook_name("resid_pre", 0)
        final = f"blocks.{self.L - 1}.hook_resid_post"
        # Each activation is recorded under the name we asked for (bridge hook points fire
        # under canonical names).
        fwd = [(n, _capture_hook(n, captured, make_leaf=leaf and n == first)) for n in names]
        if stop:
            fwd.append((final, _stop_hook(captured, final)))
        with self.model.hooks(fwd_hooks=fwd):
            try:
                logits = self.model(tokens)
            except _StopForward:
                return captured, self._tail(captured.pop(final))
        return captured, self._select(logits)

    def _tail_reproduces_logits(self):
        """Does ln_final + unembed on the final residual give the model's logits? (cached)

        Checked on a one-token forward: the tail acts on each position alone.
        """
        torch = self.torch
        key = ("tail", id(self.model), type(self.model).__name__, self.L)
        if key not in _VALIDATED:
            final = f"blocks.{self.L - 1}.hook_resid_post"
            self._check_hooks_exist([final])
            got = {}
            try:
                with torch.no_grad(), self.model.hooks(fwd_hooks=[(final, _capture_hook(final, got, False))]):
                    ref = self.model(self.corr_tokens[:1, :1])
                    tail = self._tail(got[final], select=False)
                err = float((tail - ref).abs().max())
                _VALIDATED[key] = err <= 1e-4 * (1 + float(ref.abs().max()))
            except KeyboardInterrupt:
                raise
            except Exception:  # noqa: BLE001 - no usable tail: full forwards instead
                _VALIDATED[key] = False
        return _VALIDATED[key]

    def _tail(self, resid, select=True):
        """Final residual [rows, P, d] -> logits at the read positions only."""
        torch = self.torch
        model = self.model
        x = self._select(resid) if select else resid
        ln = getattr(model, "ln_final", None)
        vocab = int(getattr(self.cfg, "d_vocab_out", None) or getattr(self.cfg, "d_vocab", 1))
        elem = x.element_size()
        step = max(1, (256 << 20) // max(1, x.shape[1] * vocab * elem))
        parts = []
        for i in range(0, x.shape[0], step):
            h = x[i : i + step]
            if ln is not None:
                h = ln(h)
            logits = model.unembed(h)
            cap = float(getattr(self.cfg, "output_logits_soft_cap", 0.0) or 0.0)
            if cap > 0 and not self.is_bridge:
                logits = cap * torch.tanh(logits / cap)
            parts.append(logits)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _hooks(self, cells, input_hooks):
        """TL hooks patching each cell's clean activation into its rows.

        Cell i of the chunk owns rows [i*nb, (i+1)*nb). Cells are grouped per hook point;
        one hook per group patches all of them with a single indexed copy.
        """
        torch = self.torch
        groups = {}
        for i, c in enumerate(cells):
            if c.site in ("resid_pre", "resid_post") and not input_hooks:
                continue
            groups.setdefault(_site_hook_name(c.site, c.layer), []).append(i)
        hooks = []
        for name, idx in groups.items():
            hooks.append((name, self._make_hook(name, [cells[i] for i in idx], idx, torch)))
        return hooks

    def _make_hook(self, name, group, idx, torch):
        nb = self.nb
        clean = self.clean[name]
        dev = clean.device
        cell_idx = torch.tensor(idx, device=dev)
        is_z = name.endswith("hook_z")
        pos = torch.tensor([c.pos if c.pos is not None else 0 for c in group], device=dev)
        head = torch.tensor([c.head if c.head is not None else 0 for c in group], device=dev)
        all_pos = is_z and group[0].pos is None

        def hook(act, hook):
            if not act.is_contiguous():
                act = act.contiguous()
            a = act.view(act.shape[0] // nb, nb, *act.shape[1:])
            src = clean.to(act.device, act.dtype)
            ci = cell_idx.to(act.device)
            if not is_z:
                p = pos.to(act.device)
                a[ci, :, p] = src[:, p].transpose(0, 1)
            elif all_pos:
                h = head.to(act.device)
                a[ci, :, :, h] = src[:, :, h].permute(2, 0, 1, 3)
            else:
                p, h = pos.to(act.device), head.to(act.device)
                a[ci, :, p, h] = src[:, p, h].transpose(0, 1)
            return act

        return hook

    def _chunk_fast(self, cells):
        torch = self.torch
        nb = self.nb
        with torch.no_grad(), self.model.hooks(fwd_hooks=self._hooks(cells, input_hooks=False)):
            x = None
            i = 0
            n = len(cells)
            for s in range(cells[0].entry, self.L + 1):
                j = i
                while j < n and cells[j].entry == s:
                    j += 1
                if j > i:
                    new = self.stream[s].repeat(j - i, 1, 1)
                    for k in range(i, j):
                        c = cells[k]
                        if c.site in ("resid_pre", "resid_post"):
                            src = self.clean[_site_hook_name(c.site, c.layer)]
                            r = (k - i) * nb
                            new[r : r + nb, c.pos] = src[:, c.pos].to(new.device, new.dtype)
                    x = new if x is None else torch.cat([x.to(new.device), new])
                    i = j
                if s == self.L:
                    break
                x = self._block(s, x)
            logits = self._tail(x)
        return self.metric.values(logits, n, nb)

    def _chunk_full(self, cells):
        torch = self.torch
        n = len(cells)
        tokens = self.corr_tokens.repeat(n, 1)
        with torch.no_grad(), self.model.hooks(fwd_hooks=self._hooks(cells, input_hooks=True)):
            logits = self.model(tokens)
        return self.metric.values(self._select(logits), n, self.nb)

    def run(self, max_seconds):
        t0 = time.perf_counter()
        chunk_fn = self._chunk_fast if self.path == "fast" else self._chunk_full
        while self.queue and (time.perf_counter() - t0 < max_seconds or not self.pending):
            chunk = self.queue[: self.rows_per_chunk]
            values = chunk_fn(chunk)
            # Only a finished chunk leaves the queue: an interrupt keeps the state consistent.
            self.pending.append(([c.flat for c in chunk], values))
            del self.queue[: len(chunk)]
            self.done += len(chunk)
            self.work_done += sum(self._work(c) for c in chunk)
        return self.collect()

    def collect(self, resend=False):
        """Hand over the finished chunks; ``resend`` repeats the last hand-over too (its reply
        may have been lost to an interrupt)."""
        batches = (self.sent if resend else []) + self.pending
        cells, values = [], []
        for flat, vals in batches:
            cells.extend(flat)
            values.extend(_finite(v) if v is not None else None for v in vals)
        self.sent, self.pending = self.pending, []
        return {
            "cells": cells,
            "values": values,
            "done": self.done,
            "total": self.total,
            "work_done": self.work_done,
            "work_total": self.work_total,
        }

    # -- attribution patching --------------------------------------------------------------

    def _attribution(self, sites, site_names, t0):
        """Linear estimate of every patch from one clean+corrupted forward and one backward.

        value(site) ≈ metric(corrupted) + Σ (clean_act − corrupted_act) · ∂metric/∂act,
        with the gradient taken on the corrupted run; summed over prompts and d_model
        (layer × pos) or over prompts, positions and d_head (heads).
        """
        torch = self.torch
        self.path = "gradient"
        # Clean and corrupted prompts share ONE forward (a batch of 2 x prompts: on CPU
        # that costs far less than two forwards of small matmuls). It stops at the final
        # residual and unembeds only what the metric reads (the last position for a logit
        # difference; everything for a callable), provided the model's own ln_final +
        # unembed reproduce its logits (checked once per model). Rows do not interact, so
        # the clean rows carry no gradient into the corrupted metric.
        self.reads = self.metric.reads if isinstance(self.metric, _LogitDiff) else None
        if isinstance(self.metric, _CallableMetric):
            self.metric.reads = None
        names = list(dict.fromkeys(site_names))
        stop = self._tail_reproduces_logits()
        nb = self.nb
        tokens = torch.cat([self.clean_tokens, self.corr_tokens])
        with torch.enable_grad():
            # Layer 0's residual becomes a fresh leaf so a gradient exists even when the
            # model's parameters do not require one.
            both, logits = self._capture_pass(tokens, names, stop, leaf=True)
            silent = [n for n in names if n not in both]
            if silent:
                raise TlensError(
                    "missing-activation",
                    f"{silent[0]} did not fire on this model, so attribution cannot use it.",
                    names=silent,
                )
            with torch.no_grad():
                self.clean_value = _to_float(self._metric_at(logits[:nb]), self.metric.description)
            metric = self._metric_at(logits[nb:])
            del logits
        clean = {n: a[:nb].detach() for n, a in both.items()}
        captured = {n: a[nb:] for n, a in both.items()}
        if not isinstance(metric, torch.Tensor) or not metric.requires_grad:
            raise TlensError(
                "metric-not-differentiable",
                f"attribution patching needs a differentiable metric; {self.metric.description} "
                "returned a value without a gradient (avoid .item() / float() inside it).",
            )
        self.corr_value = float(metric.detach().float().item())
        order = [n for n in names if n in both]
        grads = torch.autograd.grad(metric.float(), [both[n] for n in order], allow_unused=True)
        grads = {n: (g[nb:] if g is not None else None) for n, g in zip(order, grads)}
        L, P, H = self.L, self.P, self.H
        values = [[[None] * P for _ in range(L)] for _ in range(3)]
        head_values = [[None] * H for _ in range(L)]
        for n in names:
            g = grads.get(n)
            if g is None:
                g = torch.zeros_like(clean[n])
            delta = (clean[n].float() - captured[n].detach().float()) * g.float()
            layer = int(n.split(".")[1])
            if n.endswith("hook_z"):
                row = delta.sum(dim=(0, 1, 3))
                head_values[layer] = [_finite(self.corr_value + v) for v in row.tolist()]
            else:
                site = n.split(".hook_")[-1]
                row = delta.sum(dim=(0, 2))
                values[_BLOCK_PANELS.index(site)][layer] = [
                    _finite(self.corr_value + v) for v in row.tolist()
                ]
        del captured, grads, clean, both
        self.total = 3 * L * P
        self.done = self.total
        self.work_total = 0
        flat = list(range(self.total))
        vals = [v for panel in values for row in panel for v in row]
        return {
            "kind": self.kind,
            "grid_shape": [3, L, P],
            "total": self.total,
            "precomputed": {"cells": flat, "values": vals},
            "head_values": head_values,
            "clean_value": _finite(self.clean_value),
            "corrupted_value": _finite(self.corr_value),
            **self._describe(),
            "work_total": 0,
            "prepare_s": time.perf_counter() - t0,
        }


class _StopForward(Exception):
    """Raised by a hook to end a forward once the final residual is known."""


def _stop_hook(captured, name):
    def hook(act, hook):
        captured[name] = act
        raise _StopForward()

    return hook


def _capture_hook(name, captured, make_leaf):
    """Record the activation; return it so the model computes on *this* tensor.

    Returning it matters on TransformerBridge: hook_z sees a reshaped view of the attention
    output and only a returned tensor is fed onward, so a gradient reaches the view.
    """

    def hook(act, hook):
        if make_leaf:
            act = act.detach().requires_grad_(True)
        captured[name] = act
        return act

    return hook


_SITE_ORDER = {"resid_pre": 0, "resid_mid": 1, "attn_out": 1, "z": 1, "mlp_out": 2, "resid_post": 3}


def _tok_desc(model, ids):
    uniq = sorted(set(ids.tolist()))
    if len(uniq) > 1:
        return f"answer[{len(ids)}]" if len(uniq) > 2 else "/".join(_tok_str(model, i) for i in uniq)
    return _tok_str(model, uniq[0])


def _tok_str(model, i):
    try:
        return repr(model.to_string([int(i)]))
    except Exception:  # noqa: BLE001
        return f"#{int(i)}"


def _tile(obj, nb, rows, torch):
    """Repeat per-prompt tensors recorded at batch nb to ``rows`` (cell-major) rows."""
    if isinstance(obj, torch.Tensor):
        if nb > 1 and obj.ndim >= 2 and obj.shape[0] == nb and rows != nb:
            return obj.repeat(rows // nb, *([1] * (obj.ndim - 1)))
        return obj
    if isinstance(obj, tuple):
        return tuple(_tile(o, nb, rows, torch) for o in obj)
    if isinstance(obj, list):
        return [_tile(o, nb, rows, torch) for o in obj]
    if _is_hf_cache(obj):
        return None  # each replay is a fresh, cache-free forward
    return obj


def _is_hf_cache(obj):
    return any(c.__name__.endswith("Cache") for c in type(obj).__mro__[:-1])


def _module_device(module):
    try:
        return next(module.parameters()).device
    except StopIteration:
        return None


def _mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


# ----------------------------------------------------------------------------- API


def prepare(spec):
    """Prepare a sweep; the kernel keeps its state only while cells remain (``held``)."""
    global _SWEEP
    _SWEEP = None
    sweep = _Sweep(spec)
    out = sweep.prepare()
    out["held"] = bool(sweep.queue or sweep.pending)
    if out["held"]:  # else every value is in ``precomputed``: keep nothing in the kernel
        _SWEEP = sweep
    return out


def run(max_seconds=0.5):
    if _SWEEP is None:
        raise TlensError("no-sweep", "no sweep is prepared in this kernel (was it restarted?).")
    return _SWEEP.run(float(max_seconds))


def collect(resend=False):
    if _SWEEP is None:
        return {"cells": [], "values": [], "done": 0, "total": 0, "work_done": 0, "work_total": 0}
    return _SWEEP.collect(bool(resend))


def release():
    global _SWEEP
    _SWEEP = None
    return True


# ============================================================================= setup code
#
# A kernel tlens started has nothing defined: the file's setup code (the top-level code above the
# experiment) runs first, one statement per call so the editor can say which line runs and cancel
# between statements. Each file (a script, or one notebook cell) is compiled under the name the
# user knows it by ("ioi.ipynb, cell 4"), at its own line numbers, so tracebacks point at the
# user's lines; its text goes into linecache so they also show the source.

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
            exec(code, _NS)
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


_API = {"probe": probe, "prepare": prepare, "run": run, "collect": collect, "release": release,
        "setup_begin": setup_begin, "setup_step": setup_step}


# ============================================================================= live introspection
#
# Read-only view of the kernel for the language server's live mode (``lsp_server.live``):
#   live_state(...)            -> models (config, hook names, hooks attached, tokenizer key),
#                                 activation caches (key -> shape, dtype, device), bounded
#   live_tokenizer(var, ...)   -> the model's fast tokenizer as tokenizer.json text
#   live_reset_hooks(var=None) -> model.reset_hooks(including_permanent=False) on one or all models
#
# Rules: tensors are described by metadata only (shape, dtype, device; never .cpu()/.item() or
# any other data access); nothing is imported (torch/TL are only looked at when the notebook
# imported them already); no name is bound in the user's namespace; every loop is capped by a
# count, the answer by a byte size, and the whole call by a time budget.

_LIVE_CFG_FIELDS = (
    "n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx", "n_key_value_heads",
    "rotary_dim", "num_experts", "experts_per_token", "act_fn", "positional_embedding_type",
    "normalization_type", "attn_only", "parallel_attn_mlp", "gated_mlp", "use_attn_result",
    "use_split_qkv_input", "use_attn_in", "use_hook_mlp_in", "use_hook_tokens",
    "ungroup_grouped_query_attention", "use_normalization_before_and_after", "post_embedding_ln",
    "use_qk_norm", "default_prepend_bos", "model_name", "architecture", "original_architecture",
)
_LIVE_TL_VERSION = []  # memo: reading package metadata costs a few ms


def _live_template(name):
    """``blocks.5.attn.hook_z`` -> ``blocks.{l}.attn.hook_z``."""
    parts = name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit():
        return "blocks.{l}." + parts[2]
    return name


def _live_classes(obj):
    return {c.__name__ for c in type(obj).__mro__}


def _live_is_model(obj):
    """A TL model: HookedTransformer / TransformerBridge, or a HookedRootModule with a model cfg."""
    classes = _live_classes(obj)
    if classes & {"HookedTransformer", "TransformerBridge"}:
        return hasattr(obj, "cfg")
    if "HookedRootModule" in classes:  # e.g. a sae_lens SAE has a cfg without n_layers: not a model
        cfg = getattr(obj, "cfg", None)
        return cfg is not None and hasattr(cfg, "n_layers") and hasattr(cfg, "d_model")
    return False


def _live_is_cache(obj):
    return "ActivationCache" in _live_classes(obj) and isinstance(getattr(obj, "cache_dict", None), dict)


def _live_backend(obj):
    return "bridge" if "TransformerBridge" in _live_classes(obj) else "hooked"


def _live_tl_version():
    if "transformer_lens" not in sys.modules:
        return None
    if not _LIVE_TL_VERSION:
        _LIVE_TL_VERSION.append(_tl_version())
    return _LIVE_TL_VERSION[0]


def _live_scalar(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return None  # dtypes, devices, tensors, objects: not part of a spec


def _live_callable_name(fn, depth=0):
    if fn is None:
        return "?"
    func = getattr(fn, "func", None)  # functools.partial
    if func is not None and depth < 3 and type(fn).__name__ == "partial":
        return f"partial({_live_callable_name(func, depth + 1)})"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not isinstance(name, str):
        name = type(fn).__name__
    return name[:80]


def _live_user_hook(hook_point, handle, direction):
    """The function the user registered: TL 4 keeps it on the handle; TL 2/3 in the wrapper's closure."""
    fn = getattr(handle, "user_hook", None)
    if fn is not None:
        return _live_callable_name(fn)
    registry = getattr(hook_point, "_forward_hooks" if direction == "fwd" else "_backward_hooks", {})
    wrapper = registry.get(getattr(getattr(handle, "hook", None), "id", None))
    if wrapper is None:
        return "?"
    code, cells = getattr(wrapper, "__code__", None), getattr(wrapper, "__closure__", None) or ()
    names = code.co_freevars if code is not None else ()
    for name, cell in zip(names, cells):
        if name == "hook":
            try:
                return _live_callable_name(cell.cell_contents)
            except ValueError:  # empty cell
                break
    return str(getattr(wrapper, "__name__", "?"))[:80]


def _live_display_name(hook_point, names):
    """The spelling users write: a bridge's legacy alias (``attn.hook_z``) over its canonical name."""
    legacy = [n for n in names if not n.endswith((".hook_in", ".hook_out"))]
    own = getattr(hook_point, "name", None)
    if own in legacy or (not legacy and own):
        return own
    return legacy[0] if legacy else names[0]


def _live_model(var, model, max_hooks, deadline):
    cfg = model.cfg
    info = {
        "var": var,
        "class": type(model).__name__,
        "backend": _live_backend(model),
        "tl_version": _live_tl_version(),
        "cfg": {k: _live_scalar(getattr(cfg, k, None)) for k in _LIVE_CFG_FIELDS if hasattr(cfg, k)},
        "compat_mode": bool(getattr(model, "compatibility_mode", False)),
        "device": str(_model_device(model)),
        "hook_templates": None,
        "hooks": [],
        "hooks_total": 0,
        "tokenizer": None,
    }
    hook_dict = getattr(model, "hook_dict", None)
    if isinstance(hook_dict, dict):
        names_of = {}  # id(hook point) -> (hook point, every name it is registered under)
        for name, hp in hook_dict.items():
            names_of.setdefault(id(hp), (hp, []))[1].append(name)
        info["hook_templates"] = sorted({_live_template(n) for n in hook_dict})
        for hp, names in names_of.values():
            for direction in ("fwd", "bwd"):
                for handle in getattr(hp, direction + "_hooks", None) or ():
                    info["hooks_total"] += 1
                    if len(info["hooks"]) < max_hooks and time.perf_counter() < deadline:
                        info["hooks"].append({
                            "hook": _live_display_name(hp, names),
                            "fn": _live_user_hook(hp, handle, direction),
                            "permanent": bool(getattr(handle, "is_permanent", False)),
                            "dir": direction,
                            "level": _live_scalar(getattr(handle, "context_level", None)),
                        })
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        backend = getattr(tok, "backend_tokenizer", None) if getattr(tok, "is_fast", False) else None
        bos = getattr(tok, "bos_token", None)
        path = getattr(tok, "name_or_path", None)
        info["tokenizer"] = {
            "class": type(tok).__name__,
            "fast": backend is not None,
            # Same key while the same tokenizer object lives: shipped once. (Not the vocabulary
            # size: get_vocab_size(with_added_tokens=True) rebuilds the vocabulary, ~7 ms for GPT-2.)
            "key": _live_tokenizer_key(tok, backend) if backend is not None else None,
            "bos_token": bos if isinstance(bos, str) else None,
            "name": path if isinstance(path, str) else None,
        }
    return info


def _live_tokenizer_key(tok, backend):
    return f"{id(tok):x}-{id(backend):x}"


def _live_cache(var, cache, model_vars, max_keys, deadline):
    dtypes, devices, keys = [], [], {}
    items = cache.cache_dict
    complete = True
    for i, (key, value) in enumerate(items.items()):
        if i >= max_keys or time.perf_counter() > deadline:
            complete = False
            break
        shape, dtype, device = getattr(value, "shape", None), getattr(value, "dtype", None), getattr(value, "device", None)
        if shape is None or dtype is None:
            keys[str(key)] = [None, type(value).__name__, None]
            continue
        dtype = str(dtype).replace("torch.", "")
        device = str(device)
        if dtype not in dtypes:
            dtypes.append(dtype)
        if device not in devices:
            devices.append(device)
        keys[str(key)] = [[int(d) for d in shape], dtypes.index(dtype), devices.index(device)]
    return {
        "var": var,
        "model": model_vars.get(id(getattr(cache, "model", None))),
        "has_batch_dim": _live_scalar(getattr(cache, "has_batch_dim", None)),
        "n_keys": len(items),
        "complete": complete,
        "dtypes": dtypes,
        "devices": devices,
        "keys": keys,
    }


def live_state(max_models=16, max_caches=16, max_keys=4096, max_hooks=64, max_bytes=1 << 20, budget_s=1.0):
    """Models and caches of the user's namespace, described without touching tensor data.

    Truncation is explicit: ``truncated`` lists what was left out (too many objects, too many
    keys, the byte cap, the time budget); a cache whose key list was cut has ``complete=False``.
    """
    t0 = time.perf_counter()
    deadline = t0 + float(budget_s)
    out = {"tl_version": _live_tl_version(), "models": [], "caches": [], "truncated": []}
    if "transformer_lens" not in sys.modules:  # no TL imported: no TL objects can exist
        out["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return out
    models, caches = [], []
    for name, value in list((_NS or {}).items()):
        if name.startswith("_"):
            continue
        try:
            if _live_is_model(value):
                models.append((name, value))
            elif _live_is_cache(value):
                caches.append((name, value))
        except Exception:  # noqa: BLE001 - a broken __getattr__ must not hide the rest
            continue
    if len(models) > max_models:
        out["truncated"].append(f"{len(models) - max_models} more models")
        models = models[:max_models]
    if len(caches) > max_caches:
        out["truncated"].append(f"{len(caches) - max_caches} more caches")
        caches = caches[:max_caches]
    model_vars = {}
    for name, model in models:
        model_vars.setdefault(id(model), name)
        if time.perf_counter() > deadline:
            out["truncated"].append("time budget spent before every model was read")
            break
        try:
            out["models"].append(_live_model(name, model, int(max_hooks), deadline))
        except Exception as e:  # noqa: BLE001
            out["truncated"].append(f"{name}: {type(e).__name__}: {e}"[:200])
    for name, cache in caches:
        if time.perf_counter() > deadline:
            out["truncated"].append("time budget spent before every cache was read")
            break
        entry = _live_cache(name, cache, model_vars, int(max_keys), deadline)
        if not entry["complete"]:
            out["truncated"].append(f"{name}: {len(entry['keys'])} of {entry['n_keys']} keys")
        out["caches"].append(entry)
    _live_fit(out, int(max_bytes))
    out["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    return out


def _live_fit(out, max_bytes):
    """Shrink the answer to ``max_bytes``: halve the longest key list (down to 8 keys), then leave
    out caches, then hook-name lists, then models; one note per thing cut."""
    cut = {}

    def size():
        return len(json.dumps(out)) + sum(len(note) + 4 for note in cut.values())

    while size() > max_bytes:
        caches, models = out["caches"], out["models"]
        big = max(caches, key=lambda c: len(c["keys"]), default=None)
        if big is not None and len(big["keys"]) > 8:
            keep = list(big["keys"].items())[: len(big["keys"]) // 2]
            big["keys"], big["complete"] = dict(keep), False
            cut[big["var"]] = f"{big['var']}: {len(keep)} of {big['n_keys']} keys (size cap)"
        elif caches:
            gone = caches.pop()
            cut[gone["var"]] = f"{gone['var']}: left out (size cap)"
        elif any(m["hook_templates"] for m in models):
            for m in models:
                m["hook_templates"] = None
            cut[" hook names"] = "hook names left out (size cap)"
        elif models:
            gone = models.pop()
            cut[gone["var"]] = f"{gone['var']}: left out (size cap)"
        else:
            break
    out["truncated"].extend(cut.values())


def _live_model_named(var):
    value = (_NS or {}).get(var)
    if value is None or not _live_is_model(value):
        raise TlensError("missing-model", f"`{var}` is not a TransformerLens model in the kernel "
                         "(was the cell that defines it run, or was it renamed?).", names=[var])
    return value


def live_tokenizer(var, max_bytes=20 << 20):
    """The fast tokenizer of model ``var`` as ``tokenizer.json`` text (sent once per tokenizer)."""
    tok = getattr(_live_model_named(var), "tokenizer", None)
    backend = getattr(tok, "backend_tokenizer", None) if getattr(tok, "is_fast", False) else None
    if backend is None:
        raise TlensError("no-fast-tokenizer", f"`{var}` has no fast (Rust) tokenizer to share "
                         f"({type(tok).__name__ if tok is not None else 'no tokenizer'}).")
    text = backend.to_str()
    if len(text) > max_bytes:
        raise TlensError("tokenizer-too-large", f"`{var}`'s tokenizer is {len(text) >> 20} MB, over the "
                         f"{max_bytes >> 20} MB cap; token checks stay off for it.")
    bos = getattr(tok, "bos_token", None)
    path = getattr(tok, "name_or_path", None)
    return {
        "key": _live_tokenizer_key(tok, backend),
        "json": text,
        "bos_token": bos if isinstance(bos, str) else None,
        "name": path if isinstance(path, str) else None,
    }


def _live_hook_count(model, including_permanent):
    seen, count = set(), 0
    for hp in (getattr(model, "hook_dict", None) or {}).values():
        if id(hp) in seen:
            continue
        seen.add(id(hp))
        for handle in list(getattr(hp, "fwd_hooks", None) or ()) + list(getattr(hp, "bwd_hooks", None) or ()):
            if including_permanent or not getattr(handle, "is_permanent", False):
                count += 1
    return count


def live_reset_hooks(var=None):
    """``model.reset_hooks(including_permanent=False)`` on ``var`` (every model when None)."""
    if var:
        targets = [(var, _live_model_named(var))]
    else:
        targets = [(n, v) for n, v in list((_NS or {}).items()) if not n.startswith("_") and _live_is_model(v)]
    done, seen = [], set()
    for name, model in targets:
        if id(model) in seen:  # two names for one model
            continue
        seen.add(id(model))
        before = _live_hook_count(model, True)
        model.reset_hooks(including_permanent=False)
        after = _live_hook_count(model, True)
        done.append({"var": name, "removed": before - after, "permanent_left": after})
    return done


_API.update({"live_state": live_state, "live_tokenizer": live_tokenizer, "live_reset_hooks": live_reset_hooks})
