"""Files read from disk, outside an editor: scripts and notebooks as views, and the context they are analysed in.

Shared by the command line's ``check``/``hover`` and ``sweep``.
"""

from __future__ import annotations

import functools
import json
import re
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
    return [workspace.text_view(str(path), text, None)]  # keyed by the text: no editor versions here


def notebook_code_cells(text: str) -> list[tuple[int, str]]:
    """(1-based cell number, source) of each code cell of an .ipynb document (nbformat 4, or 3's worksheets).

    Raises ValueError, saying what is wrong, for a document that is not a notebook."""
    out = []
    for i, cell, key in _cells(_notebook_json(text)):
        if cell.get("cell_type") == "code":
            out.append((i, _source_text(cell.get(key, ""), i)))
    return out


@functools.lru_cache(maxsize=4)  # the SARIF report maps many findings of one notebook (str hashes are cached)
def _notebook_json(text: str) -> dict:
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not a valid notebook (JSON error at line {e.lineno}: {e.msg})") from e
    except RecursionError as e:
        raise ValueError("not a valid notebook (JSON nested too deeply)") from e
    if not isinstance(nb, dict):
        raise ValueError(f"not a valid notebook (the JSON is {type(nb).__name__}, not an object)")
    return nb


def _cells(nb: dict) -> list[tuple[int, dict, str]]:
    """(1-based number, cell, the key of its source) of every cell; nbformat 3 keeps code in ``input``."""
    if "worksheets" in nb and "cells" not in nb:
        sheets = nb["worksheets"]
        if not isinstance(sheets, list) or not all(isinstance(w, dict) for w in sheets):
            raise ValueError("not a valid notebook (`worksheets` is not a list of objects)")
        cells = [c for w in sheets for c in (w.get("cells") if isinstance(w.get("cells"), list) else [])]
        keys = ["input" if isinstance(c, dict) and c.get("cell_type") == "code" else "source" for c in cells]
    else:
        cells = nb.get("cells", [])
        if not isinstance(cells, list):
            raise ValueError("not a valid notebook (`cells` is not a list)")
        keys = ["source"] * len(cells)
    for i, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise ValueError(f"not a valid notebook (cell {i} is not an object)")
    return [(i, cell, key) for i, (cell, key) in enumerate(zip(cells, keys), start=1)]


def _source_text(source: object, number: int) -> str:
    """A cell's source: a string or a list of lines (a cell without one is empty)."""
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    raise ValueError(f"not a valid notebook (cell {number}: the source is neither text nor a list of lines)")


_SOURCE_KEY = re.compile(r'(?<!\\)"(?:source|input)"\s*:\s*')


def ipynb_line(text: str, cell: int, line: int) -> int | None:
    """The 1-based line of the notebook's JSON ``text`` that holds line ``line`` of cell ``cell`` (both 1-based, as
    ``check`` reports them): exact when the source is stored one line per JSON line (as Jupyter writes it), else the
    line where that cell's source starts; None when the cell's source cannot be found in the text."""
    try:
        found = _source_places(text).get(cell)
    except ValueError:
        return None
    if found is None:
        return None
    offset, first, source = found
    if isinstance(source, list) and 0 < line <= len(source) and _json_line(text, offset, line) == source[line - 1]:
        return first + line
    return first


@functools.lru_cache(maxsize=4)
def _source_places(text: str) -> dict[int, tuple[int, int, object]]:
    """Cell number -> (offset of its source's JSON value, that offset's 1-based line, the source), matching the
    ``"source"``/``"input"`` keys of the text to the cells in order."""
    todo = [(i, cell[key]) for i, cell, key in _cells(_notebook_json(text)) if key in cell]
    out: dict[int, tuple[int, int, object]] = {}
    decoder, line, counted = json.JSONDecoder(), 1, 0
    for m in _SOURCE_KEY.finditer(text):
        if len(out) == len(todo):
            break
        number, source = todo[len(out)]
        try:
            value, _ = decoder.raw_decode(text, m.end())
        except ValueError:
            continue
        if value == source:
            line, counted = line + text.count("\n", counted, m.end()), m.end()
            out[number] = (m.end(), line, source)
    return out


def _json_line(text: str, offset: int, n: int) -> object:
    """The JSON value on the ``n``-th line after ``offset`` (a trailing comma dropped), or None."""
    start = offset
    for _ in range(n):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    end = text.find("\n", start)
    try:
        return json.loads(text[start : end if end >= 0 else len(text)].strip().rstrip(","))
    except ValueError:
        return None


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
