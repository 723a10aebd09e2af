"""Server bugs the fuzzer (benchmarks/fuzzing) and its malformed-input tests found, one test each."""

from __future__ import annotations

from lsprotocol import types

from .helpers import diagnostics_for, hover_text, open_doc
from .test_notebooks import open_notebook, wait_for

SOURCE = ("from transformer_lens import HookedTransformer\nm = HookedTransformer.from_pretrained('gpt2')\n"
          "_, c = m.run_with_cache('x')\nc['resid_post', 99]\n")


async def test_file_with_space_and_accent_in_its_path(client):
    """Editors percent-encode such paths and pygls keys documents by the unquoted URI: the server looked the
    quoted one up, found nothing, and published no diagnostics and answered no hover."""
    uri = (client.root / "my folder" / "résumé 1.py").as_uri()
    assert "%20" in uri and "%C3%A9" in uri
    open_doc(client, uri, SOURCE)
    diags = await diagnostics_for(client, uri, version=1)
    assert [d.code for d in diags] == ["layer-out-of-range"]
    text = await hover_text(client, uri, types.Position(line=3, character=4))
    assert text is not None and text.startswith("`blocks.99.hook_resid_post`")


async def test_notebook_with_space_in_its_path(client):
    nb = (client.root / "my notebook.ipynb").as_uri()
    uris = open_notebook(client, nb, [("code", SOURCE)])
    await wait_for(lambda: uris[0] in client.diagnostics, timeout=30)
    assert [d.code for d in client.diagnostics[uris[0]]] == ["layer-out-of-range"]


async def test_cell_without_its_text_document(client):
    """A notebook whose cell list names a text document the editor never sent (a buggy client): the
    diagnostics task died on it (reading the cell's URI from disk), silently, for the whole notebook."""
    nb = (client.root / "missing.ipynb").as_uri()
    present = f"vscode-notebook-cell:{nb}#present"
    cells = [types.NotebookCell(kind=types.NotebookCellKind.Code, document=f"vscode-notebook-cell:{nb}#missing"),
             types.NotebookCell(kind=types.NotebookCellKind.Code, document=present)]
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(uri=nb, notebook_type="jupyter-notebook", version=1, cells=cells),
        cell_text_documents=[types.TextDocumentItem(uri=present, language_id="python", version=1, text=SOURCE)]))
    await wait_for(lambda: present in client.diagnostics, timeout=30)
    assert [d.code for d in client.diagnostics[present]] == ["layer-out-of-range"]


async def test_incremental_edit_below_a_form_feed_lands_where_the_editor_made_it(client):
    """pygls split documents with ``str.splitlines``, which breaks lines at form feeds (and ``\\u2028``, ...)
    where editors do not: an edit below one was applied a line off, and the server's text no longer was the
    editor's."""
    uri = (client.root / "pages.py").as_uri()
    text = SOURCE.replace("_, c =", "\x0c\n# page two\u2028still the comment\n_, c =").replace("99", "9")
    open_doc(client, uri, text)
    assert not await diagnostics_for(client, uri, version=1)
    line = text.split("\n").index("c['resid_post', 9]")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line, 16), types.Position(line, 17)), text="99")]))
    diags = await diagnostics_for(client, uri, version=2)
    assert [(d.code, d.range.start.line) for d in diags] == [("layer-out-of-range", line)]
