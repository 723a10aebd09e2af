"""Hook names that hold another tensor on TransformerBridge than on HookedTransformer.

Code ported from HookedTransformer keeps running on a TransformerBridge and reads a different tensor
under the same name: results change silently (TransformerLens issues #1317, #1639, #1648, #1796). Each
row says where that happens (the Hugging Face architectures, how the bridge was prepared, flags), what
the bridge's tensor is, what HookedTransformer gave, what to use instead, and which TransformerLens
versions (of the bridge) it holds for.

Every row is measured on tiny random models with the same weights in each TL version the project tests
(TransformerBridge 3.9 and 4.3, HookedTransformer 2.18 and 3.9): ``tests/knowledge/test_hook_meaning_vs_tl.py``
re-measures each one and fails when TL fixes it (then the row gets ``fixed_in``) or when a version outside
its range starts to show it. Architectures no row lists are left alone: unmeasured means silent.
Hooks that are registered but never fire are not here: the hook catalog marks them ``dead``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# How the bridge was prepared: boot_transformers alone, enable_compatibility_mode() (LayerNorm folded,
# writing weights centred, value biases folded), or enable_compatibility_mode(no_processing=True).
Mode = Literal["raw", "compat", "compat_unprocessed"]
RAW: Mode = "raw"
COMPAT: Mode = "compat"
UNPROCESSED: Mode = "compat_unprocessed"
ANY_MODE: frozenset[Mode] = frozenset({RAW, COMPAT, UNPROCESSED})

MODE_LABELS: dict[Mode, str] = {
    RAW: "raw: no enable_compatibility_mode()",
    COMPAT: "compatibility mode",
    UNPROCESSED: "compatibility mode without processing",
}

ARCH_LABELS = {
    "GPT2LMHeadModel": "GPT-2", "GPTNeoXForCausalLM": "GPT-NeoX", "BloomForCausalLM": "BLOOM",
    "OPTForCausalLM": "OPT", "GPTJForCausalLM": "GPT-J", "PhiForCausalLM": "Phi", "GPTNeoForCausalLM": "GPT-Neo",
    "Qwen3ForCausalLM": "Qwen3", "LlamaForCausalLM": "Llama", "Gemma2ForCausalLM": "Gemma-2",
    "Olmo2ForCausalLM": "OLMo-2", "GraniteForCausalLM": "Granite",
}
# Architectures with LayerNorm (weight and bias); the RMSNorm ones have no bias to fold and nothing to centre.
LAYERNORM = frozenset({"GPT2LMHeadModel", "GPTNeoXForCausalLM", "BloomForCausalLM", "OPTForCausalLM",
                       "GPTJForCausalLM", "PhiForCausalLM", "GPTNeoForCausalLM"})


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

    @property
    def label(self) -> str:
        since = f"TransformerLens ≥ {self.since[0]}.{self.since[1]}"
        return since + (f", < {self.fixed_in[0]}.{self.fixed_in[1]}" if self.fixed_in else "")


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


_MEASURED = VersionRange(since=(3, 9))  # measured on the TL 3.9 and 4.3 bridges, not yet fixed

_LN = ("blocks.{l}.ln1", "blocks.{l}.ln2", "ln_final")
_RESIDUAL = ("blocks.{l}.hook_resid_pre", "blocks.{l}.hook_resid_mid", "blocks.{l}.hook_resid_post",
             "blocks.{l}.hook_attn_out", "blocks.{l}.hook_mlp_out", "blocks.{l}.hook_mlp_in",
             "blocks.{l}.hook_q_input", "blocks.{l}.hook_k_input", "blocks.{l}.hook_v_input", "blocks.{l}.hook_attn_in",
             "blocks.{l}.attn.hook_v", "blocks.{l}.attn.hook_z", "blocks.{l}.attn.hook_result")
_SPLIT_INPUTS = ("hook_q_input", "hook_k_input", "hook_v_input", "hook_attn_in")

ROWS: tuple[MeaningRow, ...] = (
    MeaningRow(
        key="ln-normalized",
        architectures=LAYERNORM,
        names=tuple((f"{ln}.hook_normalized", f"{ln}.hook_out") for ln in _LN),
        modes=frozenset({RAW, UNPROCESSED}),
        reads="is the LayerNorm input normalised before the LayerNorm weight and bias",
        hooked="HookedTransformer 2.x (from_pretrained_no_processing) gave it after them",
        advice="that value is `{instead}` here (after a processing enable_compatibility_mode() the LayerNorm is folded "
               "and both agree)",
        measured="|Δ| 0.79–2.0 against HookedTransformer 2.18 on tiny random models, TL 3.9 and 4.3 bridges; "
                 "equal in compatibility mode and on HookedTransformer 3.x",
        severity="warning",
        versions=_MEASURED,
    ),
    MeaningRow(
        key="unprocessed-weights",
        architectures=LAYERNORM,
        names=tuple((t, None) for t in _RESIDUAL),
        modes=frozenset({RAW}),
        reads="holds the unprocessed model's value (the residual stream not centred, value biases not folded)",
        hooked="HookedTransformer.from_pretrained centres the residual writes and folds the value biases",
        advice="call `{var}.enable_compatibility_mode()` after boot_transformers for from_pretrained's numbers",
        measured="|Δ| 0.13–0.68 against from_pretrained on tiny random models, hook_z by a constant per head; "
                 "equal in compatibility mode",
        severity="hint",
        versions=_MEASURED,
        trigger="boot",
    ),
    MeaningRow(
        key="bloom-split-inputs",
        architectures=frozenset({"BloomForCausalLM"}),
        names=tuple((f"blocks.{{l}}.{h}", "blocks.{l}.hook_resid_pre") for h in _SPLIT_INPUTS)
        + tuple((f"blocks.{{l}}.attn.{h}", "blocks.{l}.hook_resid_pre") for h in _SPLIT_INPUTS),
        modes=ANY_MODE,
        reads="is ln1's output (after the LayerNorm), copied per head",
        hooked="HookedTransformer gives the residual stream before the LayerNorm, copied per head",
        advice="the residual is `{instead}`",
        measured="|Δ| 1.06–1.37 on a tiny random BLOOM, TL 3.9 and 4.3 bridges, raw and compatibility mode",
        severity="warning",
        versions=_MEASURED,
        tl_issue="#1317",
    ),
    MeaningRow(
        key="opt-ln2-layout",
        architectures=frozenset({"OPTForCausalLM"}),
        names=(("blocks.{l}.ln2.hook_scale", None), ("blocks.{l}.ln2.hook_normalized", None)),
        modes=ANY_MODE,
        reads="is [batch*pos, ·] (batch and position flattened into one axis)",
        hooked="HookedTransformer gives [batch, pos, ·], so indexing written for it (`[:, -1]`) reads the wrong rows",
        advice="reshape first: `.view(batch, pos, -1)`",
        measured="shape [batch*pos, d_model] against [batch, pos, d_model]; equal values after the reshape",
        severity="warning",
        versions=_MEASURED,
        trigger="indexing",
    ),
    MeaningRow(
        key="qwen3-qk-norm-layout",
        architectures=frozenset({"Qwen3ForCausalLM"}),
        names=tuple((f"blocks.{{l}}.attn.{x}_norm.{h}", None) for x in "qk" for h in ("hook_scale", "hook_normalized")),
        modes=ANY_MODE,
        reads="is [batch, head, pos, d_head]",
        hooked="HookedTransformer gives it flattened as [batch*pos*head, d_head], so indexing or a reshape "
               "written for that layout reads the wrong values",
        advice="index it as [batch, head, pos]; HookedTransformer's layout is `.transpose(1, 2).reshape(-1, d_head)`",
        measured="shape [batch, head, pos, d_head] against [batch*pos*head, d_head]; equal values after "
                 "transpose(1, 2).reshape, a plain reshape differs",
        severity="warning",
        versions=_MEASURED,
        trigger="indexing",
    ),
    MeaningRow(
        key="bloom-attn-hook-out",
        architectures=frozenset({"BloomForCausalLM"}),
        names=(("blocks.{l}.attn.hook_out", "blocks.{l}.hook_attn_out"),
               ("blocks.{l}.attn.hook_hidden_states", "blocks.{l}.hook_attn_out")),
        modes=ANY_MODE,
        reads="is the residual stream after attention (= hook_resid_mid: the attention output plus the residual)",
        hooked="it is not the attention output, though TransformerLens's docs call them aliases",
        advice="the attention output is `{instead}`",
        measured="equal to hook_resid_mid; |Δ| 3.7 against hook_attn_out on a tiny random BLOOM",
        severity="warning",
        versions=_MEASURED,
        tl_issue="#1639",
    ),
    MeaningRow(
        key="post-norm-sublayer-out",
        architectures=frozenset({"Olmo2ForCausalLM", "GraniteForCausalLM", "Gemma2ForCausalLM"}),
        names=(("blocks.{l}.attn.hook_out", "blocks.{l}.hook_attn_out"),
               ("blocks.{l}.mlp.hook_out", "blocks.{l}.hook_mlp_out")),
        modes=ANY_MODE,
        reads="is the sublayer's own output, before the post-norm (OLMo-2, Gemma-2) or the residual multiplier "
              "(Granite) the block applies on the way into the residual",
        hooked="it is not what the sublayer adds to the residual stream",
        advice="the additive contribution is `{instead}`",
        measured="|Δ| 0.47–3.7 against hook_attn_out / hook_mlp_out, which add up to the residual exactly, "
                 "on tiny random models, TL 3.9 and 4.3",
        severity="warning",
        versions=_MEASURED,
        tl_issue="#1648",
    ),
    MeaningRow(
        key="canonical-inputs",
        architectures=frozenset({"GPT2LMHeadModel", "BloomForCausalLM", "OPTForCausalLM", "GPTNeoForCausalLM",
                                 "LlamaForCausalLM", "Qwen3ForCausalLM", "Gemma2ForCausalLM", "GraniteForCausalLM"}),
        names=(("blocks.{l}.attn.hook_in", "blocks.{l}.hook_resid_pre"),
               ("blocks.{l}.mlp.hook_in", "blocks.{l}.hook_resid_mid")),
        modes=ANY_MODE,
        reads="is the sublayer's input after its LayerNorm (= lnX.hook_out)",
        hooked="it is not the residual that hook_attn_in / hook_mlp_in give, though TransformerLens's structure "
               "docs call them equivalent",
        advice="the residual is `{instead}`",
        measured="equal to ln1/ln2.hook_out; |Δ| 1.4–3.4 against the residual on tiny random models",
        severity="hint",
        versions=_MEASURED,
        tl_issue="#1796",
    ),
    MeaningRow(
        key="hidden-states",
        architectures=frozenset({"GPT2LMHeadModel", "GPTNeoXForCausalLM"}),
        names=(("blocks.{l}.attn.hook_hidden_states", "blocks.{l}.attn.hook_result"),),
        modes=ANY_MODE,
        reads="is the attention output summed over heads, [batch, pos, d_model] (= hook_attn_out)",
        hooked="it is not the per-head attn.hook_result [batch, pos, n_heads, d_model], though "
               "TransformerLens's structure docs call them equivalent",
        advice="per-head outputs are `{instead}` (after set_use_attn_result(True))",
        measured="equal to hook_attn_out on tiny random GPT-2 and GPT-NeoX",
        severity="hint",
        versions=_MEASURED,
        tl_issue="#1796",
    ),
)

_BY_TEMPLATE: dict[str, tuple[MeaningRow, ...]] = {}
for _row in ROWS:
    for _template in _row.templates:
        _BY_TEMPLATE[_template] = _BY_TEMPLATE.get(_template, ()) + (_row,)


def rows_for(template: str, architecture: str | None, mode: Mode, version: str | None) -> list[MeaningRow]:
    """The rows that hold for ``template`` on a bridge of ``architecture`` prepared as ``mode``, on TL ``version``."""
    if architecture is None:
        return []
    return [row for row in _BY_TEMPLATE.get(template, ())
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
