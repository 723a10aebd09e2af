"""Cost of one live-kernel introspection (``live_state``) and of shipping a tokenizer.

Real kernels started through jupyter-client; per backend (TransformerBridge in this interpreter;
HookedTransformer in --ht-python when given) and per model (a tiny 2-layer model; a gpt2-small-
shaped random model: 12 layers, d_model 768, vocab 50257) with a full ``run_with_cache`` cache of a
15-token prompt and two hooks attached:

  * kernel ms: time inside the kernel (the payload's own clock), median of --repeats
  * round trip ms: server-side ``call_payload`` (execute + reply + JSON), median
  * bytes: size of the JSON answer
  * parse ms: ``facts_from_answer`` on the server
  * tokenizer: ``live_tokenizer`` round trip (ms) and its size, and building the ``Tok`` (ms)

Usage: python benchmarks/live_introspection.py [--ht-python PATH] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.kernel_setup import GPT2_TOKENIZER  # noqa: E402

from lsp_server.kernel import KernelBridge  # noqa: E402
from lsp_server.sweeps.setup_code import run_setup  # noqa: E402
from lsp_server.live import LIMITS, TOKENIZER_MAX_BYTES, facts_from_answer  # noqa: E402

TOKENIZER = GPT2_TOKENIZER

SIZES = {"tiny": dict(n_layers=2, d_model=64, n_heads=4, d_mlp=256),
         "gpt2-small-shaped": dict(n_layers=12, d_model=768, n_heads=12, d_mlp=3072)}


def bridge_model(n_layers, d_model, n_heads, d_mlp) -> str:
    return f'''
from transformers import GPT2Config, GPT2LMHeadModel
from transformer_lens.model_bridge import TransformerBridge
model = TransformerBridge.boot_transformers("random", hf_model=GPT2LMHeadModel(GPT2Config(n_layer={n_layers},
    n_embd={d_model}, n_head={n_heads}, n_inner={d_mlp})).eval(), tokenizer=tokenizer, device="cpu")
'''


def ht_model(n_layers, d_model, n_heads, d_mlp) -> str:
    return f'''
from transformer_lens import HookedTransformer, HookedTransformerConfig
model = HookedTransformer(HookedTransformerConfig(n_layers={n_layers}, d_model={d_model}, n_heads={n_heads},
    d_head={d_model // n_heads}, d_mlp={d_mlp}, d_vocab=50257, n_ctx=1024, act_fn="gelu_new", seed=0),
    tokenizer=tokenizer).eval()
'''


NOTEBOOK = '''
tokens = model.to_tokens("When Mary and John went to the store, John gave a drink to")
assert tokens.shape[-1] == 15, tokens.shape
logits, cache = model.run_with_cache(tokens)
def ablate_top_head_hook(z, hook):
    return z
model.add_hook("blocks.1.attn.hook_z", ablate_top_head_hook)
model.add_perma_hook("blocks.0.hook_resid_pre", lambda x, hook: x)
'''


async def measure(label: str, python: str, make_model, size: str, repeats: int) -> dict:
    bridge = await KernelBridge.start(python, timeout=180)
    try:
        res = await run_setup(bridge, TOKENIZER + make_model(**SIZES[size]) + NOTEBOOK, timeout=900)
        if not res.ok:
            raise SystemExit(f"{label}/{size}: setup failed: {res.message}\n{res.traceback}")
        await bridge.call_payload("live_state", **LIMITS)  # installs the payload
        kernel_ms, trip_ms, parse_ms = [], [], []
        for _ in range(repeats):
            t = time.perf_counter()
            answer = await bridge.call_payload("live_state", **LIMITS)
            trip_ms.append((time.perf_counter() - t) * 1000)
            kernel_ms.append(answer["elapsed_ms"])
            t = time.perf_counter()
            facts = facts_from_answer(answer)
            parse_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        tok = await bridge.call_payload("live_tokenizer", var="model", max_bytes=TOKENIZER_MAX_BYTES)
        tok_trip = (time.perf_counter() - t) * 1000
        from tokenizers import Tokenizer

        t = time.perf_counter()
        Tokenizer.from_str(tok["json"])
        tok_build = (time.perf_counter() - t) * 1000
        cache = facts.caches["cache"]
        return {"backend": f"{label} (TL {answer['tl_version']})", "model": size, "cache_keys": cache.n_keys,
                "complete": cache.complete, "hooks": facts.models["model"].hooks_total,
                "kernel_ms": statistics.median(kernel_ms), "trip_ms": statistics.median(trip_ms),
                "bytes": len(json.dumps(answer)), "parse_ms": statistics.median(parse_ms),
                "tok_trip_ms": tok_trip, "tok_bytes": len(tok["json"]), "tok_build_ms": tok_build}
    finally:
        await bridge.shutdown()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ht-python", default=os.environ.get("TLENS_HT_PYTHON"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    backends = [("TransformerBridge", sys.executable, bridge_model)]
    if args.ht_python:
        backends.append(("HookedTransformer", args.ht_python, ht_model))
    rows = [await measure(label, python, make, size, args.repeats) for label, python, make in backends for size in SIZES]
    print(f"{'backend':<28} {'model':<18} {'keys':>5} {'hooks':>5} {'kernel ms':>9} {'trip ms':>8} {'bytes':>8} "
          f"{'parse ms':>8} | {'tok ms':>7} {'tok bytes':>10} {'build ms':>8}")
    for r in rows:
        print(f"{r['backend']:<28} {r['model']:<18} {r['cache_keys']:>5} {r['hooks']:>5} {r['kernel_ms']:>9.2f} "
              f"{r['trip_ms']:>8.1f} {r['bytes']:>8} {r['parse_ms']:>8.2f} | {r['tok_trip_ms']:>7.0f} "
              f"{r['tok_bytes']:>10} {r['tok_build_ms']:>8.0f}")


if __name__ == "__main__":
    asyncio.run(main())
