"""Sweeps in a TL 4.x kernel (TransformerBridge): exactness, speed paths, errors, faults."""

from __future__ import annotations

import ast
import asyncio
import json

import pytest
import pytest_asyncio

from lsp_server.render import render_heatmap
from lsp_server.sweeps.driver import run_sweep
from lsp_server.sweeps.errors import SweepCancelled, SweepError
from lsp_server.sweeps.saved import save_result
from lsp_server.sweeps.spec import SweepSpec

from .exactness import (REFERENCE_HELPER, check_attribution, check_attribution_answer_path, check_exact,
                         check_exact_in_baseline_chunks, check_exact_one_pair_per_forward, max_abs_diff, prefix_reuse_verdicts, reference)
from .faults import block_a_forward_when_armed, drop_an_execute_reply
from .tiny_models import bridge_setup

pytestmark = [pytest.mark.kernel, pytest.mark.asyncio(loop_scope="module")]

GQA = (
    "_main_model = model\n"
    + bridge_setup(n_layers=2, d_model=64, n_heads=4, gqa=2).replace("model = ", "model_gqa = ", 1)
    .replace("\nclean_prompt", "\nmodel, model_gqa = _main_model, model\nclean_prompt", 1)
)

LONG = '''
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(1)
_hf_big = GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=256, n_head=8, n_positions=128,
                                     vocab_size=len(tokenizer))).eval()
model_big = TransformerBridge.boot_transformers("big", hf_model=_hf_big, tokenizer=tokenizer, device="cpu")
big_clean = torch.randint(0, 50000, (1, 48))
big_corrupted = torch.randint(0, 50000, (1, 48))
def hook_count(m):
    torch_hooks = sum(len(x._forward_hooks) + len(x._forward_pre_hooks) + len(x._backward_hooks)
                      for x in m.modules())
    tl_hooks = sum(len(hp.fwd_hooks) + len(hp.bwd_hooks) for hp in m.hook_dict.values())
    return (torch_hooks, tl_hooks)
'''


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel(kernel_factory):
    bridge = await kernel_factory.start(setup=bridge_setup() + REFERENCE_HELPER + LONG)
    # model_gqa: a random Llama (4 query heads, 2 key/value heads) booted as a bridge.
    gqa = bridge_setup(n_layers=2, d_model=64, n_heads=4, gqa=2).split("from transformer_lens")[0]
    res = await bridge.execute(
        gqa.replace("tokenizer = AutoTokenizer", "_tok2 = AutoTokenizer")
        + "model_gqa = TransformerBridge.boot_transformers('tiny-gqa', hf_model=_hf, tokenizer=tokenizer, device='cpu')\n"
    )
    assert res.ok, res.traceback_text()
    # The bridge wires some torch hooks lazily on its first run_with_cache (TL internals);
    # do that now so hook counts before/after a sweep compare only what the sweep did.
    await bridge.execute("model.run_with_cache(big_clean[:, :4]); model_big.run_with_cache(big_clean[:, :4])")
    return bridge


async def globals_of(bridge):
    res = await bridge.execute("pass", user_expressions={"g": "sorted(globals())"})
    return set(eval(res.user_expressions["g"]))


async def hooks_of(bridge, model="model_big"):
    return (await bridge.execute("pass", user_expressions={"h": f"hook_count({model})"})).user_expressions["h"]


@pytest.mark.parametrize("kind", ["resid_pre", "attn_out", "mlp_out", "heads", "heads_by_pos", "block", "resid_post"])
@pytest.mark.parametrize("use_answer", [True, False], ids=["answer", "callable"])
async def test_exact_against_transformer_lens(kernel, kind, use_answer):
    result = await check_exact(kernel, kind, use_answer=use_answer)
    assert result.path == "fast"
    assert result.backend == "TransformerBridge" and result.tl_version.startswith("4.")


async def test_resid_mid_matches_transformer_lens_under_no_grad(kernel):
    # TL 4.x patching clones activations that require grad before editing them; on the bridge
    # hook_resid_mid is ln2's *input*, so with grad on TL patches only the MLP input and not
    # the residual stream. Under no_grad (and on HookedTransformer) both are the residual.
    result = await check_exact(kernel, "resid_mid", no_grad_reference=True)
    assert any("residual stream" in note for note in result.notes)


async def test_exact_with_two_prompts(kernel):
    await check_exact(kernel, "resid_pre", clean="batch_clean", corrupted="batch_corrupted")
    await check_exact(kernel, "heads", clean="batch_clean", corrupted="batch_corrupted", use_answer=True)


async def test_exact_on_grouped_query_attention(kernel):
    for kind in ("resid_pre", "heads", "heads_by_pos"):
        result = await check_exact(kernel, kind, model="model_gqa")
        assert result.path == "fast"


async def test_metric_reading_every_position_uses_full_logits(kernel):
    result = await check_exact(kernel, "attn_out", metric="full_logits_metric")
    assert result.path == "fast"


async def test_fully_different_prompts_are_exact(kernel):
    # No position is shared, so no cell can be skipped: every cell goes through the batched replay.
    await check_exact(kernel, "mlp_out", clean="big_clean[:, :10]", corrupted="big_corrupted[:, :10]")


async def test_the_compute_floor_is_exact_and_in_use(kernel):
    # Each replay runs only the positions its cells can change, on the corrupted keys/values
    # before them: on unrelated prompts (the worst case) and on the IOI pair.
    for kind in ("resid_pre", "heads_by_pos", "block"):
        await check_exact(kernel, kind, model="model_big", clean="big_clean[:, :10]", corrupted="big_corrupted[:, :10]")
    await check_exact(kernel, "heads", use_answer=True)
    assert await prefix_reuse_verdicts(kernel) == "[True]"


async def test_a_batch_split_over_forwards_by_a_memory_budget_is_exact(kernel):
    setup = "torch.manual_seed(7); quad_clean = torch.randint(0, 50000, (4, 8)); quad_corrupted = torch.randint(0, 50000, (4, 8))"
    assert (await kernel.execute(setup)).ok
    await check_exact_one_pair_per_forward(kernel, ("resid_pre", "heads"), clean="quad_clean", corrupted="quad_corrupted")


async def test_baseline_runs_split_to_a_memory_budget_are_exact(kernel):
    # 5 pairs, 2 per forward: chunks of 2, 2 and 1 pairs joined into one batch.
    setup = "torch.manual_seed(8); five_clean = torch.randint(0, 50000, (5, 8)); five_corrupted = torch.randint(0, 50000, (5, 8))"
    assert (await kernel.execute(setup)).ok
    await check_exact_in_baseline_chunks(kernel, ("resid_pre", "heads_by_pos", "block"), clean="five_clean",
                                         corrupted="five_corrupted", pairs_per_forward=2, chunks=3)
    await check_exact_in_baseline_chunks(kernel, ("mlp_out",), clean="five_clean", corrupted="five_corrupted",
                                         pairs_per_forward=2, chunks=3, use_answer=True)


async def test_fallback_path_is_exact(kernel):
    # When the batched replay cannot be trusted every chunk runs model(tokens) with hooks.
    key = "(id(model), type(model).__name__, model.cfg.n_layers, 1, clean_tokens.shape[-1])"
    await kernel.ensure_payload()
    assert (await kernel.execute(f"__tlens__._VALIDATED[{key}] = 'forced by the test'")).ok
    try:
        for kind in ("resid_pre", "heads_by_pos", "block"):
            result = await check_exact(kernel, kind, use_answer=True)
            assert result.path == "fallback" and any("forced by the test" in n for n in result.notes)
    finally:
        await kernel.execute(f"__tlens__._VALIDATED.pop({key}, None)")


async def test_normalize(kernel):
    spec = SweepSpec(model="model", clean="clean_tokens", corrupted="corrupted_tokens",
                     kind="resid_pre", metric="logit_diff", normalize=True)
    result = await run_sweep(kernel, spec)
    ref = await reference(kernel, "model", "resid_pre", "logit_diff", "clean_tokens", "corrupted_tokens")
    clean, corr = ref["clean"], ref["corrupted"]
    expected = [[(v - corr) / (clean - corr) for v in row] for row in ref["values"]]
    assert result.normalized and "clean" in result.value_label
    assert max_abs_diff(result.values, expected) <= 1e-3
    # Positions before the first differing token are exactly the corrupted run: 0.
    assert all(v == 0.0 for v in result.values[0][:10])


async def test_labels_and_json_roundtrip(kernel, tmp_path):
    result = await run_sweep(kernel, SweepSpec(model="model", clean="clean_prompt",
                                               corrupted="corrupted_prompt", answer="' Mary'", wrong="' John'"))
    assert result.row_labels == ["L0", "L1"]
    assert result.col_labels[:3] == ["<|endoftext|>", "When", " Mary"]
    assert "' Mary'" in result.metric and "' John'" in result.metric
    png = render_heatmap(result)
    png_path, json_path = save_result(result, png, tmp_path)
    assert png_path.parent == tmp_path / ".tlens" / "sweeps" and png_path.suffix == ".png"
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(json_path.read_text())
    assert data["values"] == result.values and data["kind"] == "resid_pre"
    again, _ = save_result(result, png, tmp_path)
    assert again != png_path  # same second: a new name, nothing overwritten


async def test_attribution_is_the_first_order_effect(kernel):
    attr, pooled = await check_attribution(kernel, model="model_big", metric="logit_diff", clean="big_clean[:, :16]",
                                     corrupted="big_corrupted[:, :16]", label="TL 4.3 bridge")
    assert pooled > 0.3
    await check_attribution_answer_path(kernel, attr, model='model_big', clean='big_clean[:, :16]', corrupted='big_corrupted[:, :16]')


async def test_no_stray_globals_and_no_hooks_left(kernel):
    before_globals = await globals_of(kernel)
    before_hooks = await hooks_of(kernel, "model")
    for kind in ("resid_pre", "heads_by_pos", "attribution"):
        await run_sweep(kernel, SweepSpec(model="model", clean="clean_tokens", corrupted="corrupted_tokens",
                                          kind=kind, metric="logit_diff"))
    assert (await globals_of(kernel)) - before_globals <= {"__tlens__"}
    assert await hooks_of(kernel, "model") == before_hooks


async def test_missing_variables_are_named(kernel):
    spec = SweepSpec(model="modle", clean="clean_tokenz", corrupted="corrupted_tokens", metric="logit_diff")
    with pytest.raises(SweepError, match="not defined in the kernel: modle, clean_tokenz") as err:
        await run_sweep(kernel, spec)
    assert err.value.code == "missing-variables" and err.value.details["names"] == ["modle", "clean_tokenz"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model": "clean_tokens"}, "not a TransformerLens model"),
        ({"corrupted": "batch_corrupted"}, "same batch and positions"),
        ({"metric": "lambda logits: logits[:, -1, 0]", "clean": "batch_clean", "corrupted": "batch_corrupted"},
         "must return a scalar"),
        ({"metric": None, "answer": "' Mary and John'", "wrong": "wrong"}, "is 3 tokens, not one"),
        ({"metric": "answer"}, "not a callable"),
        ({"clean": "['a b', 'a b c d e']"}, "different lengths"),
    ],
)
async def test_bad_specs_give_clear_errors(kernel, overrides, message):
    spec = dict(model="model", clean="clean_tokens", corrupted="corrupted_tokens", metric="logit_diff")
    spec.update(overrides)
    with pytest.raises(SweepError, match=message):
        await run_sweep(kernel, SweepSpec(**spec))


async def test_training_mode_is_refused(kernel):
    await kernel.execute("model.train()")
    try:
        with pytest.raises(SweepError, match=r"training mode.*model.eval\(\)"):
            await run_sweep(kernel, SweepSpec(model="model", clean="clean_tokens",
                                              corrupted="corrupted_tokens", metric="logit_diff"))
    finally:
        await kernel.execute("model.eval()")


LONG_SPEC = dict(model="model_big", clean="big_clean", corrupted="big_corrupted", kind="heads_by_pos",
                 answer="11", wrong="12")


async def run_and_act(bridge, action, spec=LONG_SPEC):
    """Start a long sweep; once some cells are done and the next step runs, call ``action``."""
    started = asyncio.Event()
    progress = []

    def on_progress(p):
        progress.append(p)
        if p.phase == "running" and p.done > 0:
            started.set()

    cancel = asyncio.Event()
    # Short steps: progress after every chunk, and the next step starts right away, so the
    # action lands while a step is running in the kernel.
    task = asyncio.create_task(run_sweep(bridge, SweepSpec(**spec), on_progress, cancel, step_seconds=0.01))
    await asyncio.wait_for(started.wait(), 120)
    await asyncio.sleep(0.05)
    await action(cancel)
    return await asyncio.wait_for(task, 60), progress


async def test_cancel_mid_sweep_keeps_partial_results(kernel):
    before_globals, before_hooks = await globals_of(kernel), await hooks_of(kernel)

    async def cancel(event):
        event.set()

    result, progress = await run_and_act(kernel, cancel)
    assert result.partial and result.error is None
    assert 0 < result.cells_done < result.cells_total
    done = [v for layer in result.values for pos in layer for v in pos if v is not None]
    assert len(done) == result.cells_done
    # Kernel still usable, nothing left behind.
    assert await hooks_of(kernel) == before_hooks
    assert (await globals_of(kernel)) - before_globals <= {"__tlens__"}
    res = await kernel.execute("pass", user_expressions={"x": "__tlens__._SWEEP is None"})
    assert res.user_expressions["x"] == "True"
    # The cells that finished are the exact values.
    full = await run_sweep(kernel, SweepSpec(**LONG_SPEC))
    assert not full.partial
    for l, layer in enumerate(result.values):
        for p, pos in enumerate(layer):
            for h, v in enumerate(pos):
                if v is not None:
                    assert abs(v - full.values[l][p][h]) <= 1e-4


SLOW_METRIC = """
import time as _time
slow_metric_interrupted = False
def slow_metric(logits):
    global slow_metric_interrupted
    try:
        _time.sleep(0.8)  # one cell outlasts the cancel grace (2 * 0.01 + 0.5 s)
    except KeyboardInterrupt:
        slow_metric_interrupted = True
        raise
    return logits[:, -1, 11].mean() - logits[:, -1, 12].mean()
"""


async def test_cancel_interrupts_a_step_that_outlasts_the_grace(kernel):
    await kernel.execute(SLOW_METRIC)
    before_hooks = await hooks_of(kernel, "model")
    spec = dict(model="model", clean="clean_tokens", corrupted="corrupted_tokens", kind="resid_pre",
                metric="slow_metric")
    cancelled_at = []

    async def cancel(event):
        cancelled_at.append(asyncio.get_running_loop().time())
        event.set()

    result, _ = await run_and_act(kernel, cancel, spec)
    waited = asyncio.get_running_loop().time() - cancelled_at[0]
    assert result.partial and result.error is None and 0 < result.cells_done < result.cells_total
    assert waited < 0.8 + 2.0, f"cancel took {waited:.1f} s"
    res = await kernel.execute("pass", user_expressions={"i": "slow_metric_interrupted",
                                                         "s": "__tlens__._SWEEP is None"})
    assert res.user_expressions == {"i": "True", "s": "True"}
    assert await hooks_of(kernel, "model") == before_hooks


async def test_cancel_before_start_and_during_prepare(kernel):
    cancel = asyncio.Event()
    cancel.set()
    with pytest.raises(SweepCancelled, match="before it started"):
        await run_sweep(kernel, SweepSpec(**LONG_SPEC), cancel_event=cancel)
    cancel = asyncio.Event()

    def on_progress(p):
        if p.phase == "preparing":  # reported just before prepare is sent to the kernel
            cancel.set()

    with pytest.raises(SweepCancelled, match="while it was being prepared"):
        await asyncio.wait_for(run_sweep(kernel, SweepSpec(**LONG_SPEC), on_progress, cancel), 60)
    res = await kernel.execute("pass", user_expressions={"x": "__tlens__._SWEEP is None"})
    assert res.user_expressions["x"] == "True"


async def test_interrupt_from_another_client_gives_partial_result_with_error(kernel, kernel_factory, tmp_path):
    # The interrupt must land while a step runs (one landing between steps is ignored by the
    # idle kernel): once some cells are done, arm a hook that blocks the next forward, wait
    # until the kernel sits in it, then interrupt from the other client.
    other = await kernel_factory.attach(kernel.connection_file)
    armed, blocked = tmp_path / "armed", tmp_path / "blocked"
    assert (await kernel.execute(block_a_forward_when_armed("model_big.blocks[-1]", str(armed), str(blocked)))).ok

    def arm_once_cells_are_done(p):
        if p.phase == "running" and p.done > 0 and not blocked.exists():
            armed.touch()

    try:
        task = asyncio.create_task(run_sweep(kernel, SweepSpec(**LONG_SPEC), arm_once_cells_are_done,
                                             step_seconds=0.01))
        await asyncio.wait_for(wait_until_exists(blocked), 120)
        await other.interrupt()
        result = await asyncio.wait_for(task, 60)
    finally:
        assert (await kernel.execute("_blocking_hook.remove()")).ok
    assert result.partial and "interrupted" in result.error
    assert 0 < result.cells_done < result.cells_total


async def wait_until_exists(path):
    while not path.exists():
        await asyncio.sleep(0.01)


async def test_a_step_whose_reply_is_dropped_loses_no_cells(kernel, kernel_factory):
    other = await kernel_factory.attach(kernel.connection_file)

    async def drop(_event):  # the reply of the sweep's next step (see faults.py)
        assert (await other.execute(drop_an_execute_reply(skip=1, record="__tlens__._SWEEP.done"))).ok

    result, _ = await run_and_act(kernel, drop)
    assert result.partial and "interrupted" in result.error
    (done_in_kernel,) = ast.literal_eval((await kernel.execute("pass", user_expressions={
        "d": "dropped_at"})).user_expressions["d"])
    assert result.cells_done == done_in_kernel  # the dropped step's cells came back with `collect`
    assert len([v for layer in result.values for pos in layer for v in pos if v is not None]) == done_in_kernel


async def test_cancel_never_interrupts_a_notebook_cell_queued_before_the_sweep(kernel, kernel_factory):
    notebook = await kernel_factory.attach(kernel.connection_file)
    await kernel.ensure_payload()  # so that the sweep's first request is `prepare`, queued
    cell = asyncio.create_task(notebook.execute("import time as _t; _t.sleep(2); cell_finished = True",
                                                silent=False))
    await asyncio.sleep(0.3)  # the cell is running; the sweep's request queues behind it
    cancel = asyncio.Event()
    sweep = asyncio.create_task(run_sweep(kernel, SweepSpec(**LONG_SPEC), cancel_event=cancel))
    await asyncio.sleep(0.5)
    cancel.set()
    res = await asyncio.wait_for(cell, 30)
    assert res.ok, f"the notebook cell was interrupted: {res.ename}"
    with pytest.raises(SweepCancelled):
        await asyncio.wait_for(sweep, 60)
    res = await kernel.execute("pass", user_expressions={"x": "cell_finished", "s": "__tlens__._SWEEP is None"})
    assert res.user_expressions == {"x": "True", "s": "True"}


async def test_sweep_survives_a_failing_cell_queued_before_it(kernel, kernel_factory):
    # ipykernel aborts requests queued behind a cell that raises; the sweep retries.
    notebook = await kernel_factory.attach(kernel.connection_file)
    await kernel.ensure_payload()
    cell = asyncio.create_task(notebook.execute("import time as _t; _t.sleep(1); 1/0", silent=False))
    await asyncio.sleep(0.3)
    result = await run_sweep(kernel, SweepSpec(model="model", clean="clean_tokens", corrupted="corrupted_tokens",
                                               answer="answer", wrong="wrong"))
    assert (await cell).ename == "ZeroDivisionError"
    assert not result.partial and result.error is None


async def test_kernel_killed_mid_sweep(kernel_factory):
    bridge = await kernel_factory.start(setup=bridge_setup() + LONG)
    await bridge.execute("model_big.run_with_cache(big_clean[:, :4])")

    async def kill(_event):
        bridge._km.provisioner.process.kill()

    result, _ = await run_and_act(bridge, kill)
    assert result.partial and "kernel died" in result.error
    assert result.cells_done < result.cells_total
    assert bridge.state == "dead"


async def test_render_real_results(kernel):
    for kind in ("block", "heads_by_pos", "attribution"):
        result = await run_sweep(kernel, SweepSpec(model="model", clean="clean_tokens",
                                                   corrupted="corrupted_tokens", kind=kind, answer="answer",
                                                   wrong="wrong"))
        for size in ("hover", "large"):
            assert render_heatmap(result, size)[:4] == b"\x89PNG"
