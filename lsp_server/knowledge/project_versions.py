"""The TransformerLens version a project declares: its requirements, pyproject, setup files, conda
environment or lock file, looked up from a file's folder to the workspace root.

Research repositories pin the version their code was written for (``transformer_lens==1.17``,
``transformer-lens>=2,<3``); that is what the code targets, whatever is installed where the server
runs. Only a declaration that fixes the major version counts: ``>=2`` alone says nothing about 4.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from .versions import TLVersion

# Files that declare dependencies, the most specific first (a lock file says what is really used).
DECLARING = ("uv.lock", "poetry.lock", "requirements.txt", "requirements-dev.txt", "requirements_dev.txt",
             "pyproject.toml", "setup.cfg", "setup.py", "environment.yml", "environment.yaml")
_NAME = r"transformer[-_]lens"
# A requirement: `transformer-lens==2.18.0`, `transformer_lens>=2,<3`, `"transformer-lens~=2.1"`,
# poetry `transformer-lens = "^2.0"` / `{version = "^2.0"}`.
_REQUIREMENT = re.compile(_NAME + r"""(?:\[[^\]]*\])?(?:\s*=\s*(?:\{\s*version\s*=\s*)?["'])?\s*(?P<spec>[<>=!~^][^"'\n#;}]*)""", re.I)
# Lock files: `name = "transformer-lens"` then `version = "2.18.0"`.
_LOCKED = re.compile(r'name\s*=\s*"' + _NAME + r'"\s*\n\s*version\s*=\s*"(?P<version>[^"]+)"', re.I)
_CLAUSE = re.compile(r"(?P<op>==|>=|<=|~=|!=|<|>|\^|=)\s*(?P<version>\d+(?:\.\d+)*)")


def declared_version(folder: Path, root: Path | None = None, max_levels: int = 8) -> TLVersion | None:
    """The version declared for code in ``folder``: the nearest declaring file, up to ``root``."""
    for current in folders_up(folder, root, max_levels):
        for name in DECLARING:
            path = current / name
            if path.is_file():
                found = _from_file(path)
                if found is not None:
                    return TLVersion(found[0], f"{_shown(path, root)} ({found[1]})")
    return None


def folders_up(folder: Path, root: Path | None = None, max_levels: int | None = None) -> Iterator[Path]:
    """``folder`` and its parents, nearest first, up to ``root`` (included) or the filesystem's root."""
    current, level = folder, 0
    while max_levels is None or level < max_levels:
        yield current
        if root is not None and current == root or current.parent == current:
            return
        current, level = current.parent, level + 1


def _shown(path: Path, root: Path | None) -> str:
    try:
        return str(path.relative_to(root)) if root is not None else path.name
    except ValueError:
        return str(path)


def _from_file(path: Path) -> tuple[str, str] | None:
    """(version for the analysis, the declaration as written) of a file, if it declares a usable one."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if path.suffix == ".lock":
        m = _LOCKED.search(text)
        return (m.group("version"), f"locked {m.group('version')}") if m else None
    for m in _REQUIREMENT.finditer(text):
        version = version_of_specifier(m.group("spec"))
        if version is not None:
            return version, f"transformer-lens{m.group('spec').strip()}"
    return None


def version_of_specifier(spec: str) -> str | None:
    """A version standing for what ``spec`` allows, when it fixes the major version: ``==2.18.0`` ->
    ``2.18.0``; ``>=2,<3`` or ``~=2.1`` or ``^2.0`` -> ``2.x``; ``<3`` -> ``2.x``; ``>=2`` alone -> None."""
    clauses = [(m.group("op"), m.group("version")) for m in _CLAUSE.finditer(spec)]
    majors: set[int] = set()
    lower, upper = None, None
    for op, version in clauses:
        numbers = [int(p) for p in version.split(".")]
        if op in ("==", "="):
            return version
        if op in ("~=", "^"):
            majors.add(numbers[0])
        elif op in (">=", ">"):
            lower = numbers[0]
        elif op == "<":
            upper = numbers[0] - 1 if all(n == 0 for n in numbers[1:]) else numbers[0]
        elif op == "<=":
            upper = numbers[0]
    if upper is not None and (lower is None or lower == upper):
        majors.add(upper)
    return f"{majors.pop()}.x" if len(majors) == 1 else None
