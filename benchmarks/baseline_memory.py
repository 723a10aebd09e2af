"""Baseline runs chunked to a memory budget: peak memory and time of a sweep's preparation.

A gpt2-small-shaped random TransformerBridge (12 layers, d_model 768, 12 heads, vocab 50257) on CPU,
N IOI prompt pairs of 15 tokens (the sweep_speed.py prompts), a resid_pre sweep with a logit
difference. Each configuration runs in a fresh process, so its peak RSS (``ru_maxrss``) is its own:
``prepare`` (the clean and corrupted runs, and the fast path's two-cell check) with the budget
measured from the machine, then with ``__tlens__._OPTIONS["memory_budget"]`` set so that each baseline
run takes C forwards. Reported: the growth of peak RSS during ``prepare`` and its time, as ratios to
the unchunked run measured in the same invocation.

Usage: python benchmarks/baseline_memory.py [--pairs 256] [--chunks 4,16] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.kernel_setup import GPT2_TOKENIZER  # noqa: E402
from benchmarks.sweep_speed import BRIDGE_MODEL, PROMPTS, SHAPES, TOKENIZER  # noqa: E402

CHILD = '''
import json, math, resource, sys, time
from lsp_server.kernel.payload import install_code
ns = {{}}
exec({setup!r}, ns)
exec("make_ioi({pairs})", ns)
exec(install_code(), ns)
tlens, torch = ns["__tlens__"], ns["torch"]
chunks = {chunks}
n = "ioi{pairs}"
spec = dict(model="model", clean=n + "_clean", corrupted=n + "_corrupted", answer=n + "_answer", wrong=n + "_wrong",
            kind="resid_pre")
if chunks > 1:  # forwards of ceil(pairs / chunks) pairs
    P = ns[n + "_clean"].shape[-1]
    pair = tlens._row_bytes(tlens._model_shape(ns["model"].cfg, torch), P, P)
    tlens._OPTIONS["memory_budget"] = math.ceil({pairs} / chunks) * pair
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
out = tlens.prepare(spec)
seconds = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"chunks": out["baseline_chunks"], "pairs_per_forward": out["baseline_pairs"],
                  "peak_growth_mb": (after - before) / 1024, "seconds": seconds, "baselines_s": out["baselines_s"],
                  "kept_estimate_mb": out["baselines_kept_bytes"] / 2**20,
                  "clean": out["clean_value"]}}))
'''


def measure(pairs: int, chunks: int) -> dict:
    setup = GPT2_TOKENIZER + TOKENIZER.format(device="cpu") + BRIDGE_MODEL.format(**SHAPES["small"]) + PROMPTS
    code = CHILD.format(setup=setup, pairs=pairs, chunks=chunks)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=1800,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--chunks", default="4,16", help="baseline forwards per run to compare with one")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each configuration, interleaved (min kept)")
    args = parser.parse_args()
    configs = [1] + [int(c) for c in args.chunks.split(",")]
    runs: dict[int, list[dict]] = {c: [] for c in configs}
    for _ in range(args.repeats):  # interleaved, so that a change of machine load hits every configuration
        for c in configs:
            runs[c].append(measure(args.pairs, c))
    best = {c: {**rs[0], **{k: min(r[k] for r in rs) for k in ("peak_growth_mb", "seconds", "baselines_s")}}
            for c, rs in runs.items()}
    whole = best[1]
    print(f"{args.pairs} pairs, one forward per baseline run: peak RSS +{whole['peak_growth_mb']:.0f} MB during "
          f"prepare, {whole['seconds']:.1f} s (baseline runs {whole['baselines_s']:.1f} s); estimated to keep "
          f"{whole['kept_estimate_mb']:.0f} MB")
    for c in configs[1:]:
        split = best[c]
        assert abs(split["clean"] - whole["clean"]) <= 1e-4, (split, whole)
        print(f"{args.pairs} pairs, {split['chunks']} forwards of {split['pairs_per_forward']} pairs: peak RSS "
              f"+{split['peak_growth_mb']:.0f} MB ({split['peak_growth_mb'] / whole['peak_growth_mb']:.2f}x), "
              f"{split['seconds']:.1f} s ({split['seconds'] / whole['seconds']:.2f}x; baseline runs "
              f"{split['baselines_s']:.1f} s, {split['baselines_s'] / whole['baselines_s']:.2f}x)")


if __name__ == "__main__":
    main()
