"""tlens in-kernel payload, part: the sweep's metric (a logit difference or the user's callable).

A metric turns logits into the scalar each patched run is scored by. Both kinds score many
cells from one batched forward (``values``) and can be given the logits at only the positions
they read (``reads``, see metric_reads.py), so the unembedding can skip the rest.
"""

from .core import TlensError
from .inputs import _eval, _tok_desc, _token_ids


class _LogitDiff:
    """Mean over prompts of logits[b, at_b, answer_b] - logits[b, at_b, wrong_b].

    ``at`` is each prompt's read position (None: the last position of every prompt); padded
    or labelled batches read each pair at its own END.
    """

    def __init__(self, answer, wrong, description, at=None):
        self.answer = answer
        self.wrong = wrong
        self.description = description
        self.at = at  # list of positions, one per prompt, or None
        self.reads = None  # [P - 1] or the sorted positions of ``at``, set by _build_metric
        self.differentiable = True

    def _cols(self, device):
        """Per prompt, which of the read positions (columns of the selected logits) it reads."""
        import torch

        if self.at is None or self.reads is None:
            return None
        return torch.tensor([self.reads.index(a) for a in self.at], device=device)

    def _diff(self, sel, cols, n_cells):
        """sel [n_cells*nb, k, V] (read positions) -> [n_cells*nb] answer - wrong."""
        import torch

        if cols is None:
            last = sel[:, -1, :]
        else:
            rows = torch.arange(sel.shape[0], device=sel.device)
            last = sel[rows, cols.repeat(n_cells)]
        a = self.answer.to(last.device).repeat(n_cells)
        w = self.wrong.to(last.device).repeat(n_cells)
        return last.gather(1, a[:, None]) - last.gather(1, w[:, None])

    def scalar(self, logits):
        """logits [nb, P, V] -> scalar tensor (differentiable)."""
        if self.at is None:
            return self._diff(logits, None, 1).mean()
        import torch

        return self._diff(logits, torch.tensor(self.at, device=logits.device), 1).mean()

    def scalar_at(self, logits_sel):
        """Differentiable metric from logits at ``self.reads`` only ([nb, k, V])."""
        return self._diff(logits_sel, self._cols(logits_sel.device), 1).mean()

    def values(self, logits_sel, n_cells, nb):
        """logits_sel [n_cells*nb, k, V] at self.reads (last entry = position P-1)."""
        diff = self._diff(logits_sel, self._cols(logits_sel.device), n_cells)
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


def _build_metric(spec, model, nb, n_pos, device, at=None):
    """The metric a spec asks for: ``metric`` (a callable) or ``answer`` and ``wrong`` (a logit difference).

    ``at``: where a logit difference reads each prompt (None: the last position of all).
    """
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
        return _CallableMetric(fn, f"{spec['metric']}(logits)", n_pos)
    if not spec.get("answer") or not spec.get("wrong"):
        raise TlensError("bad-metric", "a logit difference needs both `answer` and `wrong`.")
    a = _token_ids(model, _eval(spec["answer"], "answer"), nb, "answer")
    w = _token_ids(model, _eval(spec["wrong"], "wrong"), nb, "wrong")
    at = None if at is None or all(p == n_pos - 1 for p in at) else list(at)
    where = "last position" if at is None else "each pair's END"
    desc = f"logit diff {_tok_desc(model, a)} − {_tok_desc(model, w)} at {where}"
    if nb > 1:
        desc += f" (mean of {nb} prompts)"
    m = _LogitDiff(a.to(device), w.to(device), desc, at)
    m.reads = [n_pos - 1] if at is None else sorted(set(at))
    return m
