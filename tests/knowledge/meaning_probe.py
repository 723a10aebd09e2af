"""Probe what one TransformerLens installation puts under a hook name, as numbers (JSON).

Run by ``tests/knowledge/test_hook_meaning_vs_tl.py`` once per TL environment. Every environment builds
the same tiny Hugging Face models with the same weights (each parameter is drawn from a generator
seeded by its name, LayerNorm weights and biases far from 1 and 0 so folding shows), so values from
HookedTransformer 2.x/3.x and TransformerBridge 3.x/4.x can be compared in the test process without
moving tensors between interpreters. Nothing is downloaded.

request::

    {"tokens": [[int]],
     "models": {arch: {"builder": "GPT2Config/GPT2LMHeadModel", "config": {...}}},
     "runs": {run_id: {"arch": arch, "backend": "bridge" | "hooked",
                       "mode": "raw" | "compat" | "compat_noproc" | "processed" | "unprocessed",
                       "setters": ["set_use_attn_result", ...], "names": ["blocks.0.ln1.hook_normalized", ...]}}}

answer::

    {"tl_version": "4.3.0", "has_hooked": bool, "has_bridge": bool,
     "runs": {run_id: {"fired": [cache keys], "logits": [...], "hf_logits": [...],
                       "values": {name: {"shape": [...], "data": [flat floats]}}} | {"error": "..."}}}

Runs for a backend the installation lacks are left out of the answer.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
import warnings
import zlib

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from tl_probe import _error, _has, _tokenizer  # noqa: E402  (this script's folder is on sys.path)

LOGITS_SHOWN = 16  # logits compared per position (enough to tell two weight sets apart)


def _hf_model(recipe: dict):
    """A fresh HF model with the deterministic weights (fresh: compatibility mode edits weights in place)."""
    import torch
    import transformers

    config_class, model_class = recipe["builder"].split("/")
    config = getattr(transformers, config_class)(**recipe["config"], architectures=[model_class])
    model = getattr(transformers, model_class)(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=torch.Generator().manual_seed(zlib.crc32(name.encode())))
            is_norm_weight = param.ndim == 1 and name.endswith("weight")
            param.copy_(1 + 0.3 * noise if is_norm_weight else 0.2 * noise)
    return model


def _bridge(recipe: dict, mode: str, tokenizer):
    from transformer_lens.model_bridge import TransformerBridge

    model = TransformerBridge.boot_transformers("local-probe", hf_model=_hf_model(recipe), tokenizer=tokenizer,
                                                device="cpu")
    if mode == "compat":
        model.enable_compatibility_mode(disable_warnings=True)
    elif mode == "compat_noproc":
        model.enable_compatibility_mode(disable_warnings=True, no_processing=True)
    elif mode != "raw":
        raise ValueError(f"unknown bridge mode {mode!r}")
    return model


def _hooked(recipe: dict, mode: str, tokenizer):
    """``from_pretrained`` / ``from_pretrained_no_processing`` on the in-memory HF model, its config saved
    to a folder (TL reads configs of local folders; only the official-name check needs bypassing)."""
    from transformer_lens import HookedTransformer
    import transformer_lens.loading_from_pretrained as loading

    hf_model = _hf_model(recipe)
    folder = tempfile.mkdtemp(prefix="meaning_probe_cfg_")
    hf_model.config.save_pretrained(folder)
    official = loading.get_official_model_name
    loading.get_official_model_name = lambda name: name
    try:
        load = {"processed": HookedTransformer.from_pretrained,
                "unprocessed": HookedTransformer.from_pretrained_no_processing}[mode]
        return load(folder, hf_model=hf_model, tokenizer=tokenizer, device="cpu")
    finally:
        loading.get_official_model_name = official


def _logits(tensor) -> list:
    return [round(float(x), 6) for x in tensor[..., :LOGITS_SHOWN].flatten()]


def probe_run(spec: dict, models: dict, tokens, tokenizer, hf_logits: dict) -> dict:
    import torch

    recipe = models[spec["arch"]]
    build = _bridge if spec["backend"] == "bridge" else _hooked
    model = build(recipe, spec["mode"], tokenizer)
    for setter in spec.get("setters", []):
        getattr(model, setter)(True)
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
        if spec["arch"] not in hf_logits:  # what this environment's transformers computes, for cross-checks
            hf_logits[spec["arch"]] = _logits(_hf_model(recipe)(tokens).logits)
    values = {}
    for name in spec["names"]:
        if name in cache.cache_dict:
            tensor = cache.cache_dict[name]
            values[name] = {"shape": list(tensor.shape), "data": [round(float(x), 6) for x in tensor.flatten()]}
    return {"fired": list(cache.cache_dict), "logits": _logits(logits), "hf_logits": hf_logits[spec["arch"]],
            "values": values}


def main() -> None:
    request = json.load(sys.stdin)
    real_stdout = sys.stdout
    answer: dict = {"runs": {}}
    with contextlib.redirect_stdout(sys.stderr):  # "Loaded pretrained model ..." must not corrupt the JSON
        import torch

        answer["tl_version"] = importlib.metadata.version("transformer-lens")
        answer["has_hooked"] = _has("transformer_lens.HookedTransformer", "HookedTransformer")
        answer["has_bridge"] = _has("transformer_lens.model_bridge", "TransformerBridge")
        tokens = torch.tensor(request["tokens"])
        tokenizer = _tokenizer()
        hf_logits: dict = {}
        for run_id, spec in request["runs"].items():
            if not answer[f"has_{spec['backend']}"]:
                continue
            try:
                answer["runs"][run_id] = probe_run(spec, request["models"], tokens, tokenizer, hf_logits)
            except Exception as exc:  # reported to the test, which fails with it
                answer["runs"][run_id] = {"error": _error(exc)}
    json.dump(answer, real_stdout)
    real_stdout.write("\n")


if __name__ == "__main__":
    main()
