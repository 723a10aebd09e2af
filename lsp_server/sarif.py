"""``check --format sarif``: findings as a SARIF 2.1.0 log, what GitHub code scanning and most CI annotators read.

Paths under the current folder are relative to ``%SRCROOT%`` (the folder ``check`` ran in), so the same
finding keeps its identity across machines. A notebook's result points at the ``.ipynb`` file: SARIF regions
index the file's own text, so the region is the line of the notebook's JSON that holds the finding's source
line (found when the notebook stores sources one line per JSON line, as Jupyter writes them), and the cell
and the line within it are in the message and the result's properties.
"""

from __future__ import annotations

from pathlib import Path

from . import __homepage__, __version__
from .analysis.findings import CODES
from .analysis.rules import RULES
from .files import ipynb_line

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"
LEVELS = {"error": "error", "warning": "warning", "information": "note", "hint": "note"}


def sarif_log(rows: list[dict], unreadable: list[tuple[str, str]], cwd: Path) -> dict:
    """The log for ``check``'s rows (see ``cli._row``) and the files it could not read (path, why)."""
    texts: dict[str, str | None] = {}
    run = {
        "tool": {"driver": {"name": "tlens-lsp", "version": __version__, "informationUri": __homepage__,
                            "rules": [_rule(code) for code in CODES]}},
        "originalUriBaseIds": {SRCROOT: {"uri": cwd.resolve().as_uri() + "/"}},
        "results": [_result(r, cwd, texts) for r in rows],
        "invocations": [{
            "executionSuccessful": not unreadable,
            "toolExecutionNotifications": [
                {"level": "error", "message": {"text": f"cannot read: {why}"},
                 "locations": [{"physicalLocation": {"artifactLocation": _artifact(path, cwd)}}]}
                for path, why in unreadable],
        }],
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def _rule(code: str) -> dict:
    rule = RULES[code]
    return {"id": code, "name": "".join(w.capitalize() for w in code.split("-")),
            "shortDescription": {"text": rule.title}, "fullDescription": {"text": rule.description},
            "help": {"text": rule.help}, "helpUri": f"{__homepage__}#diagnostics",
            "defaultConfiguration": {"level": LEVELS[rule.severity]}}


def _artifact(path: str, cwd: Path) -> dict:
    try:
        return {"uri": Path(path).resolve().relative_to(cwd.resolve()).as_posix(), "uriBaseId": SRCROOT}
    except ValueError:  # outside the folder check ran in: an absolute URI
        return {"uri": Path(path).resolve().as_uri()}


def _result(row: dict, cwd: Path, texts: dict[str, str | None]) -> dict:
    region: dict = {"startLine": row["line"], "startColumn": row["col"], "endLine": row["end_line"], "endColumn": row["end_col"]}
    message = row["message"]
    properties: dict = {"severity": row["severity"]}
    if "cell" in row:
        if row["path"] not in texts:
            try:
                texts[row["path"]] = Path(row["path"]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                texts[row["path"]] = None
        text = texts[row["path"]]
        found = ipynb_line(text, row["cell"], row["line"]) if text is not None else None
        region = {"startLine": found or 1}
        message = f"cell {row['cell']}, line {row['line']}: {message}"
        properties.update(cell=row["cell"], cellLine=row["line"], cellColumn=row["col"],
                          cellEndLine=row["end_line"], cellEndColumn=row["end_col"])
    return {"ruleId": row["code"], "ruleIndex": CODES.index(row["code"]), "level": LEVELS[row["severity"]],
            "message": {"text": message},
            "locations": [{"physicalLocation": {"artifactLocation": _artifact(row["path"], cwd), "region": region}}],
            "properties": properties}
