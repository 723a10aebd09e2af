"""Fuzz the language server over stdio with mutated real documents; count error responses, Error-level
log messages, requests over 10 s and server deaths (see benchmarks/fuzzing/driver.py).

    .venv/bin/python benchmarks/fuzz_server.py                       # 300 documents from examples/ and tests/fixtures/
    .venv/bin/python benchmarks/fuzz_server.py --documents 10000 --seed 7 /path/to/corpus ...
    .venv/bin/python benchmarks/fuzz_server.py --seed 7 --only 4242 /path/to/corpus ...   # replay one document

Failing documents (their steps and final text) are written under ``--out`` (outside the repository by
default: corpus code must not land in it). Exit code 1 when anything was counted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))
from benchmarks.fuzzing.driver import Fuzzer, Tally  # noqa: E402
from benchmarks.fuzzing.sources import REPOSITORY_SOURCES, gather  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="more sources (the repository's examples/ and tests/fixtures/ always)")
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", type=int, nargs="*", help="replay these documents only")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "tlens-fuzz")
    args = parser.parse_args()
    sources = gather(list(REPOSITORY_SOURCES) + args.folders)
    documents = args.only if args.only is not None else list(range(args.documents))
    print(f"{len(sources)} sources, {len(documents)} documents, seed {args.seed}", flush=True)
    start = time.perf_counter()

    def progress(tally: Tally) -> None:
        if tally.documents % 100 == 0:
            print(f"  {tally.documents} documents, {time.perf_counter() - start:.0f} s, {tally.counts()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="tlens-fuzz-root-") as root:
        tally = asyncio.run(Fuzzer(sources, args.seed, Path(root), args.out).run(documents, progress))
    print(report(tally, time.perf_counter() - start, args))
    return 1 if tally.problems else 0


def report(tally: Tally, seconds: float, args: argparse.Namespace) -> str:
    lines = [f"{tally.documents} documents, {tally.edits} edits, {tally.requests} requests ({tally.cancelled} cancelled) "
             f"in {seconds:.0f} s; slowest request {tally.slowest_s:.2f} s",
             "answered (not empty): " + ", ".join(f"{k} {v}" for k, v in sorted(tally.answered.items())),
             "counts: " + ", ".join(f"{k}: {v}" for k, v in tally.counts().items())]
    folders = " ".join(str(f) for f in args.folders)
    for p in tally.problems:
        lines.append(f"- {p.kind} in document {p.document} (seed {p.seed}, from {p.source}): {p.detail.strip()[:2000]}\n"
                     f"  saved: {p.saved}\n  replay: benchmarks/fuzz_server.py --seed {p.seed} --only {p.document} {folders}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
