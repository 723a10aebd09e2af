"""The client's copy of a fuzzed document: a script, or a notebook of cells. Each edits itself with a seeded
mutation, sends the change to the server as an editor would, and knows when its diagnostics are current."""

from __future__ import annotations

import random
from typing import Protocol

from lsprotocol import types

from . import mutations
from .sources import Source, as_cells

FULL_CHANGE = 0.3  # the share of edits sent as the whole new text rather than a range


def _changes(text: str, edits: list[mutations.Edit], rng: random.Random) -> tuple[str, list]:
    """The content changes for ``edits`` applied in order, and the text they leave."""
    changes = []
    for edit in edits:
        changes.append(mutations.lsp_change(text, edit, full=rng.random() < FULL_CHANGE))
        text = edit.apply(text)
    return text, changes


def _some_edits(text: str, rng: random.Random) -> list[mutations.Edit]:
    return mutations.typing(text, rng) if rng.random() < 0.15 else [mutations.mutate(text, rng)]


class FuzzDocument(Protocol):
    def open(self, client) -> None: ...
    def edit(self, client, rng: random.Random) -> list[str]: ...
    def close(self, client) -> None: ...
    def request_target(self, rng: random.Random) -> tuple[str, str]: ...
    def diagnosed(self, published: dict[str, int | None]) -> bool: ...
    def snapshot(self) -> object: ...


class TextDocument:
    def __init__(self, uri: str, text: str) -> None:
        self.uri, self.text, self.version = uri, text, 1

    def open(self, client) -> None:
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=self.uri, language_id="python", version=1, text=self.text)))

    def edit(self, client, rng: random.Random) -> list[str]:
        """One mutation, or a burst of typed characters (each its own ``didChange``, or all in one)."""
        edits = _some_edits(self.text, rng)
        one_message = rng.random() < 0.5
        groups = [edits] if one_message else [[e] for e in edits]
        for group in groups:
            self.text, changes = _changes(self.text, group, rng)
            self.version += 1
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
                content_changes=changes))
        return [edits[0].kind]

    def close(self, client) -> None:
        client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=self.uri)))

    def request_target(self, rng: random.Random) -> tuple[str, str]:
        return self.uri, self.text

    def diagnosed(self, published: dict[str, int | None]) -> bool:
        return published.get(self.uri) == self.version

    def snapshot(self) -> object:
        return self.text


class Cell:
    def __init__(self, uri: str, kind: str, text: str) -> None:
        self.uri, self.kind, self.text, self.version = uri, kind, text, 1
        self.order: int | None = None  # the kernel's execution count, once "run"

    def lsp(self) -> types.NotebookCell:
        summary = types.ExecutionSummary(execution_order=self.order, success=True) if self.order is not None else None
        kind = types.NotebookCellKind.Code if self.kind == "code" else types.NotebookCellKind.Markup
        return types.NotebookCell(kind=kind, document=self.uri, execution_summary=summary)

    def item(self) -> types.TextDocumentItem:
        return types.TextDocumentItem(uri=self.uri, language_id="python" if self.kind == "code" else "markdown",
                                      version=self.version, text=self.text)


class NotebookDocument:
    """Cells edited, inserted, deleted, moved, run (execution order) and turned code <-> markdown."""

    def __init__(self, uri: str, source: Source, rng: random.Random) -> None:
        self.uri, self.version, self.made = uri, 1, 0
        self.cells = [self._new_cell(kind, text) for kind, text in (source.cells or as_cells(source.text, rng.randint(1, 15)))]
        self.text = source.text  # material for inserted cells

    def _new_cell(self, kind: str, text: str) -> Cell:
        self.made += 1
        path = self.uri.removeprefix("file://")
        return Cell(f"vscode-notebook-cell://{path}#C{self.made}", kind, text)

    def open(self, client) -> None:
        client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(uri=self.uri, notebook_type="jupyter-notebook", version=1,
                                                     cells=[c.lsp() for c in self.cells]),
            cell_text_documents=[c.item() for c in self.cells]))

    def _send(self, client, cells: types.NotebookDocumentCellChanges) -> None:
        self.version += 1
        client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
            notebook_document=types.VersionedNotebookDocumentIdentifier(uri=self.uri, version=self.version),
            change=types.NotebookDocumentChangeEvent(cells=cells)))

    def _splice(self, client, start: int, delete: int, new: list[Cell], opened: list[Cell], closed: list[Cell]) -> None:
        self.cells[start : start + delete] = new
        structure = types.NotebookDocumentCellChangeStructure(
            array=types.NotebookCellArrayChange(start=start, delete_count=delete, cells=[c.lsp() for c in new] or None),
            did_open=[c.item() for c in opened] or None,
            did_close=[types.TextDocumentIdentifier(uri=c.uri) for c in closed] or None)
        self._send(client, types.NotebookDocumentCellChanges(structure=structure))

    def edit(self, client, rng: random.Random) -> list[str]:
        roll = rng.random()
        if roll < 0.55 or not self.cells:
            if not self.cells:
                return self._insert(client, rng)
            cell = rng.choice(self.cells)
            edits = _some_edits(cell.text, rng)
            cell.text, changes = _changes(cell.text, edits, rng)
            cell.version += 1
            self._send(client, types.NotebookDocumentCellChanges(text_content=[types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=cell.uri, version=cell.version), changes=changes)]))
            return [f"cell {self.cells.index(cell) + 1}: {edits[0].kind}"]
        if roll < 0.68:
            return self._insert(client, rng)
        if roll < 0.78 and len(self.cells) > 1:
            at = rng.randrange(len(self.cells))
            self._splice(client, at, 1, [], [], [self.cells[at]])
            return [f"delete cell {at + 1}"]
        if roll < 0.88 and len(self.cells) > 1:
            a, b = sorted(rng.sample(range(len(self.cells)), 2))
            moved = self.cells[a : b + 1]
            moved = moved[1:] + moved[:1] if rng.random() < 0.5 else moved[-1:] + moved[:-1]
            self._splice(client, a, b - a + 1, moved, [], [])
            return [f"move cells {a + 1}..{b + 1}"]
        if roll < 0.96:  # "run" some cells: execution order decides the analysis order once all have run
            order = list(range(1, len(self.cells) + 1))
            rng.shuffle(order)
            for cell, n in zip(self.cells, order):
                cell.order = n if rng.random() < 0.9 else None
            self._send(client, types.NotebookDocumentCellChanges(data=[c.lsp() for c in self.cells]))
            return ["execution orders"]
        cell = rng.choice(self.cells)
        cell.kind = "markdown" if cell.kind == "code" else "code"
        self._send(client, types.NotebookDocumentCellChanges(data=[cell.lsp()]))
        return [f"cell {self.cells.index(cell) + 1} to {cell.kind}"]

    def _insert(self, client, rng: random.Random) -> list[str]:
        lines = self.text.split("\n")
        a = rng.randrange(len(lines))
        text = rng.choice(("", rng.choice(mutations.MAGICS), "\n".join(lines[a : a + rng.randint(1, 20)])))
        cell = self._new_cell(rng.choice(("code", "code", "markdown")), text)
        at = rng.randint(0, len(self.cells))
        self._splice(client, at, 0, [cell], [cell], [])
        return [f"insert a {cell.kind} cell at {at + 1}"]

    def close(self, client) -> None:
        client.notebook_document_did_close(types.DidCloseNotebookDocumentParams(
            notebook_document=types.NotebookDocumentIdentifier(uri=self.uri),
            cell_text_documents=[types.TextDocumentIdentifier(uri=c.uri) for c in self.cells]))

    def request_target(self, rng: random.Random) -> tuple[str, str]:
        if not self.cells:
            return self.uri, ""
        cell = rng.choice(self.cells)
        return cell.uri, cell.text

    def diagnosed(self, published: dict[str, int | None]) -> bool:
        return all(published.get(c.uri) == c.version for c in self.cells if c.kind == "code")

    def snapshot(self) -> object:
        return [{"kind": c.kind, "order": c.order, "text": c.text} for c in self.cells]
