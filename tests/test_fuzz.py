"""The CI-sized fuzz sample: 300 mutated documents from examples/ and tests/fixtures/, sent to the real
server over stdio (benchmarks/fuzzing). Any error response, Error-level log message, error on stderr,
request or diagnostics over 10 s, or server death fails it, with the seed and document to replay."""

from __future__ import annotations

import random

import pytest

from benchmarks.fuzzing import mutations
from benchmarks.fuzzing.driver import Fuzzer
from benchmarks.fuzzing.sources import REPOSITORY_SOURCES, gather

DOCUMENTS = 300
SEED = 20261205


@pytest.mark.slow
async def test_fuzz_sample_finds_nothing(tmp_path):
    sources = gather(list(REPOSITORY_SOURCES))
    assert len(sources) >= 15
    tally = await Fuzzer(sources, SEED, tmp_path / "root", tmp_path / "failures").run(list(range(DOCUMENTS)))
    assert tally.documents == DOCUMENTS and tally.requests > 5 * DOCUMENTS
    # The mutations reach the features: hovers and quick fixes are answered on the mutated documents.
    assert tally.answered.get("textDocument/hover", 0) > 10 and tally.answered.get("textDocument/codeAction", 0) > 10
    problems = "\n".join(f"{p.kind} in document {p.document} (seed {p.seed}, {p.source}): {p.detail[:1500]}\n"
                         f"  replay: benchmarks/fuzz_server.py --seed {p.seed} --only {p.document}" for p in tally.problems)
    assert not tally.problems, problems


def test_mutations_are_seeded_and_positions_count_utf16():
    text = 'x = "🙂"\r\ncache["blocks.0.hook_resid_pre"]\n'
    first = [mutations.mutate(text, random.Random(5)) for _ in range(3)]
    assert first == [mutations.mutate(text, random.Random(5)) for _ in range(3)]
    # After the CRLF: line 1; the emoji is two UTF-16 code units.
    assert mutations.lsp_position(text, text.index("cache")) == mutations.types.Position(line=1, character=0)
    assert mutations.lsp_position(text, text.index('"\r')) == mutations.types.Position(line=0, character=7)


def test_truncation_cuts_at_every_kind_of_token():
    text = 'def f(x):\n    return cache["blocks.0.hook_q"] + 1.5  # note\nmodel?\n'
    rng = random.Random(0)
    kinds = {mutations.truncate_at_token(text, rng).kind.split(" a ")[-1] for _ in range(400)}
    assert {f"{k} token" for k in mutations.TOKEN_KINDS} <= kinds
