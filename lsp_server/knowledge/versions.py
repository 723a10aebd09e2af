"""Which TransformerLens the workspace uses, and what that means for hooks.

Read from package metadata (``importlib.metadata``), never by importing transformer_lens: that
import takes seconds and pulls in torch.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from importlib import metadata

_PROBE = (
    "import json, importlib.metadata as m\n"
    "try: v = m.version('transformer-lens')\n"
    "except Exception: v = None\n"
    "print(json.dumps(v))"
)


@dataclass(frozen=True)
class TLVersion:
    version: str  # "4.3.0"
    source: str  # where it was read: "the server's environment", "<python>", "setting"

    @property
    def major(self) -> int:
        try:
            return int(self.version.split(".", 1)[0])
        except ValueError:
            return 0

    @property
    def label(self) -> str:
        """``2.18.0, from the setting tlens.transformerLensVersion``: the version and where it was read."""
        return f"{self.version}, from {self.source}"

    @property
    def has_hooked_transformer(self) -> bool:
        return self.major < 4


def from_string(version: str, source: str) -> TLVersion | None:
    return TLVersion(version.strip(), source) if version and version.strip()[:1].isdigit() else None


def in_this_environment() -> TLVersion | None:
    try:
        return TLVersion(metadata.version("transformer-lens"), "the server's environment")
    except metadata.PackageNotFoundError:
        return None


def probe(python: str, code: str, timeout: float = 10.0) -> str:
    """What ``code`` prints in another interpreter (a subprocess), stripped; "" when it cannot run."""
    try:
        # (stdin: the server's is the editor's messages, and the event loop's, set non-blocking)
        out = subprocess.run([python, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def in_interpreter(python: str, timeout: float = 10.0) -> TLVersion | None:
    """The TL version installed for another interpreter (a subprocess; no torch import)."""
    try:
        version = json.loads(probe(python, _PROBE, timeout) or "null")
    except ValueError:
        return None
    return TLVersion(version, f"the interpreter {python}") if version else None
