"""``get_act_name`` and ``ActivationCache`` key rules against the real library, call by call.

The probe (``tl_probe.py``) calls the installed ``get_act_name`` on every argument tuple of
``conftest.act_name_calls()`` (the documented table plus every short name x layer x layer_type), and
looks up every key of ``conftest.cache_keys()`` in a real 2-layer cache (HookedTransformer and/or
TransformerBridge). Our mirror must return the same string, or raise the same exception type.
"""

from __future__ import annotations

import re

import pytest

from lsp_server.knowledge.act_names import CacheKeyError, act_name_pitfall, cache_key_name, get_act_name

_LAYER = re.compile(r"^blocks\.-?\d+\.")


def _ours(fn, *args, **kwargs) -> dict:
    try:
        return {"ok": fn(*args, **kwargs)}
    except Exception as exc:  # the comparison is about which exception, so catch them all
        return {"exc": type(exc).__name__}


def _same(ours: dict, theirs: dict) -> bool:
    if "ok" in theirs:
        return ours.get("ok") == theirs["ok"]
    return ours.get("exc") == theirs["exc"]


# ------------------------------------------------------------------ documented behaviour (no TL needed)


def test_documented_get_act_name_rows(documented_act_name):
    """Each row of the knowledge file's table (transformerlens.md §2.3), quirks included."""
    args, documented = documented_act_name
    assert get_act_name(*args) == documented


def test_cache_key_rules_without_tl():
    assert cache_key_name("resid_post", -1, n_layers=3) == "blocks.2.hook_resid_post"
    assert cache_key_name("resid_post", -4, n_layers=3) == "blocks.-1.hook_resid_post"  # one wrap only
    assert cache_key_name("resid_post", -1) == "blocks.-1.hook_resid_post"  # n_layers unknown: left as is
    assert cache_key_name("scale", 1) == "blocks.1.hook_scale"
    assert cache_key_name("scale") == "ln_final.hook_scale"
    with pytest.raises(CacheKeyError, match="TypeError"):
        cache_key_name("resid_pre", "1", n_layers=3)


# ------------------------------------------------------------------ against the installed library


def test_get_act_name_matches_tl(tl_env, tl_probe, tables):
    answer = tl_probe(tl_env)
    calls = tables.act_name_calls
    assert len(answer["act_names"]) == len(calls)
    mismatches = []
    for (name, layer, layer_type), theirs in zip(calls, answer["act_names"]):
        ours = _ours(get_act_name, name, layer, layer_type)
        if not _same(ours, theirs):
            mismatches.append(f"get_act_name({name!r}, {layer!r}, {layer_type!r}): TL {theirs}, ours {ours}")
    assert not mismatches, (f"{len(mismatches)} of {len(calls)} calls differ from transformer-lens "
                            f"{answer['tl_version']}:\n  " + "\n  ".join(mismatches[:40]))


@pytest.mark.parametrize("backend", ["hooked", "bridge"])
def test_cache_getitem_matches_tl(tl_env, backend, tl_probe, tables):
    """``cache[key]`` looks up exactly ``cache_key_name(*key, n_layers=...)``, or raises like it."""
    answer = tl_probe(tl_env)
    probe = answer["cache_keys"].get(backend)
    if probe is None:
        pytest.skip(f"no {backend} cache in transformer-lens {answer['tl_version']} ({tl_env})")
    stored = set(probe["keys"])
    n_layers = probe["n_layers"]
    mismatches = []
    for key, theirs in zip(tables.cache_keys, probe["results"]):
        args = tuple(key) if isinstance(key, list) else (key,)
        try:
            name = cache_key_name(*args, n_layers=n_layers)
        except CacheKeyError:
            if theirs.get("exc") != "TypeError":
                mismatches.append(f"cache[{args}]: ours raises CacheKeyError (TL TypeError), TL {theirs}")
            continue
        if name in stored:
            ok = name in theirs.get("found", [])
        else:
            ok = theirs.get("exc") == "KeyError" and theirs.get("arg") == name
        if not ok:
            mismatches.append(f"cache[{args}]: ours looks up {name!r} ({'stored' if name in stored else 'absent'}), "
                              f"TL {theirs}")
    assert len(probe["results"]) == len(tables.cache_keys)
    assert not mismatches, (f"{len(mismatches)} of {len(tables.cache_keys)} keys differ on the {backend} cache of "
                            f"transformer-lens {answer['tl_version']}:\n  " + "\n  ".join(mismatches[:40]))


def test_documented_cache_rows_hold_in_tl(tl_env, tl_probe, tables):
    """Spot checks of §2.4 on the real cache, stated directly (not through our mirror)."""
    answer = tl_probe(tl_env)
    for backend, probe in answer["cache_keys"].items():
        results = dict(zip(map(repr, tables.cache_keys), probe["results"]))
        assert "blocks.1.hook_resid_post" in results[repr(["resid_post", -1])]["found"], backend
        assert "blocks.0.hook_resid_post" in results[repr(["resid_post", -2])]["found"], backend
        assert results[repr(["resid_post", -3])]["arg"] == "blocks.-1.hook_resid_post", backend
        assert results[repr(["scale", 1])]["arg"] == "blocks.1.hook_scale", backend
        assert results[repr(["resid_pre", "1"])]["exc"] == "TypeError", backend
        assert "ln_final.hook_scale" in results[repr("scale")]["found"], backend
        assert results[repr("resid_pre")]["arg"] == "hook_resid_pre", backend


def test_act_name_pitfalls_are_real(tl_env, tl_probe, tables):
    """Whenever ``act_name_pitfall`` warns, TL's result is not a hook name of any probed model."""
    answer = tl_probe(tl_env)
    real = set()
    for backend in ("hooked", "bridge"):
        for result in answer.get(backend, {}).values():
            real.update(_LAYER.sub("blocks.{l}.", n) for n in result.get("hook_dict", []))
    assert real, "the probe built no model"
    wrong = []
    for (name, layer, layer_type), theirs in zip(tables.act_name_calls, answer["act_names"]):
        if not isinstance(name, str) or "ok" not in theirs:
            continue
        message = act_name_pitfall(name, layer, layer_type, layer is not None)
        if message and _LAYER.sub("blocks.{l}.", theirs["ok"]) in real:
            wrong.append(f"get_act_name({name!r}, {layer!r}, {layer_type!r}) = {theirs['ok']} is real, yet: {message}")
    assert not wrong, "\n".join(wrong[:20])


def test_documented_traps_have_a_pitfall(tables):
    """Every row the knowledge file marks as a trap gets a message from ``act_name_pitfall``."""
    traps = [("scale", 4, None), ("scale", None, "ln_final"), ("hook_resid_pre", 0, None),
             ("blocks.0.hook_resid_pre", 1, None), ("resid_pre5", None, None), ("attn_scores3", None, None),
             ("mlp_out", 0, "m"), ("attn_out", 0, "a"), ("mlp_out", 0, "mlp")]
    silent = [t for t in traps if not act_name_pitfall(t[0], t[1], t[2], t[1] is not None)]
    assert not silent, f"no pitfall message for {silent}"
    fine = [("resid_pre", 5, None), ("scale", 4, "ln1"), ("k6", None, None), ("mlp_out", 0, "b"), ("embed", None, None)]
    noisy = [t for t in fine if act_name_pitfall(t[0], t[1], t[2], t[1] is not None)]
    assert not noisy, f"pitfall messages for correct calls {noisy}"
