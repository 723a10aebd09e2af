"""Drive the real server (``python -m lsp_server serve``) over stdio with mutated documents, and count
what went wrong: error responses, Error-level log messages (and errors on the server's stderr),
requests or diagnostics slower than :data:`SLOW_S`, and server deaths.

Document ``i`` of a run with seed ``S`` depends only on ``(S, i)`` and the sources: ``--seed S --only i``
replays it on a fresh server.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from .documents import FuzzDocument, NotebookDocument, TextDocument
from .sources import ROOT, Source

SLOW_S = 10.0
GIVE_UP_S = 60.0  # a request still unanswered after this counts as a hang; the server is restarted
CANCELLED = -32800  # RequestCancelled: the expected answer to a request the client cancelled
# Each server (one per block of documents) targets another TransformerLens: the analysis differs by version.
TL_VERSIONS = ("2.18.0", None, "3.9.0", "1.17.0")
DOCUMENTS_PER_SERVER = 100


@dataclass
class Problem:
    kind: str  # "error response", "error log", "stderr error", "slow", "server death"
    seed: int
    document: int
    source: str
    detail: str
    saved: str = ""  # where the document and its steps were written, for replay


@dataclass
class Tally:
    documents: int = 0
    edits: int = 0
    requests: int = 0
    cancelled: int = 0
    slowest_s: float = 0.0
    answered: dict[str, int] = field(default_factory=dict)  # non-empty answers per method: the fuzzing reaches the features
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        kinds = ("error response", "error log", "stderr error", "slow", "server death")
        return {k: sum(p.kind == k for p in self.problems) for k in kinds}


class FuzzClient(LanguageClient):
    """Records what the server says on its own: log messages, diagnostics, its death."""

    def __init__(self) -> None:
        super().__init__("tlens-fuzz", "1")
        self.error_logs: list[str] = []
        self.published: dict[str, int | None] = {}
        self.stderr: list[str] = []
        self.dead = False

        @self.feature(types.WINDOW_LOG_MESSAGE)
        @self.feature(types.WINDOW_SHOW_MESSAGE)
        def on_message(params):
            if params.type == types.MessageType.Error:
                self.error_logs.append(params.message)

        @self.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: types.PublishDiagnosticsParams):
            self.published[params.uri] = params.version

        for method in (types.CLIENT_REGISTER_CAPABILITY, types.WINDOW_WORK_DONE_PROGRESS_CREATE,
                       types.WORKSPACE_CODE_LENS_REFRESH, types.WORKSPACE_INLAY_HINT_REFRESH):
            self.feature(method)(lambda params: None)
        for method in ("tlens/kernelStatus", "tlens/sweepResult"):
            self.feature(method)(lambda params: None)

    async def server_exit(self, server) -> None:
        self.dead = True

    async def drain_stderr(self) -> None:
        """Read the server's stderr (a full pipe would block it) and keep what looks like an error."""
        assert self._server is not None and self._server.stderr is not None
        async for raw in self._server.stderr:
            line = raw.decode("utf-8", "replace")
            if line.startswith(("ERROR", "CRITICAL", "Traceback")) or self.stderr and line.startswith((" ", "\t")):
                self.stderr.append(line)


async def start_server(root: Path, tl_version: str | None) -> FuzzClient:
    client = FuzzClient()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    await client.start_io(sys.executable, "-m", "lsp_server", "serve", cwd=str(root), env=env)
    client.stderr_task = asyncio.create_task(client.drain_stderr())
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(), hover=types.HoverClientCapabilities(),
            completion=types.CompletionClientCapabilities(), inlay_hint=types.InlayHintClientCapabilities(),
            code_action=types.CodeActionClientCapabilities(), publish_diagnostics=types.PublishDiagnosticsClientCapabilities()),
        notebook_document=types.NotebookDocumentClientCapabilities(
            synchronization=types.NotebookDocumentSyncClientCapabilities()),
    )
    settings = {"transformerLensVersion": tl_version} if tl_version else {}
    await asyncio.wait_for(client.initialize_async(types.InitializeParams(
        capabilities=caps, root_uri=root.as_uri(), initialization_options={"settings": settings})), GIVE_UP_S)
    client.initialized(types.InitializedParams())
    return client


async def stop_server(client: FuzzClient) -> None:
    if not client.dead:
        try:
            await asyncio.wait_for(client.shutdown_async(None), 10)
            client.exit(None)
        except Exception:
            pass
    try:
        await asyncio.wait_for(client.stop(), 10)
    except Exception:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()
    client.stderr_task.cancel()


REQUESTS = (types.TEXT_DOCUMENT_HOVER, types.TEXT_DOCUMENT_COMPLETION, types.TEXT_DOCUMENT_INLAY_HINT,
            types.TEXT_DOCUMENT_CODE_ACTION, types.TEXT_DOCUMENT_DOCUMENT_SYMBOL, types.TEXT_DOCUMENT_DEFINITION,
            types.TEXT_DOCUMENT_REFERENCES, types.TEXT_DOCUMENT_CODE_LENS)


def request_params(method: str, uri: str, text: str, rng: random.Random):
    from .mutations import random_position

    doc = types.TextDocumentIdentifier(uri=uri)
    pos = random_position(text, rng)
    whole = types.Range(start=types.Position(0, 0), end=random_position(text, rng) if rng.random() < 0.3 else
                        types.Position(line=text.count("\n") + 1, character=0))
    if method == types.TEXT_DOCUMENT_HOVER:
        return types.HoverParams(text_document=doc, position=pos)
    if method == types.TEXT_DOCUMENT_COMPLETION:
        trigger = rng.choice((None, '"', "'", "."))
        context = types.CompletionContext(trigger_kind=types.CompletionTriggerKind.TriggerCharacter, trigger_character=trigger) \
            if trigger else types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked)
        return types.CompletionParams(text_document=doc, position=pos, context=context)
    if method == types.TEXT_DOCUMENT_INLAY_HINT:
        return types.InlayHintParams(text_document=doc, range=whole)
    if method == types.TEXT_DOCUMENT_CODE_ACTION:
        a, b = sorted((pos, random_position(text, rng)), key=lambda p: (p.line, p.character))
        return types.CodeActionParams(text_document=doc, range=types.Range(a, b), context=types.CodeActionContext(diagnostics=[]))
    if method == types.TEXT_DOCUMENT_REFERENCES:
        return types.ReferenceParams(text_document=doc, position=pos, context=types.ReferenceContext(include_declaration=True))
    if method == types.TEXT_DOCUMENT_DEFINITION:
        return types.DefinitionParams(text_document=doc, position=pos)
    if method == types.TEXT_DOCUMENT_DOCUMENT_SYMBOL:
        return types.DocumentSymbolParams(text_document=doc)
    return types.CodeLensParams(text_document=doc)


@dataclass
class Pending:
    method: str
    future: asyncio.Future
    sent: float
    cancelled: bool
    cpu: float | None  # the server's CPU seconds when it was sent


def server_cpu(client: FuzzClient) -> float | None:
    """CPU seconds the server process has used (Linux): tells a slow server from a starved one on a busy machine."""
    try:
        fields = Path(f"/proc/{client._server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, IndexError, ValueError):
        return None


class Fuzzer:
    """One run: documents ``0..n-1`` of ``sources`` with ``seed``, a server per block of documents."""

    def __init__(self, sources: list[Source], seed: int, root: Path, out: Path) -> None:
        self.sources, self.seed, self.root, self.out = sources, seed, root, out
        self.tally = Tally()
        self.client: FuzzClient | None = None
        self.client_block: int | None = None

    async def run(self, documents: list[int], progress=None) -> Tally:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            for i in documents:
                await self.document(i)
                if progress:
                    progress(self.tally)
        finally:
            if self.client is not None:
                await stop_server(self.client)
        return self.tally

    async def _server_for(self, i: int) -> FuzzClient:
        block = i // DOCUMENTS_PER_SERVER
        if self.client is not None and (self.client.dead or self.client_block != block):
            await stop_server(self.client)
            self.client = None
        if self.client is None:
            self.client = await start_server(self.root, TL_VERSIONS[block % len(TL_VERSIONS)])
            self.client_block = block
        return self.client

    async def document(self, i: int) -> None:
        """Open document ``i``, edit it in bursts with requests in between, wait for its diagnostics, close it."""
        rng = random.Random(f"{self.seed}:{i}")
        source = self.sources[i % len(self.sources)]
        client = await self._server_for(i)
        as_notebook = source.cells is not None or rng.random() < 0.25
        # Editors percent-encode paths with spaces and non-ASCII characters: a third of the documents have one.
        name = rng.choice((f"doc{i}", f"doc{i}", f"my doc {i}", f"résumé_{i}"))
        uri = (self.root / f"{name}.{'ipynb' if as_notebook else 'py'}").as_uri()
        doc: FuzzDocument = NotebookDocument(uri, source, rng) if as_notebook else TextDocument(uri, source.text)
        problems: list[Problem] = []
        logs_before, stderr_before = len(client.error_logs), len(client.stderr)
        steps: list[str] = []
        doc.open(client)
        for _ in range(rng.randint(1, 3)):
            pending: list[Pending] = []
            for _ in range(rng.randint(1, 6)):
                steps += doc.edit(client, rng)
                self.tally.edits += 1
                if rng.random() < 0.5:
                    pending += self._fire(client, doc, rng, rng.randint(1, 3))
            pending += self._fire(client, doc, rng, rng.randint(1, 4))
            problems += await self._collect(client, pending, i, source, steps)
            if client.dead:
                break
        if not client.dead:
            problems += await self._await_diagnostics(client, doc, i, source)
        if not client.dead:
            doc.close(client)
            await asyncio.sleep(0.01)
        if client.dead:
            problems.append(Problem("server death", self.seed, i, source.name, f"exit code {client._server.returncode}"))
        problems += [Problem("error log", self.seed, i, source.name, m) for m in client.error_logs[logs_before:]]
        if len(client.error_logs) == logs_before and len(client.stderr) > stderr_before:
            problems.append(Problem("stderr error", self.seed, i, source.name, "".join(client.stderr[stderr_before:])))
        if problems:
            saved = self._save(i, source, steps, doc, problems)
            for p in problems:
                p.saved = saved
        self.tally.problems += problems
        self.tally.documents += 1

    def _fire(self, client: FuzzClient, doc: FuzzDocument, rng: random.Random, n: int) -> list[Pending]:
        out = []
        for _ in range(n):
            method = rng.choice(REQUESTS)
            uri, text = doc.request_target(rng)
            msg_id = f"fuzz-{self.tally.requests}"
            future = asyncio.wrap_future(client.protocol.send_request(method, request_params(method, uri, text, rng), msg_id=msg_id))
            cancel = rng.random() < 0.2
            if cancel:
                client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
                self.tally.cancelled += 1
            self.tally.requests += 1
            out.append(Pending(method, future, time.perf_counter(), cancel, server_cpu(client)))
        return out

    async def _collect(self, client: FuzzClient, pending: list[Pending], i: int, source: Source, steps: list[str]) -> list[Problem]:
        problems = []
        for p in pending:
            try:
                result = await asyncio.wait_for(asyncio.shield(p.future), max(0.0, p.sent + SLOW_S - time.perf_counter()))
                if result:
                    self.tally.answered[p.method] = self.tally.answered.get(p.method, 0) + 1
            except asyncio.TimeoutError:
                now = server_cpu(client)
                cpu = f", server CPU {now - p.cpu:.1f} s meanwhile" if now is not None and p.cpu is not None else ""
                problems.append(Problem("slow", self.seed, i, source.name, f"{p.method} unanswered after {SLOW_S:.0f} s{cpu} (after {steps[-1]})"))
                try:
                    await asyncio.wait_for(p.future, GIVE_UP_S)
                except Exception:
                    client.dead = True  # hung: restart it
                    return problems
            except Exception as e:
                code = getattr(e, "code", None)
                if not (p.cancelled and code == CANCELLED) and not client.dead:
                    problems.append(Problem("error response", self.seed, i, source.name, f"{p.method}: {type(e).__name__} {code}: {e} (after {steps[-1]})"))
            self.tally.slowest_s = max(self.tally.slowest_s, time.perf_counter() - p.sent)
        return problems

    async def _await_diagnostics(self, client: FuzzClient, doc: FuzzDocument, i: int, source: Source) -> list[Problem]:
        """The diagnostics of the last version arrive within :data:`SLOW_S` (then the analysis is done)."""
        start = time.perf_counter()
        while not client.dead and not doc.diagnosed(client.published):
            elapsed = time.perf_counter() - start
            if elapsed > SLOW_S:
                while not client.dead and not doc.diagnosed(client.published) and time.perf_counter() - start < GIVE_UP_S:
                    await asyncio.sleep(0.05)
                return [Problem("slow", self.seed, i, source.name, f"diagnostics after {time.perf_counter() - start:.1f} s")]
            await asyncio.sleep(0.005)
        return []

    def _save(self, i: int, source: Source, steps: list[str], doc: FuzzDocument, problems: list[Problem]) -> str:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"seed{self.seed}-doc{i}.json"
        path.write_text(json.dumps({"seed": self.seed, "document": i, "source": source.name, "steps": steps,
                                    "problems": [f"{p.kind}: {p.detail}" for p in problems],
                                    "replay": f"benchmarks/fuzz_server.py --seed {self.seed} --only {i}",
                                    "final": doc.snapshot()}, indent=1))
        return str(path)
