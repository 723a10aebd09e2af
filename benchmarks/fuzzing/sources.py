"""The real documents the fuzzer starts from: Python files, and notebooks (real ones, or a script cut into
cells at top-level statements)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the repository itself holds: the CI sample's sources.
REPOSITORY_SOURCES = (ROOT / "examples", ROOT / "tests" / "fixtures")
MAX_CHARS = 400_000  # a bigger script is skipped: it measures the machine, not the server's robustness


@dataclass(frozen=True)
class Source:
    name: str  # the path, shown in failure reports
    text: str  # a script's text, or a notebook's code cells joined
    cells: tuple[tuple[str, str], ...] | None = None  # a notebook's (kind, source): "code" / "markdown"


def gather(folders: list[Path]) -> list[Source]:
    """Every readable ``.py`` and ``.ipynb`` under ``folders``, in a stable order."""
    out = []
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".ipynb") and p.is_file()) if folder.is_dir() else [folder]
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if path.suffix == ".ipynb":
                cells = notebook_cells(text)
                if cells:
                    out.append(Source(str(path), "\n".join(src for _, src in cells), cells))
            elif len(text) <= MAX_CHARS:
                out.append(Source(str(path), text))
    return out


def notebook_cells(text: str) -> tuple[tuple[str, str], ...] | None:
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return None
    out = []
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") in ("code", "markdown"):
            src = cell.get("source", "")
            out.append((cell["cell_type"], "".join(src) if isinstance(src, list) else str(src)))
    return tuple(out) or None


def as_cells(text: str, most: int = 12) -> tuple[tuple[str, str], ...]:
    """A script cut into at most ``most`` code cells at top-level statements (``# %%`` markers first)."""
    if "# %%" in text:
        parts = [p for p in text.split("# %%") if p.strip()]
        return tuple(("code", p) for p in parts[:most]) or (("code", text),)
    lines = text.split("\n")
    starts = [i for i, l in enumerate(lines) if l and not l[0].isspace() and not l.startswith((")", "]", "}", "#", "@"))
              and i > 0 and not lines[i - 1].strip()]
    step = max(1, len(starts) // most)
    cuts = [0] + starts[step::step][: most - 1] + [len(lines)]
    return tuple(("code", "\n".join(lines[a:b])) for a, b in zip(cuts, cuts[1:]) if b > a)
