"""tlens in-kernel payload, part: planning a sweep (``_SweepPlan.prepare``).

The clean and corrupted runs (with the activations every cell patches, the corrupted residual
stream and each block's call arguments), the two baseline values, the positions the metric
reads, the cells, which of them need no run (identical activations), the queue order, how many
cells go in one forward, and the description of the grid the server renders.
"""

import math
import time

from .core import _finite
from .environment import _tl_version
from .inputs import _str_tokens
from .metric_reads import _metric_reads
from .metrics import _CallableMetric, _LogitDiff
from .sweep_baseline import _SweepBaseline
from .sweep_grid import _BLOCK_PANELS, _OPTIONS, _SITE_ORDER, _grid_cells, _grid_shape, _site_hook_name, _site_names
from .sweep_memory import _baseline_plan, _forward_budget, _free_memory, _model_shape, _row_bytes


class _SweepPlan(_SweepBaseline):
    """Part of ``_Sweep`` (sweep.py): everything ``prepare`` computes before the first chunk runs."""

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
        self.reuse = bool(_OPTIONS["reuse_prefix"])
        hook_dict = getattr(self.model, "hook_dict", {})
        kv_names = [n for n in self._prefix_hook_names() if n in hook_dict] if self.reuse else []
        corr_names = list(dict.fromkeys(site_names + stream + kv_names))
        self._plan_baselines(clean_names, corr_names)
        t_baselines = time.perf_counter()
        clean_logits, self.clean, _, _ = self._baseline_run(self.clean_tokens, clean_names)
        corr_logits, corr, recorded, seen = self._baseline_run(self.corr_tokens, corr_names, record=True)
        baselines_s = time.perf_counter() - t_baselines
        self.stream = [corr[n] for n in stream]  # residual entering stage s (s = L: final)
        self.block_args = recorded
        if self.reuse:
            self._keep_prefix(corr, seen)
            self.reuse = self.prefix is not None
        self.clean_value = self._metric_full(clean_logits)
        self.corr_value = self._metric_full(corr_logits)
        if isinstance(self.metric, _CallableMetric):
            self._settle_reads(clean_logits, corr_logits)
        self.reads = self.metric.reads
        del clean_logits, corr_logits

        cells = _grid_cells(self.kind, self.L, self.n_cols, self.H)
        skipped = self._identical_cells(cells, corr)
        del corr
        self.queue = [c for c in cells if c.flat not in skipped]
        self.queue.sort(key=_queue_key)
        self.total = len(cells)
        self.done = len(skipped)
        self.rows_per_chunk = self._rows_per_chunk()  # the fast-path size, for the check
        self._choose_path()
        self.rows_per_chunk = self._rows_per_chunk()
        return {
            "kind": self.kind,
            "grid_shape": _grid_shape(self.kind, self.L, self.n_cols, self.H),
            "total": self.total,
            "precomputed": {"cells": sorted(skipped), "values": [self.corr_value] * len(skipped)},
            "clean_value": _finite(self.clean_value),
            "corrupted_value": _finite(self.corr_value),
            **self._describe(),
            "work_total": self.work_total,
            "prepare_s": time.perf_counter() - t0,
            "baselines_s": baselines_s,
            "baselines_kept_bytes": self.baseline_kept,
        }

    def _plan_baselines(self, clean_names, corr_names):
        """Prompt pairs per baseline forward, from the device's memory (sweep_memory.py)."""
        torch = self.torch
        # Keys/values the compute floor keeps: hook_k/hook_v on HookedTransformer (in corr_names),
        # recorded from the attention on TransformerBridge.
        kv = [f"blocks.{l}.attn.hook_{x}" for l in range(self.L) for x in "kv"] if self.reuse else []
        names = clean_names + list(dict.fromkeys(corr_names + kv))
        kept = self.P if isinstance(self.metric, _CallableMetric) else len(self.metric.reads or range(self.P))
        where = "the GPU" if self.device.type == "cuda" else "the machine"
        plan = _baseline_plan(_model_shape(self.cfg, torch), self.nb, self.P, names, kept,
                              _free_memory(torch, self.device), _forward_budget(torch, self.device), where)
        self.baseline_pairs, self.baseline_chunks = plan["pairs"], plan["chunks"]
        self.baseline_kept = plan["held"]  # the estimate, reported for benchmarks/baseline_memory.py

    def _metric_full(self, logits):
        """The metric of a baseline run's kept logits (a logit difference: its read positions only)."""
        torch = self.torch
        with torch.no_grad():
            if isinstance(self.metric, _LogitDiff):
                return float(self.metric.scalar_at(logits).item())
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
        labels = self.pos_labels or _str_tokens(self.model, self.clean_tokens[0])
        return {
            "row_labels": [f"L{l}" for l in range(self.L)],
            "pos_labels": labels,
            "position_labels": self.pos_labels is not None,
            "head_labels": [f"H{h}" for h in range(self.H)],
            "panel_labels": list(_BLOCK_PANELS) if self.kind in ("block", "attribution") else None,
            "metric": self.metric.description,
            "backend": self.backend,
            "tl_version": _tl_version(),
            "torch": self.torch.__version__,
            "device": str(self.device),
            "dtype": str(getattr(self.cfg, "dtype", "")).replace("torch.", ""),
            "n_prompts": self.nb,
            "n_pos": self.n_cols,
            "reuse_prefix": bool(getattr(self, "reuse", False)),
            "pairs_per_forward": getattr(self, "pairs_per_forward", self.nb),
            "baseline_chunks": self.baseline_chunks,
            "baseline_pairs": self.baseline_pairs or self.nb,
            "path": self.path,
            "fallback_reason": self.fallback_reason,
            "reads": self.reads if getattr(self, "reads", None) is not None else "all",
            "rows_per_chunk": self.rows_per_chunk,
            "notes": self._notes(),
        }

    def _notes(self):
        notes = []
        if self.baseline_chunks > 1:
            notes.append(
                f"the clean and corrupted runs took {self.baseline_chunks} forwards each "
                f"(≤ {self.baseline_pairs} of the {self.nb} prompt pairs per forward) to fit the device's memory."
            )
        if self.lengths and not self.pos_labels:
            notes.append(
                f"prompts of {min(self.lengths)}-{max(self.lengths)} tokens padded to {self.P}: column p "
                "is token p of every pair; give `positions` (label -> position per pair) to align them."
            )
        if self.is_bridge and self.kind == "resid_mid":
            notes.append(
                "resid_mid is patched in the residual stream (as on HookedTransformer). On "
                "TransformerBridge, transformer_lens.patching with gradients enabled patches a "
                "copy, which reaches only the MLP input; under torch.no_grad it agrees with this."
            )
        return notes

    def _identical_cells(self, cells, corr):
        """Cells whose clean and corrupted activations are bit-identical; sets each cell's start.

        Patching such a cell changes nothing, so the patched run is the corrupted run and
        its value is exactly the corrupted baseline. This covers every position before the
        first token where clean and corrupted prompts differ (causal attention). A cell's
        ``start`` is the first token position its patch changes in any pair.
        """
        torch = self.torch
        idx = self.pos_index  # [columns, pairs]
        pairs = torch.arange(self.nb, device=idx.device)[None, :]
        col_start = idx.min(dim=1).values.tolist()
        same = {}
        for name, clean in self.clean.items():
            s = (clean == corr[name]).all(dim=-1)  # [nb, P] or, for hook_z, [nb, P, H]
            at = s[pairs, idx.to(s.device)].all(dim=1)  # [columns] or [columns, H]
            if name.endswith("hook_z"):
                differs = ~s.all(dim=0)  # [P, H]
                first = torch.where(differs.any(dim=0), differs.float().argmax(dim=0), 0)
                same[name] = (at.tolist(), s.all(dim=0).all(dim=0).tolist(), first.tolist())
            else:
                same[name] = (at.tolist(),)
        skipped = set()
        for c in cells:
            s = same[_site_hook_name(c.site, c.layer)]
            if c.site != "z":
                hit = s[0][c.pos]
            elif c.pos is not None:
                hit = s[0][c.pos][c.head]
            else:
                hit = s[1][c.head]
                c.start = s[2][c.head]
            if c.pos is not None:
                c.start = col_start[c.pos]
            if hit:
                skipped.add(c.flat)
        return skipped

    # -- chunk sizing ------------------------------------------------------------------

    def _rows_per_chunk(self):
        """Cells per forward: bounded by a memory budget and, on CPU, a token target."""
        P, nb = self.P, self.nb
        shape, budget = _model_shape(self.cfg, self.torch), _forward_budget(self.torch, self.device)
        k = len(self.reads) if self.reads is not None else P
        # Rows one forward fits, per path: the replay unembeds at most 4 positions at once (its tail
        # is sub-batched beyond that); model(tokens) returns the logits at every position.
        self.rows_fit = {path: max(1, budget // _row_bytes(shape, P, positions))
                         for path, positions in (("fast", min(k, 4)), ("fallback", P))}
        token_target = 1 << 17 if self.device.type == "cuda" else 1024
        rows_mem = self.rows_fit[self.path]
        rows_eff = max(1, token_target // P)
        # One cell's prompt pairs are split over forwards only when they do not fit at once.
        self.pairs_per_forward = min(nb, rows_mem)
        # Cells per forward over all P positions; a replay of fewer positions takes more
        # (``_next_chunk``), up to ``rows_per_chunk``, the returned cap.
        self.cells_full_length = max(1, min(rows_mem, rows_eff) // nb)
        if self.path == "fast" and getattr(self, "reuse", False):
            return self.cells_full_length * P
        return self.cells_full_length

    def _next_chunk(self):
        """The cells of the next forward: those that change the earliest position first, as
        many as fit (a replay of positions >= q costs about (P - q) / P of a full one)."""
        if not (self.path == "fast" and self.reuse):
            return self.queue[: self.rows_per_chunk]
        by_start = sorted(self.queue, key=lambda c: c.start)  # stable: queue order within a start
        q = self._first_position(by_start[:1])
        n = min(self.rows_per_chunk, max(1, self.cells_full_length * self.P // max(1, self.P - q)))
        # A chunk runs positions >= q for all its cells: cells that start later would recompute
        # positions they share with the corrupted run, so at most a quarter more is allowed.
        limit = q + (self.P - q) // 4
        chunk = [c for c in by_start[:n] if c.start <= limit] or by_start[:1]
        return sorted(chunk, key=_queue_key)


def _queue_key(c):
    """Queue order: by the layer a cell enters at, then in the order its hooks fire."""
    return (c.entry, _SITE_ORDER[c.site], c.layer, c.pos or 0, c.head or 0)

