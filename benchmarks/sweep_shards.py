"""One sweep over several kernels: wall time on 1 vs N kernels, and a kernel killed midway.

A gpt2-small-shaped random model (seeded, so every kernel holds the same weights) in real Jupyter
kernels started through jupyter-client; two unrelated random prompts of ``--positions`` tokens,
``resid_pre`` (12 layers x positions cells, none skippable: the worst case). Rows:

  * 1 kernel: ``driver.run_sweep`` (steady state, min of repeats)
  * N kernels: ``shards.run_sharded_sweep`` over the first kernel and N-1 more (min of repeats),
    max |diff| against the one-kernel grid (raw metric) and each kernel's share of the cells
  * fault injection: N kernels, one of them SIGKILLed when half the cells are done: whether the
    result is complete, its max |diff|, and the share the survivors took over

Usage: python benchmarks/sweep_shards.py [--kernels 2] [--positions 34] [--repeats 2] [--threads T]
Each kernel uses torch's default thread count unless ``--threads`` is given (on a 2-core machine
two kernels share the same cores, so the gain is bounded; the point there is "not worse, identical").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.kernel_setup import GPT2_TOKENIZER  # noqa: E402

from lsp_server.kernel import KernelBridge  # noqa: E402
from lsp_server.sweeps.driver import run_sweep  # noqa: E402
from lsp_server.sweeps.setup_code import run_setup  # noqa: E402
from lsp_server.sweeps.shards import run_sharded_sweep  # noqa: E402
from lsp_server.sweeps.spec import SweepSpec  # noqa: E402

MODEL = '''
torch.manual_seed(0)
from transformers import GPT2Config, GPT2LMHeadModel
from transformer_lens.model_bridge import TransformerBridge
model = TransformerBridge.boot_transformers("gpt2-small-random", hf_model=GPT2LMHeadModel(GPT2Config()).eval(),
                                            tokenizer=tokenizer, device="cpu")
_g = torch.Generator().manual_seed(1)
rand_clean = torch.randint(1000, 50000, (1, {positions}), generator=_g)
rand_corrupted = torch.randint(1000, 50000, (1, {positions}), generator=_g)
answer, wrong = model.to_single_token(" Mary"), model.to_single_token(" John")
'''

SPEC = SweepSpec(model="model", clean="rand_clean", corrupted="rand_corrupted", kind="resid_pre",
                 answer="answer", wrong="wrong")


async def start_kernels(n: int, args) -> list[KernelBridge]:
    setup = GPT2_TOKENIZER + MODEL.format(positions=args.positions)
    if args.threads:
        setup += f"torch.set_num_threads({args.threads})\n"
    bridges = list(await asyncio.gather(*(KernelBridge.start(sys.executable, timeout=180) for _ in range(n))))
    for res in await asyncio.gather(*(run_setup(b, setup, timeout=900) for b in bridges)):
        if not res.ok:
            raise SystemExit(f"setup failed: {res.message}\n{res.traceback}")
    return bridges


def max_diff(a: list, b: list) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


async def timed(work, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = await work()
        best = min(best, time.perf_counter() - t)
    return best, result


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kernels", type=int, default=2)
    ap.add_argument("--positions", type=int, default=34, help="prompt length (cells = 12 x positions)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per kernel (default: torch's)")
    args = ap.parse_args()
    n = args.kernels
    bridges = await start_kernels(n + 1, args)  # the last one is killed by the fault injection
    try:
        for b in bridges:  # the first sweep in a kernel checks the batched replay once: not timed
            await run_sweep(b, SPEC)
        one_s, one = await timed(lambda: run_sweep(bridges[0], SPEC), args.repeats)
        many_s, many = await timed(lambda: run_sharded_sweep(bridges[:n], SPEC), args.repeats)
        victim = bridges[n]
        pid = int((await victim.execute("pass", user_expressions={"p": "__import__('os').getpid()"}))
                  .user_expressions["p"])
        killed_at: list[int] = []

        def kill_at_half(p) -> None:
            if not killed_at and p.total and p.done >= p.total // 2:
                killed_at.append(p.done)
                os.kill(pid, signal.SIGKILL)

        t = time.perf_counter()
        faulty = await run_sharded_sweep(bridges[: n - 1] + [victim], SPEC, on_progress=kill_at_half)
        faulty_s = time.perf_counter() - t
    finally:
        await asyncio.gather(*(b.shutdown() for b in bridges))

    cells = one.cells_total
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; gpt2-small-shaped random "
          f"model, resid_pre, {args.positions} positions x 12 layers = {cells} cells (none skippable), "
          f"torch threads per kernel: {args.threads or 'default'}\n")
    print(f"{'run':40} {'wall':>7} {'vs 1':>6} {'max|diff|':>9}  cells per kernel")
    print(f"{'1 kernel':40} {one_s:6.2f}s {1:5.2f}x {0:9.1e}  {cells}")
    print(f"{f'{n} kernels':40} {many_s:6.2f}s {one_s / many_s:5.2f}x {max_diff(many.values, one.values):9.1e}  "
          f"{', '.join(str(k['cells']) for k in many.kernels)}")
    state = "complete" if not faulty.partial else f"PARTIAL {faulty.cells_done}/{cells}"
    diff = max_diff(faulty.values, one.values) if not faulty.partial else float("nan")
    label = f"{n} kernels, kernel {n} killed at {killed_at[0] if killed_at else '-'}/{cells}"
    print(f"{label:40} {faulty_s:6.2f}s "
          f"{one_s / faulty_s:5.2f}x {diff:9.1e}  {', '.join(str(k['cells']) for k in faulty.kernels)}  ({state}; "
          f"{'; '.join(k['error'].split('.')[0] for k in faulty.kernels if k['error'])})")


if __name__ == "__main__":
    asyncio.run(main())
