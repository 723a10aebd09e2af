"""An analysis holds no reference cycle: dropped, it is freed at once by reference counting. (With a
cycle, every version typed leaves its whole analysis for the cycle collector: ~3 MB and a full
collection inside a later analysis every few keystrokes on a 5,000-line file.)"""

import gc
from pathlib import Path

import pytest

from benchmarks.corpus import research_file
from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.analysis.syntax import SyntaxParser
from lsp_server.knowledge.resolve import resolve_model_name

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures").rglob("*.py"))


def _cycles_left_by(texts: list[str]) -> list:
    """What the cycle collector finds after analysing ``texts`` in turn with one parser and dropping them."""
    context = AnalysisContext(tl_major=4, resolve_model=resolve_model_name)
    parser = SyntaxParser()
    analyze(texts[0], context, parser)  # (what the first analysis memoises stays with the parser)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for text in texts[1:]:
            analysis = analyze(text, context, parser)
            analysis.findings, analysis.refs  # noqa: B018 (read, as the features do)
            del analysis
        gc.collect()
        return [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_research_file_and_its_edits_leave_no_cycle():
    text = research_file(400)
    lines = text.split("\n")
    edited = ["\n".join(lines[:i] + [lines[i] + "x"] + lines[i + 1:]) for i in range(10, len(lines), 97)]
    assert _cycles_left_by([text, *edited, text]) == []


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixtures_leave_no_cycle(path):
    text = path.read_text()
    assert _cycles_left_by([text, text + "\n", text]) == []
