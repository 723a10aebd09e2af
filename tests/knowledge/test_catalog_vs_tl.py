"""The hook catalog against the real library: names, shapes, gates, dead hooks and bridge aliases.

For every configuration in ``conftest.py`` a tiny random model is built in each TransformerLens
environment (HookedTransformer 2.x/3.x, TransformerBridge 3.x/4.x) and its unfiltered
``run_with_cache`` keys, shapes and ``hook_dict`` are compared with ``catalog_for(spec, tl_major)``.
A failure message names every hook that differs, so fixing the catalog is mechanical.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from lsp_server.analysis.cache_stacks import bind, stack_of
from lsp_server.knowledge.hf_cache import spec_from_hf_config
from lsp_server.knowledge.hookpoints import Catalog, HookPoint, catalog_for, concrete_shape, format_shape, union_templates
from lsp_server.knowledge.spec import GATE_FLAGS

# Catalog symbols for dimensions that change from run to run: compared as wildcards.
VARIABLE_DIMS = {"n_routed_tokens"}
# batch and pos of every probe run (conftest.DIMS; the tables fixture checks they agree).
_RUNTIME = {"batch": 3, "pos": 7, "query_pos": 7, "key_pos": 7}
_EXPERT = re.compile(r"\.experts\.\d+\.")


# ------------------------------------------------------------------ helpers


def numeric(point: HookPoint, catalog: Catalog) -> tuple[int | None, ...]:
    """The catalog shape with the spec's and the run's numbers; None for a run-dependent axis."""
    dims: list[int | None] = []
    for sym in concrete_shape(point.shape, catalog.spec):
        value: int | None = 1
        for factor in sym.split("*"):
            if factor in VARIABLE_DIMS:
                value = None
                break
            if factor.isdigit():
                value *= int(factor)
            elif factor in _RUNTIME:
                value *= _RUNTIME[factor]
            else:
                raise AssertionError(f"{point.template}: shape symbol {factor!r} of {format_shape(point.shape)} "
                                     f"is not a dimension the spec can fill in")
        dims.append(value)
    return tuple(dims)


def expand(point: HookPoint, n_layers: int, n_experts: int | None = None) -> list[str]:
    """Full names of a hook point: one per layer; experts kept as ``{e}`` unless ``n_experts`` is given."""
    names = [point.name(layer) for layer in range(n_layers)] if point.per_layer else [point.name()]
    if "{e}" in point.template and n_experts is not None:
        names = [n.replace("{e}", str(e)) for n in names for e in range(n_experts)]
    return names


def expected(catalog: Catalog, points: list[HookPoint]) -> dict[str, tuple[int | None, ...]]:
    return {name: numeric(p, catalog) for p in points for name in expand(p, catalog.spec.n_layers)}


def observed(result: dict) -> dict[str, list[list[int]]]:
    """Cache keys (experts folded into ``{e}``) -> the shapes seen under that name."""
    out: dict[str, list[list[int]]] = {}
    for name, shape in result["cache"].items():
        out.setdefault(_EXPERT.sub(".experts.{e}.", name), []).append(shape)
    return out


def shape_matches(want: tuple[int | None, ...], got: list[int]) -> bool:
    return len(want) == len(got) and all(w is None or w == g for w, g in zip(want, got))


def run_case(case, backend: str, tl_probe) -> tuple[Catalog, dict]:
    """The catalog for the case and what TL did for it (skips/fails with a readable reason)."""
    answer = tl_probe(case.env, backend)
    result = answer[backend][case.name]
    if "error" in result:
        pytest.fail(f"transformer-lens {answer['tl_version']} could not run {case.name}: {result['error']}",
                    pytrace=False)
    return catalog_for(case.spec, answer["tl_major"]), result


def _fmt(shape) -> str:
    return "(" + ", ".join("*" if d is None else str(d) for d in shape) + ")"


def check_names(catalog: Catalog, result: dict, label: str) -> None:
    want = expected(catalog, catalog.firing())
    got = observed(result)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    lines = [f"catalog says it fires, TL never cached it: {n} {_fmt(want[n])}" for n in missing]
    lines += [f"TL cached it, catalog does not list it as firing: {n} {got[n][0]}"
              + (" (in catalog but gated/dead)" if catalog.lookup(n) else "") for n in extra]
    assert not lines, f"{label}: cache keys differ from catalog.firing()\n  " + "\n  ".join(lines)


def check_shapes(catalog: Catalog, result: dict, label: str) -> None:
    want = expected(catalog, catalog.firing())
    got = observed(result)
    lines = []
    for name in sorted(set(want) & set(got)):
        point, _ = catalog.lookup(name)
        for shape in got[name]:
            if not shape_matches(want[name], shape):
                lines.append(f"{name}: catalog {format_shape(concrete_shape(point.shape, catalog.spec))} "
                             f"= {_fmt(want[name])}, TL {tuple(shape)}")
                break
    assert not lines, f"{label}: shapes differ\n  " + "\n  ".join(lines)


def _absent(point: HookPoint, catalog: Catalog) -> bool:
    """The catalog keeps this point for its gate hint, but the model does not create it."""
    return point.created_by_gate and not getattr(catalog.spec, point.gate)


def catalog_names(catalog: Catalog, *, existing: bool = True) -> set[str]:
    """Full names of the catalog's points that exist in the model (or, ``existing=False``, that do not)."""
    spec = catalog.spec
    return {n for p in catalog.points if _absent(p, catalog) != existing
            for n in expand(p, spec.n_layers, spec.num_experts or 0)}


def check_catalog_in_hook_dict(catalog: Catalog, result: dict, label: str) -> None:
    hook_dict = set(result["hook_dict"])
    missing = sorted(catalog_names(catalog) - hook_dict)
    assert not missing, f"{label}: catalog names that are not hook points of the model: {missing}"
    present = sorted(catalog_names(catalog, existing=False) & hook_dict)
    assert not present, f"{label}: created_by_gate hooks exist although their gate is off: {present}"


def check_hook_dict_in_catalog(catalog: Catalog, result: dict, label: str) -> None:
    unknown = sorted(set(result["hook_dict"]) - catalog_names(catalog))
    assert not unknown, (f"{label}: real hook points missing from the catalog (the server would call them "
                         f"unknown): {unknown}")


def check_gates(catalog: Catalog, result: dict, label: str) -> None:
    """A gated hook fires in every layer exactly when its flag is on (and it is not dead)."""
    cached = set(result["cache"])
    lines = []
    for point in catalog.points:
        if not point.gate:
            continue
        on = bool(getattr(catalog.spec, point.gate)) and not point.dead
        fired = [n for n in expand(point, catalog.spec.n_layers) if n in cached]
        if on and len(fired) != len(expand(point, catalog.spec.n_layers)):
            lines.append(f"{point.template}: {point.gate} is on, but it fired only as {fired}")
        if not on and fired:
            lines.append(f"{point.template}: {point.gate} is off (or the hook is dead), yet it fired as {fired}")
    assert not lines, f"{label}: gates\n  " + "\n  ".join(lines)


# ------------------------------------------------------------------ HookedTransformer (TL 2.x / 3.x)


def _hooked(hooked_case, tl_probe):
    if hooked_case.name == "alibi":
        answer = tl_probe(hooked_case.env, "hooked")
        err = answer["hooked"]["alibi"].get("error", "")
        if "alibi" in err.lower() or "positional_embedding_type" in err:
            pytest.skip(f"transformer-lens {answer['tl_version']} does not support alibi: {err}")
    catalog, result = run_case(hooked_case, "hooked", tl_probe)
    return catalog, result, f"HookedTransformer[{hooked_case.env}] {hooked_case.name}"


def test_hooked_cache_names_match_catalog(hooked_case, tl_probe):
    check_names(*_hooked(hooked_case, tl_probe))


def test_hooked_cache_shapes_match_catalog(hooked_case, tl_probe):
    check_shapes(*_hooked(hooked_case, tl_probe))


def test_hooked_catalog_names_are_hook_points(hooked_case, tl_probe):
    check_catalog_in_hook_dict(*_hooked(hooked_case, tl_probe))


def test_hooked_hook_points_are_in_catalog(hooked_case, tl_probe):
    check_hook_dict_in_catalog(*_hooked(hooked_case, tl_probe))


def test_hooked_gated_hooks_fire_exactly_when_flag_is_on(hooked_case, tl_probe):
    check_gates(*_hooked(hooked_case, tl_probe))


# ------------------------------------------------------------------ TransformerBridge (TL 3.x / 4.x)


def _bridge(bridge_case, tl_probe):
    catalog, result = run_case(bridge_case, "bridge", tl_probe)
    return catalog, result, f"TransformerBridge[{bridge_case.env}] {bridge_case.name}"


def test_bridge_cache_names_match_catalog(bridge_case, tl_probe):
    check_names(*_bridge(bridge_case, tl_probe))


def test_bridge_cache_shapes_match_catalog(bridge_case, tl_probe):
    check_shapes(*_bridge(bridge_case, tl_probe))


def test_bridge_catalog_names_are_hook_points(bridge_case, tl_probe):
    check_catalog_in_hook_dict(*_bridge(bridge_case, tl_probe))


def test_bridge_hook_points_are_in_catalog(bridge_case, tl_probe):
    check_hook_dict_in_catalog(*_bridge(bridge_case, tl_probe))


def test_bridge_gated_hooks_fire_exactly_when_flag_is_on(bridge_case, tl_probe):
    check_gates(*_bridge(bridge_case, tl_probe))


def test_bridge_catalog_from_the_models_own_config_json(bridge_case, tl_probe):
    """End to end: the spec the server derives from the model's config.json gives the same hooks.

    (knowledge/hf_cache.spec_from_hf_config is what the server runs on a local or cached config.)
    """
    answer = tl_probe(bridge_case.env, "bridge")
    result = answer["bridge"][bridge_case.name]
    if "hf_config" not in result:
        pytest.skip("boot_native has no config.json")
    derived = spec_from_hf_config(result["hf_config"])
    flags = {f: getattr(bridge_case.spec, f) for f in GATE_FLAGS}
    spec = dataclasses.replace(derived, backend="bridge", compat_mode=bridge_case.spec.compat_mode, **flags)
    catalog = catalog_for(spec, answer["tl_major"])
    label = f"TransformerBridge[{bridge_case.env}] {bridge_case.name}, spec from config.json"
    check_names(catalog, result, label)
    check_shapes(catalog, result, label)
    check_hook_dict_in_catalog(catalog, result, label)


def test_bridge_aliases_are_the_same_hook_point(bridge_case, tl_probe):
    """Catalog ``canonical`` links equal the library's alias groups (names sharing one HookPoint)."""
    catalog, result, label = _bridge(bridge_case, tl_probe)
    n_layers = catalog.spec.n_layers
    group_of = {name: frozenset(group) for group in result["same_hook"] for name in group}
    lines = []
    for point in catalog.points:
        for layer in range(n_layers) if point.per_layer else [None]:
            name = point.name(layer)
            if point.canonical:
                target = point.canonical.replace("{l}", str(layer))
                if target not in group_of.get(name, ()):
                    lines.append(f"{name}: catalog says alias of {target}, TL resolves it to "
                                 f"{sorted(group_of.get(name, {name}))}")
            elif name in group_of:
                declared = {n for n in group_of[name] if n != name
                            and (hit := catalog.lookup(n)) and hit[0].canonical
                            and hit[0].canonical.replace("{l}", str(layer)) == name}
                undeclared = set(group_of[name]) - declared - {name}
                if undeclared:
                    lines.append(f"{name}: TL has aliases {sorted(undeclared)} the catalog does not link to it")
    assert not lines, f"{label}: alias links\n  " + "\n  ".join(dict.fromkeys(lines))


# ------------------------------------------------------------------ configurations TL refuses


def test_hooked_failing_configs_fail_as_the_catalog_says(hooked_failing_case, tl_probe, tables):
    """Configurations TL cannot run: the error type is the documented one and the catalog warns about it."""
    answer = tl_probe(hooked_failing_case.env, "hooked")
    _, exc_type, note_text = tables.hooked_failing[hooked_failing_case.name]
    error = answer["hooked"][hooked_failing_case.name].get("error")
    assert error and error.startswith(exc_type + ":"), (
        f"{hooked_failing_case.name}: expected {exc_type} from transformer-lens {answer['tl_version']}, got {error!r}")
    catalog = catalog_for(hooked_failing_case.spec, answer["tl_major"])
    assert any(note_text in (p.note or "") for p in catalog.points), (
        f"{hooked_failing_case.name}: no catalog note mentions {note_text} (TL: {error})")


def test_bridge_unsupported_setters_raise_and_their_hooks_are_dead(bridge_failing_case, tl_probe):
    answer = tl_probe(bridge_failing_case.env, "bridge")
    error = answer["bridge"][bridge_failing_case.name].get("error") or ""
    assert error.startswith("NotImplementedError:"), f"{bridge_failing_case.name}: expected NotImplementedError, got {error!r}"
    catalog = catalog_for(bridge_failing_case.spec, answer["tl_major"])
    flags = {f for f in ("use_attn_result", "use_split_qkv_input", "use_attn_in") if getattr(catalog.spec, f)}
    gated = [p for p in catalog.points if p.gate in flags]
    assert gated and all(p.dead and "NotImplementedError" in p.dead for p in gated), (
        f"{bridge_failing_case.name}: hooks gated by {flags} must be dead with the NotImplementedError reason")


# ------------------------------------------------------------------ catalog invariants (no TL needed)


def test_catalog_is_consistent(catalog_case):
    spec, major = catalog_case
    catalog = catalog_for(spec, major)
    label = f"{spec.backend} tl{major}"
    templates = [p.template for p in catalog.points]
    duplicates = sorted({t for t in templates if templates.count(t) > 1})
    assert not duplicates, f"{label}: templates listed twice (the later one hides the earlier): {duplicates}"
    for point in catalog.points:
        assert point.gate is None or point.gate in GATE_FLAGS, f"{label}: {point.template} has unknown gate {point.gate}"
        if point.canonical:
            target = catalog.get(point.canonical)
            assert target is not None, f"{label}: {point.template} aliases missing {point.canonical}"
            assert target.canonical is None, f"{label}: {point.template} aliases another alias"
            assert (target.shape, target.gate, target.dead) == (point.shape, point.gate, point.dead), (
                f"{label}: alias {point.template} and {point.canonical} disagree on shape, gate or dead")
        hit = catalog.lookup(point.name(0))
        assert hit is not None and hit[0] is point, f"{label}: lookup cannot find {point.template}"
    assert set(templates) <= union_templates(), (
        f"{label}: union_templates() misses {sorted(set(templates) - union_templates())}")


def test_every_gate_flag_is_exercised(tables):
    """Each gate flag has a HookedTransformer case and a bridge setter case, or gates go untested."""
    assert {"batch": _RUNTIME["batch"], "pos": _RUNTIME["pos"]} == tables.dims
    for flag in GATE_FLAGS:
        assert any(cfg.get(flag) for cfg in tables.hooked_cases.values()), f"no HookedTransformer case sets {flag}"
    bridge_flags = {setter.removeprefix("set_") for setter in tables.setters}
    assert bridge_flags <= set(GATE_FLAGS)
    for flag in bridge_flags:
        assert any(f"set_{flag}" in case.setters for case in tables.bridge_cases.values()), f"no bridge case sets {flag}"


def test_real_hook_names_are_in_union_templates(tl_env, tl_probe):
    """``union_templates()`` backs the lenient check when the model is unknown: no real name may be missing."""
    answer = tl_probe(tl_env)
    union = union_templates()
    missing = set()
    for backend in ("hooked", "bridge"):
        for result in answer.get(backend, {}).values():
            for name in result.get("hook_dict", []):
                template = _EXPERT.sub(".experts.{e}.", name)
                template = re.sub(r"^blocks\.\d+\.", "blocks.{l}.", template)
                if template not in union:
                    missing.add(template)
    assert not missing, f"union_templates() lacks real hook names: {sorted(missing)}"


# ------------------------------------------------------------------ ActivationCache stacking methods
# Every configuration's cache runs conftest.STACK_CALLS; analysis.cache_stacks must give the same
# shape and the same component labels.


def _number(sym: str, dims: dict[str, int]) -> int:
    out = 1
    for factor in sym.split("*"):
        out *= int(factor) if factor.isdigit() else {**_RUNTIME, **dims}[factor]
    return out


def check_stacks(catalog, result: dict, label: str, calls: list) -> None:
    dims = catalog.spec.dims()
    problems, compared = [], 0
    for (method, kwargs), theirs in zip(calls, result["stacks"]):
        stack = stack_of(method, bind(method, [], kwargs), catalog)
        compared += 1
        if "error" in theirs or stack.raises:
            # What TL raises, e.g. "KeyError: 'blocks.0.hook_resid_mid' at ActivationCache.py:230".
            if not (stack.raises and theirs.get("error", "").startswith(stack.raises)):
                problems.append(f"{method}({kwargs}): TL {theirs.get('error') or theirs['shape']}, ours raises {stack.raises}")
            continue
        ours_shape = [_number(s, dims) for s in stack.shape] if stack.shape else None
        ours_labels = stack.labels if theirs["labels"] is not None else None
        if ours_shape != theirs["shape"] or ours_labels != theirs["labels"]:
            problems.append(f"{method}({kwargs}): TL {theirs['shape']} {theirs['labels']}, "
                            f"ours {ours_shape} {ours_labels}")
    assert compared == len(calls), f"{label}: the probe answered {len(result['stacks'])} of {len(calls)} calls"
    assert not problems, f"{label}:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def stack_calls(tables):
    return [list(call) for call in tables.stack_calls]


def test_hooked_stacks_match_tl(hooked_case, tl_probe, stack_calls):
    check_stacks(*_hooked(hooked_case, tl_probe), stack_calls)


def test_bridge_stacks_match_tl(bridge_case, tl_probe, stack_calls):
    check_stacks(*_bridge(bridge_case, tl_probe), stack_calls)
