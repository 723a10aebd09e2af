"""Compare tlens sweeps with transformer_lens.patching, computed in the same kernel."""

from __future__ import annotations

import math

from lsp_server.kernel import KernelBridge
from lsp_server.sweeps.driver import run_sweep
from lsp_server.sweeps.spec import SweepResult, SweepSpec

from .conftest import kernel_json

# Reference functions in transformer_lens.patching for each kind (block: get_act_patch_block_every).
REFERENCE_HELPER = '''
def _tlens_reference(model_name, kind, metric_name, clean_name, corrupted_name, no_grad=False):
    import contextlib, json, torch
    from transformer_lens import patching
    fns = {
        "resid_pre": patching.get_act_patch_resid_pre,
        "resid_mid": patching.get_act_patch_resid_mid,
        "attn_out": patching.get_act_patch_attn_out,
        "mlp_out": patching.get_act_patch_mlp_out,
        "heads": patching.get_act_patch_attn_head_out_all_pos,
        "heads_by_pos": patching.get_act_patch_attn_head_out_by_pos,
        "block": patching.get_act_patch_block_every,
    }
    m, metric = globals()[model_name], globals()[metric_name]
    clean, corrupted = eval(clean_name, globals()), eval(corrupted_name, globals())
    if kind == "resid_post":
        fn = lambda mm, cc, cache, mt: patching.generic_activation_patch(
            mm, cc, cache, mt, patch_setter=patching.layer_pos_patch_setter,
            activation_name="resid_post", index_axis_names=("layer", "pos"))
    else:
        fn = fns[kind]
    with torch.no_grad():
        clean_logits, cache = m.run_with_cache(clean)
        corr_logits = m(corrupted)
    ctx = torch.no_grad() if no_grad else contextlib.nullcontext()
    with ctx:
        out = fn(m, corrupted, cache, metric)
    return json.dumps({"values": out.tolist(), "clean": float(metric(clean_logits)),
                       "corrupted": float(metric(corr_logits))})


def _tlens_directional(model_name, metric_name, clean_name, corrupted_name, site, pos, head, alpha):
    # d metric / d alpha at alpha=0 of patching act -> act + alpha * (clean - act), by a
    # central difference: an independent check of the gradient attribution (no autograd).
    import torch
    m, metric = globals()[model_name], globals()[metric_name]
    clean, corrupted = eval(clean_name, globals()), eval(corrupted_name, globals())
    with torch.no_grad():
        _, cache = m.run_with_cache(clean, names_filter=[site])
        src = cache[site]
        def run(a):
            def hook(act, hook):
                act = act.clone()
                if head is None:
                    act[:, pos] = act[:, pos] + a * (src[:, pos] - act[:, pos])
                else:
                    act[:, :, head] = act[:, :, head] + a * (src[:, :, head] - act[:, :, head])
                return act
            return float(metric(m.run_with_hooks(corrupted, fwd_hooks=[(site, hook)])))
        return (run(alpha) - run(-alpha)) / (2 * alpha)
'''


_CACHE: dict = {}


async def reference(bridge: KernelBridge, model: str, kind: str, metric: str, clean: str, corrupted: str, no_grad=False):
    """TL's patching result (cached per kernel: TL runs one forward per cell, which is slow)."""
    key = (id(bridge), model, kind, metric, clean, corrupted, no_grad)
    if key not in _CACHE:
        _CACHE[key] = await _reference(bridge, model, kind, metric, clean, corrupted, no_grad)
    return _CACHE[key]


async def _reference(bridge, model, kind, metric, clean, corrupted, no_grad):
    expr = f"_tlens_reference({model!r}, {kind!r}, {metric!r}, {clean!r}, {corrupted!r}, {no_grad!r})"
    res = await bridge.execute("pass", user_expressions={"r": expr})
    assert "r" not in res.expression_errors, res.expression_errors
    return kernel_json(res.user_expressions["r"])


async def directional(bridge, model, metric, clean, corrupted, site, pos, head, alpha=1e-2) -> float:
    expr = (f"_tlens_directional({model!r}, {metric!r}, {clean!r}, {corrupted!r}, {site!r}, "
            f"{pos!r}, {head!r}, {alpha!r})")
    res = await bridge.execute("pass", user_expressions={"r": expr})
    assert "r" not in res.expression_errors, res.expression_errors
    return float(res.user_expressions["r"])


async def check_attribution(bridge, *, model, metric, clean, corrupted, label):
    """Attribution = first-order effect: compare with a finite difference, report correlation."""
    spec = dict(model=model, clean=clean, corrupted=corrupted, metric=metric)
    attr = await run_sweep(bridge, SweepSpec(kind="attribution", **spec))
    exact = await run_sweep(bridge, SweepSpec(kind="block", **spec))
    heads = await run_sweep(bridge, SweepSpec(kind="heads", **spec))
    base = attr.corrupted_value
    L, P = len(attr.values[0]), len(attr.values[0][0])
    checks = [("resid_pre", 0, P - 3, None), ("attn_out", L - 1, P - 1, None), ("mlp_out", L // 2, P - 1, None),
              ("z", L - 1, None, 1), ("z", 0, None, 0)]
    panels = ["resid_pre", "attn_out", "mlp_out"]
    for site, layer, pos, head in checks:
        name = f"blocks.{layer}.attn.hook_z" if site == "z" else f"blocks.{layer}.hook_{site}"
        got = (attr.head_values[layer][head] if site == "z" else attr.values[panels.index(site)][layer][pos]) - base
        want = await directional(bridge, model, metric, clean, corrupted, name, pos, head)
        assert abs(got - want) <= 2e-3 + 2e-2 * abs(want), (name, pos, head, got, want)
    corr = [correlation(a, e) for a, e in zip(attr.values, exact.values)]
    corr_heads = correlation(attr.head_values, heads.values)
    pooled = correlation(attr.values + [attr.head_values], exact.values + [heads.values])
    print(f"attribution vs exact patching ({label}): resid_pre {corr[0]:.3f}, attn_out {corr[1]:.3f}, "
          f"mlp_out {corr[2]:.3f}, heads {corr_heads:.3f}, all cells {pooled:.3f}")
    assert attr.path == "gradient" and attr.head_values is not None
    return attr, pooled


async def check_attribution_answer_path(bridge, attr, *, model, clean, corrupted):
    """answer/wrong stops at the final residual and unembeds one position: same numbers."""
    fast = await run_sweep(bridge, SweepSpec(kind="attribution", model=model, clean=clean, corrupted=corrupted,
                                             answer="answer", wrong="wrong"))
    assert max_abs_diff(fast.values, attr.values) <= 1e-4
    assert max_abs_diff(fast.head_values, attr.head_values) <= 1e-4


def max_abs_diff(a, b) -> float:
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (a, b)
        return max((max_abs_diff(x, y) for x, y in zip(a, b)), default=0.0)
    assert a is not None and b is not None
    return abs(a - b)


def flatten(x):
    if isinstance(x, list):
        return [v for item in x for v in flatten(item)]
    return [x]


def correlation(a, b) -> float:
    xs, ys = flatten(a), flatten(b)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    vx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    vy = math.sqrt(sum((y - my) ** 2 for y in ys))
    return cov / (vx * vy) if vx and vy else float("nan")


async def check_exact(bridge, kind, *, model="model", metric="logit_diff", clean="clean_tokens",
                      corrupted="corrupted_tokens", use_answer=False, no_grad_reference=False) -> SweepResult:
    """Run a sweep and assert it equals TL's patching within 1e-4 (and the baselines too)."""
    spec = SweepSpec(model=model, clean=clean, corrupted=corrupted, kind=kind)
    if use_answer:
        spec.answer, spec.wrong = "answer", "wrong"
    else:
        spec.metric = metric
    result = await run_sweep(bridge, spec)
    assert not result.partial and result.error is None, result
    ref = await reference(bridge, model, kind, metric, clean, corrupted, no_grad_reference)
    diff = max_abs_diff(result.values, ref["values"])
    assert diff <= 1e-4, f"{kind}: max |diff| {diff} vs transformer_lens.patching"
    assert abs(result.clean_value - ref["clean"]) <= 1e-4
    assert abs(result.corrupted_value - ref["corrupted"]) <= 1e-4
    return result


async def check_exact_one_pair_per_forward(bridge, kinds, *, clean, corrupted) -> None:
    """``check_exact`` with a memory budget so small that every forward holds one prompt pair."""
    await bridge.ensure_payload()
    assert (await bridge.execute("__tlens__._OPTIONS['memory_budget'] = 1")).ok
    try:
        for kind in kinds:
            await check_exact(bridge, kind, clean=clean, corrupted=corrupted)
    finally:
        await bridge.execute("__tlens__._OPTIONS['memory_budget'] = None")


async def check_exact_in_baseline_chunks(bridge, kinds, *, model="model", clean, corrupted, pairs_per_forward,
                                         chunks, use_answer=False) -> None:
    """``check_exact`` with a memory budget that fits the baseline forwards of ``pairs_per_forward``
    prompt pairs (``clean`` and ``corrupted`` are token tensors): the runs take ``chunks`` forwards
    each, and every value equals the sweep whose baselines ran at once (≤ 1e-6)."""
    common = dict(model=model, clean=clean, corrupted=corrupted, use_answer=use_answer)
    whole = {kind: await check_exact(bridge, kind, **common) for kind in kinds}
    assert all(r.baseline_chunks == 1 for r in whole.values())
    pair = f"__tlens__._row_bytes(__tlens__._model_shape({model}.cfg, torch), {clean}.shape[-1], {clean}.shape[-1])"
    assert (await bridge.execute(f"__tlens__._OPTIONS['memory_budget'] = {pairs_per_forward} * {pair}")).ok
    try:
        for kind in kinds:
            split = await check_exact(bridge, kind, **common)
            assert split.baseline_chunks == chunks, (kind, split.baseline_chunks, split.notes)
            assert any(f"took {chunks} forwards each" in n for n in split.notes), split.notes
            assert max_abs_diff(split.values, whole[kind].values) <= 1e-6, kind
            assert abs(split.clean_value - whole[kind].clean_value) <= 1e-6
            assert abs(split.corrupted_value - whole[kind].corrupted_value) <= 1e-6
    finally:
        await bridge.execute("__tlens__._OPTIONS['memory_budget'] = None")


async def prefix_reuse_verdicts(bridge) -> str:
    """Whether the replay of only the positions a patch changes passed its check, per shape seen."""
    verdicts = "sorted({v for k, v in __tlens__._VALIDATED.items() if k[0] == 'prefix'})"
    return (await bridge.execute("pass", user_expressions={"v": verdicts})).user_expressions["v"]
