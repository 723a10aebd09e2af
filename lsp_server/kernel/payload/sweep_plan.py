"""tlens in-kernel payload, part: planning a sweep (``_SweepPlan.prepare``).

The clean and corrupted runs (with the activations every cell patches, the corrupted residual
stream and each block's call arguments), the two baseline values, the positions the metric
reads, the cells, which of them need no run (identical activations), the queue order, how many
cells go in one forward, and the description of the grid the server renders.
"""

import math
import time

from .core import TlensError, _finite
from .environment import _tl_version
from .inputs import _str_tokens
from .metric_reads import _metric_reads
from .metrics import _CallableMetric, _LogitDiff
from .sweep_grid import _BLOCK_PANELS, _SITE_ORDER, _grid_cells, _grid_shape, _site_hook_name, _site_names


class _SweepPlan:
    """Part of ``_Sweep`` (sweep.py): everything ``prepare`` computes before the first chunk runs."""

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
        sites = _site_names(self.kind)
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

        cells = _grid_cells(self.kind, self.L, self.P, self.H)
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
            "grid_shape": _grid_shape(self.kind, self.L, self.P, self.H),
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


def _mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30
