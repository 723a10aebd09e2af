"""Command line: ``tlens-lsp serve | check | hover | sweep``.

``check`` and ``hover`` run the same analysis the editor gets, without an editor, on ``.py`` files
and ``.ipynb`` notebooks (findings in notebooks are reported as ``cell N, line L``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .analysis.findings import CODES, Finding
from .files import cli_workspace, load_views, project_severities
from .sarif import sarif_log
from .sweeps import cli as sweep_cli
from .workspace import View, Workspace, findings_in

EXIT_FINDINGS = 1
EXIT_USAGE = 2  # also: a file could not be read (it wins over findings: CI must not pass on it)


def cmd_check(args: argparse.Namespace) -> int:
    workspace = cli_workspace(args.tl_version)
    rows: list[dict] = []
    unreadable: list[tuple[str, str]] = []  # (path, why): each reported, and the exit code says so
    for name in args.paths:
        path = Path(name)
        files = sorted(p for p in path.rglob("*") if p.suffix in (".py", ".ipynb")) if path.is_dir() else [path]
        for file in files:
            try:
                views = load_views(file, workspace)
            except (OSError, UnicodeDecodeError, ValueError) as e:
                print(f"{file}: cannot read: {e}", file=sys.stderr)
                unreadable.append((str(file), str(e)))
                continue
            severity = project_severities(file)
            for view in views:
                rows += [row for f in findings_in(view) if (row := _row(view, file, f, severity, args)) is not None]
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=2)
        print()
    elif args.format == "sarif":
        json.dump(sarif_log(rows, unreadable, Path.cwd()), sys.stdout, indent=2)
        print()
    elif args.format == "github":
        for r in rows:  # GitHub Actions workflow commands: annotations on the pull request
            level = {"error": "error", "warning": "warning"}.get(r["severity"], "notice")
            print(f"::{level} file={r['path']},line={r['line']},col={r['col']},endLine={r['end_line']},"
                  f"endColumn={r['end_col']},title=tlens [{r['code']}]::{_escape(_shown_where(r))}{_escape(r['message'])}")
    else:
        for r in rows:
            print(f"{_shown_path(r)}:{r['line']}:{r['col']}: {r['severity']} [{r['code']}] {r['message']}")
        errors = sum(r["severity"] == "error" for r in rows)
        print(f"{len(rows)} finding(s), {errors} error(s)", file=sys.stderr)
    if unreadable:
        return EXIT_USAGE
    return EXIT_FINDINGS if any(r["severity"] == "error" for r in rows) else 0


def _row(view: View, file: Path, f: Finding, severity: dict[str, str], args: argparse.Namespace) -> dict | None:
    """One finding (None when ``--select``/``--ignore`` or the project's severities drop it): ``path``
    the file on disk; for notebooks ``cell`` (1-based, as editors show it) and ``line``/``col``
    within that cell (1-based)."""
    shown = severity.get(f.code, f.severity)
    if shown == "off" or (args.select and f.code not in args.select) or f.code in (args.ignore or ()):
        return None
    start, end = view.position(f.start) or (0, 0), view.position(f.end) or view.position(f.start) or (0, 0)
    row = {"path": str(file), "line": start[0] + 1, "col": start[1] + 1, "end_line": end[0] + 1, "end_col": end[1] + 1,
           "severity": shown, "code": f.code, "message": f.message}
    if view.cell is not None:
        row["cell"] = view.cell.number
    return row


def _codes(value: str) -> set[str]:
    chosen = {c.strip() for c in value.split(",") if c.strip()}
    unknown = chosen - set(CODES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown code(s) {', '.join(sorted(unknown))}; codes: {', '.join(sorted(CODES))}")
    return chosen


def _shown_path(row: dict) -> str:
    return f"{row['path']}, cell {row['cell']}" if "cell" in row else row["path"]


def _shown_where(row: dict) -> str:
    return f"cell {row['cell']}, line {row['line']}: " if "cell" in row else ""


def _escape(message: str) -> str:
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def cmd_hover(args: argparse.Namespace) -> int:
    from .features.hover import hover

    try:
        name, line, col = args.location.rsplit(":", 2)
        line_no, col_no = int(line), int(col)
    except ValueError:
        print("hover: expected PATH:LINE:COL (1-based), e.g. examples/hooked_transformer/ioi_patching.py:41:20", file=sys.stderr)
        return EXIT_USAGE
    path = Path(name)
    workspace = cli_workspace()
    try:
        views = load_views(path, workspace)
    except (OSError, ValueError) as e:
        print(f"{path}: cannot read: {e}", file=sys.stderr)
        return EXIT_USAGE
    view = views[0]
    if path.suffix == ".ipynb":
        print("hover: for notebooks give the line of the notebook's code cells joined in order", file=sys.stderr)
        view = View(view.analysis, view.uri)
    result = hover(view.analysis, view.offset(line_no - 1, col_no - 1))
    if result is None:
        print(f"{args.location}: nothing to show here", file=sys.stderr)
        return EXIT_FINDINGS
    print(result.markdown)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from .kernel.secrets import MaskingFormatter

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    for handler in logging.getLogger().handlers:  # the log is the editor's output channel: no kernel keys
        handler.setFormatter(MaskingFormatter(logging.BASIC_FORMAT))
    from .collection import settle_after_startup
    from .server import server
    from .transport import serve_stdio

    settle_after_startup()
    serve_stdio(server)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tlens-lsp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="speak LSP over stdio (what editors run)")
    serve.add_argument("--stdio", action="store_true", help="accepted and ignored (stdio is the only transport)")
    serve.add_argument("-v", "--verbose", action="store_true")
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check", help="report diagnostics for files or folders")
    check.add_argument("paths", nargs="+")
    check.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text",
                       help="json: one object per finding; github: GitHub Actions annotations; "
                            "sarif: SARIF 2.1.0 (GitHub code scanning)")
    check.add_argument("--tl-version", help="the TransformerLens version the code targets (default: the installed one)")
    codes = sorted(CODES)
    check.add_argument("--select", type=_codes, help=f"only these codes (comma-separated): {', '.join(codes)}")
    check.add_argument("--ignore", type=_codes, help="not these codes (comma-separated)")
    check.set_defaults(func=cmd_check)
    hov = sub.add_parser("hover", help="print the hover at PATH:LINE:COL (1-based)")
    hov.add_argument("location")
    hov.set_defaults(func=cmd_hover)
    sweep = sub.add_parser("sweep", help="run an activation-patching sweep in a Jupyter kernel")
    sweep_cli.add_arguments(sweep)
    sweep.set_defaults(func=sweep_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] == "--stdio":
        argv = ["serve"]  # editors may start us bare or with --stdio
    args = build_parser().parse_args(argv)
    if not getattr(args, "func", None):
        build_parser().print_help()
        return EXIT_USAGE
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
