"""payload/sweep_memory.py: what a sweep's baseline runs keep and how many prompt pairs a forward takes.

Pure arithmetic on a model's shape: no model is built. The kernel tests check that baselines split
this way give the values of unsplit ones (test_sweeps_*.py).
"""

from __future__ import annotations

import pytest

from .installed import answer, install

GB = 1 << 30
# A 7B Llama-shaped model in float16.
SHAPE_7B = {"d_model": 4096, "d_mlp": 11008, "n_heads": 32, "d_head": 128, "n_kv_heads": 32, "d_vocab": 32000, "elem": 2}


@pytest.fixture(scope="module")
def tlens():
    return install()


def resid_pre_names(L: int) -> list[str]:
    """What a resid_pre sweep's runs cache: clean resid_pre; corrupted resid_pre, the final
    residual and the keys/values of the compute floor."""
    clean = [f"blocks.{l}.hook_resid_pre" for l in range(L)]
    kv = [f"blocks.{l}.attn.hook_{x}" for l in range(L) for x in "kv"]
    return clean + clean + [f"blocks.{L - 1}.hook_resid_post"] + kv


def test_32_pairs_on_a_7b_shaped_model_fit_in_80_gb(tlens):
    names, P = resid_pre_names(32), 1024
    plan = tlens._baseline_plan(SHAPE_7B, 32, P, names, 1, 80 * GB, int(0.4 * 80 * GB))
    assert plan["held"] == 32 * (len(names) * P * 4096 * 2 + 2 * 32000 * 2)  # ~32 GB kept
    assert plan["pairs"] * plan["chunks"] >= 32
    assert plan["held"] + plan["pairs"] * plan["pair_bytes"] <= 0.8 * 80 * GB
    # A smaller forward budget splits the runs; each forward stays within it.
    small = tlens._baseline_plan(SHAPE_7B, 32, P, names, 1, 80 * GB, 2 * GB)
    assert small["chunks"] >= 3 and small["pairs"] * small["chunks"] >= 32
    assert small["pairs"] * small["pair_bytes"] <= 2 * GB


def test_the_forward_budget_never_goes_below_one_pair(tlens):
    plan = tlens._baseline_plan(SHAPE_7B, 5, 16, resid_pre_names(32), 1, 80 * GB, 1)
    assert (plan["pairs"], plan["chunks"]) == (1, 5)


def test_too_little_memory_says_what_to_change(tlens):
    with pytest.raises(tlens.TlensError) as caught:
        tlens._baseline_plan(SHAPE_7B, 32, 1024, resid_pre_names(32), 1, 8 * GB, 2 * GB, "the CUDA device")
    message = str(caught.value)
    assert caught.value.code == "out-of-memory"
    assert "keep 32.3 GB of activations for its 32 prompt pairs" in message and "the CUDA device has 8.0 GB free" in message
    assert "Use at most 5 prompt pairs, or shorter prompts" in message
    with pytest.raises(tlens.TlensError, match="Use shorter prompts, a sweep kind that patches fewer activations"):
        tlens._baseline_plan(SHAPE_7B, 32, 1024, resid_pre_names(32), 1, 1 << 20, 1)


def test_prepare_reports_too_little_memory_as_an_error_not_a_crash(tlens):
    # Through ``call``, as the server sees it: a JSON error with the message (no model needed).
    tlens._API["tight"] = lambda: tlens._baseline_plan(SHAPE_7B, 32, 1024, resid_pre_names(32), 1, GB, GB)
    try:
        out = answer(tlens, "tight")
    finally:
        del tlens._API["tight"]
    assert not out["ok"] and out["code"] == "out-of-memory" and "prompt pairs" in out["error"]
