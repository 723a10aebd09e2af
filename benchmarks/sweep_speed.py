"""Sweep speed: tlens resid_pre sweep vs transformer_lens.patching.get_act_patch_resid_pre.

A gpt2-small-shaped random model (12 layers, d_model 768, 12 heads, d_mlp 3072, vocab 50257)
runs in a real Jupyter kernel started through jupyter-client, on CUDA when the kernel sees
one, else CPU. Per backend (TransformerBridge in this interpreter; HookedTransformer in
$TLENS_HT_PYTHON / --ht-python when given), in the same kernel and run:

  * one forward pass (median of several, no grad)             -> "forward"
  * transformer_lens.patching.get_act_patch_resid_pre          -> "TL patching" (as usually called)
  * tlens run_sweep(kind="resid_pre"), end to end from the server (payload install excluded)
  * max |diff| between the two grids
  * tlens attribution patching, in forward-equivalents (time / forward)

for two 15-token prompt pairs: an IOI pair differing in one name (positions before the
difference are identical, so their cells are exactly the corrupted run and are not rerun),
and two unrelated random prompts (no cell can be skipped: the worst case).

Usage: python benchmarks/sweep_speed.py [--ht-python PATH] [--repeats N] [--skip-tl]
Targets (2-core CPU): >= 6x faster, max |diff| <= 1e-4, attribution <= 3 forward-equivalents.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.kernel_setup import GPT2_TOKENIZER  # noqa: E402

from lsp_server.kernel import KernelBridge  # noqa: E402
from lsp_server.sweeps.driver import run_sweep  # noqa: E402
from lsp_server.sweeps.setup_code import run_setup  # noqa: E402
from lsp_server.sweeps.spec import SweepSpec  # noqa: E402

TOKENIZER = GPT2_TOKENIZER + '''
import statistics, time, json
device = "cuda" if torch.cuda.is_available() else "cpu"
'''

BRIDGE_MODEL = '''
from transformers import GPT2Config, GPT2LMHeadModel
from transformer_lens.model_bridge import TransformerBridge
model = TransformerBridge.boot_transformers("gpt2-small-random", hf_model=GPT2LMHeadModel(GPT2Config()).eval(),
                                            tokenizer=tokenizer, device=device)
'''

HT_MODEL = '''
from transformer_lens import HookedTransformer, HookedTransformerConfig
model = HookedTransformer(HookedTransformerConfig(n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072,
    d_vocab=50257, n_ctx=1024, act_fn="gelu_new", seed=0), tokenizer=tokenizer).to(device).eval()
'''

PROMPTS = '''
ioi_clean = model.to_tokens("When Mary and John went to the store, John gave a drink to")
ioi_corrupted = model.to_tokens("When Mary and John went to the store, Mary gave a drink to")
assert ioi_clean.shape[-1] == 15, ioi_clean.shape
_g = torch.Generator().manual_seed(1)
rand_clean = torch.randint(1000, 50000, (1, 15), generator=_g).to(device)
rand_corrupted = torch.randint(1000, 50000, (1, 15), generator=_g).to(device)
answer, wrong = model.to_single_token(" Mary"), model.to_single_token(" John")
def logit_diff(logits):
    return (logits[:, -1, answer] - logits[:, -1, wrong]).mean()
def _sync():
    if device == "cuda":
        torch.cuda.synchronize()
def bench_forward(n=7):
    ts = []
    with torch.no_grad():
        model(ioi_corrupted); _sync()
        for _ in range(n):
            t = time.perf_counter(); model(ioi_corrupted); _sync(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
def bench_tl(clean_name, corrupted_name):
    from transformer_lens import patching
    clean, corrupted = globals()[clean_name], globals()[corrupted_name]
    _sync(); t = time.perf_counter()
    _, cache = model.run_with_cache(clean)
    out = patching.get_act_patch_resid_pre(model, corrupted, cache, logit_diff)
    _sync()
    return json.dumps({"seconds": time.perf_counter() - t, "values": out.tolist()})
'''


async def bench_backend(label: str, python: str, model_code: str, args) -> list[dict]:
    bridge = await KernelBridge.start(python, timeout=180)
    try:
        res = await run_setup(bridge, TOKENIZER + model_code + PROMPTS, timeout=900)
        if not res.ok:
            raise SystemExit(f"{label}: setup failed: {res.message}\n{res.traceback}")
        env = await bridge.probe()
        await bridge.ensure_payload()
        fwd = await _expr(bridge, "bench_forward()")
        rows = []
        for pair in ("ioi", "rand"):
            spec = SweepSpec(model="model", clean=f"{pair}_clean", corrupted=f"{pair}_corrupted",
                             kind="resid_pre", answer="answer", wrong="wrong")
            # First sweep in a fresh kernel pays the one-time check of the batched replay
            # (two cells computed both ways); report it, then the steady state.
            t = time.perf_counter()
            await run_sweep(bridge, spec)
            first_s = time.perf_counter() - t
            ours = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                result = await run_sweep(bridge, spec)
                ours.append(time.perf_counter() - t)
            tl_s, diff = float("nan"), float("nan")
            if not args.skip_tl:
                tl = json.loads(ast.literal_eval(await _expr(bridge, f"bench_tl('{pair}_clean', '{pair}_corrupted')")))
                tl_s = tl["seconds"]
                diff = max(abs(a - b) for ra, rb in zip(result.values, tl["values"]) for a, b in zip(ra, rb))
            attr = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                await run_sweep(bridge, SweepSpec(**{**spec.to_dict(), "kind": "attribution"}))
                attr.append(time.perf_counter() - t)
            rows.append({
                "backend": f"{label} (TL {env.transformer_lens})", "device": env.device, "pair": pair,
                "forward_s": float(fwd), "tl_s": tl_s, "ours_first_s": first_s, "ours_s": min(ours),
                "max_diff": diff, "attr_s": min(attr), "path": result.path,
            })
        return rows
    finally:
        await bridge.shutdown()


async def _expr(bridge: KernelBridge, expr: str) -> str:
    res = await bridge.execute("pass", user_expressions={"v": expr})
    if "v" in res.expression_errors:
        raise SystemExit(f"{expr}: {res.expression_errors['v']}")
    return res.user_expressions["v"]


def print_table(rows: list[dict]) -> None:
    head = (f"{'backend':34} {'dev':4} {'prompts':7} {'forward':>8} {'TL patching':>11} {'tlens':>7} "
            f"{'(1st)':>7} {'speed-up':>8} {'max|diff|':>9} {'attribution':>11} {'fwd-eq':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r["tl_s"] / r["ours_s"] if r["tl_s"] == r["tl_s"] else float("nan")
        print(f"{r['backend']:34} {r['device']:4} {r['pair']:7} {r['forward_s'] * 1e3:6.0f}ms "
              f"{r['tl_s']:10.2f}s {r['ours_s']:6.2f}s {r['ours_first_s']:6.2f}s {ratio:7.1f}x "
              f"{r['max_diff']:9.1e} {r['attr_s']:10.2f}s {r['attr_s'] / r['forward_s']:6.2f}")
    print("\nprompts: ioi = 15-token IOI pair differing at one name (cells before it are exactly the\n"
          "corrupted run and are not rerun); rand = two unrelated 15-token prompts (every cell runs).\n"
          "tlens = steady state (min of repeats), end to end through the kernel; (1st) = first sweep\n"
          "in the kernel, including the one-time check of the batched replay. TL patching includes\n"
          "its clean run_with_cache. fwd-eq = attribution time / one forward.")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ht-python", default=os.environ.get("TLENS_HT_PYTHON"),
                    help="interpreter with TransformerLens 2.x/3.x (default: $TLENS_HT_PYTHON)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-tl", action="store_true", help="do not time transformer_lens.patching")
    args = ap.parse_args()
    rows = await bench_backend("TransformerBridge", sys.executable, BRIDGE_MODEL, args)
    if args.ht_python:
        rows += await bench_backend("HookedTransformer", args.ht_python, HT_MODEL, args)
    else:
        print("(no --ht-python / $TLENS_HT_PYTHON: HookedTransformer row skipped)\n")
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}\n")
    print_table(rows)


if __name__ == "__main__":
    asyncio.run(main())
