"""Sweep history from the editor: two runs of one experiment -> "Compare with previous" (latest − previous,
cell by cell, in the panel's notification) and the runs listed in every result; a past run shown again.

Real ipykernel started by the server (TL 4.x), the tiny model of test_sweep_lsp.py.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from lsprotocol import types

from .helpers import open_doc, pos_of
from .test_sweep_lsp import SCRIPT

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


async def lenses(client, uri):
    return await client.text_document_code_lens_async(types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))


async def execute(client, name, args, timeout=240):
    return await asyncio.wait_for(client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=[args])), timeout)


@pytest.mark.server_errors("is not a saved run of this experiment", "comparing the sweeps failed: invalid literal")
async def test_compare_with_previous_and_switch_between_runs(client):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"settings": {"interpreter": sys.executable, "transformerLensVersion": "4.3.0", "sweep": {"normalize": False}}}))
    uri = (client.root / "history.py").as_uri()
    open_doc(client, uri, SCRIPT)
    line = pos_of(SCRIPT, "get_act_patch_resid_pre").line
    first = await execute(client, "tlens.runSweep", {"uri": uri, "line": line})
    assert "error" not in first, first
    assert [r["current"] for r in first["history"]] == [True]
    assert [l.command.title.split(" ·")[0] for l in await lenses(client, uri)] == ["▶ Run patch sweep"]

    # The same experiment on another corrupted prompt (the document changes above it).
    changed = SCRIPT.replace("[[1, 5, 7, 9, 12, 13]]", "[[1, 6, 7, 9, 12, 13]]")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=changed)]))
    second = await execute(client, "tlens.runSweep", {"uri": uri, "line": line})
    assert "error" not in second, second
    assert [r["jsonPath"] for r in second["history"]] == [second["jsonPath"], first["jsonPath"]]  # newest first

    found = await lenses(client, uri)
    compare = next(l for l in found if l.command.title == "⇄ Compare with previous")
    assert compare.command.command == "tlens.compareSweeps" and compare.range.start.line == line
    diff = await execute(client, compare.command.command, compare.command.arguments[0])
    assert "error" not in diff, diff
    want = [[b - a for a, b in zip(r1, r2)] for r1, r2 in zip(first["values"], second["values"])]
    assert all(abs(x - y) < 1e-9 for r, w in zip(diff["values"], want) for x, y in zip(r, w))
    assert any(abs(x) > 1e-6 for r in want for x in r)  # the prompts differ, so do the runs
    assert diff["title"].startswith("Δ ") and diff["metric"].startswith("Δ ")
    note = [p for m, p in client.notifications if m == "tlens/sweepResult"][-1]
    assert note.title == diff["title"] and note.png  # the panel shows it

    old = await execute(client, "tlens.showSweep", {"uri": uri, "line": line, "jsonPath": first["jsonPath"]})
    assert old["values"] == json.loads(open(first["jsonPath"]).read())["values"] == first["values"]
    assert [r["current"] for r in old["history"]] == [False, True] and old["png"]
    missing = await execute(client, "tlens.showSweep", {"uri": uri, "line": line, "jsonPath": "/nowhere.json"})
    assert "is not a saved run of this experiment" in missing["error"]
    bad_line = await execute(client, "tlens.compareSweeps", {"uri": uri, "line": "seven"})
    assert "seven" in bad_line["error"], bad_line  # answered with the reason, not a protocol error
