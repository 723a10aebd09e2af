"""Every cache-key form in the fixtures gets the right hook name on hover; report the fraction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.features.hover import hover
from lsp_server.knowledge.resolve import resolve_model_name

FIXTURES = Path(__file__).parent.parent / "fixtures" / "keys"
# `# -> name`, `# -> name | name` (one of several, in order), `# -> unknown` (no hook name on hover),
# `# -> name (dict key)` (a hook name keying a plain dict: no shape claimed for the value).
MARK = re.compile(r"#\s*->\s*(.+?)\s*$")
# A cache subscript's "[": after a cache's name, or after another subscript (`caches[0]["pattern", 5]`).
CACHE_SUBSCRIPT = re.compile(r"\b(cache|clean_cache|corrupted_cache|my_cache|rebuilt|act_cache|cache_dict|real_cache|forward_cache|grad_cache|mean_cache)\[|(?<=\])\[(?=[\"'])")


def expectations(path: Path):
    """(line index, column of the key, expected hook name) for each marked line."""
    for i, line in enumerate(path.read_text().splitlines()):
        m = MARK.search(line)
        if m:
            key = CACHE_SUBSCRIPT.search(line)
            assert key, f"{path.name}:{i + 1}: marked line without a cache subscript"
            yield i, key.end(), m.group(1)


def hover_name(analysis, line: int, col: int) -> str | None:
    result = hover(analysis, analysis.lines.offset(line, col))
    if result is None:
        return "unknown"
    if result.markdown.startswith("One of "):
        return " | ".join(re.findall(r"^- `([^`]+)`", result.markdown, re.M))
    m = re.match(r"`([^`]+)`( · a dict key)?", result.markdown)
    return (m.group(1) + (" (dict key)" if m.group(2) else "")) if m else "unknown"


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.py")))
def test_key_forms_resolve(fixture, capsys):
    path = FIXTURES / fixture
    analysis = analyze(path.read_text(), AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
    rows = list(expectations(path))
    misses = []
    for line, col, expected in rows:
        got = hover_name(analysis, line, col)
        if got != expected:
            misses.append(f"{fixture}:{line + 1}: expected {expected}, hover shows {got}")
    fraction = 1 - len(misses) / len(rows)
    with capsys.disabled():
        print(f"\n{fixture}: {len(rows) - len(misses)}/{len(rows)} cache subscripts hover correctly ({fraction:.0%})")
    assert fraction >= 0.95, "\n".join(misses)
    assert not misses, "\n".join(misses)


def test_a_tests_model_parameter_is_the_model_its_fixture_yields():
    """``def test_x(model, ...)`` with a ``@pytest.fixture def model()`` in the file: the fixture's model gives
    concrete shapes; a parameter named like no fixture stays symbolic."""
    source = (FIXTURES / "pytest_tests.py").read_text()
    analysis = analyze(source, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
    line = source.splitlines().index('    assert cache[act_name].shape[0] == 1  # -> blocks.0.attn.hook_z | blocks.0.hook_mlp_out')
    shown = hover(analysis, analysis.lines.offset(line, source.splitlines()[line].index("act_name"))).markdown
    assert "`blocks.0.hook_mlp_out` · `[batch, pos, d_model]` = `[batch, pos, 512]`" in shown
    renamed = analyze(source.replace("def model():", "def other_model():"),
                      AnalysisContext(tl_major=2, resolve_model=resolve_model_name))
    shown = hover(renamed, renamed.lines.offset(line, source.splitlines()[line].index("act_name"))).markdown
    assert "= `[batch, pos, 512]`" not in shown and "`blocks.0.hook_mlp_out` · `[batch, pos, d_model]`" in shown
