"""hook-meaning on research code ported to TransformerBridge (the corpus is not committed: build your own).

Each ``.py`` file that imports HookedTransformer is ported with the server's own ``removed-api`` fix
(``HookedTransformer.from_pretrained(...)`` -> ``TransformerBridge.boot_transformers(...)`` plus
``enable_compatibility_mode()``) and analysed as TransformerLens 4.3 code. ``--raw`` leaves out the inserted
``enable_compatibility_mode()`` lines: the port made by following the ImportError alone. Prints every
hook-meaning finding, to judge by hand, and their count.

    .venv/bin/python benchmarks/ported_corpus.py CORPUS_DIR [--raw]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from lsp_server.analysis.document import AnalysisContext, analyze  # noqa: E402
from lsp_server.analysis.findings import Fix  # noqa: E402
from lsp_server.knowledge.resolve import resolve_model_name  # noqa: E402

TL43 = AnalysisContext(tl_major=4, tl_version="4.3.0", tl_label="4.3.0, ported", resolve_model=resolve_model_name)


def ported(source: str, raw: bool) -> str | None:
    """The file after the migration fix (None when it offers none: nothing to port)."""
    fixes = [fix for f in analyze(source, TL43).findings if f.code == "removed-api" for fix in f.fixes
             if fix.title.startswith("Migrate to TransformerBridge")]
    if not fixes:
        return None
    return apply(source, fixes[0], skip=".enable_compatibility_mode(" if raw else None)


def apply(source: str, fix: Fix, skip: str | None) -> str:
    data = source.encode("utf-8")
    for edit in sorted(fix.edits, key=lambda e: e.start, reverse=True):
        if skip is None or skip not in edit.new_text:
            data = data[:edit.start] + edit.new_text.encode("utf-8") + data[edit.end:]
    return data.decode("utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--raw", action="store_true", help="port without enable_compatibility_mode()")
    args = ap.parse_args()
    files = sorted(args.corpus.rglob("*.py"))
    counts: collections.Counter = collections.Counter()
    n_ported = 0
    for path in files:
        try:
            text = ported(path.read_text(encoding="utf-8"), args.raw)
        except (OSError, UnicodeDecodeError):
            continue
        if text is None:
            continue
        n_ported += 1
        analysis = analyze(text, TL43)
        for f in analysis.findings:
            if f.code == "hook-meaning":
                counts[f.severity] += 1
                line = analysis.lines.position(f.start).line + 1
                print(f"{path.relative_to(args.corpus)}:{line}: {f.severity}: {f.message}")
    print(f"\n{len(files)} files, {n_ported} ported ({'raw' if args.raw else 'with enable_compatibility_mode()'}); "
          f"hook-meaning findings: {dict(counts) or 0}")


if __name__ == "__main__":
    main()
