"""tlens in-kernel payload, part: patched forwards (``_SweepReplay``), the heart of a sweep.

A chunk of cells runs as one batch, cell i owning rows [i*nb, (i+1)*nb). Two ways:
  fast      the batched replay: each row joins the batch at the layer it is patched at, fed
            from the cached corrupted residual; blocks are called with their recorded
            arguments on the positions the patch can change (sweep_prefix.py); only the
            positions the metric reads are unembedded.
  fallback  ``model.hooks(...)`` + ``model(tokens)`` on the whole batch, as
            transformer_lens.patching does.
``_choose_path`` trusts the fast path only after it agrees with the fallback on two cells.
"""

from .sweep_grid import _site_hook_name
from .sweep_prefix import _SweepPrefix

# Per model object: (id, class, n_layers, batch, pos) -> None (batched replay ok) or why not;
# ("tail", id, class, n_layers) -> whether ln_final + unembed reproduce the logits.
_VALIDATED = {}


class _SweepReplay(_SweepPrefix):
    """Part of ``_Sweep`` (sweep.py): computes the metric of patched runs, a chunk of cells at a time."""

    def _choose_path(self):
        """Trust the batched replay only if it matches patched forwards of the model itself.

        Two queued cells are computed both ways: by the replay (rows entering at their
        layer, recorded block arguments, tail on the read positions, and, with the prefix
        reuse, only the positions each cell can change) and by plain ``model.hooks(...)`` +
        ``model(tokens)``, which is what transformer_lens.patching does. Their exact values are
        kept as results. If the replay with the prefix reuse disagrees, the replay of every
        position is tried. The verdict is remembered per model object and input shape for the
        rest of the kernel session.
        """
        key = (id(self.model), type(self.model).__name__, self.L, self.nb, self.P)
        reuse_key = ("prefix",) + key
        if key in _VALIDATED and (not self.reuse or reuse_key in _VALIDATED):
            reason = _VALIDATED[key]
            self.reuse = self.reuse and _VALIDATED[reuse_key]
        elif not self.queue:
            return
        else:
            probe = list(dict.fromkeys([self.queue[len(self.queue) // 2], self.queue[-1]]))
            full = self._chunk_full(probe)
            reason = self._disagreement(probe, full)
            if self.reuse:
                _VALIDATED[reuse_key] = reason is None
                if reason is not None:
                    self.reuse = False
                    reason = self._disagreement(probe, full)
            _VALIDATED[key] = reason
            self.pending.append(([c.flat for c in probe], full))
            for c in probe:
                self.queue.remove(c)
            self.done += len(probe)
        if reason is not None:
            self.path = "fallback"
            self.fallback_reason = reason
        self.work_total = sum(self._work(c) for c in self.queue)

    def _disagreement(self, probe, full):
        """Why the replay cannot be trusted on ``probe`` (None: it agrees with ``full``)."""
        try:
            runs = [self._chunk_fast(probe)] + [self._chunk_fast([c]) for c in probe] * (len(probe) > 1)
            got = [list(zip(runs[0], full))] + [[(r[0], u)] for r, u in zip(runs[1:], full)]
            bad = [(f, u) for pairs in got for f, u in pairs if not abs(f - u) <= 1e-4 * (1 + abs(u))]
            return f"the batched replay differs from patched forwards {bad}" if bad else None
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - an architecture the replay cannot drive
            return f"the batched replay failed: {type(e).__name__}: {e}"

    def _work(self, cell):
        return cell.work if self.path == "fast" else self.L + 1

    def _first_position(self, cells):
        """The first position a replay of ``cells`` runs: earlier ones equal the corrupted run."""
        if not self.reuse:
            return 0
        q = min(c.start for c in cells)
        return min(q, min(self.reads)) if self.reads is not None else 0

    def _block(self, layer, x, q=0):
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
        if q > 0:
            out = self._suffix_call(layer, block, x, rest, kw, q)
        elif args:
            out = block(x, *rest, **kw)
        else:
            kw["hidden_states"] = x
            out = block(**kw)
        return out[0] if isinstance(out, tuple) else out

    def _select(self, logits, q=0):
        return logits if self.reads is None else logits[:, [r - q for r in self.reads]]

    def _tail(self, resid, select=True, q=0):
        """Final residual [rows, P - q, d] -> logits at the read positions only."""
        torch = self.torch
        model = self.model
        x = self._select(resid, q) if select else resid
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

    def _hooks(self, cells, input_hooks, q=0):
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
            hooks.append((name, self._make_hook(name, [cells[i] for i in idx], idx, torch, q)))
        return hooks

    def _make_hook(self, name, group, idx, torch, q):
        """One hook patching ``group``; activations hold positions >= q; pair b of cell i
        is patched at its own token position ``pos_index[column, b]``."""
        nb = self.nb
        clean = self.clean[name]
        dev = clean.device
        cell_idx = torch.tensor(idx, device=dev)[:, None]
        pairs = torch.arange(nb, device=dev)[None, :]
        is_z = name.endswith("hook_z")
        cols = torch.tensor([c.pos if c.pos is not None else 0 for c in group], device=dev)
        pos = self.pos_index.to(dev)[cols]  # [cells, pairs]
        head = torch.tensor([c.head if c.head is not None else 0 for c in group], device=dev)
        all_pos = is_z and group[0].pos is None

        def hook(act, hook):
            if not act.is_contiguous():
                act = act.contiguous()
            a = act.view(act.shape[0] // nb, nb, *act.shape[1:])
            src = clean.to(act.device, act.dtype)
            ci, b = cell_idx.to(act.device), pairs.to(act.device)
            if all_pos:
                h = head.to(act.device)
                a[ci[:, 0], :, :, h] = src[:, q:, h].permute(2, 0, 1, 3)
            elif not is_z:
                p = pos.to(act.device)
                a[ci, b, p - q] = src[b, p]
            else:
                p, h = pos.to(act.device), head.to(act.device)[:, None]
                a[ci, b, p - q, h] = src[b, p, h]
            return act

        return hook

    def _chunk_fast(self, cells):
        return self._score(cells, self._replay, "fast")

    def _chunk_full(self, cells):
        return self._score(cells, self._forward, "fallback")

    def _score(self, cells, replay, path):
        """Metric values of ``cells``; a batch too big for one forward runs a slice of its
        prompt pairs at a time, and the metric sees all of them at once."""
        torch = self.torch
        n, nb = len(cells), self.nb
        step = self.pairs_per_forward
        if path == "fallback" and hasattr(self, "rows_fit"):
            # model(tokens) returns every position's logits: the fast path's check runs it on rows
            # sized for the replay, so its slice follows what a full forward fits.
            step = min(nb, max(1, self.rows_fit["fallback"] // n))
        if step >= nb:
            return self.metric.values(replay(cells), n, nb)
        parts = []
        for b0 in range(0, nb, step):
            with _Pairs(self, b0, min(nb, b0 + step)):
                sel = replay(cells)
            parts.append(sel.view(n, -1, *sel.shape[1:]))
        return self.metric.values(torch.cat(parts, 1).flatten(0, 1), n, nb)

    def _replay(self, cells):
        """The batched replay of ``cells`` (sorted by entry) -> logits at the read positions."""
        torch = self.torch
        nb = self.nb
        q = self._first_position(cells)
        with torch.no_grad(), self.model.hooks(fwd_hooks=self._hooks(cells, input_hooks=False, q=q)):
            x = None
            i = 0
            n = len(cells)
            for s in range(cells[0].entry, self.L + 1):
                j = i
                while j < n and cells[j].entry == s:
                    j += 1
                if j > i:
                    new = self.stream[s][:, q:].repeat(j - i, 1, 1)
                    for k in range(i, j):
                        if cells[k].site in ("resid_pre", "resid_post"):
                            self._patch_rows(new, k - i, cells[k], q)
                    x = new if x is None else torch.cat([x.to(new.device), new])
                    i = j
                if s == self.L:
                    break
                x = self._block(s, x, q)
            return self._tail(x, q=q)

    def _patch_rows(self, x, k, cell, q):
        """Write the clean residual of ``cell`` into its rows (the k-th cell of ``x``)."""
        torch = self.torch
        src = self.clean[_site_hook_name(cell.site, cell.layer)].to(x.device, x.dtype)
        b = torch.arange(self.nb, device=x.device)
        p = self.pos_index[cell.pos].to(x.device)
        x[k * self.nb + b, p - q] = src[b, p]

    def _forward(self, cells):
        torch = self.torch
        tokens = self.corr_tokens.repeat(len(cells), 1)
        with torch.no_grad(), self.model.hooks(fwd_hooks=self._hooks(cells, input_hooks=True)):
            logits = self.model(tokens)
        return self._select(logits)


class _Pairs:
    """Context: the sweep's per-pair state narrowed to pairs [b0, b1) (restored on exit)."""

    FIELDS = ("nb", "stream", "clean", "block_args", "prefix", "pos_index", "corr_tokens")

    def __init__(self, sweep, b0, b1):
        self.sweep, self.b0, self.b1 = sweep, b0, b1

    def __enter__(self):
        s, b0, b1 = self.sweep, self.b0, self.b1
        self.saved = {f: getattr(s, f) for f in self.FIELDS}
        nb = s.nb
        s.nb = b1 - b0
        s.stream = [_narrow(t, nb, b0, b1) for t in s.stream]
        s.clean = {k: _narrow(v, nb, b0, b1) for k, v in s.clean.items()}
        s.block_args = {k: _narrow(v, nb, b0, b1) for k, v in s.block_args.items()}
        s.prefix = _narrow(s.prefix, nb, b0, b1)
        s.pos_index = s.pos_index[:, b0:b1]
        s.corr_tokens = s.corr_tokens[b0:b1]
        return self

    def __exit__(self, *exc):
        for f, v in self.saved.items():
            setattr(self.sweep, f, v)
        return False


def _narrow(obj, nb, b0, b1):
    """Per-prompt tensors (batch ``nb`` first) cut to prompts [b0, b1); other objects kept."""
    if hasattr(obj, "shape") and hasattr(obj, "narrow"):
        return obj[b0:b1] if obj.ndim >= 1 and obj.shape[0] == nb else obj
    if isinstance(obj, tuple):
        return tuple(_narrow(o, nb, b0, b1) for o in obj)
    if isinstance(obj, list):
        return [_narrow(o, nb, b0, b1) for o in obj]
    if isinstance(obj, dict):
        return {k: _narrow(v, nb, b0, b1) for k, v in obj.items()}
    return obj


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
