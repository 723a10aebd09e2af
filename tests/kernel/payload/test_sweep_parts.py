"""payload/sweep*.py and attribution.py in-process, on a tiny random TransformerBridge (TL 4.x).

Checks each job on its own: the plan (skipped cells really are the corrupted run, the queue order),
the replay (the batched replay equals patched forwards of the model on every cell), the run/collect
loop (every cell handed over once, a lost hand-over resent), attribution, and the spec's errors.
The kernel tests (test_sweeps_*.py) compare whole sweeps with transformer_lens.patching.
"""

from __future__ import annotations

import pytest
import torch

from ..tiny_models import bridge_setup
from .installed import answer, install

pytestmark = pytest.mark.slow

SPEC = {"model": "model", "clean": "clean_tokens", "corrupted": "corrupted_tokens", "answer": "answer", "wrong": "wrong"}


@pytest.fixture(scope="module")
def notebook() -> dict:
    ns: dict = {}
    exec(bridge_setup(n_layers=2, d_model=32, n_heads=2), ns)
    install(ns)
    return ns


@pytest.fixture
def tlens(notebook):
    tlens = notebook["__tlens__"]
    yield tlens
    tlens.release()


def _prepare(tlens, **spec):
    out = answer(tlens, "prepare", spec={**SPEC, **spec})
    assert out["ok"], out
    return out["value"]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 * (1 + abs(b))


@pytest.mark.parametrize("kind", ["resid_pre", "resid_post", "attn_out", "heads", "heads_by_pos", "block"])
def test_the_batched_replay_equals_patched_forwards_on_every_cell(tlens, kind):
    prepared = _prepare(tlens, kind=kind)
    sweep = tlens._SWEEP
    assert prepared["path"] == "fast" and sweep.queue
    for i in range(0, len(sweep.queue), 7):
        chunk = sweep.queue[i : i + 7]
        fast, full = sweep._chunk_fast(chunk), sweep._chunk_full(chunk)
        assert all(_close(f, u) for f, u in zip(fast, full)), (kind, [c.flat for c in chunk], fast, full)


@pytest.mark.parametrize("kind", ["resid_pre", "block"])
def test_the_plan_skips_only_cells_whose_patch_changes_nothing(tlens, kind):
    prepared = _prepare(tlens, kind=kind)
    sweep = tlens._SWEEP
    skipped = set(prepared["precomputed"]["cells"])
    assert skipped and prepared["precomputed"]["values"] == [prepared["corrupted_value"]] * len(skipped)
    cells = [c for c in tlens._grid_cells(kind, sweep.L, sweep.P, sweep.H) if c.flat in skipped]
    differs = int((sweep.clean_tokens != sweep.corr_tokens).nonzero()[0, 1])
    assert all(c.pos != differs for c in cells)  # the one token where the prompts differ is always patched
    assert all(_close(v, prepared["corrupted_value"]) for v in sweep._chunk_full(cells))
    order = [(c.entry, tlens._SITE_ORDER[c.site]) for c in sweep.queue]
    assert order == sorted(order) and sweep.rows_per_chunk >= 1
    probed = [flat for flats, _ in sweep.pending for flat in flats]  # the cells the replay was checked on
    assert sweep.done == len(skipped) + len(probed) and prepared["total"] == sweep.done + len(sweep.queue)


def test_run_and_collect_hand_over_every_cell_once(tlens):
    prepared = _prepare(tlens, kind="heads_by_pos")
    sweep = tlens._SWEEP
    sweep.rows_per_chunk = 5
    seen = list(prepared["precomputed"]["cells"])
    first = answer(tlens, "collect")["value"]  # the two cells the replay was checked on
    seen += first["cells"]
    while sweep.queue:
        step = answer(tlens, "run", max_seconds=0)["value"]
        assert 1 <= len(step["cells"]) <= 5 and len(step["values"]) == len(step["cells"])  # one chunk per run at 0 s
        seen += step["cells"]
    assert sorted(seen) == list(range(prepared["total"]))
    assert (step["done"], step["work_done"]) == (prepared["total"], step["work_total"])
    resent = answer(tlens, "collect", resend=True)["value"]  # the reply to the last run may have been lost
    assert (resent["cells"], resent["values"]) == (step["cells"], step["values"])
    assert answer(tlens, "release")["value"] is True
    assert answer(tlens, "collect")["value"] == {"cells": [], "values": [], "done": 0, "total": 0, "work_done": 0,
                                                 "work_total": 0}
    assert answer(tlens, "run")["code"] == "no-sweep"


def test_attribution_is_the_corrupted_value_where_clean_and_corrupted_agree(tlens):
    spec = {**SPEC, "kind": "attribution", "answer": None, "wrong": None, "metric": "logit_diff"}
    prepared = answer(tlens, "prepare", spec=spec)["value"]
    sweep = tlens._Sweep(spec)
    L, P, H = sweep.L, sweep.P, sweep.H
    assert (prepared["path"], prepared["held"], prepared["grid_shape"]) == ("gradient", False, [3, L, P])
    assert tlens._SWEEP is None  # every value came back at once: the kernel keeps nothing
    grid = prepared["precomputed"]["values"]
    first_diff = int((sweep.clean_tokens != sweep.corr_tokens).nonzero()[0, 1])
    same = [grid[(i * L + l) * P + p] for i in range(3) for l in range(L) for p in range(first_diff)]
    assert same and all(v == pytest.approx(prepared["corrupted_value"], abs=1e-5) for v in same)
    assert len(prepared["head_values"]) == L and all(len(row) == H for row in prepared["head_values"])
    assert sweep._tail_reproduces_logits()  # so the forward stopped at the final residual


@pytest.mark.parametrize("spec, code, message", [
    ({"kind": "resid"}, "bad-kind", "unknown sweep kind 'resid'"),
    ({"clean": "nowhere + clean_tokens"}, "missing-variables", "not defined in the kernel: nowhere."),
    ({"model": "tokenizer"}, "not-a-model", "`tokenizer` is a"),
    ({"corrupted": "corrupted_tokens[:, :-1]"}, "shape-mismatch", "clean tokens have shape"),
    ({"answer": "' Mary and'"}, "multi-token", "answer ' Mary and' is"),
])
def test_a_bad_spec_is_refused_with_its_code(tlens, spec, code, message):
    out = answer(tlens, "prepare", spec={**SPEC, **spec})
    assert out["code"] == code and message in out["error"], out
    assert tlens._SWEEP is None


def test_a_model_in_training_mode_is_refused(tlens, notebook):
    notebook["model"].train()
    try:
        assert answer(tlens, "prepare", spec=SPEC)["code"] == "training-mode"
    finally:
        notebook["model"].eval()


def test_replay_helpers(tlens):
    per_prompt = torch.arange(6).view(2, 3)
    assert tlens._tile(per_prompt, 2, 6, torch).tolist() == [[0, 1, 2], [3, 4, 5]] * 3
    assert tlens._tile((per_prompt, [per_prompt[:1]]), 2, 4, torch)[1][0].shape == (1, 3)  # not per prompt: kept
    assert tlens._tile(type("DynamicCache", (), {})(), 2, 4, torch) is None  # replays run without a KV cache
    assert tlens._module_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert tlens._module_device(torch.nn.ReLU()) is None
    assert tlens._mem_available() > 0
