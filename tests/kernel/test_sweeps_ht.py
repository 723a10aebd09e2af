"""Sweeps in a TL 2.x kernel (HookedTransformer, $TLENS_HT_PYTHON): exactness and cleanliness.

The server (this interpreter, TL 4.x) and the kernel (TL 2.18) are different environments:
the payload travels as source and must work in both.
"""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_asyncio

from lsp_server.sweeps.driver import run_sweep
from lsp_server.sweeps.spec import SweepSpec

from .exactness import (REFERENCE_HELPER, check_attribution, check_attribution_answer_path, check_exact,
                         check_exact_in_baseline_chunks, check_exact_one_pair_per_forward, prefix_reuse_verdicts)
from .tiny_models import ht_setup

pytestmark = [pytest.mark.kernel, pytest.mark.ht, pytest.mark.asyncio(loop_scope="module")]

EXTRA = '''
torch.manual_seed(3)
model_gqa = HookedTransformer(HookedTransformerConfig(n_layers=3, d_model=64, n_heads=4, d_head=16,
    d_mlp=256, d_vocab=len(tokenizer), n_ctx=128, act_fn="gelu", n_key_value_heads=2,
    positional_embedding_type="rotary", rotary_dim=16, normalization_type="RMS", seed=3),
    tokenizer=tokenizer).eval()
rand_clean = torch.randint(0, 50000, (2, 12))
rand_corrupted = torch.randint(0, 50000, (2, 12))
def hook_count(m):
    torch_hooks = sum(len(x._forward_hooks) + len(x._forward_pre_hooks) + len(x._backward_hooks)
                      for x in m.modules())
    tl_hooks = sum(len(hp.fwd_hooks) + len(hp.bwd_hooks) for hp in m.hook_dict.values())
    return (torch_hooks, tl_hooks)
'''


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel(kernel_factory, ht_python):
    bridge = await kernel_factory.start(ht_python, setup=ht_setup() + REFERENCE_HELPER + EXTRA)
    env = await bridge.probe()
    assert env.transformer_lens.startswith("2.") and "HookedTransformer" in env.backends
    return bridge


KINDS = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "heads", "heads_by_pos", "block"]


@pytest.mark.parametrize("kind", KINDS)
async def test_exact_against_transformer_lens(kernel, kind):
    result = await check_exact(kernel, kind)
    assert result.path == "fast" and result.backend == "HookedTransformer"
    assert result.tl_version.startswith("2.")


@pytest.mark.parametrize("kind", ["resid_pre", "heads_by_pos", "block"])
async def test_exact_with_answer_tokens(kernel, kind):
    await check_exact(kernel, kind, use_answer=True)


@pytest.mark.parametrize("kind", ["resid_pre", "resid_mid", "heads", "heads_by_pos"])
async def test_exact_on_gqa_rotary_rms_model_with_two_random_prompts(kernel, kind):
    result = await check_exact(kernel, kind, model="model_gqa", clean="rand_clean", corrupted="rand_corrupted",
                               metric="full_logits_metric" if kind == "resid_mid" else "logit_diff")
    assert result.path == "fast"


async def test_the_compute_floor_is_exact_and_in_use(kernel):
    # HookedTransformer gets the corrupted keys/values as a frozen past_kv_cache_entry.
    for kind in ("resid_pre", "heads_by_pos", "block"):
        await check_exact(kernel, kind, model="model_gqa", clean="rand_clean", corrupted="rand_corrupted")
    assert await prefix_reuse_verdicts(kernel) == "[True]"


async def test_a_batch_split_over_forwards_by_a_memory_budget_is_exact(kernel):
    await check_exact_one_pair_per_forward(kernel, ("resid_pre", "heads"), clean="batch_clean", corrupted="batch_corrupted")


async def test_baseline_runs_split_to_a_memory_budget_are_exact(kernel):
    # 5 pairs, 2 per forward: chunks of 2, 2 and 1 pairs; the frozen keys/values are joined too.
    setup = "torch.manual_seed(8); five_clean = torch.randint(0, 50000, (5, 8)); five_corrupted = torch.randint(0, 50000, (5, 8))"
    assert (await kernel.execute(setup)).ok
    await check_exact_in_baseline_chunks(kernel, ("resid_pre", "heads", "block"), model="model_gqa",
                                         clean="five_clean", corrupted="five_corrupted", pairs_per_forward=2, chunks=3)


async def test_attribution_is_the_first_order_effect(kernel):
    attr, pooled = await check_attribution(kernel, model="model_gqa", metric="logit_diff", clean="rand_clean",
                                     corrupted="rand_corrupted", label="TL 2.18, GQA")
    assert pooled > 0.3
    await check_attribution_answer_path(kernel, attr, model='model_gqa', clean='rand_clean', corrupted='rand_corrupted')


async def test_no_stray_globals_or_hooks(kernel):
    g = {"g": "sorted(globals())", "h": "hook_count(model)"}
    before = (await kernel.execute("pass", user_expressions=g)).user_expressions
    for kind in ("heads_by_pos", "attribution"):
        await run_sweep(kernel, SweepSpec(model="model", clean="clean_tokens", corrupted="corrupted_tokens",
                                          kind=kind, answer="answer", wrong="wrong"))
    after = (await kernel.execute("pass", user_expressions=g)).user_expressions
    assert set(eval(after["g"])) - set(eval(before["g"])) <= {"__tlens__"}
    assert after["h"] == before["h"]


async def test_cancel_leaves_kernel_clean(kernel):
    before = (await kernel.execute("pass", user_expressions={"h": "hook_count(model_gqa)"})).user_expressions
    started = asyncio.Event()
    cancel = asyncio.Event()

    def on_progress(p):
        if p.phase == "running" and p.done > 0:
            started.set()

    spec = SweepSpec(model="model_gqa", clean="rand_clean", corrupted="rand_corrupted", kind="heads_by_pos",
                     metric="full_logits_metric")
    task = asyncio.create_task(run_sweep(kernel, spec, on_progress, cancel, step_seconds=0.01))
    await asyncio.wait_for(started.wait(), 120)
    cancel.set()
    result = await asyncio.wait_for(task, 60)
    after = (await kernel.execute("pass", user_expressions={"h": "hook_count(model_gqa)"})).user_expressions
    assert after == before
    if result.partial:  # a tiny sweep may finish before the cancel lands
        assert 0 < result.cells_done < result.cells_total and result.error is None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tl3_kernel(kernel_factory):
    path = os.environ.get("TLENS_HT3_PYTHON")
    if not path:
        pytest.skip("TLENS_HT3_PYTHON is not set (make builds .venv-ht3 with TransformerLens 3.9)")
    return await kernel_factory.start(path, setup=ht_setup() + REFERENCE_HELPER + EXTRA)


@pytest.mark.parametrize("kind", ["resid_pre", "resid_mid", "heads_by_pos", "block"])
async def test_tl3_hooked_transformer_is_exact(tl3_kernel, kind):
    # TL 3.x still ships HookedTransformer (deprecated) beside TransformerBridge.
    result = await check_exact(tl3_kernel, kind, model="model_gqa", clean="rand_clean", corrupted="rand_corrupted")
    assert result.path == "fast" and result.tl_version.startswith("3.")


async def test_tl3_attribution_and_cleanliness(tl3_kernel):
    g = {"g": "sorted(globals())", "h": "hook_count(model)"}
    before = (await tl3_kernel.execute("pass", user_expressions=g)).user_expressions
    attr, _ = await check_attribution(tl3_kernel, model="model", metric="logit_diff", clean="clean_tokens",
                                      corrupted="corrupted_tokens", label="TL 3.9")
    after = (await tl3_kernel.execute("pass", user_expressions=g)).user_expressions
    assert set(eval(after["g"])) - set(eval(before["g"])) <= {"__tlens__"}
    assert after["h"] == before["h"]


async def test_tl3_transformer_bridge_is_exact(tl3_kernel):
    from .tiny_models import bridge_setup

    code = bridge_setup().split("from transformer_lens.model_bridge")[0].split("torch.manual_seed(0)\n", 1)[1]
    res = await tl3_kernel.execute(
        "torch.manual_seed(0)\n" + code
        + "from transformer_lens.model_bridge import TransformerBridge\n"
        + "model_b3 = TransformerBridge.boot_transformers('tiny', hf_model=_hf, tokenizer=tokenizer, device='cpu')\n"
    )
    assert res.ok, res.traceback_text()
    for kind in ("resid_pre", "heads", "mlp_out"):
        result = await check_exact(tl3_kernel, kind, model="model_b3")
        assert result.backend == "TransformerBridge" and result.path == "fast"
