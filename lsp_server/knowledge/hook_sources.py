"""Where the installed TransformerLens defines a hook point, for go-to-definition.

HookedTransformer defines each hook point as an attribute of a component (``self.hook_z = HookPoint()``
in ``components/abstract_attention.py``); TransformerBridge components declare the legacy names in
alias tables (``"hook_z": "o.hook_in"`` in ``model_bridge/generalized_components/attention.py``).
The TransformerLens source is read as text, never imported (it would import torch).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from .versions import probe

_HOOKED = re.compile(r"self\.(hook_\w+)\s*(?::[^=]+)?=\s*HookPoint\(")
_ALIAS = re.compile(r"""["'](hook_\w+)["']\s*:""")
# The generic component that defines a hook, by the name part before it (blocks.{l}.attn.hook_z -> "attn"),
# for HookedTransformer and for TransformerBridge; architecture-specific files (bert_block, gated_mlp) after.
_GENERIC_FILES = {
    False: {"attn": "abstract_attention", "mlp": "mlp", "ln1": "layer_norm", "ln2": "layer_norm",
            "ln_final": "layer_norm", "": "transformer_block", None: "HookedTransformer"},
    True: {"attn": "attention", "mlp": "mlp", "ln1": "normalization", "ln2": "normalization",
           "ln_final": "normalization", "": "block", None: "bridge_core"},
}
_KINDS = {"attn": "attention", "mlp": "mlp", "ln1": "norm", "ln2": "norm", "ln_final": "norm", "": "block"}
_PROBE = ("import importlib.util as u; s = u.find_spec('transformer_lens'); "
          "print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')")


@dataclass(frozen=True)
class SourceLocation:
    path: Path
    line: int  # 0-based
    column: int  # of the hook's name


@functools.lru_cache(maxsize=8)
def package_dir(python: str | None = None, timeout: float = 10.0) -> Path | None:
    """The installed ``transformer_lens`` package: the server's own, or that of another interpreter."""
    if python is None:
        import importlib.util

        spec = importlib.util.find_spec("transformer_lens")  # finds, does not import
        locations = spec.submodule_search_locations if spec else None
        return Path(locations[0]) if locations else None
    found = probe(python, _PROBE, timeout)
    return Path(found) if found and Path(found).is_dir() else None


@functools.lru_cache(maxsize=4)
def _index(package: Path) -> dict[str, list[tuple[SourceLocation, bool]]]:
    """hook attribute -> (where it is defined, whether in the bridge's sources), over the package's sources."""
    found: dict[str, list[tuple[SourceLocation, bool]]] = {}
    for path in sorted(package.rglob("*.py")):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        except OSError:
            continue
        bridge = "model_bridge" in path.parts
        patterns = (_HOOKED, _ALIAS) if bridge else (_HOOKED,)
        for number, line in enumerate(lines):
            if "hook_" not in line:
                continue
            for pattern in patterns:
                for m in pattern.finditer(line):
                    found.setdefault(m.group(1), []).append((SourceLocation(path, number, m.start(1)), bridge))
    return found


def hook_definition(template: str, package: Path, bridge: bool) -> SourceLocation | None:
    """Where ``template`` (``blocks.{l}.attn.hook_z``) is defined in ``package``, for the backend in use."""
    parts = template.split(".")
    attr = parts[-1]
    parent = parts[-2] if len(parts) > 1 and parts[-2] != "{l}" else ("" if parts[0] == "blocks" else None)
    candidates = [loc for loc, in_bridge in _index(package).get(attr, []) if in_bridge == bridge]
    generic, kind = _GENERIC_FILES[bridge].get(parent), _KINDS.get(parent or "", "")

    def rank(loc: SourceLocation) -> tuple:
        stem = loc.path.stem
        return (stem != generic, not (kind and kind in stem.lower()), len(loc.path.parts), stem, loc.line)

    return min(candidates, key=rank, default=None)
