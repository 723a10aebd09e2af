"""payload/positions.py and sweep_prefix.py in-process, on a tiny random TransformerBridge (TL 4.x).

The compute floor: a replay that runs only the positions a patch can change (reusing the corrupted
run's keys/values before them) equals patched forwards of the model, and equals the replay of every
position. Batches: pairs split over forwards by a memory budget give the same values; a position
labelling aligns pairs of different lengths (checked against a hand-written patching loop).
The kernel tests (test_sweeps_*.py) compare whole sweeps with transformer_lens.patching.
"""

from __future__ import annotations

import math

import pytest
import torch

from ..tiny_models import bridge_setup
from .installed import answer, install

pytestmark = pytest.mark.slow

EXTRA = '''
torch.manual_seed(5)
rand_clean = torch.randint(0, 50000, (4, 9))
rand_corrupted = torch.randint(0, 50000, (4, 9))
ragged_clean = ["When Mary and John went to the store, John gave a drink to", "After Anna and Bob ate, Bob gave a gift to"]
ragged_corrupted = ["When Mary and John went to the store, Mary gave a drink to", "After Anna and Bob ate, Anna gave a gift to"]
_c = [model.to_tokens(p)[0] for p in ragged_clean]
_k = [model.to_tokens(p)[0] for p in ragged_corrupted]
word_idx = {"IO": [2, 2], "S2": [int((a != b).nonzero()[0]) for a, b in zip(_c, _k)], "END": [len(t) - 1 for t in _c]}
'''
SPEC = {"model": "model", "clean": "rand_clean", "corrupted": "rand_corrupted", "answer": "answer", "wrong": "wrong"}


@pytest.fixture(scope="module")
def notebook() -> dict:
    ns: dict = {}
    exec(bridge_setup(n_layers=2, d_model=32, n_heads=2) + EXTRA, ns)
    install(ns)
    return ns


@pytest.fixture
def tlens(notebook):
    tlens = notebook["__tlens__"]
    saved = dict(tlens._OPTIONS)
    yield tlens
    tlens._OPTIONS.update(saved)
    tlens.release()


def _prepare(tlens, **spec):
    out = answer(tlens, "prepare", spec={**SPEC, **spec})
    assert out["ok"], out
    return out["value"]


def _sweep(tlens, **spec):
    """(prepare's answer, every cell's value) of a whole sweep run in-process."""
    prepared = _prepare(tlens, **spec)
    grid = [None] * math.prod(prepared["grid_shape"])
    steps = [prepared["precomputed"]]
    while prepared["held"]:
        steps.append(answer(tlens, "run", max_seconds=30)["value"])
        if steps[-1]["done"] >= steps[-1]["total"]:
            break
    for step in steps:
        for cell, value in zip(step["cells"], step["values"]):
            grid[cell] = value
    assert None not in grid
    tlens.release()
    return prepared, grid


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 * (1 + abs(b))


@pytest.mark.parametrize("kind", ["resid_pre", "resid_post", "heads", "heads_by_pos", "block"])
def test_replaying_only_the_positions_a_patch_changes_equals_patched_forwards(tlens, kind):
    # Unrelated prompts: no cell is skipped, and a cell at position p still shares positions < p.
    prepared = _prepare(tlens, kind=kind)
    sweep = tlens._SWEEP
    assert prepared["reuse_prefix"] and sweep.reuse and prepared["path"] == "fast"
    sweep.cells_full_length, sweep.rows_per_chunk = 2, 4  # several chunks, each of cells that start alike
    firsts = []
    while sweep.queue:
        chunk = sweep._next_chunk()
        firsts.append(sweep._first_position(chunk))
        fast, full = sweep._chunk_fast(chunk), sweep._chunk_full(chunk)
        assert all(_close(f, u) for f, u in zip(fast, full)), (kind, [c.flat for c in chunk], fast, full)
        taken = {c.flat for c in chunk}
        sweep.queue = [c for c in sweep.queue if c.flat not in taken]
    if kind != "heads":  # a head's output changes at every position of unrelated prompts
        assert max(firsts) > 0


def test_the_switch_turns_the_reuse_off_and_the_values_stay(tlens):
    on, with_reuse = _sweep(tlens, kind="block")
    tlens._OPTIONS["reuse_prefix"] = False
    off, without = _sweep(tlens, kind="block")
    assert on["reuse_prefix"] and not off["reuse_prefix"]
    assert all(_close(a, b) for a, b in zip(with_reuse, without))


def test_a_small_memory_budget_splits_the_pairs_and_gives_the_same_values(tlens):
    whole, values = _sweep(tlens, kind="heads_by_pos")
    tlens._OPTIONS["memory_budget"] = 1
    split, split_values = _sweep(tlens, kind="heads_by_pos")
    assert (whole["pairs_per_forward"], split["pairs_per_forward"]) == (4, 1)
    assert (whole["baseline_chunks"], split["baseline_chunks"]) == (1, 4)  # the baseline runs too
    assert all(abs(a - b) <= 1e-6 for a, b in zip(values, split_values))
    tlens._OPTIONS["memory_budget"] = 1
    _, callable_values = _sweep(tlens, kind="resid_pre", answer=None, wrong=None, metric="logit_diff")
    tlens._OPTIONS["memory_budget"] = None
    _, callable_whole = _sweep(tlens, kind="resid_pre", answer=None, wrong=None, metric="logit_diff")
    assert all(_close(a, b) for a, b in zip(callable_values, callable_whole))


def _hand_patched(notebook, sweep, layer, positions):
    """A hand-written patching loop's value: each pair patched at its own position, logit
    difference read at each pair's END."""
    model = notebook["model"]
    name = f"blocks.{layer}.hook_resid_pre"
    _, cache = model.run_with_cache(sweep.clean_tokens, names_filter=[name])
    clean = cache[name]

    def hook(act, hook):
        act = act.clone()
        for b, p in enumerate(positions):
            act[b, p] = clean[b, p]
        return act

    with torch.no_grad():
        logits = model.run_with_hooks(sweep.corr_tokens, fwd_hooks=[(name, hook)])
    end = notebook["word_idx"]["END"]
    a, w = notebook["answer"], notebook["wrong"]
    return float(torch.stack([logits[b, e, a] - logits[b, e, w] for b, e in enumerate(end)]).mean())


def test_a_position_labelling_aligns_pairs_of_different_lengths(tlens, notebook):
    spec = dict(kind="resid_pre", clean="ragged_clean", corrupted="ragged_corrupted", positions="word_idx")
    prepared, values = _sweep(tlens, **spec)
    assert prepared["pos_labels"] == ["IO", "S2", "END"] and prepared["position_labels"]
    assert prepared["grid_shape"] == [2, 3] and "each pair's END" in prepared["metric"]
    sweep = tlens._Sweep({**SPEC, **spec})
    lengths = [len(t) for t in notebook["_c"]]
    assert sweep.lengths == lengths and sweep.P == max(lengths) > min(lengths)
    for layer in range(2):
        for j, label in enumerate(["IO", "S2", "END"]):
            want = _hand_patched(notebook, sweep, layer, notebook["word_idx"][label])
            assert _close(values[layer * 3 + j], want), (layer, label, values[layer * 3 + j], want)
    _, attribution = _sweep(tlens, **{**spec, "kind": "attribution"})
    assert len(attribution) == 3 * 2 * 3


@pytest.mark.parametrize("metric", [{}, {"answer": None, "wrong": None, "metric": "logit_diff"}], ids=["answer", "callable"])
def test_labelled_pairs_of_different_lengths_split_over_baseline_forwards_give_the_same_values(tlens, metric):
    spec = dict(kind="block", clean="ragged_clean", corrupted="ragged_corrupted", positions="word_idx", **metric)
    whole, values = _sweep(tlens, **spec)
    tlens._OPTIONS["memory_budget"] = 1
    split, split_values = _sweep(tlens, **spec)
    assert (whole["baseline_chunks"], split["baseline_chunks"]) == (1, 2)
    assert max(abs(a - b) for a, b in zip(values, split_values)) <= 1e-6
    assert abs(whole["clean_value"] - split["clean_value"]) <= 1e-6


def test_padded_prompts_read_each_pairs_last_token(tlens, notebook):
    prepared = _prepare(tlens, kind="resid_pre", clean="ragged_clean", corrupted="ragged_corrupted")
    assert prepared["pos_labels"][0] == "<|endoftext|>" and not prepared["position_labels"]
    assert any("padded to" in note for note in prepared["notes"])
    sweep = tlens._SWEEP
    model, a, w = notebook["model"], notebook["answer"], notebook["wrong"]
    with torch.no_grad():
        logits = model(sweep.clean_tokens)
    want = float(torch.stack([logits[b, n - 1, a] - logits[b, n - 1, w] for b, n in enumerate(sweep.lengths)]).mean())
    assert _close(prepared["clean_value"], want)


@pytest.mark.parametrize("positions, message", [
    ("[1, 2]", "positions must be a dict of label -> token positions"),
    ("{'IO': [1, 2, 3]}", "positions['IO'] must give one token position per prompt pair (4); got 3."),
    ("{'IO': 40}", "positions['IO'][0] = 40 is outside prompt pair 0 (9 tokens)."),
    ("{'IO': [1, 'x', 2, 3]}", "positions['IO'][1] is 'x', not a token position."),
])
def test_a_bad_labelling_says_what_is_wrong(tlens, positions, message):
    out = answer(tlens, "prepare", spec={**SPEC, "positions": positions})
    assert out["code"] == "bad-positions" and out["error"].startswith(message), out


def test_block_arguments_are_cut_to_the_positions_run(tlens):
    P, q = 6, 2
    mask = torch.zeros(3, 1, P, P)
    assert tlens._cut(mask, q, P, None).shape == (3, 1, P - q, P)  # query rows only
    assert tlens._cut(torch.arange(P)[None], q, P, "position_ids").tolist() == [[2, 3, 4, 5]]
    cos = torch.zeros(1, P, 4)
    assert [t.shape for t in tlens._cut((cos, cos), q, P, "position_embeddings")] == [(1, P - q, 4)] * 2
    assert tlens._cut(torch.ones(3, P), q, P, "attention_mask").shape == (3, P)  # covers the prefix keys too
    assert tlens._cut(torch.ones(3, 5), q, P, "other").shape == (3, 5)
    with pytest.raises(tlens._Unsliceable):
        tlens._cut(torch.ones(3, P, 2), q, P, "unknown_per_position")
    entry = tlens._PrefixEntry(torch.zeros(2, q, 1, 4), torch.ones(2, q, 1, 4))
    keys, values = entry.append(torch.zeros(2, P - q, 1, 4), torch.zeros(2, P - q, 1, 4))
    assert keys.shape == values.shape == (2, P, 1, 4) and entry.past_keys.shape[1] == q  # frozen
