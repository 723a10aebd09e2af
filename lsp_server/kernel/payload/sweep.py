"""tlens in-kernel payload, part: the sweep object, its run/collect loop, and the sweep API.

A sweep patches every cell of a grid (layer x position, layer x head, ...) from the clean run
into the corrupted run and scores each patched run with the metric. ``_Sweep`` holds the state;
its work is split by job over the classes it combines:

  _SweepPlan         (sweep_plan.py)    the baselines, the cell queue, chunk sizes
  _SweepBaseline     (sweep_baseline.py) clean + corrupted runs, a chunk of prompt pairs at a time
  _SweepReplay       (sweep_replay.py)  patched forwards: the batched replay or model(tokens)
  _SweepAttribution  (attribution.py)   the gradient estimate of every cell at once

Works on HookedTransformer (TL 2.x/3.x) and TransformerBridge (TL 3.x/4.x), GQA included.
Speed: cells are batched (one forward patches many cells), rows enter the forward at the
layer they are patched at (layers below equal the corrupted run, whose residual is cached),
and run only the positions the patch can change (earlier ones equal the corrupted run, whose
keys/values are reused: sweep_prefix.py); cells whose clean and corrupted activations are
bit-identical are not run at all (the patched run IS the corrupted run), and only the
positions the metric reads are unembedded. A batch of N prompt pairs (positions.py) is split
over forwards when one cell's N rows exceed the memory budget; the metric sees all N at once.
The baseline runs are split the same way (sweep_memory.py estimates what fits on the device).
The fast path is checked against the model's own forward before it is trusted; if it
disagrees, every chunk runs through ``model.hooks(...)`` + ``model(tokens)`` instead.
Hooks are added with ``model.hooks(...)`` (removed on exit, also on KeyboardInterrupt) and
torch pre-hooks are removed in ``finally`` blocks, so nothing stays attached.
"""

import time

from .attribution import _SweepAttribution
from .core import _API, TlensError, _finite
from .environment import _is_tl_model, _model_device
from .inputs import _eval, _missing_names
from .metrics import _build_metric
from .positions import _batch_tokens, _end_positions, _pad_id, _pad_to, _pair_lengths, _position_labelling
from .sweep_grid import KINDS, _grid_cells
from .sweep_plan import _SweepPlan
from .sweep_replay import _SweepReplay

_SWEEP = None  # state of the prepared sweep


class _Sweep(_SweepPlan, _SweepReplay, _SweepAttribution):
    """One sweep: the spec evaluated in the kernel, then its progress (queue, pending, sent, done).

    ``prepare`` (``_SweepPlan``) adds the baselines the replay reads: ``clean`` (the clean
    activations by hook name), ``stream`` (the corrupted residual entering each stage),
    ``block_args`` (each block's recorded call arguments), ``reads`` (the logit positions the
    metric reads, None for all) and ``total``.
    """

    def __init__(self, spec):
        import torch

        self.torch = torch
        self.kind = spec.get("kind", "resid_pre")
        if self.kind not in KINDS:
            raise TlensError("bad-kind", f"unknown sweep kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        exprs = [spec.get(k) for k in ("model", "clean", "corrupted", "metric", "answer", "wrong", "positions")]
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
        self.backend = type(model).__name__
        self.is_bridge = "TransformerBridge" in {c.__name__ for c in type(model).__mro__}
        self._batch(spec)
        self.path = "fast"
        self.fallback_reason = None
        self.queue = []
        self.pending = []  # (flat indices, values) finished but not yet reported
        self.sent = []  # the last batches reported
        self.done = 0
        self.work_done = 0
        self.work_total = 0
        self.rows_per_chunk = 1

    def _batch(self, spec):
        """Clean and corrupted tokens [pairs, P], padded to one length when the prompts differ
        in length; the position axis (token positions or the labelling) and the metric."""
        model = self.model
        self.clean_tokens, clean_lengths = _batch_tokens(model, _eval(spec["clean"], "clean"), "clean")
        self.corr_tokens, corr_lengths = _batch_tokens(model, _eval(spec["corrupted"], "corrupted"), "corrupted")
        if (clean_lengths or corr_lengths) and self.clean_tokens.shape[0] == self.corr_tokens.shape[0]:
            n = max(self.clean_tokens.shape[-1], self.corr_tokens.shape[-1])
            self.clean_tokens = _pad_to(self.clean_tokens, n, _pad_id(model))
            self.corr_tokens = _pad_to(self.corr_tokens, n, _pad_id(model))
        if tuple(self.clean_tokens.shape) != tuple(self.corr_tokens.shape):
            padded = [
                f"the {what} prompts have different lengths {lengths} (padded to {max(lengths)}); "
                for what, lengths in (("clean", clean_lengths), ("corrupted", corr_lengths))
                if lengths
            ]
            raise TlensError(
                "shape-mismatch",
                "".join(padded)
                + f"clean tokens have shape {list(self.clean_tokens.shape)} but corrupted tokens "
                f"have {list(self.corr_tokens.shape)}; patching needs the same batch and positions.",
            )
        self.nb, self.P = (int(s) for s in self.clean_tokens.shape)
        self.lengths = _pair_lengths(clean_lengths, corr_lengths, self.nb)
        if spec.get("positions"):
            value = _eval(spec["positions"], "the positions")
            self.pos_labels, index = _position_labelling(value, self.nb, self.P, self.lengths)
        else:
            self.pos_labels, index = None, [[p] * self.nb for p in range(self.P)]
        self.pos_index = self.torch.tensor(index, dtype=self.torch.long, device=self.device)  # [columns, pairs]
        self.n_cols = len(index)
        at = _end_positions(self.pos_labels, index, self.lengths, self.nb, self.P)
        self.metric = _build_metric(spec, self.model, self.nb, self.P, self.device, at)

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

    # -- running and collecting ----------------------------------------------------------

    def run(self, max_seconds):
        t0 = time.perf_counter()
        chunk_fn = self._chunk_fast if self.path == "fast" else self._chunk_full
        while self.queue and (time.perf_counter() - t0 < max_seconds or not self.pending):
            chunk = self._next_chunk()
            values = chunk_fn(chunk)
            # Only a finished chunk leaves the queue: an interrupt keeps the state consistent.
            self.pending.append(([c.flat for c in chunk], values))
            taken = {c.flat for c in chunk}
            self.queue = [c for c in self.queue if c.flat not in taken]
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


def planned():
    """The queued cells' flat indices, in plan order: the server shares them out among kernels."""
    return [c.flat for c in _SWEEP.queue] if _SWEEP is not None else []


def assign(cells):
    """Queue exactly ``cells`` (flat indices, in the order given) for the next ``run`` calls.

    One sweep split over several kernels: every kernel prepares it, then runs the cells the
    server hands it, a chunk at a time. Results already finished stay pending until collected.
    """
    if _SWEEP is None:
        raise TlensError("no-sweep", "no sweep is prepared in this kernel (was it restarted?).")
    s = _SWEEP
    by_flat = {c.flat: c for c in _grid_cells(s.kind, s.L, s.P, s.H)}
    s.queue = [by_flat[int(f)] for f in cells]
    return len(s.queue)


_API.update({"prepare": prepare, "run": run, "collect": collect, "release": release,
             "planned": planned, "assign": assign})
