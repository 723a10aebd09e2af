"""Files read from disk, outside an editor: scripts and notebooks as views, and the context they are analysed in.

Shared by the command line's ``check``/``hover`` and ``sweep``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .analysis.document import AnalysisContext
from .workspace import CellText, View, Workspace


def cli_context(tl_version: str | None = None, path: str | None = None) -> AnalysisContext:
    """The analysis context outside an editor for the file ``path``: the TransformerLens ``tl_version``
    (``--tl-version``), else the one its project declares, else the one installed here; tokenizers
    loaded on demand."""
    from .knowledge import versions
    from .knowledge.project_versions import declared_version
    from .knowledge.resolve import resolve_model_name
    from .knowledge.tokenizers import tokenizer_for

    declared = declared_version(Path(path).resolve().parent, Path.cwd().resolve()) if path else None
    tl = versions.from_string(tl_version or "", "--tl-version") or declared or versions.in_this_environment()
    return AnalysisContext(tl_major=tl.major if tl else None, tl_label=tl.label if tl else None,
                           tl_version=tl.version if tl else None,
                           resolve_model=resolve_model_name,
                           tokenizer_for=tokenizer_for)  # the CLI may wait for a load


def cli_workspace(tl_version: str | None = None) -> Workspace:
    """Files read from disk, analysed in :func:`cli_context`, with imports between the files under the
    current folder followed."""
    from .modules import linked_workspace

    return linked_workspace(lambda path: cli_context(tl_version, path), Path.cwd())


def load_views(path: Path, workspace: Workspace) -> list[View]:
    """Views of a file: one for a script, one per code cell for a notebook."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        cells = notebook_code_cells(text)
        return workspace.notebook_views(str(path), [CellText(f"{path}#cell{i}", src, 0, i) for i, src in cells])
    return [workspace.text_view(str(path), text, 0)]


def notebook_code_cells(text: str) -> list[tuple[int, str]]:
    """(1-based cell number, source) of each code cell of an .ipynb document."""
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not a valid notebook (JSON error at line {e.lineno}: {e.msg})") from e
    out = []
    for i, cell in enumerate(nb.get("cells", []), start=1):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out.append((i, "".join(src) if isinstance(src, list) else str(src)))
    return out


def project_severities(path: Path, stop: Path | None = None) -> dict[str, str]:
    """Per-code severities from the nearest ``pyproject.toml`` with a ``[tool.tlens.diagnostics.severity]``
    table (the same keys and values as the editor setting ``tlens.diagnostics.severity``)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: no TOML reader in the standard library
        return {}
    from .knowledge.project_versions import folders_up
    from .settings import parse_settings

    for folder in folders_up(path.resolve().parent, (stop or Path.cwd()).resolve()):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                table = tomllib.loads(candidate.read_text(encoding="utf-8")).get("tool", {}).get("tlens")
            except (OSError, tomllib.TOMLDecodeError):
                table = None
            if table is not None:
                settings, problems = parse_settings({"tlens": table})
                for problem in problems:
                    print(f"{candidate}: {problem}", file=sys.stderr)
                return dict(settings.diagnostics.severity)
    return {}
