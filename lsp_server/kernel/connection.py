"""Jupyter connection files: find them and validate them before connecting.

A connection file is the JSON a kernel writes at start-up (ports, IP, HMAC key). Jupyter's
own servers keep them in ``jupyter_runtime_dir()`` as ``kernel-<id>.json``; VS Code's
Jupyter extension writes ``kernel-v2-<id>.json`` into the OS temp directory.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from . import secrets
from .errors import ConnectionFileError

PORT_KEYS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
REQUIRED_KEYS = PORT_KEYS + ("ip", "key", "transport")


def load_connection_file(path: str | Path) -> dict:
    """Read and validate a connection file.

    Returns:
        The connection info dict (``signature_scheme`` defaults to ``hmac-sha256``).

    Raises:
        ConnectionFileError: the file is missing, unreadable, not a JSON object, lacks a
            required key or has a key of the wrong type; the message names the problem.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ConnectionFileError(
            f"connection file {p} does not exist. In the notebook run "
            "`import ipykernel; print(ipykernel.get_connection_file())` to get the right path."
        )
    if not p.is_file():
        raise ConnectionFileError(f"connection file {p} is not a file.")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConnectionFileError(f"cannot read connection file {p}: {e.strerror}.") from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConnectionFileError(
            f"connection file {p} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})."
        ) from None
    if isinstance(info, dict) and isinstance(info.get("key"), str):
        secrets.remember(info["key"])  # before any check: a file that fails one still holds a real key
    if not isinstance(info, dict):
        raise ConnectionFileError(
            f"connection file {p} holds a JSON {type(info).__name__}, not an object."
        )
    for key in REQUIRED_KEYS:
        if key not in info:
            raise ConnectionFileError(
                f"connection file {p} has no {key!r} key; it is not a Jupyter kernel "
                "connection file (or it was truncated)."
            )
    for key in PORT_KEYS:
        port = info[key]
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ConnectionFileError(
                f"connection file {p}: {key!r} must be a port number, got {_shown(port)}."
            )
    for key in ("ip", "key", "transport"):
        if not isinstance(info[key], str):
            raise ConnectionFileError(
                f"connection file {p}: {key!r} must be a string, got {type(info[key]).__name__}."
            )
    info.setdefault("signature_scheme", "hmac-sha256")
    return info


def _shown(value: object) -> str:
    """A wrong value as an error message may quote it: numbers only. A connection file holds the kernel's
    key, and a file whose fields are mixed up may hold it anywhere: other values are named by type."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit() and len(value) < 8):
        return repr(value)
    return f"a {type(value).__name__}" if not isinstance(value, str) else "a string that is not a number"


def list_connection_files() -> list[Path]:
    """Connection files of running kernels on this machine, newest first.

    Looks in Jupyter's runtime directory (``kernel-*.json``) and in the temp directory for
    VS Code's ``kernel-v2-*.json``. Files may be stale (kernel gone); attaching tells.
    """
    from jupyter_core.paths import jupyter_runtime_dir

    found: dict[Path, float] = {}
    for folder, pattern in (
        (Path(jupyter_runtime_dir()), "kernel-*.json"),
        (Path(tempfile.gettempdir()), "kernel-v2-*.json"),
    ):
        if not folder.is_dir():
            continue
        for f in folder.glob(pattern):
            try:
                found[f.resolve()] = f.stat().st_mtime
            except OSError:
                continue  # removed while we listed
    return sorted(found, key=lambda f: found[f], reverse=True)
