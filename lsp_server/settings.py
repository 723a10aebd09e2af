"""Settings: the wire form the editor sends, resolved to typed values with defaults.

The VS Code extension sends ``initializationOptions: {settings: {...}}`` and the same object in
``workspace/didChangeConfiguration``; other editors may send nothing. Bad values are logged and
replaced by defaults, never fatal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .analysis.findings import CODES
from .sweeps.kinds import DEFAULT_KIND, SWEEP_KIND_NAMES as SWEEP_KINDS

SEVERITIES = ("error", "warning", "information", "hint", "off")


@dataclass(frozen=True)
class Settings:
    interpreter: str | None = None
    inlay_hints: bool = True
    severity: dict[str, str] = field(default_factory=dict)  # diagnostic code -> severity override
    sweep_kind: str = DEFAULT_KIND
    # Show (m - corrupted) / (clean - corrupted): 0 = corrupted, 1 = clean (identity for metrics
    # that are already normalised); raw metric values when False or when the baselines are equal.
    sweep_normalize: bool = True
    connection_file: str | None = None
    # Python for kernels the server starts (default: `interpreter`, else the server's own).
    kernel_interpreter: str | None = None
    # "4.3.0"-style override of the TransformerLens version the workspace uses.
    tl_version: str | None = None


# The settings the server reads: wire name (after ``tlens.``) -> Settings field. package.json declares the
# same names (tests/test_protocol_contract.py checks names, defaults and enums).
WIRE_NAMES = {
    "interpreter": "interpreter",
    "inlayHints.enabled": "inlay_hints",
    "diagnostics.severity": "severity",
    "sweep.defaultKind": "sweep_kind",
    "sweep.normalize": "sweep_normalize",
    "kernel.connectionFile": "connection_file",
    "kernel.interpreter": "kernel_interpreter",
    "transformerLensVersion": "tl_version",
}
CLIENT_ONLY = ("trace.server",)  # read by the editor's language client, not the server


def parse_settings(raw: Any) -> tuple[Settings, list[str]]:
    """Typed settings from the editor's JSON, plus a list of problems (for one log line each)."""
    problems: list[str] = []
    if isinstance(raw, dict) and "settings" in raw and isinstance(raw["settings"], dict):
        raw = raw["settings"]
    if isinstance(raw, dict) and "tlens" in raw and isinstance(raw["tlens"], dict):
        raw = raw["tlens"]
    if not isinstance(raw, dict):
        return Settings(), ([] if raw is None else [f"settings must be an object, got {type(raw).__name__}"])

    def get(path: str, kind: type, default: Any) -> Any:
        node: Any = raw
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                node = raw.get(path)  # also accept flattened keys ("inlayHints.enabled")
                break
        if node is None:
            return default
        if not isinstance(node, kind):
            problems.append(f"setting tlens.{path} has an invalid value {node!r}; using {default!r}")
            return default
        return node

    severity: dict[str, str] = {}
    sev_raw = get("diagnostics.severity", dict, {})
    for code, value in sev_raw.items():
        if code not in CODES:
            problems.append(f"tlens.diagnostics.severity: unknown diagnostic code {code!r}")
        elif value not in SEVERITIES:
            problems.append(f"tlens.diagnostics.severity.{code}: {value!r} is not one of {', '.join(SEVERITIES)}")
        else:
            severity[code] = value
    kind = get("sweep.defaultKind", str, DEFAULT_KIND)
    if kind not in SWEEP_KINDS:
        problems.append(f"tlens.sweep.defaultKind: {kind!r} is not one of {', '.join(SWEEP_KINDS)}")
        kind = DEFAULT_KIND
    settings = Settings(
        interpreter=get("interpreter", str, None) or None,
        inlay_hints=get("inlayHints.enabled", bool, True),
        severity=severity,
        sweep_kind=kind,
        sweep_normalize=get("sweep.normalize", bool, True),
        connection_file=get("kernel.connectionFile", str, None) or None,
        kernel_interpreter=get("kernel.interpreter", str, None) or None,
        tl_version=get("transformerLensVersion", str, None) or None,
    )
    return settings, problems


def merge(base: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(base, **changes)
