"""Notebooks over LSP 3.17 notebook sync: cells analysed in order as one program."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from .helpers import hover_text

CELLS = [
    ("markdown", "# IOI patching\nWe patch the residual stream."),
    ("code", "%pip install transformer_lens\nimport torch\nfrom transformer_lens import HookedTransformer"),
    ("code", "model = HookedTransformer.from_pretrained('gpt2-small')\n!nvidia-smi"),
    ("code", "%%time\nlogits, cache = model.run_with_cache('Hello there')"),
    ("markdown", "Look at layer 5."),
    ("code", "resid = cache['resid_post', 5]\nbad = cache['resid_post', 12]"),
    ("code", "%%bash\necho cache['nonsense', 99]"),
    ("code", "model.run_with_cache?"),
]


def cell_uri(nb: str, i: int) -> str:
    return f"vscode-notebook-cell:{nb}#W{i}sZmlsZQ%3D%3D"


def open_notebook(client, nb: str, cells=CELLS, orders=None) -> list[str]:
    uris, nb_cells, docs = [], [], []
    for i, (kind, src) in enumerate(cells):
        uri = cell_uri(nb, i)
        uris.append(uri)
        summary = types.ExecutionSummary(execution_order=orders[i]) if orders and orders[i] else None
        nb_cells.append(types.NotebookCell(
            kind=types.NotebookCellKind.Code if kind == "code" else types.NotebookCellKind.Markup,
            document=uri, execution_summary=summary))
        docs.append(types.TextDocumentItem(uri=uri, language_id="python" if kind == "code" else "markdown", version=1, text=src))
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(uri=nb, notebook_type="jupyter-notebook", version=1, cells=nb_cells),
        cell_text_documents=docs))
    return uris


async def wait_for(predicate, timeout=10.0):
    async def poll():
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def test_hover_and_diagnostics_across_cells(client):
    nb = (client.root / "ioi.ipynb").as_uri()
    uris = open_notebook(client, nb)
    text = await hover_text(client, uris[5], types.Position(line=0, character=16))
    assert text.startswith("`blocks.5.hook_resid_post`") and "768" in text  # model from cell 2
    await wait_for(lambda: uris[5] in client.diagnostics)
    diags = client.diagnostics[uris[5]]
    assert [(d.code, d.range.start.line) for d in diags] == [("layer-out-of-range", 1)]
    # magics and the %%bash cell produce nothing
    for i in (1, 2, 3, 6, 7):
        assert not client.diagnostics.get(uris[i])


async def test_cell_edit_insert_and_delete(client):
    nb = (client.root / "edit.ipynb").as_uri()
    uris = open_notebook(client, nb)
    await wait_for(lambda: uris[5] in client.diagnostics)
    # Edit cell 5: fix the layer.
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=nb, version=2),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
            types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=uris[5], version=2),
                changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(1, 26), types.Position(1, 28)), text="11")])]))))
    await wait_for(lambda: client.diagnostics.get(uris[5]) == ())
    # Insert a new cell after cell 5 using a bad key, then delete it.
    new = cell_uri(nb, 99)
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=nb, version=3),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(structure=types.NotebookDocumentCellChangeStructure(
            array=types.NotebookCellArrayChange(start=6, delete_count=0, cells=[types.NotebookCell(kind=types.NotebookCellKind.Code, document=new)]),
            did_open=[types.TextDocumentItem(uri=new, language_id="python", version=1, text="x = cache['blocks.0.hook_resid_pree']")])))))
    await wait_for(lambda: [d.code for d in client.diagnostics.get(new, ())] == ["unknown-hook"])
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=nb, version=4),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(structure=types.NotebookDocumentCellChangeStructure(
            array=types.NotebookCellArrayChange(start=6, delete_count=1),
            did_close=[types.TextDocumentIdentifier(uri=new)])))))
    await wait_for(lambda: client.diagnostics.get(new) == ())


async def test_first_edit_with_the_open_notebook_version_is_analysed(client):
    """VS Code's first notebookDocument/didChange can carry the notebook version of didOpen; the
    edit must still be analysed (it used to be served from the analysis of the opened text)."""
    nb = (client.root / "same_version.ipynb").as_uri()
    uris = open_notebook(client, nb)
    await wait_for(lambda: uris[5] in client.diagnostics)
    assert await hover_text(client, uris[5], types.Position(line=0, character=16))  # analysed at version 1
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=nb, version=1),  # not bumped
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
            types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=uris[5], version=2),
                changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(0, 15), types.Position(0, 25)), text="attn_outt")])]))))
    await wait_for(lambda: [d.code for d in client.diagnostics.get(uris[5], ())] == ["unknown-hook", "layer-out-of-range"])
    text = await hover_text(client, uris[5], types.Position(line=0, character=16))
    assert text is not None and "attn_outt" in text, text


async def test_cells_run_out_of_order(client):
    """A cell that ran before the one defining the model still gets the model's shapes."""
    cells = [("code", "resid = cache['resid_post', 3]"),
             ("code", "from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained('pythia-70m')\n_, cache = model.run_with_cache('hi')")]
    nb = (client.root / "order.ipynb").as_uri()
    uris = open_notebook(client, nb, cells, orders=[2, 1])
    text = await hover_text(client, uris[0], types.Position(line=0, character=17))
    assert text.startswith("`blocks.3.hook_resid_post`") and "512" in text


async def test_stale_hook_across_cells_points_into_the_other_cell(client):
    cells = [
        ("code", "from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained('gpt2-small')"),
        ("code", "def ablate(z, hook):\n    z[:, :, 5] = 0\n\nmodel.add_hook('blocks.9.attn.hook_z', ablate)\nablated_logits = model('Hello')"),
        ("code", "logits, cache = model.run_with_cache('Hello')"),
    ]
    nb = (client.root / "stale.ipynb").as_uri()
    uris = open_notebook(client, nb, cells)
    await wait_for(lambda: any(d.code == "stale-hook" for d in client.diagnostics.get(uris[1], ())))
    stale = next(d for d in client.diagnostics[uris[1]] if d.code == "stale-hook")
    assert stale.range.start.line == 3
    where = {info.location.uri for info in stale.related_information or ()}
    assert uris[2] in where, [(i.location.uri, i.message) for i in stale.related_information or ()]


async def test_a_hover_right_after_a_cell_edit_is_answered_from_the_previous_analysis(client):
    """In a notebook too, a hover the edit cannot have changed does not wait for the re-analysis."""
    filler = "".join(f"rows_{i} = [r * {i} for r in range(10)]\nprint(rows_{i})\n" for i in range(5000))
    nb = (client.root / "quick.ipynb").as_uri()
    uris = open_notebook(client, nb, [CELLS[1], CELLS[2], CELLS[3], ("code", filler), ("code", 'pattern = cache["pattern", 3]')])
    await wait_for(lambda: uris[4] in client.diagnostics, 30)
    at = types.Position(line=0, character=len('pattern = cache["') + 2)
    for version in (2, 3):
        client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
            notebook_document=types.VersionedNotebookDocumentIdentifier(uri=nb, version=version),
            change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
                types.NotebookDocumentCellContentChanges(
                    document=types.VersionedTextDocumentIdentifier(uri=uris[3], version=version),
                    changes=[types.TextDocumentContentChangePartial(
                        range=types.Range(types.Position(5, 0), types.Position(5, 0 if version == 2 else 1)),  # print(rows_2)
                        text="x" if version == 2 else "")])]))))
        result = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uris[4]), position=at))
        assert result.contents.value.startswith("`blocks.3.attn.hook_pattern`"), result.contents.value
        assert (result.range.start.line, result.range.start.character) == (0, len('pattern = cache['))
    info = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="tlens.serverInfo"))
    assert info["hoversBeforeAnalysis"] >= 1, info
