"""Model specs and tokenizer files from the local Hugging Face cache (or a local model folder), offline.

``lookup_hf_cache("EleutherAI/pythia-70m")`` reads ``config.json`` from the hub cache
(``models--EleutherAI--pythia-70m/snapshots/<rev>/``, the revision ``refs/main`` points at) and maps
the Hugging Face fields to a :class:`ModelSpec`. Nothing here touches the network, imports
``transformers``, or raises on a bad file: a missing or broken config gives ``None`` and a log line.

Cache locations, in the order ``huggingface_hub`` uses them: an explicit ``cache_dir``,
``$HF_HUB_CACHE``, ``$HUGGINGFACE_HUB_CACHE``, ``$TRANSFORMERS_CACHE``, ``$HF_HOME/hub``,
``$XDG_CACHE_HOME/huggingface/hub``, ``~/.cache/huggingface/hub``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spec import ModelSpec

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- finding files


def hub_cache_dirs(cache_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Hub cache directories to search, most specific first (only an explicit one if given)."""
    if cache_dir is not None:
        return [Path(cache_dir).expanduser()]
    env = os.environ
    dirs = [env.get("HF_HUB_CACHE"), env.get("HUGGINGFACE_HUB_CACHE"), env.get("TRANSFORMERS_CACHE")]
    if env.get("HF_HOME"):
        dirs.append(os.path.join(env["HF_HOME"], "hub"))
    if env.get("XDG_CACHE_HOME"):
        dirs.append(os.path.join(env["XDG_CACHE_HOME"], "huggingface", "hub"))
    dirs.append(os.path.join(os.path.expanduser("~"), ".cache", "huggingface", "hub"))
    return list(dict.fromkeys(Path(d).expanduser() for d in dirs if d))


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", ".\\")) or os.sep in name.replace("/", "") or (
        len(name) > 1 and name[1] == ":")


def _repo_ids(name: str) -> list[str]:
    """The spellings to try in the cache: as given, plus TL's official name and its moved hub ids."""
    ids = [name]
    try:
        from . import registry  # lazy: the table is only read when a name is looked up

        entry = registry.table_entry(name)
        if entry is not None:
            official = registry.official_name(name)
            ids += [*entry.get("hub_ids", []), official]
    except Exception as exc:  # noqa: BLE001 - a broken table must not break cache lookups
        log.warning("model table unavailable while resolving %r: %s", name, exc)
    return list(dict.fromkeys(i for i in ids if i))


def _repo_dir(cache: Path, repo_id: str) -> Path | None:
    folder = "models--" + repo_id.replace("/", "--")
    exact = cache / folder
    if exact.is_dir():
        return exact
    # Hub ids are case-insensitive; the cache keeps the spelling used at download time.
    try:
        for child in cache.iterdir():
            if child.name.lower() == folder.lower() and child.is_dir():
                return child
    except OSError:
        pass
    return None


def _snapshot_with(repo_dir: Path, filename: str) -> tuple[Path, str] | None:
    """``(file, revision)`` from the snapshot ``refs/main`` names, else the newest that has the file."""
    snapshots = repo_dir / "snapshots"
    try:
        ref = (repo_dir / "refs" / "main").read_text().strip()
    except OSError:
        ref = ""
    if ref and (snapshots / ref / filename).is_file():
        return snapshots / ref / filename, ref
    try:
        candidates = [p for p in snapshots.iterdir() if (p / filename).is_file()]
    except OSError:
        return None
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    return newest / filename, newest.name


@dataclass(frozen=True)
class _Found:
    path: Path
    # How to name it to the user: "Hugging Face cache" or "local folder".
    where: str
    # The repo id that matched (None for a local folder).
    repo_id: str | None = None
    revision: str | None = None


def _find(name_or_path: str, filename: str, cache_dir=None) -> _Found | None:
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        return None
    name = name_or_path.strip()
    local = Path(name).expanduser()
    if local.is_file() and local.name == filename:
        return _Found(local, "local folder")
    if local.is_dir():
        return _Found(local / filename, "local folder") if (local / filename).is_file() else None
    if _looks_like_path(name):
        return None  # a path that does not exist: never reinterpret it as a hub id
    for cache in hub_cache_dirs(cache_dir):
        for repo_id in _repo_ids(name):
            repo_dir = _repo_dir(cache, repo_id)
            hit = _snapshot_with(repo_dir, filename) if repo_dir else None
            if hit:
                return _Found(hit[0], "Hugging Face cache", repo_id, hit[1])
    return None


def find_config_json(name_or_path: str, cache_dir=None) -> Path | None:
    """Path of ``config.json`` for a hub id, TL name or local folder, if it is on this machine."""
    found = _find(name_or_path, "config.json", cache_dir)
    return found.path if found else None


def find_tokenizer_json(name_or_path: str, cache_dir=None) -> Path | None:
    """Path of ``tokenizer.json`` for a hub id, TL name or local folder, if it is on this machine."""
    found = _find(name_or_path, "tokenizer.json", cache_dir)
    return found.path if found else None


# ------------------------------------------------------------------------- config -> ModelSpec


@dataclass(frozen=True)
class _Layout:
    """HookedTransformer-style structure of one HF ``model_type`` (TL's own conversion choices)."""

    architecture: str
    positional: str = "rotary"
    normalization: str = "RMS"
    gated_mlp: bool = True
    parallel_attn_mlp: bool = False
    before_and_after: bool = False
    qk_norm: bool = False
    post_embedding_ln: bool = False
    # Activation TL uses when the config names none (BLOOM's config has no activation field).
    act_fn: str | None = None


_LAYOUTS: dict[str, _Layout] = {
    "gpt2": _Layout("GPT2LMHeadModel", "standard", "LN", gated_mlp=False),
    "gpt_neo": _Layout("GPTNeoForCausalLM", "standard", "LN", gated_mlp=False),
    "gptj": _Layout("GPTJForCausalLM", "rotary", "LN", gated_mlp=False, parallel_attn_mlp=True),
    "gpt_neox": _Layout("GPTNeoXForCausalLM", "rotary", "LN", gated_mlp=False,
                        parallel_attn_mlp=True),
    "opt": _Layout("OPTForCausalLM", "standard", "LN", gated_mlp=False),
    "bloom": _Layout("BloomForCausalLM", "alibi", "LN", gated_mlp=False, post_embedding_ln=True,
                     act_fn="gelu_fast"),
    "llama": _Layout("LlamaForCausalLM"),
    "mistral": _Layout("MistralForCausalLM"),
    "mixtral": _Layout("MixtralForCausalLM"),
    "qwen": _Layout("QWenLMHeadModel"),
    "qwen2": _Layout("Qwen2ForCausalLM"),
    "qwen3": _Layout("Qwen3ForCausalLM", qk_norm=True),
    "gemma": _Layout("GemmaForCausalLM"),
    "gemma2": _Layout("Gemma2ForCausalLM", before_and_after=True),
    "gemma3_text": _Layout("Gemma3ForCausalLM", before_and_after=True, qk_norm=True),
    "gemma3": _Layout("Gemma3ForConditionalGeneration", before_and_after=True, qk_norm=True),
    "phi": _Layout("PhiForCausalLM", "rotary", "LN", gated_mlp=False, parallel_attn_mlp=True),
    "phi3": _Layout("Phi3ForCausalLM"),
}
# Families whose config leaves the MLP width implicit at 4 * d_model.
_MLP_4X = {"gpt2", "gpt_neo", "gptj", "bloom"}


def _first(cfg: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return value
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _rotary_fraction(cfg: dict[str, Any]) -> float | None:
    rope = cfg.get("rope_parameters") if isinstance(cfg.get("rope_parameters"), dict) else {}
    value = _first(cfg, "rotary_pct", "partial_rotary_factor") or rope.get("partial_rotary_factor")
    return float(value) if isinstance(value, (int, float)) and 0 < value <= 1 else None


def spec_from_hf_config(cfg: dict[str, Any], name: str | None = None,
                        source: str = "Hugging Face config") -> ModelSpec:
    """Map a Hugging Face ``config.json`` dict to a :class:`ModelSpec` (pure; no file access).

    Known ``model_type`` values get TL's HookedTransformer layout and ``structure_known=True``;
    anything else gets the dimensions found under the common field names and ``structure_known=False``.
    Dimensions are the model's own (``n_ctx`` is the trained context, not TL's memory cap).
    """
    top = cfg
    if isinstance(cfg.get("text_config"), dict) and "num_hidden_layers" not in cfg:
        cfg = {**cfg["text_config"], "model_type": top.get("model_type")}  # multimodal wrapper
    model_type = str(top.get("model_type") or "")
    layout = _LAYOUTS.get(model_type)
    architectures = top.get("architectures")
    architecture = (architectures[0] if isinstance(architectures, list) and architectures
                    and isinstance(architectures[0], str) else None)
    if architecture is None and layout is not None:
        architecture = layout.architecture

    n_layers = _int(_first(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers"))
    d_model = _int(_first(cfg, "hidden_size", "n_embd", "d_model", "dim"))
    n_heads = _int(_first(cfg, "num_attention_heads", "n_head", "num_heads", "n_heads"))
    d_head = _int(_first(cfg, "head_dim", "kv_channels", "d_head"))
    if d_head is None and d_model and n_heads:
        d_head = d_model // n_heads
    d_mlp = _int(_first(cfg, "intermediate_size", "n_inner", "ffn_dim", "d_ff", "d_mlp"))
    if model_type == "qwen" and d_mlp:
        d_mlp //= 2  # QWen v1 stores twice the MLP width (two gate halves)
    if d_mlp is None and model_type in _MLP_4X and d_model:
        d_mlp = 4 * d_model
    n_kv = _int(_first(cfg, "num_key_value_heads", "n_head_kv", "num_kv_heads"))
    if cfg.get("multi_query") is True:
        n_kv = 1
    if n_kv == n_heads:
        n_kv = None  # TL's convention: None means plain multi-head attention

    rotary_dim = None
    positional = layout.positional if layout else "standard"
    if positional == "rotary":
        rotary_dim = _int(cfg.get("rotary_dim"))
        fraction = _rotary_fraction(cfg)
        if rotary_dim is None and d_head:
            rotary_dim = round(d_head * fraction) if fraction else d_head

    values: dict[str, Any] = dict(
        name=name,
        source=source,
        architecture=architecture,
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_head=d_head,
        d_mlp=d_mlp,
        d_vocab=_int(cfg.get("vocab_size")),
        n_ctx=_int(_first(cfg, "max_position_embeddings", "n_positions", "n_ctx", "seq_length")),
        n_key_value_heads=n_kv,
        rotary_dim=rotary_dim,
        num_experts=_int(_first(cfg, "num_local_experts", "num_experts")),
        experts_per_token=_int(cfg.get("num_experts_per_tok")),
        act_fn=_first(cfg, "hidden_activation", "hidden_act", "activation_function"),
        structure_known=layout is not None,
    )
    if layout is not None:
        parallel = layout.parallel_attn_mlp
        if model_type == "gpt_neox" and cfg.get("use_parallel_residual") is False:
            parallel = False
        values.update(
            positional_embedding_type=layout.positional,
            normalization_type=layout.normalization,
            gated_mlp=layout.gated_mlp,
            parallel_attn_mlp=parallel,
            use_normalization_before_and_after=layout.before_and_after,
            use_qk_norm=layout.qk_norm,
            post_embedding_ln=layout.post_embedding_ln,
        )
    if not isinstance(values["act_fn"], str):
        values["act_fn"] = layout.act_fn if layout else None
    return ModelSpec(**values)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    if not isinstance(data, dict):
        log.warning("%s is not a JSON object (got %s)", path, type(data).__name__)
        return None
    return data


def lookup_hf_cache(name_or_path: str, cache_dir: str | os.PathLike[str] | None = None
                    ) -> ModelSpec | None:
    """The spec of a model whose ``config.json`` is on this machine, else ``None`` (never raises).

    Args:
        name_or_path: a hub id (``"EleutherAI/pythia-70m"``), a TL name or alias (resolved to its
            hub id through the official table), or a local model folder / ``config.json`` path.
        cache_dir: search only this hub cache directory instead of the usual locations.
    """
    try:
        found = _find(name_or_path, "config.json", cache_dir)
        if found is None:
            return None
        cfg = _read_json(found.path)
        if cfg is None:
            return None
        if found.repo_id:
            source = f"{found.where}: {found.repo_id}@{(found.revision or '')[:10]}"
        else:
            source = f"{found.where}: {found.path.parent}"
        spec = spec_from_hf_config(cfg, name=name_or_path.strip(), source=source)
        return _with_tokenizer(spec, name_or_path.strip(), found, cache_dir)
    except Exception as exc:  # noqa: BLE001 - hover must not die on a strange cache
        log.warning("Hugging Face cache lookup for %r failed: %s", name_or_path, exc)
        return None


def _with_tokenizer(spec: ModelSpec, name: str, found: _Found, cache_dir) -> ModelSpec:
    from dataclasses import replace

    try:
        from . import registry

        official = registry.lookup(name)
    except Exception:  # noqa: BLE001
        official = None
    if official is not None and official.tokenizer:
        return replace(spec, tokenizer=official.tokenizer)
    tok = _find(name, "tokenizer.json", cache_dir) if found.repo_id else None
    if tok is not None:
        return replace(spec, tokenizer=tok.repo_id)
    if found.repo_id is None and (found.path.parent / "tokenizer.json").is_file():
        return replace(spec, tokenizer=str(found.path.parent))
    return spec
