"""End to end over stdio: token diagnostics arrive (after the tokenizer's background load), the
leading-space quick fix edits the string, and token hover shows the split."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from .helpers import hover_text, open_doc, pos_of

SCRIPT = '''\
from transformer_lens import HookedTransformer

model = HookedTransformer.from_pretrained("gpt2-small")
prompt = "The Eiffel Tower is in the city of Paris"
tokens = model.to_tokens(prompt)
paris = model.to_single_token("Paris")
names = [" Mary", " Neel", " John"]
name_ids = [model.to_single_token(n) for n in names]
rome = model.to_str_tokens("The Colosseum is in Rome", prepend_bos=False)
'''


@pytest.fixture
def uri(client):
    return (client.root / "recall.py").as_uri()


async def token_diagnostics(client, uri: str, codes: set[str], timeout: float = 30.0) -> list[types.Diagnostic]:
    """Wait until diagnostics for ``uri`` include ``codes`` (the tokenizer may load in between)."""
    async def wait():
        while True:
            diags = client.diagnostics.get(uri, [])
            if codes <= {d.code for d in diags}:
                return diags
            await asyncio.sleep(0.05)
    return await asyncio.wait_for(wait(), timeout)


async def test_token_diagnostics_and_leading_space_fix(client, uri):
    open_doc(client, uri, SCRIPT)
    diags = await token_diagnostics(client, uri, {"leading-space", "multi-token"})
    by_code = {d.code: d for d in diags}
    space, multi = by_code["leading-space"], by_code["multi-token"]
    assert space.severity == types.DiagnosticSeverity.Warning
    assert space.range.start == pos_of(SCRIPT, '"Paris")')
    assert '"Paris" is token 40313' in space.message and '" Paris" (token 6342)' in space.message
    assert multi.range.start == pos_of(SCRIPT, '" Neel"')
    assert multi.message.startswith('" Neel" (from names) is 2 tokens for gpt2: [" Ne", "el"]')

    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=space.range,
        context=types.CodeActionContext(diagnostics=[space])))
    fix = next(a for a in actions if a.title == 'Add the leading space: " Paris"')
    (edit,) = fix.edit.changes[uri]
    assert edit.new_text == " " and edit.range.start == pos_of(SCRIPT, '"Paris")', 1)


async def test_token_hover_shows_the_split(client, uri):
    open_doc(client, uri, SCRIPT)
    await token_diagnostics(client, uri, {"leading-space"})  # the tokenizer is loaded by now
    text = await hover_text(client, uri, pos_of(SCRIPT, "prompt)", 1))
    assert text.startswith('`"The Eiffel Tower is in the city of Paris"` · **12 tokens** for gpt2 (BOS + 11)')
    assert "`·E` `iff` `el`" in text and "`·Paris`" in text and "6342" in text
    text = await hover_text(client, uri, pos_of(SCRIPT, '"The Colosseum', 2))
    assert text.startswith('`"The Colosseum is in Rome"` · **8 tokens** for gpt2')
    assert "<|endoftext|>" not in text and "`·Rome`" in text
    text = await hover_text(client, uri, pos_of(SCRIPT, '"Paris")', 2))
    assert "**1 token**" in text and "40313" in text and "never prepends" in text


async def test_background_tokenizers_never_wait_and_republish_once_loaded():
    from types import SimpleNamespace

    from lsp_server.features.token_loading import BackgroundTokenizers
    from lsp_server.knowledge import tokenizers
    from lsp_server.knowledge.spec import ModelSpec

    calls: list[str] = []

    class FakeServer:
        workspace_cache = SimpleNamespace(refresh=lambda: calls.append("refresh"))
        workspace = SimpleNamespace(text_documents={uri: SimpleNamespace(uri=uri) for uri in ("file:///a.py", "file:///b.py")})

        def schedule_diagnostics(self, uri):
            calls.append(uri)

    tokenizers.clear_cache()
    loader = BackgroundTokenizers(FakeServer())
    gpt2 = ModelSpec(tokenizer="gpt2")
    assert loader(gpt2) is None  # not loaded yet: answers at once, loads in the background
    await asyncio.wait_for(_until(lambda: len(calls) == 3), 30)
    assert calls == ["refresh", "file:///a.py", "file:///b.py"]
    assert loader(gpt2).ids(" Paris") == [6342]

    missing = ModelSpec(tokenizer="no-such-org/no-such-model")
    assert loader(missing) is None
    await asyncio.sleep(0.3)
    assert loader(missing) is None and calls == ["refresh", "file:///a.py", "file:///b.py"]  # nothing to re-publish


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


def test_a_tokenizer_loaded_later_adds_the_token_findings_without_resolving_hook_names_again(monkeypatch):
    """Once a tokenizer loads, every open document is analysed again for its token checks; what its hook names
    resolved to does not depend on a tokenizer and is reused (it used to be resolved again: 43–59 ms against
    23–28 ms on the 5,000-line benchmark file, right when the editor opens it). The analysis it replaces serves
    until then (it used to be dropped)."""
    from lsp_server.analysis.document import AnalysisContext
    from lsp_server.analysis.hookrefs import HookRefCollector
    from lsp_server.knowledge import tokenizers
    from lsp_server.knowledge.resolve import resolve_model_name
    from lsp_server.workspace import Workspace

    loaded: list = []
    cache = Workspace(lambda uri: AnalysisContext(tl_major=2, resolve_model=resolve_model_name,
                                                  tokenizer_for=lambda spec: loaded[0] if loaded else None))
    text = ('from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained("gpt2")\n'
            'logits, cache = model.run_with_cache("The capital of France is Paris")\n'
            'pattern = cache["pattern", 3]\nanswer = model.to_single_token("Paris")\n')
    before = cache.text_view("file:///a.py", text, 1).analysis
    assert "leading-space" not in {f.code for f in before.findings}
    resolved = []
    original = HookRefCollector._subscript
    monkeypatch.setattr(HookRefCollector, "_subscript", lambda self, sub: (resolved.append(sub), original(self, sub))[1])
    loaded.append(tokenizers.tokenizer_for(tokenizers.ModelSpec(tokenizer="gpt2")))
    cache.refresh()
    assert cache.text_view("file:///a.py", text, 1, ready_only=True) is None  # stale now, but still the previous one
    assert cache.previous_text_view("file:///a.py", text + " ", 2) is not None
    after = cache.text_view("file:///a.py", text, 1).analysis
    assert "leading-space" in {f.code for f in after.findings}
    assert resolved == [] and [r.template for r in after.refs] == [r.template for r in before.refs]
