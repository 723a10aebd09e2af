"""Settings: typed structures that mirror the wire form the editor sends, converted with cattrs.

The VS Code extension sends ``initializationOptions: {settings: {...}}``, the same object in
``workspace/didChangeConfiguration``, and each workspace folder's own in answer to
``workspace/configuration``; other editors may send nothing. The wire keys are the manifest's
(``tlens.sweep.defaultKind`` → ``{"sweep": {"defaultKind": ...}}``; flattened keys are accepted too).
A bad value is reported once, naming the setting, and replaced by its default, never fatal.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, NewType

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .analysis.findings import CODES
from .sweeps.kinds import DEFAULT_KIND, SWEEP_KIND_NAMES

SEVERITIES = ("error", "warning", "information", "hint", "off")
Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
Code = Literal[CODES]  # type: ignore[valid-type]
SweepKindName = Literal[SWEEP_KIND_NAMES]  # type: ignore[valid-type]
MAX_SWEEP_KERNELS = 64
KernelCount = NewType("KernelCount", int)  # 1 .. MAX_SWEEP_KERNELS
# ``tlens.sweep.kernels``: a count, or the running kernels that share a sweep with the server's own
# (connection files, ``gateway:ID``; see sweeps/named_kernels.py).
SweepKernels = KernelCount | tuple[str, ...]


@attrs.frozen
class InlayHints:
    enabled: bool = True


@attrs.frozen
class Diagnostics:
    severity: Mapping[Code, Severity] = attrs.field(factory=dict)  # diagnostic code -> severity override


@attrs.frozen
class Sweep:
    default_kind: SweepKindName = DEFAULT_KIND
    # Show (m - corrupted) / (clean - corrupted): 0 = corrupted, 1 = clean (identity for metrics that are
    # already normalised); raw metric values when False or when the baselines are equal.
    normalize: bool = True
    # Kernels one sweep's cells are shared among: the server's kernel plus ``kernels - 1`` it starts, or
    # plus the running kernels listed.
    kernels: SweepKernels = KernelCount(1)


@attrs.frozen
class Gateway:
    """A Jupyter Server / Kernel Gateway / Enterprise Gateway: the server's kernels start there."""

    url: str | None = None  # default: $JUPYTER_GATEWAY_URL
    token: str | None = attrs.field(default=None, repr=False)  # default: $JUPYTER_GATEWAY_AUTH_TOKEN; never shown


@attrs.frozen
class Kernel:
    connection_file: str | None = None
    interpreter: str | None = None  # Python for kernels the server starts (default: `interpreter`, else the server's)
    gateway: Gateway = Gateway()


@attrs.frozen
class Settings:
    interpreter: str | None = None
    inlay_hints: InlayHints = InlayHints()
    diagnostics: Diagnostics = Diagnostics()
    sweep: Sweep = Sweep()
    kernel: Kernel = Kernel()
    # "4.3.0"-style override of the TransformerLens version the workspace uses.
    transformer_lens_version: str | None = None

    @property
    def kernel_python(self) -> str | None:
        """The Python kernels run: ``kernel.interpreter``, else ``interpreter`` (else the server's own)."""
        return self.kernel.interpreter or self.interpreter


CLIENT_ONLY = ("trace.server",)  # read by the editor's language client, not the server
SECRETS = ("kernel.gateway.token",)  # a problem with one of these never quotes its value


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _optional_text(value: Any, _: type) -> str | None:
    """Paths and versions: a string (blank means unset)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value.strip() or None


def _flag(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _kernel_count(value: Any, _: type) -> KernelCount:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SWEEP_KERNELS:
        raise ValueError(f"expected a whole number from 1 to {MAX_SWEEP_KERNELS}, got {value!r}")
    return KernelCount(value)


def _sweep_kernels(value: Any, _: type) -> SweepKernels:
    """A count, or a list of running kernels (connection files, ``gateway:ID``)."""
    if isinstance(value, list):
        if not all(isinstance(v, str) and v.strip() for v in value) or len(value) >= MAX_SWEEP_KERNELS:
            raise ValueError("expected a list of connection files (kernel-*.json) or gateway:ID, "
                             f"fewer than {MAX_SWEEP_KERNELS}, got {value!r}")
        return tuple(v.strip() for v in value)
    try:
        return _kernel_count(value, KernelCount)
    except ValueError:
        raise ValueError(f"expected a whole number from 1 to {MAX_SWEEP_KERNELS} or a list of running kernels "
                         f"(connection files, gateway:ID), got {value!r}") from None


CONVERTER = cattrs.Converter(forbid_extra_keys=False)
CONVERTER.register_structure_hook(str | None, _optional_text)
CONVERTER.register_structure_hook(KernelCount, _kernel_count)
CONVERTER.register_structure_hook(SweepKernels, _sweep_kernels)
CONVERTER.register_structure_hook(bool, _flag)
_CLASSES = (InlayHints, Diagnostics, Sweep, Gateway, Kernel, Settings)
for _cls in _CLASSES:
    _renames = {a.name: override(rename=_camel(a.name)) for a in attrs.fields(_cls)}
    CONVERTER.register_structure_hook(_cls, make_dict_structure_fn(_cls, CONVERTER, **_renames))
    CONVERTER.register_unstructure_hook(_cls, make_dict_unstructure_fn(_cls, CONVERTER, **_renames))


def _leaves(cls: type, prefix: str = "") -> dict[str, attrs.Attribute]:
    """Wire name (``sweep.defaultKind``) -> attribute, for every setting."""
    out = {}
    for a in attrs.fields(cls):
        wire = prefix + _camel(a.name)
        if attrs.has(a.type if isinstance(a.type, type) else type(None)):
            out.update(_leaves(a.type, wire + "."))
        else:
            out[wire] = a
    return out


# Every setting the server reads, by wire name (after ``tlens.``); package.json declares the same names
# (tests/test_protocol_contract.py checks names, defaults and enums).
WIRE_NAMES = tuple(_leaves(Settings))


def default_of(wire: str) -> Any:
    """The default of one setting, by wire name."""
    node: Any = Settings()
    for part in wire.split("."):
        node = getattr(node, next(a.name for a in attrs.fields(type(node)) if _camel(a.name) == part))
    return node


def parse_settings(raw: Any) -> tuple[Settings, list[str]]:
    """Typed settings from the editor's JSON, plus a list of problems (for one log line each)."""
    if isinstance(raw, dict) and isinstance(raw.get("settings"), dict):
        raw = raw["settings"]
    if isinstance(raw, dict) and isinstance(raw.get("tlens"), dict):
        raw = raw["tlens"]
    if not isinstance(raw, dict):
        return Settings(), ([] if raw is None else [f"settings must be an object, got {type(raw).__name__}"])
    tree = _nested(raw)
    problems: list[str] = []
    # Each round drops the values cattrs refused (one message each) and converts again.
    for _ in range(len(WIRE_NAMES) + 1):
        try:
            return CONVERTER.structure(tree, Settings), problems
        except cattrs.ClassValidationError as error:
            refused = list(_refused(error, ()))
        for path, reason in refused:
            problems.append(_problem(path, _pop(tree, path), reason))
    return Settings(), problems  # unreachable: every round removes at least one value


def _nested(raw: dict) -> dict:
    """The wire object with flattened keys (``"inlayHints.enabled": false``) nested, and nulls dropped."""
    out: dict = {}
    for key, value in raw.items():
        if value is None:
            continue
        if value == []:  # Neovim encodes an empty Lua table (`severity = {}`) as a JSON array
            value = {}
        *parents, last = str(key).split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last].update(_nested(value))
        else:
            node[last] = _nested(value) if isinstance(value, dict) else value
    return out


def _refused(error: BaseException, path: tuple[str, ...]):
    """(wire path, reason) of each value a cattrs validation error refused."""
    for sub in getattr(error, "exceptions", ()):
        notes = [n for n in getattr(sub, "__notes__", []) if hasattr(n, "name") or hasattr(n, "index")]
        step = tuple(_camel(n.name) if hasattr(n, "name") else str(n.index) for n in notes[:1])
        if isinstance(sub, cattrs.BaseValidationError):
            yield from _refused(sub, path + step)
        else:
            yield path + step, str(sub)


def _pop(tree: dict, path: tuple[str, ...]) -> Any:
    node: Any = tree
    for part in path[:-1]:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node.pop(path[-1], None) if isinstance(node, dict) else None


def _problem(path: tuple[str, ...], value: Any, reason: str) -> str:
    if path[:2] == ("diagnostics", "severity") and len(path) == 3:
        code = path[2]
        if code not in CODES:
            return f"tlens.diagnostics.severity: unknown diagnostic code {code!r}"
        return f"tlens.diagnostics.severity.{code}: {value!r} is not one of {', '.join(SEVERITIES)}"
    wire = ".".join(path)
    if wire == "sweep.defaultKind":
        return f"tlens.sweep.defaultKind: {value!r} is not one of {', '.join(SWEEP_KIND_NAMES)}; using {DEFAULT_KIND!r}"
    default = default_of(wire) if wire in WIRE_NAMES else None
    if wire in SECRETS:
        return f"setting tlens.{wire} has an invalid value (not shown: it is a secret) of type {type(value).__name__}; ignored"
    return f"setting tlens.{wire} has an invalid value {value!r} ({reason}); using {default!r}"
