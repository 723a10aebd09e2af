"""Settings as the editors send them: every setting the manifest declares is read into its typed place,
round-trips to the wire shape, and a bad value gives one message naming it and falls back to its default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_server.settings import CONVERTER, WIRE_NAMES, Settings, default_of, parse_settings

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((ROOT / "package.json").read_text())["contributes"]["configuration"]["properties"]
DECLARED = {k.removeprefix("tlens."): v for k, v in MANIFEST.items() if k != "tlens.trace.server"}

# What extension/src/settings.ts readSettings() sends when nothing is set (blank strings for unset paths).
VSCODE_DEFAULTS = {
    "interpreter": "", "inlayHints": {"enabled": True}, "diagnostics": {"severity": {}},
    "sweep": {"defaultKind": "resid_pre", "normalize": True, "kernels": 1},
    "kernel": {"connectionFile": "", "interpreter": "", "gateway": {"url": "", "token": ""}}, "transformerLensVersion": "",
    "trace": {"server": "off"},
}


def _wire(path: str, value) -> dict:
    out: dict = {}
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def _other_value(spec: dict):
    """A valid value of a declared setting that is not its default."""
    if "enum" in spec:
        return next(v for v in spec["enum"] if v != spec["default"])
    if "integer" in spec["type"]:  # an integer, or (sweep.kernels) an integer or a list
        return spec["default"] + 1
    return {"boolean": not spec.get("default", True), "string": "/opt/py/bin/python", "object": {"multi-token": "hint"}}[spec["type"]]


def test_the_editors_defaults_are_the_servers():
    settings, problems = parse_settings({"settings": VSCODE_DEFAULTS})
    assert (settings, problems) == (Settings(), [])


@pytest.mark.parametrize("wire", sorted(DECLARED))
def test_each_setting_is_read_and_round_trips(wire):
    value = _other_value(DECLARED[wire])
    settings, problems = parse_settings({"tlens": _wire(wire, value)})
    assert problems == []
    unstructured = CONVERTER.unstructure(settings)
    node = unstructured
    for part in wire.split("."):
        node = node[part]
    assert node == value
    # Only that setting moved; the same object with flattened keys reads the same.
    assert sum(default_of(w) != _value(unstructured, w) for w in WIRE_NAMES) == 1
    assert parse_settings({wire: value}) == (settings, [])


def _value(tree: dict, wire: str):
    for part in wire.split("."):
        tree = tree[part]
    return tree


@pytest.mark.parametrize("wire", sorted(DECLARED))
def test_a_bad_value_names_the_setting_and_keeps_the_others(wire):
    types = DECLARED[wire]["type"]
    bad = "not an object" if types == "object" else [1, 2] if "array" in types else ["a", "list"]
    raw = dict(VSCODE_DEFAULTS, inlayHints={"enabled": False}) if wire != "inlayHints.enabled" else dict(VSCODE_DEFAULTS, interpreter="/x")
    raw = json.loads(json.dumps(raw))
    node = raw
    *parents, last = wire.split(".")
    for part in parents:
        node = node[part]
    node[last] = bad
    settings, problems = parse_settings(raw)
    assert len(problems) == 1 and f"tlens.{wire}" in problems[0], problems
    assert _value(CONVERTER.unstructure(settings), wire) == default_of(wire)
    # The valid setting next to it still applies.
    assert settings.inlay_hints.enabled is False or settings.interpreter == "/x"


def test_sweep_kernels_is_a_count_or_a_list_of_running_kernels():
    listed = ["/run/user/1000/jupyter/kernel-1.json", "gateway:5f1c"]
    settings, problems = parse_settings({"sweep": {"kernels": listed}})
    assert settings.sweep.kernels == tuple(listed) and problems == []
    _, problems = parse_settings({"sweep": {"kernels": ["/k.json", ""]}})
    assert len(problems) == 1 and "tlens.sweep.kernels" in problems[0] and "gateway:ID" in problems[0]


def test_severities_keep_the_valid_entries():
    settings, problems = parse_settings({"diagnostics": {"severity": {"multi-token": "hint", "stale-hook": "loud", "no-such-code": "off"}}})
    assert settings.diagnostics.severity == {"multi-token": "hint"}
    assert problems == ["tlens.diagnostics.severity.stale-hook: 'loud' is not one of error, warning, information, hint, off",
                        "tlens.diagnostics.severity: unknown diagnostic code 'no-such-code'"]


@pytest.mark.parametrize("raw", [None, [], 3, "x", {"settings": None}, {"tlens": {"sweep": 4}}, {"sweep": {"normalize": None}}])
def test_malformed_settings_never_raise(raw):
    settings, problems = parse_settings(raw)
    assert isinstance(settings, Settings)
    assert all(isinstance(p, str) for p in problems)
