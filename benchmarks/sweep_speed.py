"""Sweep speed: tlens sweeps vs transformer_lens.patching, side by side in the same kernel.

A gpt2-small-shaped random model (12 layers, d_model 768, 12 heads, d_mlp 3072, vocab 50257; or
gpt2-xl's shape with --shape xl) runs in a real Jupyter kernel started through jupyter-client, on
the device --device picks (default: CUDA when the kernel sees one, else CPU). Per backend
(TransformerBridge in this interpreter; HookedTransformer in $TLENS_HT_PYTHON / --ht-python when
given), in the same kernel, for each row (prompt set x kind):

  * transformer_lens.patching (get_act_patch_resid_pre / get_act_patch_attn_head_out_all_pos),
    as usually called, its clean run_with_cache included               -> "TL"
  * tlens run_sweep, end to end from the server, with the compute floor off and on
    (``__tlens__._OPTIONS["reuse_prefix"]``: replay every position / only those a patch changes)
  * max |diff| between tlens (floor on) and TL
  * tlens attribution patching, in forward-equivalents (time / one forward of the batch)

Prompt sets: ``ioiN`` = N IOI pairs of 15 tokens whose corrupted prompt swaps one name (cells
before it are exactly the corrupted run), logit difference per pair, averaged as TL does;
``rand`` = two unrelated random 15-token prompts (the worst case: no cell can be skipped).

Usage: python benchmarks/sweep_speed.py [--ht-python PATH] [--pairs 1,16,64] [--kinds resid_pre,heads]
           [--no-worst] [--repeats N] [--skip-tl] [--device auto|cpu|cuda] [--shape small|xl]
Targets: >= 6x TL on a 2-core CPU for every row; >= 250x (gpt2-small) / 80x (gpt2-xl) on an H100.
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

SHAPES = {"small": dict(n_layers=12, d_model=768, n_heads=12), "xl": dict(n_layers=48, d_model=1600, n_heads=25)}

TOKENIZER = GPT2_TOKENIZER + '''
import statistics, time, json
device = {device!r} if {device!r} != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
'''

BRIDGE_MODEL = '''
from transformers import GPT2Config, GPT2LMHeadModel
from transformer_lens.model_bridge import TransformerBridge
model = TransformerBridge.boot_transformers("gpt2-random", tokenizer=tokenizer, device=device,
    hf_model=GPT2LMHeadModel(GPT2Config(n_layer={n_layers}, n_embd={d_model}, n_head={n_heads})).eval())
'''

HT_MODEL = '''
from transformer_lens import HookedTransformer, HookedTransformerConfig
model = HookedTransformer(HookedTransformerConfig(n_layers={n_layers}, d_model={d_model}, n_heads={n_heads},
    d_head=64, d_mlp={d_mlp}, d_vocab=50257, n_ctx=1024, act_fn="gelu_new", seed=0), tokenizer=tokenizer).to(device).eval()
'''

PROMPTS = '''
_NAMES = [" Mary", " John", " Anna", " Bob", " Alice", " Tom", " Sarah", " James", " Emma", " David", " Lucy", " Mark"]
_PLACES = [" store", " park", " school", " office", " beach", " market", " station", " garden"]
_OBJECTS = [" drink", " book", " ball", " gift", " letter", " key", " phone", " cake"]
def make_ioi(n):
    import random
    rng = random.Random(n)
    clean, corrupted, ans, wrong = [], [], [], []
    while len(clean) < n:
        a, b = rng.sample(_NAMES, 2)
        place, obj = rng.choice(_PLACES), rng.choice(_OBJECTS)
        c = model.to_tokens(f"When{a} and{b} went to the{place},{b} gave a{obj} to")
        k = model.to_tokens(f"When{a} and{b} went to the{place},{a} gave a{obj} to")
        if c.shape[-1] != 15 or k.shape[-1] != 15:
            continue
        clean.append(c); corrupted.append(k)
        ans.append(model.to_single_token(a)); wrong.append(model.to_single_token(b))
    g = globals()
    g[f"ioi{n}_clean"], g[f"ioi{n}_corrupted"] = torch.cat(clean).to(device), torch.cat(corrupted).to(device)
    g[f"ioi{n}_answer"], g[f"ioi{n}_wrong"] = ans, wrong
_g = torch.Generator().manual_seed(1)
rand_clean = torch.randint(1000, 50000, (1, 15), generator=_g).to(device)
rand_corrupted = torch.randint(1000, 50000, (1, 15), generator=_g).to(device)
rand_answer, rand_wrong = [model.to_single_token(" Mary")], [model.to_single_token(" John")]
def metric_for(name):
    a = torch.tensor(globals()[name + "_answer"], device=device)
    w = torch.tensor(globals()[name + "_wrong"], device=device)
    rows = torch.arange(len(a), device=device)
    return lambda logits: (logits[rows, -1, a] - logits[rows, -1, w]).mean()
def _sync():
    if device == "cuda":
        torch.cuda.synchronize()
def bench_forward(name, n=5):
    ts, tokens = [], globals()[name + "_corrupted"]
    with torch.no_grad():
        model(tokens); _sync()
        for _ in range(n):
            t = time.perf_counter(); model(tokens); _sync(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
def bench_tl(name, kind):
    from transformer_lens import patching
    fn = {"resid_pre": patching.get_act_patch_resid_pre, "heads": patching.get_act_patch_attn_head_out_all_pos}[kind]
    clean, corrupted, metric = globals()[name + "_clean"], globals()[name + "_corrupted"], metric_for(name)
    _sync(); t, c = time.perf_counter(), time.process_time()
    _, cache = model.run_with_cache(clean)
    out = fn(model, corrupted, cache, metric)
    _sync()
    return json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c, "values": out.tolist()})
'''


async def bench_backend(label: str, python: str, model_code: str, args) -> list[dict]:
    bridge = await KernelBridge.start(python, timeout=180)
    try:
        shape = SHAPES[args.shape]
        code = (TOKENIZER.format(device=args.device)
                + model_code.format(d_mlp=4 * shape["d_model"], **shape) + PROMPTS)
        res = await run_setup(bridge, code, timeout=1800)
        if not res.ok:
            raise SystemExit(f"{label}: setup failed: {res.message}\n{res.traceback}")
        env = await bridge.probe()
        await bridge.ensure_payload()
        sets = ([] if args.no_worst else ["rand"]) + [f"ioi{n}" for n in args.pairs]
        for n in args.pairs:
            await _expr(bridge, f"make_ioi({n})")
        rows = []
        for name in sets:
            fwd = float(await _expr(bridge, f"bench_forward('{name}')"))
            for kind in args.kinds:
                rows.append(await bench_row(bridge, env, label, name, kind, fwd, args))
                _print_row(rows[-1])
        return rows
    finally:
        await bridge.shutdown()


async def bench_row(bridge: KernelBridge, env, label: str, name: str, kind: str, fwd: float, args) -> dict:
    spec = SweepSpec(model="model", clean=f"{name}_clean", corrupted=f"{name}_corrupted", kind=kind,
                     answer=f"{name}_answer", wrong=f"{name}_wrong")
    timings, cpu = {}, {}
    for reuse in (False, True):
        await bridge.execute(f"__tlens__._OPTIONS['reuse_prefix'] = {reuse}")
        await run_sweep(bridge, spec)  # the first sweep of a shape pays the one-time check of the replay
        timings[reuse] = cpu[reuse] = float("inf")
        for _ in range(args.repeats):
            c = float(await _expr(bridge, "time.process_time()"))
            t = time.perf_counter()
            result = await run_sweep(bridge, spec)
            timings[reuse] = min(timings[reuse], time.perf_counter() - t)
            cpu[reuse] = min(cpu[reuse], float(await _expr(bridge, "time.process_time()")) - c)
    tl_s = tl_cpu = diff = float("nan")
    if not args.skip_tl:
        tl = json.loads(ast.literal_eval(await _expr(bridge, f"bench_tl('{name}', '{kind}')")))
        tl_s, tl_cpu = tl["seconds"], tl["cpu"]
        diff = max(abs(a - b) for ra, rb in zip(result.values, tl["values"]) for a, b in zip(ra, rb))
    t = time.perf_counter()
    await run_sweep(bridge, SweepSpec(**{**spec.to_dict(), "kind": "attribution"}))
    attr = time.perf_counter() - t
    return {"backend": f"{label} (TL {env.transformer_lens})", "device": env.device, "prompts": name, "kind": kind,
            "forward_s": fwd, "tl_s": tl_s, "off_s": timings[False], "on_s": timings[True], "max_diff": diff,
            "tl_cpu": tl_cpu, "off_cpu": cpu[False], "on_cpu": cpu[True], "load": os.getloadavg()[0],
            "attr_s": attr, "path": result.path}


async def _expr(bridge: KernelBridge, expr: str) -> str:
    res = await bridge.execute("pass", user_expressions={"v": expr})
    if "v" in res.expression_errors:
        raise SystemExit(f"{expr}: {res.expression_errors['v']}")
    return res.user_expressions["v"]


HEAD = (f"{'backend':30} {'dev':4} {'prompts':7} {'kind':9} {'forward':>8} {'TL':>8} {'floor off':>9} "
        f"{'floor on':>8} {'x off':>6} {'x on':>6} {'cpu x off':>9} {'cpu x on':>8} {'max|diff|':>9} "
        f"{'attr fwd-eq':>11} {'load':>5}")


def _print_row(r: dict) -> None:
    def ratio(s: float) -> float:
        return r["tl_s"] / s if r["tl_s"] == r["tl_s"] else float("nan")

    print(f"{r['backend'][:30]:30} {r['device'][:4]:4} {r['prompts']:7} {r['kind']:9} {r['forward_s'] * 1e3:6.0f}ms "
          f"{r['tl_s']:7.2f}s {r['off_s']:8.2f}s {r['on_s']:7.2f}s {ratio(r['off_s']):5.1f}x {ratio(r['on_s']):5.1f}x "
          f"{r['tl_cpu'] / r['off_cpu']:8.1f}x {r['tl_cpu'] / r['on_cpu']:7.1f}x "
          f"{r['max_diff']:9.1e} {r['attr_s'] / r['forward_s']:11.1f} {r['load']:5.1f}", flush=True)


LEGEND = """
prompts: ioiN = N IOI pairs of 15 tokens (one name swapped; cells before it are the corrupted run);
rand = two unrelated 15-token prompts (worst case). TL = transformer_lens.patching with its clean
run_with_cache; floor off/on = tlens end to end through the kernel (min of repeats, after a first
sweep that checks the replay), replaying every position / only the positions a patch can change;
x = TL time / tlens time (wall clock); cpu x = the same ratio in CPU seconds of the kernel process
(less sensitive to other load on a shared machine); attr fwd-eq = attribution time / one forward
of the same batch; load = the machine's 1-minute load average after the row."""


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ht-python", default=os.environ.get("TLENS_HT_PYTHON"),
                    help="interpreter with TransformerLens 2.x/3.x (default: $TLENS_HT_PYTHON)")
    ap.add_argument("--pairs", default="1,16,64", help="IOI batch sizes, comma-separated")
    ap.add_argument("--kinds", default="resid_pre,heads", help="sweep kinds: resid_pre, heads")
    ap.add_argument("--no-worst", action="store_true", help="skip the two-unrelated-prompts row")
    ap.add_argument("--no-bridge", action="store_true", help="skip the TransformerBridge backend")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-tl", action="store_true", help="do not time transformer_lens.patching")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--shape", choices=tuple(SHAPES), default="small", help="gpt2-small or gpt2-xl dimensions")
    args = ap.parse_args()
    args.pairs = [int(n) for n in args.pairs.split(",") if n]
    args.kinds = [k for k in args.kinds.split(",") if k]
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; shape {args.shape}\n")
    print(HEAD + "\n" + "-" * len(HEAD), flush=True)
    rows = [] if args.no_bridge else await bench_backend("TransformerBridge", sys.executable, BRIDGE_MODEL, args)
    if args.ht_python:
        rows += await bench_backend("HookedTransformer", args.ht_python, HT_MODEL, args)
    else:
        print("(no --ht-python / $TLENS_HT_PYTHON: HookedTransformer rows skipped)")
    print(LEGEND)
    print(json.dumps(rows))


if __name__ == "__main__":
    asyncio.run(main())
