"""tlens in-kernel payload, part: live introspection, a read-only view of the kernel.

For the language server's live mode (``lsp_server.live``):
  live_state(...)            -> models (config, hook names, hooks attached, tokenizer key),
                                activation caches (key -> shape, dtype, device), bounded
  live_tokenizer(var, ...)   -> the model's fast tokenizer as tokenizer.json text
  live_reset_hooks(var=None) -> model.reset_hooks(including_permanent=False) on one or all models

Rules: tensors are described by metadata only (shape, dtype, device; never .cpu()/.item() or
any other data access); nothing is imported (torch/TL are only looked at when the notebook
imported them already); no name is bound in the user's namespace; every loop is capped by a
count, the answer by a byte size, and the whole call by a time budget.
"""

import json
import sys
import time

from .core import _API, TlensError, _user_ns
from .environment import _model_device, _tl_version

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
    for name, value in list(_user_ns().items()):
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
    value = _user_ns().get(var)
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
        targets = [(n, v) for n, v in list(_user_ns().items()) if not n.startswith("_") and _live_is_model(v)]
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
