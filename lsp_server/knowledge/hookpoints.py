"""The hook catalog: every hook point a model has, its shape, and what switches it on.

Two backends:
- ``hooked``: HookedTransformer (TL 2.x/3.x), one name per hook point.
- ``bridge``: TransformerBridge (TL 3.x/4.x), canonical ``*.hook_in/hook_out`` names plus the legacy
  names as aliases of the same activation (both appear in a cache).

Shapes are tuples of dimension symbols (``"batch"``, ``"pos"``, ``"d_model"``, ``"1"``, or a product
like ``"batch*pos*n_heads"``); :func:`concrete_shape` substitutes a spec's numbers.
The tables mirror what ``run_with_cache`` returns; ``tests/knowledge/test_catalog_vs_tl.py`` builds
tiny real models for every flag combination and fails when they drift.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache

from .spec import ModelSpec

RESID = ("batch", "pos", "d_model")
HEAD_VEC = ("batch", "pos", "n_heads", "d_head")
KV_VEC = ("batch", "pos", "n_key_value_heads", "d_head")
HEAD_RESID = ("batch", "pos", "n_heads", "d_model")
KV_RESID = ("batch", "pos", "n_key_value_heads", "d_model")
ATTN_MAP = ("batch", "n_heads", "query_pos", "key_pos")
MLP_ACT = ("batch", "pos", "d_mlp")
SCALE = ("batch", "pos", "1")


@dataclass(frozen=True)
class HookPoint:
    """One hook point of a model (``{l}`` in the template stands for the layer)."""

    template: str
    shape: tuple[str, ...]
    meaning: str
    # Config flag that must be on for the hook to fire (it exists, but stays silent, otherwise).
    gate: str | None = None
    # Why the hook exists but never fires for this configuration (None = it fires).
    dead: str | None = None
    # Bridge: the canonical name this legacy alias points at (None for canonical names and HT).
    canonical: str | None = None
    # Extra fact worth showing on hover.
    note: str | None = None
    # True when the hook point is only *created* with its gate on (``add_hook`` then raises KeyError,
    # not the gate's AssertionError); False when it always exists and merely stays silent.
    created_by_gate: bool = False

    @property
    def per_layer(self) -> bool:
        return "{l}" in self.template

    def name(self, layer: int | str | None = None) -> str:
        return self.template.replace("{l}", str(layer)) if self.per_layer else self.template

    @property
    def short(self) -> str:
        """``hook_resid_post``-style last component, used for did-you-mean and completion."""
        return self.template.rsplit(".", 1)[-1]


_LAYER_RE = re.compile(r"^blocks\.(-?\d+)\.")
_EXPERT_RE = re.compile(r"\.experts\.(\d+)\.")


def split_layer(name: str) -> tuple[str, int | None]:
    """``blocks.5.attn.hook_z`` -> (``blocks.{l}.attn.hook_z``, 5); globals -> (name, None)."""
    m = _LAYER_RE.match(name)
    if not m:
        return name, None
    return "blocks.{l}." + name[m.end():], int(m.group(1))


class Catalog:
    """The hook points of one model configuration, looked up by full name or template."""

    def __init__(self, spec: ModelSpec, points: list[HookPoint]):
        self.spec = spec
        self.points = points
        self._by_template = {p.template: p for p in points}

    def __contains__(self, template: str) -> bool:
        return template in self._by_template

    def get(self, template: str) -> HookPoint | None:
        return self._by_template.get(template)

    def lookup(self, name: str) -> tuple[HookPoint, int | None] | None:
        """The hook point behind a full hook name, and its layer."""
        template, layer = split_layer(name)
        template = _EXPERT_RE.sub(".experts.{e}.", template)
        point = self._by_template.get(template)
        return (point, layer) if point else None

    def templates(self) -> list[str]:
        return list(self._by_template)

    def firing(self) -> list[HookPoint]:
        """Hook points that fire in a default forward for this configuration."""
        return [p for p in self.points if not p.dead and not (p.gate and not getattr(self.spec, p.gate))]


def concrete_shape(shape: tuple[str, ...], spec: ModelSpec) -> tuple[str, ...]:
    """Substitute the spec's known dimensions; batch/pos stay symbolic."""
    dims = spec.dims()

    def one(sym: str) -> str:
        if "*" in sym:
            return "*".join(one(s) for s in sym.split("*"))
        value = dims.get(sym)
        return str(value) if value is not None else sym

    return tuple(one(s) for s in shape)


def format_shape(shape: tuple[str, ...]) -> str:
    return "[" + ", ".join(shape) + "]"


# --------------------------------------------------------------------------------------------
# HookedTransformer (TL 2.x / 3.x)
# --------------------------------------------------------------------------------------------


def _ln_points(prefix: str, what: str, width: str = "d_model", headed: str | None = None,
               note: str | None = None, affine: bool = False) -> list[HookPoint]:
    if headed:
        scale = ("batch", "pos", headed, "1")
        normed = ("batch", "pos", headed, width)
    else:
        scale, normed = ("batch", "pos", "1"), ("batch", "pos", width)
    # TL 2.x's LayerNorm hooks the affine output (x̂·w + b); 3.x and every LNPre/RMS hook x̂ itself.
    how = "after the LayerNorm weight and bias (TL 2.x LayerNorm)" if affine else "before the LN weight and bias"
    return [
        HookPoint(f"{prefix}.hook_scale", scale, f"LayerNorm scale (1/std) of {what}", note=note),
        HookPoint(f"{prefix}.hook_normalized", normed, f"{what}, normalised ({how})", note=note),
    ]


def _post_ln_note(spec: ModelSpec) -> str:
    # TransformerBlock picks the "after" norm with normalization_type.startswith("LayerNorm"), which
    # "LN"/"LNPre" never match (TL 2.18 and 3.9): the block raises UnboundLocalError when it is built.
    if spec.normalization_type in ("LN", "LNPre"):
        return ("use_normalization_before_and_after only builds with normalization_type RMS/RMSPre/None: "
                "with LN/LNPre TransformerBlock raises UnboundLocalError (normalization_layer_after)")
    return "the post-norm is always an RMSNorm (also for RMSPre)"


def _hooked_points(spec: ModelSpec, tl_major: int) -> list[HookPoint]:
    pts: list[HookPoint] = []
    add = pts.append
    has_ln = spec.normalization_type is not None
    rotary = spec.positional_embedding_type == "rotary"
    kv = "n_heads" if spec.ungroup_grouped_query_attention else "n_key_value_heads"
    kv_vec = ("batch", "pos", kv, "d_head")
    kv_resid = ("batch", "pos", kv, "d_model")
    affine = spec.normalization_type == "LN" and tl_major < 3

    add(HookPoint("hook_tokens", ("batch", "pos"), "Input token ids", gate="use_hook_tokens", created_by_gate=True))
    add(HookPoint("hook_embed", RESID, "Token embeddings (W_E[tokens])"))
    if not rotary:
        add(HookPoint(
            "hook_pos_embed", RESID, "Positional embeddings (W_pos[positions])",
            dead="alibi adds position in the attention scores; hook_pos_embed never fires"
            if spec.positional_embedding_type == "alibi" else None,
        ))
    if spec.post_embedding_ln:
        pts += _ln_points("embed.ln", "the embedding", affine=affine)

    # ln1 is called separately on the q, k and v inputs; with split inputs it gains a head axis.
    headed = None
    if spec.use_split_qkv_input or spec.use_attn_in:
        headed = kv if spec.use_split_qkv_input else "n_heads"
    add(HookPoint("blocks.{l}.hook_resid_pre", RESID, "Residual stream entering block {l}"))
    if has_ln:
        for p in _ln_points("blocks.{l}.ln1", "the attention input", headed=headed, affine=affine):
            add(HookPoint(p.template, p.shape, p.meaning,
                          note="fires 3× per forward (once each for the q, k and v input); the cache keeps the last call"))
        if spec.use_normalization_before_and_after:
            pts += _ln_points("blocks.{l}.ln1_post", "the attention output", note=_post_ln_note(spec))
    add(HookPoint("blocks.{l}.hook_q_input", HEAD_RESID, "Per-head query input (residual copy per head)", gate="use_split_qkv_input"))
    add(HookPoint("blocks.{l}.hook_k_input", kv_resid, "Per-head key input", gate="use_split_qkv_input"))
    add(HookPoint("blocks.{l}.hook_v_input", kv_resid, "Per-head value input", gate="use_split_qkv_input"))
    add(HookPoint("blocks.{l}.hook_attn_in", HEAD_RESID, "Per-head attention input", gate="use_attn_in",
                  note="with n_key_value_heads (grouped-query attention) use_attn_in crashes the forward "
                  "(RuntimeError in einsum) unless ungroup_grouped_query_attention is set; "
                  "use use_split_qkv_input instead"
                  if spec.n_key_value_heads is not None and not spec.ungroup_grouped_query_attention else None))
    add(HookPoint("blocks.{l}.attn.hook_q", HEAD_VEC, "Queries"))
    add(HookPoint("blocks.{l}.attn.hook_k", kv_vec, "Keys"))
    add(HookPoint("blocks.{l}.attn.hook_v", kv_vec, "Values"))
    if spec.use_qk_norm:
        add(HookPoint("blocks.{l}.attn.q_norm.hook_scale", ("batch*pos*n_heads", "1"), "Query-norm scale (flattened over batch, pos, head)"))
        add(HookPoint("blocks.{l}.attn.q_norm.hook_normalized", ("batch*pos*n_heads", "d_head"), "Normalised queries (flattened)"))
        add(HookPoint("blocks.{l}.attn.k_norm.hook_scale", (f"batch*pos*{kv}", "1"), "Key-norm scale (flattened)"))
        add(HookPoint("blocks.{l}.attn.k_norm.hook_normalized", (f"batch*pos*{kv}", "d_head"), "Normalised keys (flattened)"))
    if rotary:
        add(HookPoint("blocks.{l}.attn.hook_rot_q", HEAD_VEC, "Queries after the rotary embedding"))
        add(HookPoint("blocks.{l}.attn.hook_rot_k", kv_vec, "Keys after the rotary embedding"))
    if spec.positional_embedding_type == "shortformer":
        add(HookPoint("blocks.{l}.attn.hook_attn_input", RESID, "Shortformer attention input",
                      dead="created for shortformer models but never called"))
    add(HookPoint("blocks.{l}.attn.hook_attn_scores", ATTN_MAP, "Attention scores before softmax (masked)"))
    add(HookPoint("blocks.{l}.attn.hook_pattern", ATTN_MAP, "Attention pattern (softmax over key positions)"))
    add(HookPoint("blocks.{l}.attn.hook_z", HEAD_VEC, "Per-head attention output before W_O (pattern-weighted values)"))
    add(HookPoint("blocks.{l}.attn.hook_result", HEAD_RESID, "Per-head output written to the residual stream", gate="use_attn_result"))
    add(HookPoint("blocks.{l}.hook_attn_out", RESID, "Attention layer output (sum over heads + b_O)"))
    if not (spec.attn_only or spec.parallel_attn_mlp):
        add(HookPoint("blocks.{l}.hook_resid_mid", RESID, "Residual stream between attention and MLP"))
    if spec.attn_only:
        add(HookPoint("blocks.{l}.hook_mlp_out", RESID, "MLP output", dead="attn-only model: there is no MLP"))
        add(HookPoint("blocks.{l}.hook_mlp_in", RESID, "MLP input", gate="use_hook_mlp_in", dead="attn-only model: there is no MLP"))
    else:
        if has_ln:
            pts += _ln_points("blocks.{l}.ln2", "the MLP input", affine=affine)
            if spec.use_normalization_before_and_after:
                pts += _ln_points("blocks.{l}.ln2_post", "the MLP output", note=_post_ln_note(spec))
        add(HookPoint("blocks.{l}.hook_mlp_in", RESID, "MLP input", gate="use_hook_mlp_in"))
        if spec.mlp_hook_in:
            add(HookPoint("blocks.{l}.mlp.hook_in", RESID, "MLP input (a hook point SAE Lens's HookedSAETransformer "
                          "adds to every MLP, for transcoders)"))
        if spec.is_moe:
            add(HookPoint("blocks.{l}.mlp.hook_expert_weights", ("batch*pos", "num_experts"),
                          "Router softmax over all experts (before top-k)"))
            add(HookPoint("blocks.{l}.mlp.hook_expert_indices", ("batch*pos", "experts_per_token"), "Chosen experts per token"))
            for h, what in (("hook_gate", "gate pre-activation"), ("hook_pre", "pre-activation"), ("hook_post", "post-activation")):
                add(HookPoint(f"blocks.{{l}}.mlp.experts.{{e}}.{h}", ("n_routed_tokens", "d_mlp"),
                              f"Expert {what} for the tokens routed to it",
                              note="the first dimension varies from run to run"))
        else:
            add(HookPoint("blocks.{l}.mlp.hook_pre", MLP_ACT,
                          "MLP gate pre-activation" if spec.gated_mlp else "MLP pre-activation (before the nonlinearity)"))
            if spec.gated_mlp:
                add(HookPoint("blocks.{l}.mlp.hook_pre_linear", MLP_ACT, "MLP linear (ungated) branch"))
            if spec.act_fn and spec.act_fn.endswith("_ln"):
                add(HookPoint("blocks.{l}.mlp.hook_mid", MLP_ACT, "SoLU output before its LayerNorm"))
                pts += _ln_points("blocks.{l}.mlp.ln", "the SoLU output", width="d_mlp", affine=affine)
            add(HookPoint("blocks.{l}.mlp.hook_post", MLP_ACT, "MLP activation (after the nonlinearity)"))
        add(HookPoint("blocks.{l}.hook_mlp_out", RESID, "MLP layer output"))
    add(HookPoint("blocks.{l}.hook_resid_post", RESID, "Residual stream leaving block {l}"))
    if has_ln:
        pts += _ln_points("ln_final", "the final residual stream", affine=affine)
    if tl_major >= 3:
        add(HookPoint("unembed.hook_in", RESID, "Unembedding input (TL ≥ 3)"))
        add(HookPoint("unembed.hook_out", ("batch", "pos", "d_vocab"), "Logits (TL ≥ 3)"))
    return pts


# --------------------------------------------------------------------------------------------
# TransformerBridge (TL 3.x / 4.x)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BridgeProfile:
    """How one bridge architecture's components name, alias and fire their hooks.

    Every entry of BRIDGE_PROFILES is checked against a real tiny bridge in
    tests/knowledge/test_catalog_vs_tl.py; the defaults describe the most common layout
    (Llama-style) and claim no silent hooks, so unverified architectures stay lenient.
    """

    # The attention has one fused QKV projection: ``attn.qkv.hook_in/out`` exist but never fire.
    joint_qkv: bool = False
    # ``attn.hook_hidden_states`` fires (only the joint-QKV bridges call it; the others register it).
    hidden_states_fires: bool = True
    # set_use_attn_result / set_use_split_qkv_input / set_use_attn_in work (a plain AttentionBridge
    # raises NotImplementedError for them, so their hooks can never fire).
    fine_grained_attention: bool = True
    # Shape of ``pos_embed.hook_in``: HF models mostly pass position ids [1, pos].
    pos_ids_shape: tuple[str, ...] = ("1", "pos")
    # Rotary models: a ``rotary_emb`` module and ``attn.hook_cos/sin`` exist (GPT-J rotates inside
    # its attention and has neither, nor ``hook_pos_embed``).
    rotary_module: bool = True
    # ``attn.hook_rot_q/rot_k`` fire (registered but silent on GPT-NeoX, GPT-J, Phi-3).
    rotary_hooks_fire: bool = True
    # One LayerNorm feeds both attention and MLP (GPT-J, Phi): there is no ln2.
    shared_ln: bool = False
    # Norms after attention and after the MLP (Gemma-2): ln1_post / ln2_post, and the legacy
    # hook_attn_out / hook_mlp_out alias their outputs.
    post_norms: bool = False
    # OPT flattens the MLP input: ln2.hook_scale / hook_normalized are [batch*pos, …].
    ln2_flattened: bool = False
    # hook_mlp_out aliases the down projection's output (mlp.out.hook_out) instead of mlp.hook_out.
    mlp_out_is_projection: bool = False
    # hook_attn_out aliases the output projection (attn.o.hook_out) instead of attn.hook_out (Bloom).
    attn_out_is_projection: bool = False
    # hook_mlp_in fires once set_use_hook_mlp_in(True) is called (never on GPT-J, Phi, Bloom).
    mlp_in_fires: bool = True
    # Templates TL 3.x's bridge registers but never calls for this architecture (fixed in 4.x).
    silent_in_tl3: tuple[str, ...] = ()
    # A learned positional embedding (Bloom has none: ALiBi acts inside attention).
    pos_embed: bool = True
    # A LayerNorm right after the embedding (Bloom): ``embed_ln.*``, and hook_embed is its output.
    embed_ln: bool = False
    # Per-head q/k RMSNorm modules (Qwen3): ``attn.q_norm.*``/``k_norm.*`` as [batch, heads, pos, …].
    qk_norm: bool = False
    # Mixture-of-experts MLP (Mixtral): router hooks under ``mlp.gate``; hook_pre / hook_post are
    # the MLP's input and output (d_model wide), and no per-expert hooks exist.
    moe: bool = False


BRIDGE_PROFILES: dict[str, BridgeProfile] = {
    "GPT2LMHeadModel": BridgeProfile(joint_qkv=True),  # JointQKVAttentionBridge
    "GPTNeoXForCausalLM": BridgeProfile(joint_qkv=True, rotary_hooks_fire=False),
    "Phi3ForCausalLM": BridgeProfile(joint_qkv=True, rotary_hooks_fire=False),
    # PositionEmbeddingsAttentionBridge
    "LlamaForCausalLM": BridgeProfile(hidden_states_fires=False),
    "MistralForCausalLM": BridgeProfile(hidden_states_fires=False),
    "Qwen2ForCausalLM": BridgeProfile(hidden_states_fires=False),
    "GemmaForCausalLM": BridgeProfile(hidden_states_fires=False),
    "Gemma2ForCausalLM": BridgeProfile(hidden_states_fires=False, post_norms=True),
    "PhiForCausalLM": BridgeProfile(hidden_states_fires=False, shared_ln=True, mlp_in_fires=False),
    # plain AttentionBridge
    "GPTJForCausalLM": BridgeProfile(hidden_states_fires=False, fine_grained_attention=False, rotary_module=False,
                                     rotary_hooks_fire=False, shared_ln=True, mlp_in_fires=False,
                                     silent_in_tl3=("blocks.{l}.attn.hook_attn_scores", "blocks.{l}.attn.hook_pattern")),
    "OPTForCausalLM": BridgeProfile(hidden_states_fires=False, fine_grained_attention=False,
                                    pos_ids_shape=("batch", "pos"), ln2_flattened=True, mlp_out_is_projection=True,
                                    silent_in_tl3=("blocks.{l}.attn.hook_attn_scores", "blocks.{l}.attn.hook_pattern",
                                                   "blocks.{l}.mlp.hook_in", "blocks.{l}.mlp.hook_out")),
    "GPTNeoForCausalLM": BridgeProfile(hidden_states_fires=False, fine_grained_attention=False),
    "BloomForCausalLM": BridgeProfile(joint_qkv=True, pos_embed=False, embed_ln=True, mlp_out_is_projection=True,
                                      attn_out_is_projection=True, mlp_in_fires=False),
    "Qwen3ForCausalLM": BridgeProfile(hidden_states_fires=False, qk_norm=True),
    "MixtralForCausalLM": BridgeProfile(hidden_states_fires=False, moe=True),
    "native": BridgeProfile(hidden_states_fires=False, fine_grained_attention=False, pos_ids_shape=("batch", "pos")),
}
_DEFAULT_PROFILE = BridgeProfile()


def bridge_profile(spec: ModelSpec) -> BridgeProfile:
    return BRIDGE_PROFILES.get(spec.architecture or "", _DEFAULT_PROFILE)


def _bridge_ln(canon, prefix: str, what: str, subject: str, *, scale=SCALE, normed=RESID,
               in_aliases=(), out_aliases=()) -> None:
    canon(f"{prefix}.hook_in", RESID, f"{what} LayerNorm input", *in_aliases)
    canon(f"{prefix}.hook_scale", scale, f"LayerNorm scale (1/std) of {subject}")
    canon(f"{prefix}.hook_normalized", normed, f"{subject[0].upper()}{subject[1:]}, normalised")
    canon(f"{prefix}.hook_out", RESID, f"{what} LayerNorm output", *out_aliases)


def _bridge_points(spec: ModelSpec, tl_major: int) -> list[HookPoint]:
    pts: list[HookPoint] = []

    def canon(template: str, shape: tuple[str, ...], meaning: str, *aliases: str, **kw) -> None:
        pts.append(HookPoint(template, shape, meaning, **kw))
        for alias in aliases:
            pts.append(HookPoint(alias, shape, meaning, canonical=template, **kw))

    profile = bridge_profile(spec)
    rotary = spec.positional_embedding_type == "rotary"
    has_ln = spec.normalization_type is not None
    has_ln2 = has_ln and not profile.shared_ln
    # Rotary tables span the rotated part of each head only (GPT-NeoX's rotary_pct < 1); the spec
    # fills rotary_dim with d_head when it is not set.
    rot_dim = "rotary_dim"
    split_inputs = spec.use_split_qkv_input or spec.use_attn_in

    def unsupported(flag: str) -> str | None:
        if profile.fine_grained_attention:
            return None
        return (f"this architecture's attention bridge does not support {flag}: "
                f"set_{flag}(True) raises NotImplementedError")

    canon("embed.hook_in", ("batch", "pos"), "Input token ids")
    if profile.embed_ln:
        canon("embed.hook_out", RESID, "Token embeddings (before the embedding LayerNorm)")
        _bridge_ln(canon, "embed_ln", "Embedding", "the token embeddings", out_aliases=("hook_embed",))
    else:
        canon("embed.hook_out", RESID, "Token embeddings", "hook_embed")
    if rotary and profile.rotary_module:
        canon("rotary_emb.hook_in", RESID, "Rotary embedding input")
        canon("rotary_emb.hook_cos", ("1", "pos", rot_dim), "Rotary cos table")
        canon("rotary_emb.hook_sin", ("1", "pos", rot_dim), "Rotary sin table")
        canon("rotary_emb.hook_out", RESID, "Positional embeddings", "hook_pos_embed",
              dead="rotary model: positions enter inside attention, so this hook is registered but never fires")
    elif not rotary and profile.pos_embed:
        canon("pos_embed.hook_in", profile.pos_ids_shape, "Position ids")
        canon("pos_embed.hook_out", RESID, "Positional embeddings", "hook_pos_embed")

    canon("blocks.{l}.hook_in", RESID, "Residual stream entering block {l}", "blocks.{l}.hook_resid_pre")
    if has_ln:
        _bridge_ln(canon, "blocks.{l}.ln1", "Attention", "the attention input")
    canon("blocks.{l}.attn.hook_in", RESID, "Attention input")
    if profile.joint_qkv:
        dead_qkv = "the fused QKV projection is split into q/k/v by the bridge; its own hooks never fire"
        canon("blocks.{l}.attn.qkv.hook_in", RESID, "Fused QKV projection input", dead=dead_qkv)
        canon("blocks.{l}.attn.qkv.hook_out", ("batch", "pos", "3*d_model"), "Fused QKV projection output",
              dead=dead_qkv)
    dead_proj_in = ("with use_split_qkv_input / use_attn_in the per-head inputs (hook_q_input, hook_attn_in, …) "
                    "replace it, so it never fires") if split_inputs else None
    for x in "qkv":
        canon(f"blocks.{{l}}.attn.{x}.hook_in", RESID, f"{x.upper()} projection input", dead=dead_proj_in)
    canon("blocks.{l}.attn.q.hook_out", HEAD_VEC, "Queries", "blocks.{l}.attn.hook_q")
    canon("blocks.{l}.attn.k.hook_out", KV_VEC, "Keys", "blocks.{l}.attn.hook_k")
    canon("blocks.{l}.attn.v.hook_out", KV_VEC, "Values", "blocks.{l}.attn.hook_v")
    if profile.qk_norm:
        for x, heads, what in (("q", "n_heads", "queries"), ("k", "n_key_value_heads", "keys")):
            per_head = ("batch", heads, "pos", "d_head")
            canon(f"blocks.{{l}}.attn.{x}_norm.hook_in", per_head, f"Per-head {what} before their RMSNorm")
            canon(f"blocks.{{l}}.attn.{x}_norm.hook_scale", ("batch", heads, "pos", "1"), f"RMSNorm scale of the {what}")
            canon(f"blocks.{{l}}.attn.{x}_norm.hook_normalized", per_head, f"Normalised {what}")
            canon(f"blocks.{{l}}.attn.{x}_norm.hook_out", per_head, f"{what.capitalize()} RMSNorm output")
            canon(f"blocks.{{l}}.attn.hook_{x}_normed", per_head, f"Normalised {what} as the attention uses them")
    if rotary:
        if profile.rotary_module:
            canon("blocks.{l}.attn.hook_cos", ("1", "pos", rot_dim), "Rotary cos table")
            canon("blocks.{l}.attn.hook_sin", ("1", "pos", rot_dim), "Rotary sin table")
        dead_rot = None if profile.rotary_hooks_fire else \
            "this architecture's attention bridge registers the rotary hooks but never calls them"
        canon("blocks.{l}.attn.hook_rot_q", HEAD_VEC, "Queries after the rotary embedding", dead=dead_rot)
        canon("blocks.{l}.attn.hook_rot_k", KV_VEC, "Keys after the rotary embedding", dead=dead_rot)
    canon("blocks.{l}.attn.hook_attn_scores", ATTN_MAP, "Attention scores before softmax (masked)")
    canon("blocks.{l}.attn.hook_pattern", ATTN_MAP, "Attention pattern (softmax over key positions)")
    canon("blocks.{l}.attn.o.hook_in", HEAD_VEC, "Per-head attention output before W_O", "blocks.{l}.attn.hook_z")
    attn_out = () if profile.post_norms else ("blocks.{l}.hook_attn_out",)
    proj_out, layer_out = (attn_out, ()) if profile.attn_out_is_projection else ((), attn_out)
    canon("blocks.{l}.attn.o.hook_out", RESID, "Output projection result", *proj_out,
          dead="with use_attn_result the output is computed per head (attn.hook_result), so it never fires"
          if spec.use_attn_result and profile.fine_grained_attention else None)
    canon("blocks.{l}.attn.hook_hidden_states", RESID, "Attention hidden states",
          dead=None if profile.hidden_states_fires else
          "this architecture's attention bridge registers it but never calls it")
    canon("blocks.{l}.attn.hook_out", RESID, "Attention layer output", *layer_out)
    canon("blocks.{l}.attn.hook_result", HEAD_RESID, "Per-head output written to the residual stream",
          gate="use_attn_result", dead=unsupported("use_attn_result"))
    dead_split = unsupported("use_split_qkv_input")
    canon("blocks.{l}.attn.hook_q_input", HEAD_RESID, "Per-head query input", "blocks.{l}.hook_q_input",
          gate="use_split_qkv_input", dead=dead_split)
    canon("blocks.{l}.attn.hook_k_input", KV_RESID, "Per-head key input", "blocks.{l}.hook_k_input",
          gate="use_split_qkv_input", dead=dead_split)
    canon("blocks.{l}.attn.hook_v_input", KV_RESID, "Per-head value input", "blocks.{l}.hook_v_input",
          gate="use_split_qkv_input", dead=dead_split)
    canon("blocks.{l}.attn.hook_attn_in", HEAD_RESID, "Per-head attention input", "blocks.{l}.hook_attn_in",
          gate="use_attn_in", dead=unsupported("use_attn_in"))
    if profile.post_norms and has_ln:
        _bridge_ln(canon, "blocks.{l}.ln1_post", "Post-attention", "the attention output", out_aliases=("blocks.{l}.hook_attn_out",))
    if has_ln2:
        flat = ("batch*pos",) if profile.ln2_flattened else ("batch", "pos")
        mid = () if spec.parallel_attn_mlp else ("blocks.{l}.hook_resid_mid",)
        _bridge_ln(canon, "blocks.{l}.ln2", "MLP", "the MLP input", scale=flat + ("1",), normed=flat + ("d_model",), in_aliases=mid)
    canon("blocks.{l}.hook_mlp_in", RESID, "MLP input", gate="use_hook_mlp_in",
          dead=None if profile.mlp_in_fires else
          "this architecture's block never calls hook_mlp_in, even after set_use_hook_mlp_in(True)")
    if profile.moe:
        _bridge_moe(canon, tl_major)
    else:
        _bridge_dense_mlp(canon, spec, profile)
    if profile.post_norms and has_ln:
        _bridge_ln(canon, "blocks.{l}.ln2_post", "Post-MLP", "the MLP output", out_aliases=("blocks.{l}.hook_mlp_out",))
    canon("blocks.{l}.hook_out", RESID, "Residual stream leaving block {l}", "blocks.{l}.hook_resid_post")
    if has_ln:
        _bridge_ln(canon, "ln_final", "Final", "the final residual stream")
    canon("unembed.hook_in", RESID, "Unembedding input")
    canon("unembed.hook_out", ("batch", "pos", "d_vocab"), "Logits", "hook_unembed")
    if tl_major == 3 and profile.silent_in_tl3:
        silent = "TransformerLens 3.x's bridge registers this hook for this architecture but never calls it (4.x does)"
        targets = set(profile.silent_in_tl3)
        pts = [dataclasses.replace(p, dead=p.dead or silent)
               if p.template in targets or p.canonical in targets else p for p in pts]
    return pts


def _bridge_moe(canon, tl_major: int) -> None:
    canon("blocks.{l}.mlp.hook_in", RESID, "Mixture-of-experts MLP input", "blocks.{l}.mlp.hook_pre",
          note="on a MoE bridge hook_pre is the MLP input, d_model wide (not a d_mlp pre-activation)")
    canon("blocks.{l}.mlp.gate.hook_in", ("batch*pos", "d_model"), "Router input (tokens flattened)")
    canon("blocks.{l}.mlp.gate.hook_out", ("batch*pos", "num_experts"), "Router logits")
    weights = ("batch*pos", "num_experts"), "Router softmax over all experts"
    indices = ("batch*pos", "experts_per_token"), "Chosen experts per token"
    if tl_major >= 4:  # TL 3.x's MoE bridge has no expert weight / index hooks at all
        canon("blocks.{l}.mlp.gate.hook_expert_weights", *weights, "blocks.{l}.mlp.hook_expert_weights")
        canon("blocks.{l}.mlp.gate.hook_expert_indices", *indices, "blocks.{l}.mlp.hook_expert_indices")
    canon("blocks.{l}.mlp.hook_router_scores", ("batch*pos", "num_experts"), "Router scores",
          dead="registered by the MoE bridge but never called")
    canon("blocks.{l}.mlp.hook_out", RESID, "Mixture-of-experts MLP output", "blocks.{l}.hook_mlp_out",
          "blocks.{l}.mlp.hook_post", note="on a MoE bridge hook_post is the MLP output, d_model wide")


def _bridge_dense_mlp(canon, spec: ModelSpec, profile: BridgeProfile) -> None:
    canon("blocks.{l}.mlp.hook_in", RESID, "MLP input")
    # In compatibility mode a gated MLP runs functionally on the processed weights: the projections'
    # own hook_in never fire (TL GatedMLPBridge.forward), their hook_out still do.
    dead_gated_in = ("after enable_compatibility_mode() the gated MLP runs on processed weights and skips "
                     "the projection modules' hook_in") if spec.gated_mlp and spec.compat_mode else None
    canon("blocks.{l}.mlp.in.hook_in", RESID, "MLP input projection input", dead=dead_gated_in)
    if spec.gated_mlp:
        canon("blocks.{l}.mlp.in.hook_out", MLP_ACT, "MLP linear (ungated) branch", "blocks.{l}.mlp.hook_pre_linear")
        canon("blocks.{l}.mlp.gate.hook_in", RESID, "MLP gate input", dead=dead_gated_in)
        canon("blocks.{l}.mlp.gate.hook_out", MLP_ACT, "MLP gate pre-activation", "blocks.{l}.mlp.hook_pre")
    else:
        canon("blocks.{l}.mlp.in.hook_out", MLP_ACT, "MLP pre-activation", "blocks.{l}.mlp.hook_pre")
    canon("blocks.{l}.mlp.out.hook_in", MLP_ACT, "MLP activation (after the nonlinearity)", "blocks.{l}.mlp.hook_post")
    mlp_out = () if profile.post_norms else ("blocks.{l}.hook_mlp_out",)
    proj_out, layer_out = (mlp_out, ()) if profile.mlp_out_is_projection else ((), mlp_out)
    canon("blocks.{l}.mlp.out.hook_out", RESID, "MLP output projection result", *proj_out)
    canon("blocks.{l}.mlp.hook_out", RESID, "MLP layer output", *layer_out)


@lru_cache(maxsize=256)
def catalog_for(spec: ModelSpec, tl_major: int = 4) -> Catalog:
    """The hook catalog of ``spec`` (cached: specs are frozen and hashable)."""
    if spec.backend == "bridge":
        return Catalog(spec, _bridge_points(spec, tl_major))
    return Catalog(spec, _hooked_points(spec, tl_major))


def all_variants() -> list[ModelSpec]:
    """Configurations whose union is every hook name any supported model can have."""
    base = ModelSpec(structure_known=True)
    variants = [
        base.with_flags(use_attn_result=True, use_split_qkv_input=True, use_attn_in=True,
                        use_hook_mlp_in=True, use_hook_tokens=True, mlp_hook_in=True),
        ModelSpec(positional_embedding_type="rotary", gated_mlp=True, use_qk_norm=True,
                  use_normalization_before_and_after=True, post_embedding_ln=True),
        ModelSpec(act_fn="solu_ln", positional_embedding_type="shortformer"),
        ModelSpec(num_experts=8, experts_per_token=2),
    ]
    bridges = [
        ModelSpec(backend="bridge", architecture="GPT2LMHeadModel"),
        ModelSpec(backend="bridge", architecture="GPTNeoXForCausalLM", positional_embedding_type="rotary"),
        ModelSpec(backend="bridge", positional_embedding_type="rotary", gated_mlp=True),
        ModelSpec(backend="bridge", architecture="Gemma2ForCausalLM", positional_embedding_type="rotary",
                  gated_mlp=True, normalization_type="RMS"),
        ModelSpec(backend="bridge", architecture="Qwen3ForCausalLM", positional_embedding_type="rotary",
                  gated_mlp=True, normalization_type="RMS"),
        ModelSpec(backend="bridge", architecture="MixtralForCausalLM", positional_embedding_type="rotary",
                  num_experts=8, experts_per_token=2),
        ModelSpec(backend="bridge", architecture="BloomForCausalLM"),
    ]
    return variants + bridges


@lru_cache(maxsize=1)
def union_templates() -> frozenset[str]:
    """Every hook template any configuration of either backend has (for lenient validation)."""
    out: set[str] = set()
    for spec in all_variants():
        out.update(catalog_for(spec, 4 if spec.backend == "bridge" else 3).templates())
    return frozenset(out)
