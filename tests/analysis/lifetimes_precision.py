"""Precision of the hook-lifetime checks over the fixtures in tests/fixtures/lifetimes/.

Each fixture marks the findings it expects with a trailing ``# expect: code[severity], ...`` comment on
the line where the finding starts, and names its TransformerLens major version as ``tl-major: N``
in its docstring or header. Run directly for the table:

    .venv/bin/python tests/analysis/lifetimes_precision.py
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


def main() -> int:
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
