"""Probe one TransformerLens installation: what the library really does, as JSON.

Run by ``tests/knowledge`` inside each TL environment (one subprocess per interpreter, so it may use
only that environment's packages: torch, transformer_lens, transformers, tokenizers). It reads a
request on stdin and writes one JSON object on stdout:

request::

    {"dims": {"batch": 3, "pos": 7},
     "hooked": {"base": {...HookedTransformerConfig kwargs}, "cases": {name: {overrides}}},
     "bridge": {"cases": {name: {"arch": "native" | "GPT2Config/GPT2LMHeadModel" | ..., "config": {...},
                                 "compat": bool, "setters": ["set_use_attn_result", ...]}}},
     "stack_calls": [[method, kwargs], ...],   # ActivationCache stacking methods, on every case's cache
     "act_name_calls": [[name, layer, layer_type], ...],
     "cache_keys": [key, ...]}             # a str, or a list standing for a tuple key

answer::

    {"tl_version": "2.18.0", "tl_major": 2, "has_hooked": bool, "has_bridge": bool,
     "hooked": {case: {"cache": {name: shape}, "hook_dict": [names],
                       "stacks": [{"shape": [...], "labels": [...] | None} | {"error": "..."}]} | {"error": "..."}},
     "bridge": {case: {... same ..., "same_hook": [[names sharing one HookPoint], ...],
                       "hf_config": {config.json of the wrapped HF model}}},
     "act_names": [{"ok": str} | {"exc": type, "msg": str}, ...],
     "cache_keys": {"hooked"|"bridge": {"n_layers": int, "keys": [cache_dict keys],
                    "results": [{"found": [keys]} | {"exc": type, "msg": str, "arg": KeyError arg}]}}}

Every model is tiny and randomly initialised; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
import traceback
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)


def _error(exc: BaseException) -> str:
    """One line naming the exception, plus the frame that raised it (for a readable test failure)."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {str(exc)[:400]}{where}"


def _describe_cache(model, cache, stack_calls: list) -> dict:
    return {
        "cache": {name: list(value.shape) for name, value in cache.items()},
        "hook_dict": list(model.hook_dict),
        "stacks": [_stack(cache, method, kwargs) for method, kwargs in stack_calls],
    }


def _stack(cache, method: str, kwargs: dict) -> dict:
    import torch

    try:
        with torch.no_grad():
            out = getattr(cache, method)(**kwargs)
        tensor, labels = out if isinstance(out, tuple) else (out, None)
        return {"shape": list(tensor.shape), "labels": labels}
    except Exception as exc:
        return {"error": _error(exc)}


def _tokens(vocab: int, dims: dict):
    import torch

    return torch.randint(0, vocab, (dims["batch"], dims["pos"]))


# -- HookedTransformer (TL 2.x / 3.x) ----------------------------------------------------------


def probe_hooked(request: dict, dims: dict) -> tuple[dict, object]:
    """Cache keys and hook_dict for every HookedTransformer configuration in the request."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    base = request["base"]
    out: dict = {}
    first_cache = None
    for case, overrides in request["cases"].items():
        try:
            torch.manual_seed(0)
            model = HookedTransformer(HookedTransformerConfig(**{**base, **overrides})).eval()
            with torch.no_grad():
                _, cache = model.run_with_cache(_tokens(base["d_vocab"], dims))
            out[case] = _describe_cache(model, cache, request.get("stack_calls", []))
            if first_cache is None:
                first_cache = cache
        except Exception as exc:  # reported to the test, which decides whether it is a skip or a failure
            out[case] = {"error": _error(exc)}
    return out, first_cache


# -- TransformerBridge (TL 3.x / 4.x) ----------------------------------------------------------


def _tokenizer():
    """A small byte-level BPE saved to disk and reloaded: the bridge re-loads it by name_or_path."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(["Hello World! The quick brown fox jumps over the lazy dog."] * 20, trainer)
    path = tempfile.mkdtemp(prefix="tl_probe_tok_")
    special = "<|endoftext|>"
    PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=special, eos_token=special,
                            unk_token=special, pad_token=special).save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def _boot_bridge(arch: str, config: dict, tokenizer):
    import torch
    from transformer_lens.model_bridge import TransformerBridge

    torch.manual_seed(0)
    if arch == "native":
        from transformer_lens import TransformerBridgeConfig

        return TransformerBridge.boot_native(TransformerBridgeConfig(**config), tokenizer=tokenizer)
    import transformers

    # arch is "<ConfigClass>/<ModelClass>" from transformers, e.g. "GPT2Config/GPT2LMHeadModel".
    config_class, model_class = arch.split("/")
    hf_model = getattr(transformers, model_class)(getattr(transformers, config_class)(**config)).eval()
    return TransformerBridge.boot_transformers(f"local-{arch}", hf_model=hf_model, tokenizer=tokenizer, device="cpu")


def _same_hook_groups(model) -> list[list[str]]:
    """Names in hook_dict that resolve to the same HookPoint object (alias groups)."""
    groups: dict[int, list[str]] = {}
    for name, point in model.hook_dict.items():
        groups.setdefault(id(point), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def probe_bridge(request: dict, dims: dict) -> tuple[dict, object]:
    """Like probe_hooked, for bridges. Booting dominates, so one bridge per (architecture, config,
    mode) serves every setter case: each setter is switched on for its run and off again after it
    (the cases with no setter run first, on the untouched bridge)."""
    import torch

    tokenizer = _tokenizer()
    out: dict = {}
    first_cache = None
    booted: dict[str, object] = {}
    order = sorted(request["cases"].items(), key=lambda item: bool(item[1].get("setters")))
    for case, recipe in order:
        key = json.dumps([recipe["arch"], recipe["config"], bool(recipe.get("compat"))], sort_keys=True)
        setters = recipe.get("setters", [])
        try:
            if key not in booted:
                model = _boot_bridge(recipe["arch"], recipe["config"], tokenizer)
                if recipe.get("compat"):
                    model.enable_compatibility_mode(disable_warnings=True)
                booted[key] = model
            model = booted[key]
            try:
                for setter in setters:
                    getattr(model, setter)(True)
                vocab = recipe["config"].get("vocab_size") or recipe["config"].get("d_vocab")
                with torch.no_grad():
                    _, cache = model.run_with_cache(_tokens(vocab, dims))
            finally:
                try:
                    for setter in reversed(setters):
                        getattr(model, setter)(False)
                except Exception:  # a bridge that cannot switch back is not reused
                    booted.pop(key, None)
            out[case] = {**_describe_cache(model, cache, request.get("stack_calls", [])),
                         "same_hook": _same_hook_groups(model)}
            hf_config = getattr(getattr(model, "original_model", None), "config", None)
            if hf_config is not None and recipe["arch"] != "native":
                # What a config.json of this model says, for the server's own config -> spec mapping.
                out[case]["hf_config"] = json.loads(hf_config.to_json_string(use_diff=False))
            if first_cache is None:
                first_cache = cache
        except Exception as exc:
            out[case] = {"error": _error(exc)}
    return {case: out[case] for case in request["cases"]}, first_cache


# -- get_act_name and ActivationCache keys -----------------------------------------------------


def _get_act_name():
    try:
        from transformer_lens.utilities import get_act_name  # 3.x / 4.x
    except ImportError:
        from transformer_lens.utils import get_act_name  # 2.x
    return get_act_name


def probe_act_names(calls: list) -> list[dict]:
    get_act_name = _get_act_name()
    results = []
    for name, layer, layer_type in calls:
        try:
            results.append({"ok": get_act_name(name, layer, layer_type)})
        except Exception as exc:
            results.append({"exc": type(exc).__name__, "msg": str(exc)})
    return results


def probe_cache_keys(cache, keys: list) -> dict:
    """Which entry ``cache[key]`` returns (by identity), or what it raises."""
    results = []
    for key in keys:
        key = tuple(key) if isinstance(key, list) else key
        try:
            value = cache[key]
            results.append({"found": [k for k, v in cache.cache_dict.items() if v is value]})
        except Exception as exc:
            arg = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
            results.append({"exc": type(exc).__name__, "msg": str(exc), "arg": arg})
    return {"n_layers": cache.model.cfg.n_layers, "keys": list(cache.cache_dict), "results": results}


def _has(module: str, attr: str) -> bool:
    try:
        return hasattr(__import__(module, fromlist=[attr]), attr)
    except ImportError:
        return False


def main() -> None:
    request = json.load(sys.stdin)
    real_stdout = sys.stdout
    answer: dict = {}
    # Library chatter (deprecation notices, "Moving model to ...") must not corrupt the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        version = importlib.metadata.version("transformer-lens")
        answer.update(tl_version=version, tl_major=int(version.split(".")[0]))
        answer["has_hooked"] = _has("transformer_lens.HookedTransformer", "HookedTransformer")
        answer["has_bridge"] = _has("transformer_lens.model_bridge", "TransformerBridge")
        dims = request.get("dims", {"batch": 3, "pos": 7})
        answer["cache_keys"] = {}
        stack_calls = request.get("stack_calls", [])
        if answer["has_hooked"] and request.get("hooked"):
            answer["hooked"], cache = probe_hooked({**request["hooked"], "stack_calls": stack_calls}, dims)
            if cache is not None and request.get("cache_keys"):
                answer["cache_keys"]["hooked"] = probe_cache_keys(cache, request["cache_keys"])
        if answer["has_bridge"] and request.get("bridge"):
            answer["bridge"], cache = probe_bridge({**request["bridge"], "stack_calls": stack_calls}, dims)
            if cache is not None and request.get("cache_keys"):
                answer["cache_keys"]["bridge"] = probe_cache_keys(cache, request["cache_keys"])
        answer["act_names"] = probe_act_names(request.get("act_name_calls", []))
    json.dump(answer, real_stdout)
    real_stdout.write("\n")


if __name__ == "__main__":
    main()
