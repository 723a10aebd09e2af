"""The payload as a kernel receives it, installed in this process, and fake TL objects for its tests.

``install()`` runs ``install_code()`` (the statement the server sends) in a fresh dict that plays the
notebook's globals, so the tests exercise the joined module, not the part files.
"""

from __future__ import annotations

import json
from types import ModuleType, SimpleNamespace

from lsp_server.kernel.payload import install_code


def install(namespace: dict | None = None) -> ModuleType:
    """Install the payload into ``namespace`` (a new one by default); return ``__tlens__``."""
    ns = {} if namespace is None else namespace
    exec(install_code(), ns)
    return ns["__tlens__"]


def answer(tlens: ModuleType, name: str, **args) -> dict:
    """``call`` + ``take`` as the server does them, decoded."""
    tlens.call(name, json.dumps(args))
    return json.loads(tlens.take())


class HookedTransformer:
    """A stand-in model: the payload knows TL models by class name, ``cfg`` and ``parameters``.

    Its tokenizer maps each character to its code point (with BOS 0 unless ``prepend_bos=False``).
    """

    def __init__(self, n_layers: int = 2, d_model: int = 8, n_heads: int = 2) -> None:
        self.cfg = SimpleNamespace(n_layers=n_layers, d_model=d_model, n_heads=n_heads)
        self.training = False
        self.reset_calls: list[bool] = []

    def parameters(self):
        return iter(())

    def to_tokens(self, text, prepend_bos: bool = True):
        import torch

        texts = [text] if isinstance(text, str) else list(text)
        rows = [([0] if prepend_bos else []) + [ord(c) for c in t] for t in texts]
        return torch.tensor(rows, dtype=torch.long)

    def to_single_token(self, text: str) -> int:
        if len(text) != 1:
            raise ValueError("not a single token")
        return ord(text)

    def to_string(self, ids) -> str:
        return "".join(chr(i) for i in ids)

    def to_str_tokens(self, row):
        return ["<bos>" if int(i) == 0 else chr(int(i)) for i in row]

    def reset_hooks(self, including_permanent: bool = False) -> None:
        self.reset_calls.append(including_permanent)
