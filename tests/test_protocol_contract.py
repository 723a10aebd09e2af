"""lsp_server/protocol.py is the one declaration of the custom protocol: the server's registered commands,
extension/src/protocol.ts, package.json (settings, defaults, enums, diagnostic codes) and the kernel
payload's sweep kinds must agree with it."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import pytest

from lsp_server import protocol
from lsp_server.analysis.findings import CODES
from lsp_server.settings import CLIENT_ONLY, WIRE_NAMES, Settings, parse_settings

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_TS = (ROOT / "extension" / "src" / "protocol.ts").read_text()
PACKAGE = json.loads((ROOT / "package.json").read_text())
SETTINGS = {k.removeprefix("tlens."): v for k, v in PACKAGE["contributes"]["configuration"]["properties"].items()}


def ts_object(name: str) -> dict[str, str]:
    body = re.search(r"export const %s = \{(.*?)\} as const;" % name, PROTOCOL_TS, re.S)
    assert body, f"protocol.ts declares no {name}"
    return dict(re.findall(r"^\s*(\w+): '([^']+)'", body.group(1), re.M))


def ts_fields(interface: str) -> set[str]:
    body = re.search(r"export interface %s \{(.*?)\n\}" % interface, PROTOCOL_TS, re.S)
    assert body, f"protocol.ts declares no interface {interface}"
    return set(re.findall(r"^    (\w+)\??:", body.group(1), re.M))


def test_the_server_registers_exactly_the_declared_commands():
    from lsp_server.server import server

    assert set(server.protocol.fm.commands) == set(protocol.COMMANDS.values())


def test_protocol_ts_mirrors_commands_notifications_and_kinds():
    assert ts_object("ServerCommand") == protocol.COMMANDS
    assert ts_object("Notification") == protocol.NOTIFICATIONS
    kinds = re.search(r"export const SWEEP_KINDS = \[(.*?)\] as const;", PROTOCOL_TS, re.S).group(1)
    assert tuple(re.findall(r"'(\w+)'", kinds)) == protocol.SWEEP_KIND_NAMES


@pytest.mark.parametrize("interface", ["SweepResult", "KernelStatus", "RunSweepArgs"])
def test_protocol_ts_payloads_have_the_declared_fields(interface):
    declared = getattr(protocol, interface).__annotations__
    assert ts_fields(interface) == set(declared)


def test_package_json_settings_are_the_ones_the_server_reads():
    assert set(SETTINGS) - set(CLIENT_ONLY) == set(WIRE_NAMES)
    defaults = Settings()
    for wire, attr in WIRE_NAMES.items():
        server_default = getattr(defaults, attr)
        assert SETTINGS[wire]["default"] == (server_default if server_default is not None else ""), wire
        # The server really reads it: a value of the wrong type is reported by name.
        _, problems = parse_settings({wire: 12345} if SETTINGS[wire]["type"] != "number" else {wire: "x"})
        assert any(f"tlens.{wire}" in p for p in problems), (wire, problems)
    assert {f.name for f in dataclasses.fields(Settings)} == set(WIRE_NAMES.values())


def test_package_json_enums_match_the_kinds_and_codes():
    assert tuple(SETTINGS["sweep.defaultKind"]["enum"]) == protocol.SWEEP_KIND_NAMES
    assert set(SETTINGS["diagnostics.severity"]["properties"]) == set(CODES)


def test_the_kernel_payload_knows_the_same_sweep_kinds():
    path = ROOT / "lsp_server" / "kernel" / "payload" / "sweep_grid.py"  # the payload part that holds KINDS
    spec = importlib.util.spec_from_file_location("tlens_payload_sweep_grid_for_contract", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # stdlib only: importing it runs nothing heavy
    assert tuple(module.KINDS) == protocol.SWEEP_KIND_NAMES
