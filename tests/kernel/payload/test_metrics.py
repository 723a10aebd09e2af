"""payload/metrics.py and payload/metric_reads.py: scoring logits, and the positions a metric reads."""

from __future__ import annotations

import pytest
import torch

from .installed import HookedTransformer

NB, P, V = 2, 5, 7


@pytest.fixture
def logits():
    return torch.randn(NB, P, V, generator=torch.Generator().manual_seed(0))


def _logit_diff(logits):
    return (logits[:, -1, 3] - logits[:, -1, 4]).mean()


def test_logit_diff_scores_one_run_and_many_cells_alike(tlens, logits):
    metric = tlens._LogitDiff(torch.tensor([3, 3]), torch.tensor([4, 4]), "d")
    assert float(metric.scalar(logits)) == pytest.approx(float(_logit_diff(logits)))
    assert float(metric.scalar_at(logits[:, -1:])) == pytest.approx(float(_logit_diff(logits)))
    cells = torch.cat([logits, 2 * logits])[:, -1:]  # two cells, each NB rows, at the read position
    assert metric.values(cells, 2, NB) == pytest.approx([float(_logit_diff(logits)), 2 * float(_logit_diff(logits))])


def test_a_callable_metric_sees_nan_where_it_does_not_read(tlens, logits):
    seen = []

    def metric(x):
        seen.append(x)
        return x[:, -1, 3].mean()

    m = tlens._CallableMetric(metric, "metric(logits)", P)
    m.reads = [P - 1]
    values = m.values(torch.cat([logits, logits + 1])[:, -1:], 2, NB)
    assert values == pytest.approx([float(logits[:, -1, 3].mean()), float(logits[:, -1, 3].mean()) + 1])
    assert seen[0].shape == (NB, P, V) and torch.isnan(seen[0][:, : P - 1]).all()
    m.reads = None
    assert m.values(torch.cat([logits, logits]), 2, NB) == pytest.approx([float(metric(logits))] * 2)


def test_a_metric_must_return_a_scalar(tlens):
    assert tlens._to_float(torch.tensor(2.5), "m") == 2.5 and tlens._to_float(3, "m") == 3.0
    with pytest.raises(tlens.TlensError, match=r"returned a tensor of shape \[2\]") as e:
        tlens._to_float(torch.ones(2), "m")
    assert e.value.code == "metric-not-scalar"
    with pytest.raises(tlens.TlensError, match="returned str; expected a scalar tensor or float"):
        tlens._to_float("x", "m")


@pytest.mark.parametrize("spec, message", [
    ({}, "give either `metric`"),
    ({"metric": "f", "answer": "a", "wrong": "b"}, "give either `metric`"),
    ({"answer": "a"}, "a logit difference needs both `answer` and `wrong`."),
    ({"metric": "not_callable"}, "the metric `not_callable` is a int, not a callable"),
])
def test_the_spec_gives_one_metric(tlens, user_ns, spec, message):
    user_ns["not_callable"] = 1
    with pytest.raises(tlens.TlensError, match=message) as e:
        tlens._build_metric(spec, HookedTransformer(), 1, P, "cpu")
    assert e.value.code == "bad-metric"


def test_built_metrics(tlens, user_ns):
    user_ns.update(f=_logit_diff, a="a", b=["b", "c"])
    callable_metric = tlens._build_metric({"metric": "f"}, HookedTransformer(), NB, P, "cpu")
    assert (callable_metric.description, callable_metric.reads) == ("f(logits)", None)
    diff = tlens._build_metric({"answer": "a", "wrong": "b"}, HookedTransformer(), NB, P, "cpu")
    assert diff.description == "logit diff 'a' − 'b'/'c' at last position (mean of 2 prompts)"
    assert diff.reads == [P - 1] and diff.answer.tolist() == [97, 97] and diff.wrong.tolist() == [98, 99]


@pytest.mark.parametrize("metric, reads", [
    (_logit_diff, [P - 1]),
    (lambda x: x[:, [0, 2], 1].sum(), [0, 2]),
    (lambda x: x[:, 1:3].float().sum(), [1, 2]),
    (lambda x: x.log_softmax(dim=-1)[:, -1, 3].mean(), [P - 1]),
    (lambda x: (x[..., -2, :] * 2 + 1).exp().sum(), [P - 2]),
    (lambda x: x.softmax(dim=1)[:, -1, 3].mean(), None),  # softmax over positions reads them all
    (lambda x: x.mean(), None),
    (lambda x: x[:, :, 0].sum(), None),  # every position
    (lambda x: x[x > 0].sum(), None),  # a boolean mask: unknown
    (lambda x: x.gather(2, torch.zeros(NB, P, 1, dtype=torch.long)).sum(), None),  # an op the tracer does not know
])
def test_metric_reads(tlens, logits, metric, reads):
    assert tlens._metric_reads(metric, logits) == reads


def test_a_metric_that_fails_on_the_tracer_reads_everything(tlens, logits):
    def picky(x):
        if type(x) is not torch.Tensor:
            raise TypeError("plain tensors only")
        return x[:, -1].sum()

    assert tlens._metric_reads(picky, logits) is None
