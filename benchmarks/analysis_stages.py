"""Where an analysis after a keystroke goes, stage by stage, in process (no JSON-RPC).

Types a character (then deletes it) at the 20 places of ``lsp_latency.py``'s typing measurement, on the same
5,000-line research file, analysing each version as the server does (the document's parser, the cycle collector
paused); reports the p50 of whole analyses, the mean per analysis of each stage, and ``ast.parse`` of the same file
timed the same way (best of 10). Several trees side by side (``--trees OLD NEW``) alternate in separate processes,
so that a small change can be told from the machine's noise (an old checkout needs only ``benchmarks/corpus.py`` and
``benchmarks/lsp_latency.py``: ``git worktree add ../old <commit>``).

    .venv/bin/python benchmarks/analysis_stages.py [--rounds 3] [--cpu] [--trees DIR ...]
"""

from __future__ import annotations

import argparse
import ast
import collections
import functools
import statistics
import subprocess
import sys
import time
from pathlib import Path

# (module, attribute) of each stage timed, as `lsp_server.analysis.document` calls them.
_STAGES = [("document", n) for n in ("Scopes", "Models", "_find", "LineIndex", "check_hook_lifetimes", "check_tokens",
                                     "check_stacking_calls", "check_hook_meaning", "check_removed_api", "check_live")]
_METHODS = [("SyntaxParser", "parse", "tree-sitter's re-parse"), ("HookRefCollector", "collect", "resolving hook names"),
            ("NameChecker", "check", "name checks")]


def measure(rounds: int, clock) -> dict:
    from benchmarks.corpus import research_file
    from benchmarks.lsp_latency import typing_positions
    import lsp_server.analysis.document as document
    from lsp_server.collection import collection_paused
    from lsp_server.knowledge.resolve import resolve_model_name
    from lsp_server.knowledge.tokenizers import tokenizer_for

    spent: dict[str, float] = collections.defaultdict(float)

    def timed(label, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += clock() - start
        return wrapper

    for _, name in _STAGES:
        setattr(document, name, timed(name, getattr(document, name)))
    for cls, method, label in _METHODS:
        owner = getattr(document, cls)
        setattr(owner, method, timed(label, getattr(owner, method)))

    text = research_file(5000)
    context = document.AnalysisContext(tl_major=4, resolve_model=resolve_model_name, tokenizer_for=tokenizer_for)
    parser = document.SyntaxParser()
    lines = text.split("\n")
    versions = []
    for line, col in typing_positions(text):
        versions += ["\n".join(lines[:line] + [lines[line][:col] + "x" + lines[line][col:]] + lines[line + 1:]), text]
    for version in [text, *versions]:  # warm: the tokenizer, the memos of every statement
        document.analyze(version, context, parser)
    spent.clear()
    totals = []
    for _ in range(rounds):
        for version in versions:
            with collection_paused():
                start = clock()
                document.analyze(version, context, parser)
                totals.append(clock() - start)
    with collection_paused():  # (as the analyses ran, and as `lsp_latency.parse_time` times it)
        parse = min(_time(clock, lambda: ast.parse(text)) for _ in range(10))
    n = len(totals)
    return {"p50": statistics.median(totals), "parse": parse, "n": n,
            "stages": {label: seconds / n for label, seconds in spent.items()}}


def _time(clock, fn) -> float:
    start = clock()
    fn()
    return clock() - start


def report(result: dict) -> None:
    print(f"{result['n']} analyses: p50 {result['p50'] * 1000:.1f} ms, ast.parse {result['parse'] * 1000:.1f} ms "
          f"({result['p50'] / result['parse']:.2f}×)")
    stages = sorted(result["stages"].items(), key=lambda kv: -kv[1])
    for label, seconds in stages:
        print(f"  {label:28s} {seconds * 1000:6.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="passes over the 40 versions")
    ap.add_argument("--cpu", action="store_true", help="process CPU time instead of wall time")
    ap.add_argument("--trees", nargs="+", type=Path, help="checkouts to compare, alternating (three runs each)")
    ap.add_argument("--root", type=Path, default=Path(__file__).parent.parent, help="the checkout to measure")
    args = ap.parse_args()
    if args.trees:
        for _ in range(3):
            for tree in args.trees:
                print(f"{tree}: ", end="", flush=True)
                subprocess.run([sys.executable, __file__, "--rounds", str(args.rounds), "--root", str(tree),
                                *(["--cpu"] if args.cpu else [])], check=True)
        return
    sys.path.insert(0, str(args.root.resolve()))
    report(measure(args.rounds, time.process_time if args.cpu else time.perf_counter))


if __name__ == "__main__":
    main()
