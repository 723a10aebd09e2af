"""tlens in-kernel payload, part: which logit positions a user's metric reads.

A metric that reads only the last position lets every patched run unembed one position
instead of all of them; ``_metric_reads`` finds that set by tracing one call of the metric.
Stdlib only at import; torch is imported inside.
"""


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
