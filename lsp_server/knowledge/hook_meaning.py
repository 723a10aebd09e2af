"""Hook names that hold another tensor on TransformerBridge than on HookedTransformer.

Code ported from HookedTransformer keeps running on a TransformerBridge and reads a different tensor
under the same name: results change silently (TransformerLens issues #1317, #1639, #1648, #1796). Each
row of ``data/hook_meaning.json`` says where that happens (the Hugging Face architectures, how the
bridge was prepared), what the bridge's tensor is, what HookedTransformer gave, what to use instead,
and which TransformerLens versions (of the bridge) it holds for.

Every row is measured on tiny random models with the same weights in each TL version the project
tests (TransformerBridge 3.9 and 4.3, HookedTransformer 2.18 and 3.9):
``tests/knowledge/test_hook_meaning_vs_tl.py`` measures each one again and fails when TL fixes it
(then the row gets ``fixed_in``) or when a version outside its range starts to show it. Architectures
no row lists are left alone: unmeasured means silent. Hooks that are registered but never fire are
not here: the hook catalog (hookpoints.py) marks them ``dead``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

# How the bridge was prepared: boot_transformers alone, enable_compatibility_mode() (LayerNorm folded,
# writing weights centred, value biases folded), or enable_compatibility_mode(no_processing=True).
Mode = Literal["raw", "compat", "compat_unprocessed"]
RAW: Mode = "raw"
COMPAT: Mode = "compat"
UNPROCESSED: Mode = "compat_unprocessed"

MODE_LABELS: dict[Mode, str] = {
    RAW: "raw: no enable_compatibility_mode()",
    COMPAT: "compatibility mode",
    UNPROCESSED: "compatibility mode, LayerNorm not folded",
}

ARCH_LABELS = {
    "GPT2LMHeadModel": "GPT-2", "GPTNeoXForCausalLM": "GPT-NeoX", "BloomForCausalLM": "BLOOM",
    "OPTForCausalLM": "OPT", "GPTJForCausalLM": "GPT-J", "PhiForCausalLM": "Phi", "GPTNeoForCausalLM": "GPT-Neo",
    "Qwen3ForCausalLM": "Qwen3", "LlamaForCausalLM": "Llama", "Gemma2ForCausalLM": "Gemma-2",
    "Olmo2ForCausalLM": "OLMo-2", "GraniteForCausalLM": "Granite",
}


@dataclass(frozen=True)
class VersionRange:
    """TransformerLens versions a row holds for: ``since`` (the first version measured) up to ``fixed_in``."""

    since: tuple[int, int]
    fixed_in: tuple[int, int] | None = None

    def covers(self, version: str | None) -> bool:
        """True when every version ``version`` may stand for is in the range: ``"4.3.0"`` exactly,
        ``"4.x"`` (a declared major version) all of 4.*; None (unknown) never."""
        if not version:
            return False
        numbers = [int(n) for n in re.findall(r"\d+", version.split("+")[0])[:2]]
        if not numbers:
            return False
        if len(numbers) == 1 or version.rstrip().endswith(".x"):
            lowest, highest = (numbers[0], 0), (numbers[0], 10**6)
        else:
            lowest = highest = (numbers[0], numbers[1])
        return self.since <= lowest and (self.fixed_in is None or highest < self.fixed_in)


@dataclass(frozen=True)
class MeaningRow:
    """One measured difference: under ``names`` the bridge holds ``reads``, HookedTransformer gave ``hooked``."""

    key: str
    architectures: frozenset[str]
    # Hook templates, each with the template to use instead (None: no drop-in replacement).
    names: tuple[tuple[str, str | None], ...]
    modes: frozenset[Mode]
    reads: str  # what the bridge's tensor is
    hooked: str  # what HookedTransformer gave under the name
    advice: str  # what to do (with {instead} for the replacement name, when there is one)
    measured: str  # the measured condition, for hovers
    severity: Literal["warning", "hint"]
    versions: VersionRange
    # "name": reported on each use of a name; "indexing": only where the code indexes or reshapes the
    # value as if it had HookedTransformer's layout; "boot": once per file, on the boot_transformers call.
    trigger: Literal["name", "indexing", "boot"] = "name"
    tl_issue: str | None = None

    def instead(self, template: str) -> str | None:
        return dict(self.names).get(template)

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.names)


# Package data, next to this module (read on first use: importing this module costs nothing).
TABLE_PATH = Path(__file__).with_name("data") / "hook_meaning.json"


@lru_cache(maxsize=1)
def rows() -> tuple[MeaningRow, ...]:
    """Every row of ``data/hook_meaning.json``, in its order."""
    return tuple(_row(raw) for raw in json.loads(TABLE_PATH.read_text("utf-8"))["rows"])


def _row(raw: dict[str, Any]) -> MeaningRow:
    versions = raw["versions"]
    return MeaningRow(
        key=raw["key"], architectures=frozenset(raw["architectures"]), names=tuple(raw["names"].items()),
        modes=frozenset(raw["modes"]), reads=raw["reads"], hooked=raw["hooked"], advice=raw["advice"],
        measured=raw["measured"], severity=raw["severity"], trigger=raw["trigger"], tl_issue=raw["tl_issue"],
        versions=VersionRange(_version(versions["since"]), _version(versions["fixed_in"]) if versions["fixed_in"] else None))


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


@lru_cache(maxsize=1)
def _by_template() -> dict[str, tuple[MeaningRow, ...]]:
    out: dict[str, tuple[MeaningRow, ...]] = {}
    for row in rows():
        for template in row.templates:
            out[template] = out.get(template, ()) + (row,)
    return out


def rows_for(template: str, architecture: str | None, mode: Mode, version: str | None) -> list[MeaningRow]:
    """The rows that hold for ``template`` on a bridge of ``architecture`` prepared as ``mode``, on TL ``version``."""
    if architecture is None:
        return []
    return [row for row in _by_template().get(template, ())
            if architecture in row.architectures and mode in row.modes and row.versions.covers(version)]


def describe(row: MeaningRow, name: str, architecture: str, mode: Mode, var: str = "model") -> str:
    """One line: where, what the name reads, what HookedTransformer gave, what to do."""
    template_of = _template_of(name)
    instead = row.instead(template_of) if template_of else None
    shown_instead = _with_layer(instead, name) if instead else ""
    where = f"{ARCH_LABELS.get(architecture, architecture)}, {MODE_LABELS[mode]}"
    issue = f" (TransformerLens {row.tl_issue})" if row.tl_issue else ""
    advice = row.advice.format(instead=shown_instead, var=var)
    return f"On TransformerBridge ({where}), `{name}` {row.reads}; {row.hooked}{issue}: {advice}."


def replacement(row: MeaningRow, name: str) -> str | None:
    """The name to use instead of ``name`` (same layer), when the row has a drop-in one."""
    template = _template_of(name)
    instead = row.instead(template) if template else None
    return _with_layer(instead, name) if instead else None


_LAYER = re.compile(r"^blocks\.(-?\d+|\{[^}]*\})\.")


def _template_of(name: str) -> str | None:
    m = _LAYER.match(name)
    return "blocks.{l}." + name[m.end():] if m else name


def _with_layer(template: str, name: str) -> str:
    m = _LAYER.match(name)
    return template.replace("{l}", m.group(1)) if m else template
