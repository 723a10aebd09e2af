"""payload/live.py in-process, on stand-in TL objects: what live_state reports, its bounds, tokenizers, reset.

tests/kernel/test_live_kernel.py runs the same calls against real models in real kernels.
"""

from __future__ import annotations

import functools
import json
import sys
from types import ModuleType, SimpleNamespace

import pytest
import torch

from .installed import HookedTransformer, answer


class HookPoint:
    def __init__(self, name):
        self.name, self.fwd_hooks, self.bwd_hooks = name, [], []


def handle(fn, permanent=False):
    """A TL 4 hook handle: it keeps the user's function."""
    return SimpleNamespace(user_hook=fn, is_permanent=permanent, context_level=None)


class LiveModel(HookedTransformer):
    def __init__(self, n_layers=2):
        super().__init__(n_layers=n_layers)
        self.cfg.act_fn, self.cfg.dtype = "gelu", torch.float32  # a dtype is not part of a spec: reported as None
        self.hook_dict = {f"blocks.{l}.{h}": HookPoint(f"blocks.{l}.{h}")
                          for l in range(n_layers) for h in ("hook_resid_pre", "attn.hook_z")}
        backend = SimpleNamespace(to_str=lambda: '{"model": {}}')
        self.tokenizer = SimpleNamespace(is_fast=True, backend_tokenizer=backend, bos_token="<|endoftext|>",
                                         name_or_path="gpt2")

    def reset_hooks(self, including_permanent=False):
        for hp in self.hook_dict.values():
            hp.fwd_hooks = [h for h in hp.fwd_hooks if h.is_permanent and not including_permanent]


class ActivationCache:
    def __init__(self, model, n_keys=3):
        self.model, self.has_batch_dim = model, True
        self.cache_dict = {f"blocks.{i}.hook_resid_pre": torch.zeros(1, 4, 8) for i in range(n_keys)}
        self.cache_dict["blocks.0.hook_resid_pre"] = torch.zeros(1, 4, 8, dtype=torch.float16)


def my_hook(x, hook):
    return x


@pytest.fixture
def tl_imported(monkeypatch):
    """live_state looks for TL objects only once the notebook imported transformer_lens."""
    if "transformer_lens" not in sys.modules:
        monkeypatch.setitem(sys.modules, "transformer_lens", ModuleType("transformer_lens"))


@pytest.fixture
def notebook(user_ns, tl_imported):
    model = LiveModel()
    model.hook_dict["blocks.1.attn.hook_z"].fwd_hooks.append(handle(functools.partial(my_hook)))
    model.hook_dict["blocks.0.hook_resid_pre"].fwd_hooks.append(handle(lambda x, hook: x, permanent=True))
    user_ns.update(model=model, same_model=model, cache=ActivationCache(model), _private=LiveModel(), n=3)
    return user_ns


def test_live_state_describes_models_and_caches_by_metadata(tlens, notebook):
    out = answer(tlens, "live_state")["value"]
    assert [m["var"] for m in out["models"]] == ["model", "same_model"] and out["truncated"] == []
    model = out["models"][0]
    assert (model["class"], model["backend"], model["device"]) == ("LiveModel", "hooked", "cpu")
    assert model["cfg"] == {"n_layers": 2, "d_model": 8, "n_heads": 2, "act_fn": "gelu"}
    assert model["hook_templates"] == ["blocks.{l}.attn.hook_z", "blocks.{l}.hook_resid_pre"]
    assert model["hooks_total"] == 2
    assert {(h["hook"], h["fn"], h["permanent"], h["dir"]) for h in model["hooks"]} == {
        ("blocks.1.attn.hook_z", "partial(my_hook)", False, "fwd"),
        ("blocks.0.hook_resid_pre", "notebook.<locals>.<lambda>", True, "fwd")}
    assert model["tokenizer"]["fast"] and model["tokenizer"]["bos_token"] == "<|endoftext|>"
    [cache] = out["caches"]
    assert (cache["var"], cache["model"], cache["n_keys"], cache["complete"]) == ("cache", "model", 3, True)
    assert cache["dtypes"] == ["float16", "float32"] and cache["devices"] == ["cpu"]
    assert cache["keys"]["blocks.0.hook_resid_pre"] == [[1, 4, 8], 0, 0]


def test_live_state_is_bounded_and_says_what_it_left_out(tlens, notebook):
    out = answer(tlens, "live_state", max_models=1, max_keys=2)["value"]
    assert [m["var"] for m in out["models"]] == ["model"]
    assert out["truncated"] == ["1 more models", "cache: 2 of 3 keys"] and not out["caches"][0]["complete"]
    notebook["cache"] = ActivationCache(notebook["model"], n_keys=400)
    out = answer(tlens, "live_state", max_bytes=3000)["value"]
    assert len(json.dumps({k: v for k, v in out.items() if k != "elapsed_ms"})) <= 3000
    assert any("(size cap)" in note for note in out["truncated"])


def test_the_size_cap_cuts_keys_then_caches_then_hook_names_then_models(tlens):
    def state():
        return {"models": [{"var": "m", "hook_templates": ["blocks.{l}.hook_x"] * 20}], "truncated": [],
                "caches": [{"var": "c", "n_keys": 64, "complete": True, "keys": {str(i): [[1], 0, 0] for i in range(64)}}]}

    out = state()
    tlens._live_fit(out, 1200)
    kept = len(out["caches"][0]["keys"])
    assert kept in (8, 16, 32) and out["truncated"] == [f"c: {kept} of 64 keys (size cap)"]
    assert len(json.dumps(out)) <= 1200 < len(json.dumps(state()))
    out = state()
    tlens._live_fit(out, 300)
    assert out["caches"] == [] and out["models"][0]["hook_templates"] is None
    assert out["truncated"] == ["c: left out (size cap)", "hook names left out (size cap)"]
    out = state()
    tlens._live_fit(out, 10)
    assert out["models"] == [] and "m: left out (size cap)" in out["truncated"]


def test_live_state_reads_nothing_before_transformer_lens_is_imported(tlens, user_ns, monkeypatch):
    monkeypatch.delitem(sys.modules, "transformer_lens", raising=False)
    user_ns["model"] = LiveModel()
    out = answer(tlens, "live_state")["value"]
    assert (out["tl_version"], out["models"], out["caches"]) == (None, [], [])


def test_live_tokenizer_ships_the_fast_tokenizer_or_says_why_not(tlens, notebook):
    out = answer(tlens, "live_tokenizer", var="model")["value"]
    assert (out["json"], out["bos_token"], out["name"]) == ('{"model": {}}', "<|endoftext|>", "gpt2")
    assert answer(tlens, "live_tokenizer", var="model", max_bytes=4)["code"] == "tokenizer-too-large"
    notebook["model"].tokenizer = SimpleNamespace(is_fast=False)
    assert answer(tlens, "live_tokenizer", var="model")["code"] == "no-fast-tokenizer"
    out = answer(tlens, "live_tokenizer", var="n")
    assert out["code"] == "missing-model" and out["details"] == {"names": ["n"]}


def test_live_reset_hooks_resets_each_model_once_and_keeps_permanent_hooks(tlens, notebook):
    other = notebook["other"] = LiveModel()
    other.hook_dict["blocks.0.attn.hook_z"].fwd_hooks.append(handle(my_hook))
    done = answer(tlens, "live_reset_hooks")["value"]
    assert done == [{"var": "model", "removed": 1, "permanent_left": 1},
                    {"var": "other", "removed": 1, "permanent_left": 0}]
    assert answer(tlens, "live_reset_hooks", var="other")["value"] == [{"var": "other", "removed": 0, "permanent_left": 0}]


def test_live_helpers(tlens):
    assert tlens._live_template("blocks.11.attn.hook_z") == "blocks.{l}.attn.hook_z"
    assert tlens._live_template("hook_embed") == "hook_embed"
    assert tlens._live_callable_name(functools.partial(my_hook, hook=None)) == "partial(my_hook)"
    assert tlens._live_callable_name(None) == "?" and tlens._live_callable_name(SimpleNamespace()) == "SimpleNamespace"
    assert tlens._live_scalar(torch.float32) is None and tlens._live_scalar("gelu") == "gelu"

    class HookedRootModule:  # e.g. an SAE: a cfg without n_layers is not a model
        cfg = SimpleNamespace(d_in=8)

    assert tlens._live_is_model(LiveModel()) and not tlens._live_is_model(HookedRootModule())
