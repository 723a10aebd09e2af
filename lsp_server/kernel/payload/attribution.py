"""tlens in-kernel payload, part: attribution patching (``_SweepAttribution``).

A first-order estimate of every cell from one forward of the clean and corrupted prompts and
one backward pass: no patched forwards at all. The forward can stop at the final residual and
unembed only the positions the metric reads, once the model's own ln_final + unembed are shown
to reproduce its logits.
"""

import time

from .core import TlensError, _finite
from .metrics import _CallableMetric, _LogitDiff, _to_float
from .sweep_grid import _BLOCK_PANELS, _site_hook_name
from .sweep_replay import _VALIDATED


class _SweepAttribution:
    """Part of ``_Sweep`` (sweep.py): ``prepare`` of the ``attribution`` kind."""

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
        L, P, H = self.L, self.n_cols, self.H
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
                row = delta.sum(dim=(0, 2)) if self.pos_labels is None else self._per_label(delta.sum(dim=2))
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

    def _per_label(self, per_pos):
        """[pairs, P] -> [labels]: each pair's value at its own position of each label, summed."""
        pairs = self.torch.arange(self.nb, device=per_pos.device)[None, :]
        return per_pos[pairs, self.pos_index.to(per_pos.device)].sum(dim=1)

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
