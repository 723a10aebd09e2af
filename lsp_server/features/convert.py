"""Protocol-free results -> lsprotocol types, positions mapped through a :class:`View`."""

from __future__ import annotations

from lsprotocol import types

from ..analysis.findings import Finding, Fix
from ..settings import Settings
from ..workspace import View
from .completion import Candidate
from .inlay_hints import Hint

SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}
COMPLETION_KIND = {
    "short": types.CompletionItemKind.Constant,
    "hook": types.CompletionItemKind.Field,
    "prefix": types.CompletionItemKind.Module,
}


def range_(view: View, start: int, end: int) -> types.Range:
    s = view.position(start) or (0, 0)
    e = view.position(end) or s
    return types.Range(types.Position(*s), types.Position(*e))


def diagnostic(view: View, finding: Finding, settings: Settings) -> types.Diagnostic | None:
    severity = settings.diagnostics.severity.get(finding.code, finding.severity)
    if severity == "off":
        return None
    related = []
    for r in finding.related:
        start, end = view.locate(r.start), view.locate(r.end)
        if start is not None and end is not None and start[0] == end[0]:
            location = types.Location(uri=start[0], range=types.Range(types.Position(*start[1:]), types.Position(*end[1:])))
            related.append(types.DiagnosticRelatedInformation(location=location, message=r.message))
    return types.Diagnostic(
        range=range_(view, finding.start, finding.end),
        message=finding.message,
        severity=SEVERITY[severity],
        code=finding.code,
        source="tlens",
        related_information=related or None,
    )


def workspace_edit(view: View, fix: Fix) -> types.WorkspaceEdit | None:
    """The fix's edits, each in the file or notebook cell it falls in (None if one cannot be placed)."""
    changes: dict[str, list[types.TextEdit]] = {}
    for e in fix.edits:
        start, end = view.locate(e.start), view.locate(e.end)
        if start is None or end is None or start[0] != end[0]:
            return None
        edit_range = types.Range(types.Position(*start[1:]), types.Position(*end[1:]))
        changes.setdefault(start[0], []).append(types.TextEdit(range=edit_range, new_text=e.new_text))
    return types.WorkspaceEdit(changes=changes)


def completion_item(view: View, c: Candidate) -> types.CompletionItem:
    return types.CompletionItem(
        label=c.label,
        kind=COMPLETION_KIND.get(c.kind),
        detail=c.detail,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=c.documentation) if c.documentation else None,
        text_edit=types.TextEdit(range=range_(view, c.start, c.end), new_text=c.label),
        filter_text=c.label,
        sort_text=("0" if c.kind == "short" else "1" if c.kind == "hook" else "2") + c.label,
        command=types.Command(title="", command="editor.action.triggerSuggest") if c.retrigger else None,
    )


def inlay_hint(view: View, hint: Hint) -> types.InlayHint | None:
    pos = view.position(hint.offset)
    if pos is None:
        return None
    return types.InlayHint(
        position=types.Position(*pos), label=hint.label, kind=types.InlayHintKind.Type,
        tooltip=hint.tooltip, padding_left=False,
    )
