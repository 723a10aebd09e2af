"""Compare tlens sweeps with transformer_lens.patching, computed in the same kernel."""

from __future__ import annotations

import math

from lsp_server.kernel import KernelBridge, SweepResult, SweepSpec, run_sweep

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
