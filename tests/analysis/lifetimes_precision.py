"""Precision of the hook-lifetime checks over the fixtures in tests/fixtures/lifetimes/.

Each fixture marks the findings it expects with a trailing ``# expect: code[severity], ...`` comment on
the line where the finding starts, and names its TransformerLens major version as ``tl-major: N``
in its docstring or header. Run directly for the table:

    .venv/bin/python tests/analysis/lifetimes_precision.py            # precision table
    .venv/bin/python tests/analysis/lifetimes_precision.py --timing   # cost on 5,000-line files
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lsp_server.analysis.document import AnalysisContext, analyze  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "lifetimes"
CODES = ("stale-hook", "hook-accumulates", "reset-hooks-end-false", "hook-signature")
_EXPECT = re.compile(r"#\s*expect:\s*(.+)$")
_ITEM = re.compile(r"([\w-]+)(?:\[(\w+)\])?")
_MAJOR = re.compile(r"tl-major:\s*(\d+)")


@dataclass
class Outcome:
    """Expected and found (line, code, severity) triples of one fixture."""

    name: str
    expected: set = field(default_factory=set)
    found: set = field(default_factory=set)

    @property
    def missing(self) -> set:
        return {e for e in self.expected if (e[0], e[1]) not in {(f[0], f[1]) for f in self.found}}

    @property
    def unexpected(self) -> set:
        return {f for f in self.found if (f[0], f[1]) not in {(e[0], e[1]) for e in self.expected}}

    @property
    def wrong_severity(self) -> set:
        exp = {(e[0], e[1]): e[2] for e in self.expected}
        return {f for f in self.found if (f[0], f[1]) in exp and exp[(f[0], f[1])] not in (None, f[2])}


def expectations(text: str) -> set[tuple[int, str, str | None]]:
    out = set()
    for i, line in enumerate(text.splitlines(), start=1):
        m = _EXPECT.search(line)
        if m:
            for item in m.group(1).split(","):
                im = _ITEM.fullmatch(item.strip())
                if im is None:
                    raise ValueError(f"line {i}: cannot read expectation {item!r} (write `# expect: code[severity]`)")
                if im.group(1) not in CODES:
                    raise ValueError(f"line {i}: unknown code {im.group(1)!r}; expected one of {CODES}")
                out.add((i, im.group(1), im.group(2)))
    return out


def tl_major(text: str) -> int | None:
    m = _MAJOR.search(text[:2000])
    return int(m.group(1)) if m else None


def run_fixture(path: Path) -> tuple[Outcome, object]:
    text = path.read_text()
    analysis = analyze(text, AnalysisContext(tl_major=tl_major(text)))
    found = {(analysis.lines.line_of(f.start) + 1, f.code, f.severity) for f in analysis.findings if f.code in CODES}
    return Outcome(path.name, expectations(text), found), analysis


def fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.py"))


def table(outcomes: list[Outcome]) -> str:
    rows = ["code                    findings  true  false  missed  precision  recall"]
    for code in CODES:
        found = [f for o in outcomes for f in o.found if f[1] == code]
        false = [f for o in outcomes for f in o.unexpected if f[1] == code]
        missed = [e for o in outcomes for e in o.missing if e[1] == code]
        true = len(found) - len(false)
        precision = f"{true / len(found):.2f}" if found else "-"
        expected = true + len(missed)
        recall = f"{true / expected:.2f}" if expected else "-"
        rows.append(f"{code:<22}  {len(found):>8}  {true:>4}  {len(false):>5}  {len(missed):>6}  {precision:>9}  {recall:>6}")
    return "\n".join(rows)


def timing() -> None:
    """CPU time of the lifetime checks alone, on 5,000-line files (min and median of 41 runs)."""
    import statistics
    import time

    from benchmarks.corpus import research_file
    from lsp_server.analysis.lifetimes import check_hook_lifetimes

    research = research_file(5000)
    every_fixture = "".join(p.read_text() + "\n" for p in fixtures())
    repeated = (every_fixture * (5000 // every_fixture.count("\n") + 1)).split("\n")[:5000]
    cases = {
        "research file, no hook code": research,
        "TransformerLens-dense file, no add_hook": research_file(5000, dense=True),
        "research file ending in ~200 lines of hook code": "\n".join(research.split("\n")[:4700]) + "\n"
        + (FIXTURES / "ablation_notebook.py").read_text() + (FIXTURES / "hooks_in_loops.py").read_text(),
        "every fixture repeated (pathological)": "\n".join(repeated) + "\n",
    }
    for name, text in cases.items():
        analysis = analyze(text, AnalysisContext(tl_major=2))
        runs = []
        for _ in range(41):
            t = time.process_time()
            check_hook_lifetimes(analysis)
            runs.append(time.process_time() - t)
        t = time.process_time()
        analyze(text, AnalysisContext(tl_major=2))
        whole = time.process_time() - t
        n = sum(1 for f in analysis.findings if f.code in CODES)
        print(f"{name:50s} {text.count(chr(10)):5d} lines  check: min {min(runs) * 1000:6.2f} ms, "
              f"median {statistics.median(runs) * 1000:6.2f} ms  (whole analyze() {whole * 1000:5.0f} ms, {n} findings)")


def main() -> int:
    if "--timing" in sys.argv:
        timing()
        return 0
    outcomes = [run_fixture(p)[0] for p in fixtures()]
    print(table(outcomes))
    bad = False
    for o in outcomes:
        for f in sorted(o.unexpected):
            print(f"  FALSE   {o.name}:{f[0]} {f[1]}[{f[2]}]")
            bad = True
        for e in sorted(o.missing):
            print(f"  MISSED  {o.name}:{e[0]} {e[1]}")
            bad = True
        for f in sorted(o.wrong_severity):
            print(f"  SEVERITY {o.name}:{f[0]} {f[1]} is {f[2]}")
            bad = True
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
