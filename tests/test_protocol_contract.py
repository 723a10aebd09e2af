"""lsp_server/protocol.py is the one declaration of the custom protocol: the server's registered commands,
extension/src/protocol.ts, package.json (settings, defaults, enums, diagnostic codes) must agree with it.
lsp_server/sweeps/kinds.py is the one list of sweep kinds: every other place that names them (protocol.ts,
package.json, the kernel payload, the CLI, the experiments finder, the README) must agree with it."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from lsp_server import protocol
from lsp_server.analysis import experiments
from lsp_server.analysis.findings import CODES
from lsp_server.settings import CLIENT_ONLY, WIRE_NAMES, default_of, parse_settings
from lsp_server.sweeps import kinds

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


@pytest.mark.parametrize("interface", ["SweepResult", "KernelStatus", "RunSweepArgs", "GatewayKernels", "GatewayKernel"])
def test_protocol_ts_payloads_have_the_declared_fields(interface):
    declared = getattr(protocol, interface).__annotations__
    assert ts_fields(interface) == set(declared)


def ts_list(name: str) -> list[str]:
    body = re.search(r"export const %s\b[^=]*= \[(.*?)\]" % name, PROTOCOL_TS, re.S)
    assert body, f"protocol.ts declares no {name}"
    server = ts_object("ServerCommand")
    return [server[ref] if ref in server else quoted
            for ref, quoted in re.findall(r"ServerCommand\.(\w+)|'([^']+)'", body.group(1))]


def test_protocol_ts_mirrors_what_restricted_mode_refuses():
    assert sorted(ts_list("RUNS_CODE")) == sorted(protocol.RUNS_CODE)
    assert re.search(r"export const WORKSPACE_TRUSTED = '%s';" % protocol.WORKSPACE_TRUSTED, PROTOCOL_TS)


def test_package_json_restricts_every_setting_that_runs_a_program():
    trust = PACKAGE["capabilities"]["untrustedWorkspaces"]
    assert trust["supported"] == "limited" and "Restricted Mode" in trust["description"]
    assert trust["restrictedConfigurations"] == [f"tlens.{s}" for s in protocol.RESTRICTED_SETTINGS]
    runs_programs = {w for w in WIRE_NAMES if w.startswith("kernel.") or "interpreter" in w.lower()}
    assert runs_programs <= set(protocol.RESTRICTED_SETTINGS), runs_programs - set(protocol.RESTRICTED_SETTINGS)
    assert set(protocol.RESTRICTED_SETTINGS) <= set(WIRE_NAMES)


def test_package_json_settings_are_the_ones_the_server_reads():
    assert set(SETTINGS) - set(CLIENT_ONLY) == set(WIRE_NAMES)
    for wire in WIRE_NAMES:
        server_default = default_of(wire)
        assert SETTINGS[wire]["default"] == (server_default if server_default is not None else ""), wire
        # The server really reads it: a value of the wrong type is reported by name.
        _, problems = parse_settings({wire: 12345} if SETTINGS[wire]["type"] != "number" else {wire: "x"})
        assert any(f"tlens.{wire}" in p for p in problems), (wire, problems)


def test_package_json_enums_match_the_kinds_and_codes():
    assert tuple(SETTINGS["sweep.defaultKind"]["enum"]) == kinds.SWEEP_KIND_NAMES
    assert tuple(SETTINGS["sweep.defaultKind"]["enumDescriptions"]) == tuple(k.description for k in kinds.SWEEP_KINDS)
    assert SETTINGS["sweep.defaultKind"]["default"] == kinds.DEFAULT_KIND
    assert set(SETTINGS["diagnostics.severity"]["properties"]) == set(CODES)


def test_the_protocol_names_the_kinds_of_the_one_list():
    assert protocol.SWEEP_KIND_NAMES is kinds.SWEEP_KIND_NAMES


def test_the_kernel_payload_knows_the_same_sweep_kinds():
    path = ROOT / "lsp_server" / "kernel" / "payload" / "sweep_grid.py"  # the payload part that holds KINDS
    spec = importlib.util.spec_from_file_location("tlens_payload_sweep_grid_for_contract", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # stdlib only: importing it runs nothing heavy
    assert tuple(module.KINDS) == kinds.SWEEP_KIND_NAMES


def test_every_kind_has_its_titles_and_the_lists_that_pick_kinds_name_known_ones():
    names = set(kinds.SWEEP_KIND_NAMES)
    assert len(names) == len(kinds.SWEEP_KINDS)
    assert all(k.label and k.heatmap_title and k.description for k in kinds.SWEEP_KINDS)
    assert set(kinds.SWEEP_TITLES) == set(kinds.HEATMAP_TITLES) == names
    assert kinds.DEFAULT_KIND in names and set(kinds.CODE_ACTION_KINDS) <= names
    # The experiments finder names the kind matching what the code patches.
    found = {*experiments._PATCHING_KINDS.values(), *experiments._HOOK_KINDS.values()}
    assert found <= names, found - names


def test_the_cli_offers_every_kind_and_only_those(capsys):
    from lsp_server.cli import build_parser

    def parse(*extra: str):
        return build_parser().parse_args(["sweep", "experiment.py:3", "--out", "map.png", *extra])

    assert parse().kind == kinds.DEFAULT_KIND
    assert [parse("--kind", name).kind for name in kinds.SWEEP_KIND_NAMES] == list(kinds.SWEEP_KIND_NAMES)
    with pytest.raises(SystemExit):
        parse("--kind", "resid")
    assert "invalid choice: 'resid'" in capsys.readouterr().err


def test_the_readme_lists_every_kind():
    readme = (ROOT / "README.md").read_text()
    usage = re.search(r"\[--kind ([\w|]+)\]", readme).group(1)
    assert tuple(usage.split("|")) == kinds.SWEEP_KIND_NAMES
    protocol_section = readme[readme.index("## Custom protocol"):]
    listed = re.search(r"kind one of (.*?)\)", protocol_section, re.S).group(1)
    assert tuple(re.findall(r"`(\w+)`", listed)) == kinds.SWEEP_KIND_NAMES
