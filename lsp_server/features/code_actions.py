"""Code actions: the quick fixes findings carry, for the diagnostics in the requested range."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..workspace import View, findings_in
from . import convert

if TYPE_CHECKING:
    from ..server import TlensServer

def code_actions(ls: "TlensServer", view: View, params: types.CodeActionParams) -> list[types.CodeAction]:
    start = view.offset(params.range.start.line, params.range.start.character)
    end = view.offset(params.range.end.line, params.range.end.character)
    actions: list[types.CodeAction] = []
    for finding in findings_in(view):
        if finding.end < start or finding.start > end or not finding.fixes:
            continue
        diagnostic = convert.diagnostic(view, finding, ls.settings)
        for fix in finding.fixes:
            edit = convert.workspace_edit(view, fix)
            if edit is None:
                continue  # an edit that spans cells cannot be expressed
            actions.append(types.CodeAction(
                title=fix.title,
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic] if diagnostic else None,
                edit=edit,
                is_preferred=fix.preferred or None,
            ))
    for provider in ls.code_action_providers:
        actions += provider(ls, view, params, start, end)
    return actions
