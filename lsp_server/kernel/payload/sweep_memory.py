"""tlens in-kernel payload, part: memory, what the device has free and what a sweep's tensors cost.

Estimates come from the model's config (d_model, d_mlp, heads, d_head, key/value heads, vocabulary,
dtype) and the prompt length, per prompt pair. Two limits:
  free memory  what the device has now (CUDA: ``torch.cuda.mem_get_info``; CPU: MemAvailable);
               what a sweep keeps for all its pairs (the activations the baselines cache) must fit
               in a share of it, or the sweep stops before it starts with a message saying what to
               change.
  budget       bytes one forward's working memory may use (a smaller share, or
               ``_OPTIONS["memory_budget"]``): it sets how many prompt pairs a baseline forward
               takes and how many cells a patched forward takes (sweep_plan.py).
"""

import math

from .core import TlensError
from .sweep_grid import _OPTIONS

_FREE_SHARE = 0.8  # of the free memory, what a sweep may keep: the estimates are approximate


def _model_shape(cfg, torch):
    """The sizes the estimates need, from a TL config."""
    d_model = int(cfg.d_model)
    heads = int(cfg.n_heads)
    vocab = int(getattr(cfg, "d_vocab_out", None) or 0)
    if vocab <= 0:
        vocab = int(getattr(cfg, "d_vocab", None) or 50000)
    return {
        "d_model": d_model,
        "d_mlp": int(getattr(cfg, "d_mlp", None) or 4 * d_model),
        "n_heads": heads,
        "d_head": int(getattr(cfg, "d_head", None) or d_model // heads),
        "n_kv_heads": int(getattr(cfg, "n_key_value_heads", None) or heads),
        "d_vocab": vocab,
        "elem": torch.finfo(getattr(cfg, "dtype", None) or torch.float32).bits // 8,
    }


def _act_bytes(shape, name, P):
    """One prompt pair's cached activation ``name`` over P positions."""
    if name.endswith("hook_z"):
        width = shape["n_heads"] * shape["d_head"]
    elif name.endswith(("hook_k", "hook_v")):
        width = shape["n_kv_heads"] * shape["d_head"]
    else:
        width = shape["d_model"]
    return P * width * shape["elem"]


def _row_bytes(shape, P, logit_positions):
    """Working memory of one row (prompt pair) of a forward over P positions: one block's
    intermediates and attention scores, and the logits at ``logit_positions`` positions."""
    block = P * (8 * shape["d_model"] + 3 * shape["d_mlp"] + 4 * shape["n_heads"] * P)
    return (block + logit_positions * shape["d_vocab"]) * shape["elem"]


def _free_memory(torch, device):
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return _mem_available()


def _forward_budget(torch, device):
    """Bytes one forward's working memory may use."""
    if _OPTIONS["memory_budget"]:
        return int(_OPTIONS["memory_budget"])
    free = _free_memory(torch, device)
    if device.type == "cuda":
        return int(free * 0.4)
    return min(4 << 30, int(free * 0.25))


def _baseline_plan(shape, nb, P, names, kept_logit_positions, free, budget, device="the device"):
    """How the clean and corrupted baseline runs are split over forwards.

    ``names`` are the activations the two runs cache (a name cached by both counts twice); they
    are kept for all ``nb`` pairs, with the logits at ``kept_logit_positions`` of both runs. Each
    forward takes as many pairs as its working memory fits in ``budget`` and in what stays free.

    Returns: ``{"pairs": per forward, "chunks": forwards per run, "held": bytes kept, "pair_bytes": ...}``.
    Raises:
        TlensError("out-of-memory"): what is kept plus a forward of one pair exceeds the share of
            ``free`` a sweep may use; the message says what to change.
    """
    elem, vocab = shape["elem"], shape["d_vocab"]
    kept = sum(_act_bytes(shape, n, P) for n in names) + 2 * kept_logit_positions * vocab * elem
    work = _row_bytes(shape, P, P)  # a baseline forward returns the logits at every position
    held = nb * kept
    room = int(free * _FREE_SHARE)
    if held + work > room:
        fits = max(0, (room - work) // kept)
        raise TlensError(
            "out-of-memory",
            f"this sweep would keep {_size(held)} of activations for its {nb} prompt pairs "
            f"({len(names)} cached activations of {P} positions each) and a forward needs {_size(work)} "
            f"per pair, but {device} has {_size(free)} free (a sweep uses at most {_FREE_SHARE:.0%} of it). "
            + (f"Use at most {fits} prompt pairs, or shorter prompts" if fits else "Use shorter prompts")
            + ", a sweep kind that patches fewer activations (block patches three per layer), or free "
            "memory on the device (or use one with more).",
            held=held, pair_bytes=work, free=free,
        )
    pairs = max(1, min(nb, min(budget, room - held) // work))
    chunks = math.ceil(nb / pairs)
    return {"pairs": math.ceil(nb / chunks), "chunks": chunks, "held": held, "pair_bytes": work}


def _size(n):
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30
