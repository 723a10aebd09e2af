"""Which expressions hold a TransformerLens model, which model (its key), and its backend."""

from __future__ import annotations

from ..models import is_bridge_code
from ..scopes import MODULE
from ..syntax import Node, dotted, text
from .doc import Doc
from .events import Key


class ModelKeys:
    def __init__(self, doc: Doc):
        self.a = doc.a
        self.scopes = doc.scopes
        # Written for HookedTransformer: an unresolved model is one (removed-api flags a TL 4 workspace).
        self._hooked_code = b"HookedTransformer" in doc.src and not is_bridge_code(doc.src)
        self.tl_keys: set = set()  # models hooks are added to
        self.evidence: list[Node] = []  # receivers of methods only TL models have
        self._cache: dict = {}
        self._evidence_text: set[str] | None = None
        self._evidence_keys: set | None = None
        self._names: tuple | None = None

    def key(self, node: Node | None) -> Key | None:
        """Identity of a model expression: a name (per binding scope), a parameter, or a dotted attribute."""
        if node is None:
            return None
        if node.type == "identifier":
            name = text(node)
            return self.key_of_definition(self.scopes.lookup(name, node.start_byte), name)
        if node.type == "attribute" and dotted(node):
            return ("a", text(node))
        return None

    def key_of_definition(self, d, name: str) -> Key:
        if d is None:
            return ("g", name)
        if d.kind == "param":
            return ("p", d.node.start_byte, name)
        scope = self.scopes.scope_of(d.target.start_byte)
        return ("g", name) if scope == MODULE else ("l", scope, name)

    def is_model(self, key: Key | None, node: Node) -> bool:
        """A model built the way models are built, or the receiver of a method only TL models have."""
        if key is None:
            return False
        if key in self.tl_keys:
            return True
        if key not in self._cache:
            found = node.type == "identifier" and self.a.models.model_at(node) is not None
            if not found and text(node) in self._evidence_texts():
                if self._evidence_keys is None:
                    self._evidence_keys = {self.key(r) for r in self.evidence}
                found = key in self._evidence_keys
            self._cache[key] = found
        return self._cache[key]

    def _evidence_texts(self) -> set[str]:
        if self._evidence_text is None:
            self._evidence_text = {text(r) for r in self.evidence}
        return self._evidence_text

    def names(self) -> tuple[set, set]:
        """(names that may hold a model, dotted attributes that hold one)."""
        if self._names is None:
            dotted_texts = {t for t in self._evidence_texts() if "." in t}
            plain = {t for t in self._evidence_texts() if t.isidentifier()}
            self._names = ({k[-1] for k in self.tl_keys if k[0] != "a"} | {m.var for m in self.a.models.all_models} | plain,
                           {k[1] for k in self.tl_keys if k[0] == "a"} | dotted_texts)
        return self._names

    def backend(self, node: Node) -> tuple[str | None, bool]:
        """(backend, certain) of the model an expression holds."""
        info = self.a.models.model_at(node) if node.type == "identifier" else None
        if info is not None and info.backend_known:
            return info.spec.backend, info.kind != "param" or info.spec.backend == "bridge"
        if self._hooked_code:
            return "hooked", False
        major = self.a.context.tl_major
        if major is not None:
            return ("bridge" if major >= 4 else "hooked"), False
        return None, False
