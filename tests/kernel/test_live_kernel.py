"""Live introspection against real kernels (TL 4.x TransformerBridge; TL 2.x HookedTransformer with
``TLENS_HT_PYTHON``): what ``live_state`` reports, what it leaves alone, its bounds, tokenizers, reset.

The kernel is driven like a notebook (``tests/notebook_kernel.py``); a ``KernelBridge`` attaches to it
as the language server does.
"""

from __future__ import annotations

import ast

import pytest

from lsp_server.kernel import KernelBridge
from lsp_server.live import LIMITS, facts_from_answer

from ..notebook_kernel import NotebookKernel, kernel_python
from .tiny_models import bridge_setup, ht_setup

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

NOTEBOOK = '''
logits, cache = model.run_with_cache(clean_tokens)
def ablate_top_head_hook(z, hook):
    z[:, :, 0] = 0.0
    return z
model.add_hook("blocks.1.attn.hook_z", ablate_top_head_hook)
model.add_perma_hook("blocks.0.hook_resid_pre", lambda x, hook: x)
'''




@pytest.fixture(scope="module", params=["tl4", pytest.param("ht", marks=pytest.mark.ht)])
def notebook(request):
    kernel = NotebookKernel(kernel_python(request.param))
    try:
        kernel.run(bridge_setup() if request.param == "tl4" else ht_setup())
        kernel.env = request.param
        yield kernel
    finally:
        kernel.shutdown()


@pytest.fixture
async def bridge(notebook):
    b = await KernelBridge.attach(notebook.connection_file)
    yield b
    await b.shutdown()


def _hooks(notebook, name: str) -> int:
    return int(notebook.value(f"len(model.hook_dict[{name!r}].fwd_hooks)"))


async def test_live_state_describes_models_hooks_and_caches(notebook, bridge):
    notebook.run(NOTEBOOK)
    try:
        answer = await bridge.call_payload("live_state", **LIMITS)
    finally:
        notebook.run("model.reset_hooks(including_permanent=True)")
    facts = facts_from_answer(answer)
    model = facts.models["model"]
    spec = model.spec
    assert (spec.n_layers, spec.d_model, spec.n_heads, spec.d_head, spec.d_mlp) == (2, 64, 4, 16, 256)
    assert spec.backend == ("bridge" if notebook.env == "tl4" else "hooked")
    assert spec.source.startswith(f"live kernel: model ({model.cls}, TL {model.tl_version})")
    assert spec.tokenizer and spec.tokenizer.startswith("live:") and spec.default_prepend_bos is True
    hooks = {(h.hook, h.fn, h.permanent, h.direction) for h in model.hooks}
    assert hooks == {("blocks.1.attn.hook_z", "ablate_top_head_hook", False, "fwd"),
                     ("blocks.0.hook_resid_pre", "<lambda>", True, "fwd")}
    assert "blocks.{l}.attn.hook_z" in model.hook_templates and "hook_embed" in model.hook_templates

    cache = facts.caches["cache"]
    assert cache.model == "model" and cache.complete
    assert cache.n_keys == int(notebook.value("len(cache.keys())"))
    for key in ("blocks.1.attn.hook_pattern", "blocks.0.hook_resid_pre"):
        t = cache.keys[key]
        assert t.shape == ast.literal_eval(notebook.value(f"tuple(cache[{key!r}].shape)"))
        assert (t.dtype, t.device) == ("float32", "cpu")
    assert 0 < answer["elapsed_ms"] < 1000


SPY = '''
from transformer_lens import ActivationCache
class _Spy(torch.Tensor):
    calls = []
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        _Spy.calls.append(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs or {})
spy_cache = ActivationCache({"blocks.0.hook_resid_pre": torch.zeros(1, 3, 64).as_subclass(_Spy)}, model)
_Spy.calls.clear()
'''


async def test_introspection_reads_no_tensor_data_and_leaves_the_namespace_alone(notebook, bridge):
    notebook.run(SPY)
    await bridge.call_payload("live_state")  # installs the payload
    names = "sorted(k for k in globals() if not k.startswith('_'))"
    before = (notebook.value(names), notebook.value("sorted(__import__('sys').modules)"))
    answer = await bridge.call_payload("live_state", **LIMITS)
    after = (notebook.value(names), notebook.value("sorted(__import__('sys').modules)"))
    assert before == after, "introspection bound a name or imported a module"
    assert answer["caches"][[c["var"] for c in answer["caches"]].index("spy_cache")]["keys"] == {
        "blocks.0.hook_resid_pre": [[1, 3, 64], 0, 0]}
    calls = ast.literal_eval(notebook.value("_Spy.calls"))
    assert calls, "the spy saw nothing: it cannot tell whether data was read"
    assert set(calls) <= {"__get__"}, f"tensor methods called: {sorted(set(calls))}"  # shape/dtype/device getters
    notebook.run("del spy_cache, _Spy")


async def test_answer_is_bounded_and_says_what_it_left_out(notebook, bridge):
    notebook.run("logits, cache = model.run_with_cache(clean_tokens)\n"
                 "for _i in range(20): globals()[f'copy_{_i}'] = cache")
    try:
        answer = await bridge.call_payload("live_state", max_caches=5, max_keys=10)
        assert len(answer["caches"]) == 5 and "16 more caches" in answer["truncated"]
        assert all(not c["complete"] and len(c["keys"]) == 10 for c in answer["caches"] if c["var"] != "cache")
        small = await bridge.call_payload("live_state", max_bytes=4000)
        assert any("size cap" in t for t in small["truncated"])
        assert len(__import__("json").dumps(small)) <= 4500
    finally:
        notebook.run("for _i in range(20): del globals()[f'copy_{_i}']")


async def test_shipped_tokenizer_splits_like_the_kernel(notebook, bridge):
    from tokenizers import Tokenizer

    from lsp_server.knowledge.tokenizers import Tok

    value = await bridge.call_payload("live_tokenizer", var="model")
    tok = Tok("kernel", Tokenizer.from_str(value["json"]), value["bos_token"])
    for text in (" Mary", "When Mary and John went to the store", "Eiffel Tower"):
        kernel = ast.literal_eval(notebook.value(f"model.to_str_tokens({text!r}, prepend_bos=False)"))
        assert tok.encode(text) == kernel
    assert value["bos_token"] == "<|endoftext|>"


async def test_reset_hooks_keeps_permanent_ones(notebook, bridge):
    notebook.run(NOTEBOOK)
    try:
        assert _hooks(notebook, "blocks.1.attn.hook_z") == 1
        done = await bridge.call_payload("live_reset_hooks", var="model")
        assert done == [{"var": "model", "removed": 1, "permanent_left": 1}]
        assert _hooks(notebook, "blocks.1.attn.hook_z") == 0 and _hooks(notebook, "blocks.0.hook_resid_pre") == 1
    finally:
        notebook.run("model.reset_hooks(including_permanent=True)")
