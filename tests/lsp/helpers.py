"""Small helpers for driving the server from tests."""

from __future__ import annotations

import asyncio

from lsprotocol import types


def open_doc(client, uri: str, text: str, version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text))
    )


def pos_of(text: str, needle: str, delta: int = 0, nth: int = 0) -> types.Position:
    """Position of the ``nth`` occurrence of ``needle`` plus ``delta`` characters."""
    idx = -1
    for _ in range(nth + 1):
        idx = text.index(needle, idx + 1)
    idx += delta
    line = text.count("\n", 0, idx)
    return types.Position(line=line, character=idx - (text.rfind("\n", 0, idx) + 1))


async def diagnostics_for(client, uri: str, timeout: float = 10.0, version: int | None = None):
    """Wait until diagnostics for ``uri`` (optionally for ``version``) have been published."""
    async def wait():
        while True:
            if uri in client.diagnostics:
                if version is None or client.diagnostic_versions.get(uri) == version:
                    return client.diagnostics[uri]
            await asyncio.sleep(0.01)
    return await asyncio.wait_for(wait(), timeout)


async def hover_text(client, uri: str, position: types.Position) -> str | None:
    result = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position))
    return result.contents.value if result else None


async def quick_fixes(client, uri: str, diagnostic: types.Diagnostic) -> list[types.CodeAction]:
    """The code actions the server offers for one of its diagnostics."""
    return await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=diagnostic.range,
        context=types.CodeActionContext(diagnostics=[diagnostic])))


async def sweep_progress_token(client, timeout: float = 120) -> object:
    """The work-done token of the sweep running, once it reports finished cells (then it can be cancelled)."""
    async def first_cells_done():
        while True:
            for token, reports in client.progress_reports.items():
                if any(isinstance(r, types.WorkDoneProgressReport) and r.percentage and "cells" in (r.message or "")
                       for r in reports):
                    return token
            await asyncio.sleep(0.05)
    return await asyncio.wait_for(first_cells_done(), timeout)
