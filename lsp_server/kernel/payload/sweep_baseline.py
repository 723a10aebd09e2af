"""tlens in-kernel payload, part: the clean and corrupted baseline runs (``_SweepBaseline``).

Each run is a ``run_with_cache`` of the activations the sweep patches (the corrupted run also
records the residual entering each block, each block's call arguments and, for the compute
floor, the keys/values). A batch of many prompt pairs runs ``baseline_pairs`` pairs at a time
(sweep_memory.py sizes it to the device's memory); the chunks' per-pair tensors are joined along
the pair axis, so the sweep sees one batch either way. Of the logits only the positions a logit
difference reads are kept; a callable metric gets them all.
"""

from .core import TlensError
from .metrics import _CallableMetric


class _SweepBaseline:
    """Part of ``_Sweep`` (sweep.py): the two baseline runs of ``prepare`` (sweep_plan.py)."""

    baseline_pairs = None  # prompt pairs per baseline forward (None: all at once)
    baseline_chunks = 1  # forwards per baseline run

    def _baseline_run(self, tokens, names, record=False):
        """(logits kept, activations by name, each block's call arguments, recorded keys/values)
        of ``tokens``, ``baseline_pairs`` prompt pairs per forward."""
        step = self.baseline_pairs or self.nb
        sizes = [min(step, self.nb - b0) for b0 in range(0, self.nb, step)]
        chunks = []
        for b0 in range(0, self.nb, step):
            with self._recording_kv() if record else _Nothing() as kv:
                logits, acts, blocks = self._cache_run(tokens[b0 : b0 + step], names, record_blocks=record)
            chunks.append([self._kept_logits(logits), acts, blocks, kv.seen])
            del logits
        if len(chunks) == 1:
            return tuple(chunks[0])
        # Joined one part at a time, each chunk's tensors dropped once joined: the peak stays
        # what is kept plus one activation.
        return tuple(_join([c.pop(0) for c in chunks], sizes, self.torch) for _ in range(4))

    def _kept_logits(self, logits):
        if isinstance(self.metric, _CallableMetric) or self.metric.reads is None:
            return logits
        return logits[:, self.metric.reads]

    def _cache_run(self, tokens, names, record_blocks=False):
        """run_with_cache on ``names``; optionally record each block's call arguments (less the
        residual it is called on, which the replay supplies)."""
        torch = self.torch
        model = self.model
        recorded = {}
        handles = []

        def make_pre(layer):
            def pre(module, args, kwargs):
                kw = {k: (None if k == "hidden_states" else v) for k, v in kwargs.items()}
                recorded[layer] = ((None,) + tuple(args[1:]) if args else (), kw)

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


class _Nothing:
    """A context that records nothing (``seen`` stays empty)."""

    def __enter__(self):
        self.seen = {}
        return self

    def __exit__(self, *exc):
        return False


def _join(parts, sizes, torch):
    """The chunks' versions of one object joined: tensors with a row per pair of every chunk
    are concatenated along the pairs; anything else (masks shared by the batch, flags) is the
    first chunk's. Dict entries are taken out of the chunks as they are joined."""
    first = parts[0]
    if isinstance(first, dict):
        return {k: _join([p.pop(k) for p in parts], sizes, torch) for k in list(first)}
    if isinstance(first, (tuple, list)):
        joined = [_join([p[i] for p in parts], sizes, torch) for i in range(len(first))]
        return tuple(joined) if isinstance(first, tuple) else joined
    if isinstance(first, torch.Tensor) and all(
        isinstance(p, torch.Tensor) and p.ndim >= 1 and p.shape[0] == n for p, n in zip(parts, sizes)
    ):
        return torch.cat(parts)
    return first
