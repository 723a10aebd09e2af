"""The hook-meaning knowledge against the real library: each row's difference, measured again.

``meaning_probe.py`` builds the same tiny Hugging Face models (same weights, LayerNorm weights and biases far
from 1 and 0) in every TransformerLens environment and returns the values under the names each claim needs:
TransformerBridge raw / ``enable_compatibility_mode()`` / ``enable_compatibility_mode(no_processing=True)``
(TL 4.x here, TL 3.x in ``$TLENS_HT3_PYTHON``) and HookedTransformer ``from_pretrained`` /
``from_pretrained_no_processing`` (TL 2.x in ``$TLENS_HT_PYTHON``, TL 3.x in ``$TLENS_HT3_PYTHON``).

Each row of ``knowledge/hook_meaning.py`` comes with claims: *drift* claims (what makes the row true: the
bridge's tensor differs from HookedTransformer's, or has another layout) and *support* claims (what the
message says besides: where HookedTransformer's value is on the bridge, that compatibility mode agrees).
On a bridge version the row covers every claim must hold; on one it does not cover, the drift claims
must fail, so a row that TL fixes fails here until the row's range says so. Values from two environments
are compared only where both computed the same logits (the same function of the same weights).
Run with ``-s`` to see each row's measured differences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from lsp_server.knowledge.hook_meaning import MeaningRow, rows, rows_for
from lsp_server.knowledge.hookpoints import catalog_for
from lsp_server.knowledge.spec import ModelSpec

ROWS = rows()
TOKENS = [[5, 17, 42, 99, 3], [250, 8, 77, 31, 64]]
BATCH, POS, D_MODEL = 2, 5, 16
_GQA = dict(hidden_size=16, num_attention_heads=4, num_key_value_heads=2, intermediate_size=24, num_hidden_layers=2,
            vocab_size=300, max_position_embeddings=32, head_dim=4)
# probe key: (Hugging Face architecture, "<ConfigClass>/<ModelClass>", config). The configs avoid fields TL's
# HookedTransformer conversion ignores (GPT-2's n_inner), so both libraries build the same function.
MODELS = {
    "gpt2": ("GPT2LMHeadModel", "GPT2Config/GPT2LMHeadModel",
             dict(n_layer=2, n_embd=16, n_head=4, n_positions=32, n_ctx=32, vocab_size=300)),
    "neox": ("GPTNeoXForCausalLM", "GPTNeoXConfig/GPTNeoXForCausalLM",
             dict(hidden_size=16, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2, vocab_size=300,
                  max_position_embeddings=32, rotary_pct=0.5, use_parallel_residual=True)),
    "bloom": ("BloomForCausalLM", "BloomConfig/BloomForCausalLM", dict(hidden_size=16, n_head=4, n_layer=2, vocab_size=300)),
    "opt": ("OPTForCausalLM", "OPTConfig/OPTForCausalLM",
            dict(hidden_size=16, num_attention_heads=4, ffn_dim=64, num_hidden_layers=2, vocab_size=300,
                 max_position_embeddings=32, word_embed_proj_dim=16)),
    "gptj": ("GPTJForCausalLM", "GPTJConfig/GPTJForCausalLM",
             dict(n_embd=16, n_head=4, n_layer=2, n_positions=32, rotary_dim=2, vocab_size=300)),
    "phi": ("PhiForCausalLM", "PhiConfig/PhiForCausalLM",
            dict(hidden_size=16, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2, vocab_size=300,
                 max_position_embeddings=32, partial_rotary_factor=0.5)),
    "gptneo": ("GPTNeoForCausalLM", "GPTNeoConfig/GPTNeoForCausalLM",
               dict(hidden_size=16, num_heads=4, num_layers=2, max_position_embeddings=32, intermediate_size=64,
                    vocab_size=300, attention_types=[[["global"], 2]])),
    "qwen3": ("Qwen3ForCausalLM", "Qwen3Config/Qwen3ForCausalLM", _GQA),
    "llama": ("LlamaForCausalLM", "LlamaConfig/LlamaForCausalLM", _GQA),
    "gemma2": ("Gemma2ForCausalLM", "Gemma2Config/Gemma2ForCausalLM", _GQA),
    "olmo2": ("Olmo2ForCausalLM", "Olmo2Config/Olmo2ForCausalLM", _GQA),
    "granite": ("GraniteForCausalLM", "GraniteConfig/GraniteForCausalLM",
                dict(_GQA, residual_multiplier=0.5, attention_multiplier=0.3, embedding_multiplier=2.0, logits_scaling=4.0)),
}
PROBE_KEY = {arch: key for key, (arch, _, _) in MODELS.items()}
SETTERS = {"split": "set_use_split_qkv_input", "attnin": "set_use_attn_in", "mlpin": "set_use_hook_mlp_in",
           "result": "set_use_attn_result"}
BRIDGE_ENVS = ("main", "ht3")  # TransformerBridge 4.x here, 3.x in $TLENS_HT3_PYTHON
HOOKED_ENVS = {"ht2": "ht", "ht3": "ht3"}  # side in a claim -> environment with that HookedTransformer
DIFFERS, SAME = 0.05, 1e-4  # |Δ| above which values differ, below which they are the same


# ------------------------------------------------------------------ claims


@dataclass(frozen=True)
class Ref:
    """``side:mode[+flags]:name[@h0]``: side ``bridge`` (the bridge under test), ``ht2`` or ``ht3``."""

    side: str
    mode: str
    flags: tuple[str, ...]
    name: str
    head: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Ref:
        side, mode, name = spec.split(":")
        mode, *flags = mode.split("+")
        name, _, head = name.partition("@h")
        return cls(side, mode, tuple(flags), name, int(head) if head else None)

    def __str__(self) -> str:
        return f"{self.side}:{self.mode}{''.join('+' + f for f in self.flags)}:{self.name}"

    def run_id(self, arch: str) -> str:
        backend = "bridge" if self.side == "bridge" else "hooked"
        return f"{arch}/{backend}/{self.mode}" + "".join(f"+{f}" for f in self.flags)


@dataclass(frozen=True)
class Claim:
    kind: str  # differs | same | offset | relayout | additive | shape
    refs: tuple[Ref, ...]
    drift: bool  # True: the claim that makes the row true (inverted where the row does not hold)
    shape: tuple[int, ...] | None = None

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(map(str, self.refs))})"


def claim(kind: str, *refs: str, drift: bool = False, shape: tuple[int, ...] | None = None) -> Claim:
    return Claim(kind, tuple(Ref.parse(r) for r in refs), drift, shape)


def _ln_prefixes(key: str) -> list[str]:
    return ["blocks.0.ln1"] + ([] if key in ("gptj", "phi") else ["blocks.0.ln2"]) + ["ln_final"]


def _claims_ln_normalized(key: str) -> list[Claim]:
    out = []
    for ln in _ln_prefixes(key):
        normed, out_ = f"{ln}.hook_normalized", f"{ln}.hook_out"
        out += [
            claim("differs", f"bridge:raw:{normed}", f"bridge:raw:{out_}", drift=True),
            claim("differs", f"bridge:raw:{normed}", f"ht2:unprocessed:{normed}", drift=True),
            claim("differs", f"bridge:compat_noproc:{normed}", f"ht2:unprocessed:{normed}", drift=True),
            claim("same", f"bridge:raw:{out_}", f"ht2:unprocessed:{normed}"),
            claim("same", f"bridge:compat:{normed}", f"ht2:processed:{normed}"),
            claim("same", f"bridge:raw:{normed}", f"ht3:unprocessed:{normed}"),
        ]
    return out


def _claims_unprocessed(key: str) -> list[Claim]:
    resid = "blocks.0.hook_resid_post" if key in ("neox", "gptj", "phi") else "blocks.0.hook_resid_mid"
    out = []
    for name in (resid, "blocks.0.hook_attn_out", "blocks.0.attn.hook_z"):
        out += [claim("differs", f"bridge:raw:{name}", f"bridge:compat:{name}", drift=True),
                claim("differs", f"bridge:raw:{name}", f"ht2:processed:{name}", drift=True),
                claim("differs", f"bridge:raw:{name}", f"ht3:processed:{name}", drift=True),
                claim("same", f"bridge:compat:{name}", f"ht2:processed:{name}"),
                claim("same", f"bridge:raw:{name}", f"ht2:unprocessed:{name}")]
    return out + [claim("offset", "bridge:raw:blocks.0.attn.hook_z", "ht2:processed:blocks.0.attn.hook_z")]


def _claims_bloom_inputs(key: str) -> list[Claim]:
    out = []
    for flag, name in (("split", "blocks.0.hook_q_input"), ("split", "blocks.0.hook_v_input"),
                       ("attnin", "blocks.0.hook_attn_in")):
        out += [claim("differs", f"bridge:raw+{flag}:{name}", f"ht2:unprocessed+{flag}:{name}", drift=True),
                claim("differs", f"bridge:compat+{flag}:{name}", f"ht2:processed+{flag}:{name}", drift=True),
                claim("same", f"bridge:raw+{flag}:{name}@h0", f"bridge:raw+{flag}:blocks.0.ln1.hook_out"),
                claim("same", f"ht2:unprocessed+{flag}:{name}@h0", f"ht2:unprocessed+{flag}:blocks.0.hook_resid_pre")]
    return out


def _claims_qwen3_layout(key: str) -> list[Claim]:
    out = [claim("shape", "bridge:raw:blocks.0.attn.q_norm.hook_normalized", shape=(BATCH, 4, POS, 4), drift=True),
           claim("shape", "bridge:raw:blocks.0.attn.k_norm.hook_scale", shape=(BATCH, 2, POS, 1), drift=True)]
    for side in ("ht2", "ht3"):
        out += [claim("relayout", f"bridge:compat:blocks.0.attn.{x}_norm.hook_normalized",
                      f"{side}:processed:blocks.0.attn.{x}_norm.hook_normalized") for x in "qk"]
    return out


# Rows whose claims are the same for every architecture they list: one claim a line, ``kind refs...``,
# ``!`` after the kind for a drift claim; a ``shape`` claim ends with the expected shape (``10x16``).
FIXED_CLAIMS = {
    "opt-ln2-layout": f"""
        shape! bridge:raw:blocks.0.ln2.hook_normalized {BATCH * POS}x{D_MODEL}
        shape! bridge:raw:blocks.0.ln2.hook_scale {BATCH * POS}x1
        relayout bridge:compat:blocks.0.ln2.hook_normalized ht2:processed:blocks.0.ln2.hook_normalized
        relayout bridge:raw:blocks.0.ln2.hook_scale ht2:unprocessed:blocks.0.ln2.hook_scale""",
    "bloom-attn-hook-out": """
        same bridge:raw:blocks.0.attn.hook_out bridge:raw:blocks.0.hook_resid_mid
        same bridge:raw:blocks.0.attn.hook_hidden_states bridge:raw:blocks.0.hook_resid_mid
        differs! bridge:raw:blocks.0.attn.hook_out bridge:raw:blocks.0.hook_attn_out
        differs! bridge:raw:blocks.0.attn.hook_out ht2:unprocessed:blocks.0.hook_attn_out""",
    "post-norm-sublayer-out": """
        differs! bridge:raw:blocks.0.attn.hook_out bridge:raw:blocks.0.hook_attn_out
        differs! bridge:raw:blocks.0.mlp.hook_out bridge:raw:blocks.0.hook_mlp_out
        additive bridge:raw:blocks.0.hook_attn_out bridge:raw:blocks.0.hook_resid_mid bridge:raw:blocks.0.hook_resid_pre
        additive bridge:raw:blocks.0.hook_mlp_out bridge:raw:blocks.0.hook_resid_post bridge:raw:blocks.0.hook_resid_mid""",
    "canonical-inputs": """
        same bridge:raw:blocks.0.attn.hook_in bridge:raw:blocks.0.ln1.hook_out
        same bridge:raw:blocks.0.mlp.hook_in bridge:raw:blocks.0.ln2.hook_out
        differs! bridge:raw:blocks.0.attn.hook_in bridge:raw:blocks.0.hook_resid_pre
        differs! bridge:raw:blocks.0.mlp.hook_in bridge:raw:blocks.0.hook_resid_mid""",
    "hidden-states": f"""
        same bridge:raw:blocks.0.attn.hook_hidden_states bridge:raw:blocks.0.hook_attn_out
        shape! bridge:raw:blocks.0.attn.hook_hidden_states {BATCH}x{POS}x{D_MODEL}
        shape ht2:unprocessed+result:blocks.0.attn.hook_result {BATCH}x{POS}x4x{D_MODEL}""",
}


def _fixed(lines: str) -> list[Claim]:
    out = []
    for line in lines.strip().splitlines():
        kind, *refs = line.split()
        shape = tuple(int(d) for d in refs.pop().split("x")) if kind.startswith("shape") else None
        out.append(claim(kind.rstrip("!"), *refs, drift=kind.endswith("!"), shape=shape))
    return out


CLAIMS = {
    "ln-normalized": _claims_ln_normalized,
    "unprocessed-weights": _claims_unprocessed,
    "bloom-split-inputs": _claims_bloom_inputs,
    "qwen3-qk-norm-layout": _claims_qwen3_layout,
    **{key: (lambda _key, lines=lines: _fixed(lines)) for key, lines in FIXED_CLAIMS.items()},
}

# Architectures no row lists, because HookedTransformer and the bridge agree on every shared name there.
AGREEING = ("llama", "qwen3")
_SHARED = ("blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.1.hook_resid_post", "blocks.0.hook_attn_out",
           "blocks.0.hook_mlp_out", "blocks.0.ln1.hook_normalized", "blocks.0.ln2.hook_normalized",
           "ln_final.hook_normalized", "blocks.0.attn.hook_v", "blocks.0.attn.hook_z", "blocks.0.mlp.hook_post")
# The catalog's never-firing bridge hooks that HookedTransformer fires: (probe key, flags, name).
NEVER_FIRES = [("bloom", ("mlpin",), "blocks.0.hook_mlp_in"), ("gptj", ("mlpin",), "blocks.0.hook_mlp_in"),
               ("phi", ("mlpin",), "blocks.0.hook_mlp_in"), ("bloom", ("result",), "blocks.0.hook_attn_out"),
               ("neox", (), "blocks.0.attn.hook_rot_q"), ("neox", (), "blocks.0.attn.hook_rot_k"),
               ("gptj", (), "blocks.0.attn.hook_rot_q"), ("gptj", (), "blocks.0.attn.hook_rot_k")]


def _agreeing_claims(key: str) -> list[Claim]:
    out = []
    for side in ("ht2", "ht3"):
        for name in _SHARED:
            out += [claim("same", f"bridge:raw:{name}", f"{side}:unprocessed:{name}"),
                    claim("same", f"bridge:compat:{name}", f"{side}:processed:{name}")]
    return out


def _never_fires_claims(key: str, flags: tuple[str, ...], name: str) -> list[Claim]:
    mode = "raw" + "".join(f"+{f}" for f in flags)
    hooked = "unprocessed" + "".join(f"+{f}" for f in flags)
    return [claim("silent", f"bridge:{mode}:{name}"), claim("fires", f"ht2:{hooked}:{name}"),
            claim("fires", f"ht3:{hooked}:{name}")]


# ------------------------------------------------------------------ the probe, once per environment


def _all_claims() -> list[tuple[str, Claim]]:
    """(probe key, claim) of every row, the agreeing architectures and the never-firing hooks."""
    out = [(PROBE_KEY[arch], c) for row in ROWS for arch in sorted(row.architectures) for c in CLAIMS[row.key](PROBE_KEY[arch])]
    out += [(key, c) for key in AGREEING for c in _agreeing_claims(key)]
    out += [(key, c) for key, flags, name in NEVER_FIRES for c in _never_fires_claims(key, flags, name)]
    return out


def probe_request() -> dict:
    runs: dict[str, dict] = {}
    for key, c in _all_claims():
        for ref in c.refs:
            run = runs.setdefault(ref.run_id(key), {
                "arch": key, "backend": "bridge" if ref.side == "bridge" else "hooked", "mode": ref.mode,
                "setters": [SETTERS[f] for f in ref.flags], "names": []})
            if ref.name not in run["names"]:
                run["names"].append(ref.name)
    return {"tokens": TOKENS, "runs": runs,
            "models": {key: {"builder": builder, "config": config} for key, (_, builder, config) in MODELS.items()}}


@pytest.fixture(scope="module")
def answers(probe_every_env) -> dict[str, dict | None]:
    return probe_every_env("meaning_probe.py", probe_request())


# ------------------------------------------------------------------ measuring a claim


class NotMeasured(Exception):
    """A claim needs an environment that is not configured, or two that do not compute the same function."""


def _env_of(bridge_env: str, ref: Ref) -> str:
    return bridge_env if ref.side == "bridge" else HOOKED_ENVS[ref.side]


def _answer_for(answers: dict, bridge_env: str, ref: Ref) -> dict:
    env = _env_of(bridge_env, ref)
    answer = answers.get(env)
    if answer is None:
        raise NotMeasured(f"{ref.side} needs the environment {env!r}")
    return answer


def _run(answers: dict, bridge_env: str, key: str, ref: Ref) -> dict:
    answer = _answer_for(answers, bridge_env, ref)
    run = answer["runs"].get(ref.run_id(key))
    if run is None:
        raise NotMeasured(f"transformer-lens {answer['tl_version']} has no {ref.side} backend")
    if "error" in run:
        if ref.side != "bridge" and re.search(r"not currently supported|has no attribute|AssertionError", run["error"]):
            raise NotMeasured(f"HookedTransformer {answer['tl_version']} cannot load it: {run['error'][:120]}")
        pytest.fail(f"{ref.run_id(key)} failed on transformer-lens {answer['tl_version']}: {run['error']}")
    return run


def _bridge_spec(key: str, flags: tuple[str, ...] = ()) -> ModelSpec:
    """The spec the server builds for the probe's bridge (what the catalog needs: architecture, rotary, flags)."""
    rotary = key in ("neox", "gptj", "phi", "qwen3", "llama", "gemma2", "olmo2", "granite")
    return ModelSpec(backend="bridge", architecture=MODELS[key][0], structure_known=True, n_layers=2,
                     positional_embedding_type="rotary" if rotary else "standard",
                     **{SETTERS[f].removeprefix("set_"): True for f in flags})


def _values(answers: dict, bridge_env: str, key: str, ref: Ref) -> tuple[list[int], list[float]]:
    run = _run(answers, bridge_env, key, ref)
    if ref.name not in run["values"]:
        version = _answer_for(answers, bridge_env, ref)["tl_version"]
        found = catalog_for(_bridge_spec(key, ref.flags), int(version.split(".")[0])).lookup(ref.name)
        if ref.side == "bridge" and found is not None and found[0].dead:
            raise NotMeasured(f"{ref.name} never fires on this bridge (the catalog says so: no finding there)")
        pytest.fail(f"{ref.name} did not fire in {ref.run_id(key)} ({version})")
    shape, data = run["values"][ref.name]["shape"], run["values"][ref.name]["data"]
    if ref.head is None:
        return shape, data
    b, p, h, d = shape  # [batch, pos, head, d]: keep one head
    return [b, p, d], [data[((i * p + j) * h + ref.head) * d + k] for i in range(b) for j in range(p) for k in range(d)]


def _comparable(answers: dict, bridge_env: str, key: str, refs: tuple[Ref, ...]) -> None:
    """Refs from two environments must compute the same logits (same weights, same function): transformers
    versions differ (GPT-NeoX's layout changed between 4.57 and 5.x)."""
    if len({_env_of(bridge_env, r) for r in refs}) < 2:
        return
    logits = [_run(answers, bridge_env, key, r)["hf_logits"] for r in refs]
    if max(abs(x - y) for first in logits for other in logits for x, y in zip(first, other)) > SAME:
        raise NotMeasured("the two environments' transformers build different functions from the same weights")


def measure(answers: dict, bridge_env: str, key: str, c: Claim) -> tuple[bool, str]:
    """(whether the claim holds, the measured figure)."""
    if c.kind in ("silent", "fires"):
        run = _run(answers, bridge_env, key, c.refs[0])
        fired = c.refs[0].name in run["fired"]
        return fired == (c.kind == "fires"), "fires" if fired else "never fires"
    _comparable(answers, bridge_env, key, c.refs)
    (shape, a), *others = [_values(answers, bridge_env, key, r) for r in c.refs]
    if c.kind == "shape":
        return tuple(shape) == c.shape, f"shape {shape}"
    other_shape, b = others[0]
    if c.kind == "relayout":
        delta = max(abs(x - y) for x, y in zip(sorted(a), sorted(b)))
        return shape != other_shape and delta <= SAME, f"{shape} vs {other_shape}, same values (|Δ| {delta:.1e})"
    if shape != other_shape and not _flattened(shape, other_shape):
        return False, f"shapes {shape} vs {other_shape}"
    if c.kind == "additive":
        b = [x - y for x, y in zip(b, others[1][1])]
    deltas = [x - y for x, y in zip(a, b)]
    delta = max(abs(x) for x in deltas)
    if c.kind == "offset":  # the same difference at every batch element and position
        width = len(deltas) // (shape[0] * shape[1])
        spread = max(max(col) - min(col) for col in (deltas[i::width] for i in range(width)))
        return delta > DIFFERS and spread <= SAME, f"constant offset up to {delta:.3f} (spread {spread:.1e})"
    holds = delta > DIFFERS if c.kind == "differs" else delta <= SAME
    return holds, f"|Δ| {delta:.3g}"


def _flattened(shape: list[int], other: list[int]) -> bool:
    """One shape is the other with its leading axes flattened (OPT's ln2: [batch*pos, d] against [batch, pos, d]):
    the values line up element by element."""
    def size(dims: list[int]) -> int:
        out = 1
        for d in dims:
            out *= d
        return out
    return shape[-1:] == other[-1:] and size(shape) == size(other)


# ------------------------------------------------------------------ tests


def _row_params():
    return [pytest.param(row, arch, env, id=f"{row.key}-{PROBE_KEY[arch]}-{env}",
                         marks=(pytest.mark.ht,) if env == "ht3" else ())
            for row in ROWS for arch in sorted(row.architectures) for env in BRIDGE_ENVS]


@pytest.mark.parametrize("row,arch,bridge_env", _row_params())
def test_each_row_still_holds_where_it_says(row: MeaningRow, arch: str, bridge_env: str, answers):
    answer = answers.get(bridge_env)
    if answer is None or not answer["has_bridge"]:
        pytest.skip(f"no TransformerBridge in {bridge_env!r} (TLENS_HT3_PYTHON unset?)")
    version = answer["tl_version"]
    covered = row.versions.covers(version)
    key = PROBE_KEY[arch]
    failed, measured = [], 0
    for c in CLAIMS[row.key](key):
        if not covered and not c.drift:
            continue
        try:
            holds, figure = measure(answers, bridge_env, key, c)
        except NotMeasured as why:
            print(f"{row.key} {key} TL {version}: {c}: not measured ({why})")
            continue
        measured += 1
        print(f"{row.key} {key} TL {version}: {c}: {figure}")
        if holds != (covered or not c.drift):
            failed.append(f"{c}: {figure}")
    assert measured, "no claim of this row could be measured"
    if covered:
        assert not failed, (f"row {row.key!r} no longer holds for {arch} on transformer-lens {version}: "
                            f"{failed} (fixed? give the row fixed_in=({version.split('.')[0]}, {version.split('.')[1]}))")
    else:
        assert not failed, f"row {row.key!r} excludes transformer-lens {version}, but {arch} still shows it: {failed}"


@pytest.mark.parametrize("key", AGREEING)
@pytest.mark.parametrize("bridge_env", [pytest.param("main"), pytest.param("ht3", marks=pytest.mark.ht)])
def test_architectures_no_row_lists_agree_on_every_shared_name(key: str, bridge_env: str, answers):
    if answers.get(bridge_env) is None:
        pytest.skip(f"{bridge_env!r} is not configured")
    arch = MODELS[key][0]
    version = answers[bridge_env]["tl_version"]
    listed = {(name, mode): rows_for("blocks.{l}." + name.split(".", 2)[2] if name.startswith("blocks.") else name,
                                     arch, mode, version) for name in _SHARED for mode in ("raw", "compat")}
    assert not {k: v for k, v in listed.items() if v}, "a row lists a name this test says agrees"
    failed, measured = [], 0
    for c in _agreeing_claims(key):
        try:
            holds, figure = measure(answers, bridge_env, key, c)
        except NotMeasured:
            continue
        measured += 1
        if not holds:
            failed.append(f"{c}: {figure}")
    if not measured:
        pytest.skip("no HookedTransformer environment is configured")
    assert not failed, f"{key}: names the knowledge says agree differ (a missing row?): {failed}"


@pytest.mark.parametrize("key,flags,name", NEVER_FIRES, ids=[f"{k}-{n}" for k, _, n in NEVER_FIRES])
@pytest.mark.parametrize("bridge_env", [pytest.param("main"), pytest.param("ht3", marks=pytest.mark.ht)])
def test_never_firing_bridge_hooks_are_in_the_catalog_and_fire_on_hooked_transformer(key, flags, name, bridge_env, answers):
    if answers.get(bridge_env) is None:
        pytest.skip(f"{bridge_env!r} is not configured")
    tl_major = int(answers[bridge_env]["tl_version"].split(".")[0])
    found = catalog_for(_bridge_spec(key, flags), tl_major).lookup(name)
    assert found is not None and found[0].dead, f"the catalog does not mark {name} on {MODELS[key][0]} as never firing"
    results = []
    for c in _never_fires_claims(key, flags, name):
        try:
            results.append(measure(answers, bridge_env, key, c))
        except NotMeasured:
            continue
    assert results and all(holds for holds, _ in results), results


def test_every_row_lists_only_measured_architectures_and_known_claims():
    for row in ROWS:
        assert row.key in CLAIMS, row.key
        assert row.architectures <= set(PROBE_KEY), row.architectures - set(PROBE_KEY)
    # Unmeasured architectures (Mistral here) and unknown versions are silent.
    assert rows_for("blocks.{l}.ln1.hook_normalized", "MistralForCausalLM", "raw", "4.3.0") == []
    assert rows_for("blocks.{l}.ln1.hook_normalized", "GPT2LMHeadModel", "raw", None) == []
    assert rows_for("blocks.{l}.ln1.hook_normalized", "GPT2LMHeadModel", "compat", "4.3.0") == []
    assert [r.key for r in rows_for("blocks.{l}.ln1.hook_normalized", "GPT2LMHeadModel", "raw", "4.x")] == ["ln-normalized"]
