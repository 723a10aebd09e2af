"""Imports between a workspace's own files: values, functions, models and caches cross the file boundary,
both ways (an imported helper's return value here; a helper's parameters from the files that call it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.analysis.document import AnalysisContext
from lsp_server.features.hover import hover
from lsp_server.knowledge.resolve import resolve_model_name
from lsp_server.modules import linked_workspace

UTILS = '''\
from functools import partial

LAYER_SITE = "blocks.3.hook_resid_post"
_private = "blocks.1.hook_resid_post"

def act_name(layer, site="resid_post"):
    return f"blocks.{layer}.hook_{site}"

def get_acts(cache, layer_name, pos):
    return cache[layer_name][:, pos]

def patch_z(z, hook, head, clean_cache):
    z[:, :, head] = clean_cache[hook.name][:, :, head]
    return z
'''
SETUP = '''\
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")

def run_and_cache(m, prompts):
    _, cache = m.run_with_cache(prompts)
    return cache
'''
MAIN = '''\
import utils as u
from utils import act_name, get_acts, LAYER_SITE as SITE
from setup import model, run_and_cache

logits, cache = model.run_with_cache("hello")
a = cache[act_name(5)]
b = cache[SITE]
c = cache[u.act_name(2, "attn_out")]
d = get_acts(cache, "blocks.4.hook_resid_post", 5)
e = get_acts(cache, u.act_name(6), 0)
clean_cache = run_and_cache(model, ["a"])
f = clean_cache["pattern", 20]
'''


def _workspace(tmp_path: Path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return linked_workspace(lambda _: AnalysisContext(tl_major=2, resolve_model=resolve_model_name), tmp_path)


def _hover(workspace, path: Path, needle: str, delta: int = 1) -> str:
    analysis = workspace.text_view(str(path), path.read_text(), 0).analysis
    result = hover(analysis, path.read_text().encode().index(needle.encode()) + delta)
    return result.markdown.split("\n\n")[0] if result else ""


def test_values_functions_and_models_from_workspace_modules(tmp_path):
    ws = _workspace(tmp_path, {"utils.py": UTILS, "setup.py": SETUP, "main.py": MAIN})
    main = tmp_path / "main.py"
    assert _hover(ws, main, "act_name(5)").startswith("`blocks.5.hook_resid_post` · `[batch, pos, d_model]` = `[batch, pos, 768]`")
    assert _hover(ws, main, "SITE]").startswith("`blocks.3.hook_resid_post`")
    assert _hover(ws, main, "u.act_name(2").startswith("`blocks.2.hook_attn_out`")
    findings = ws.text_view(str(main), MAIN, 0).analysis.findings
    # The model imported from setup.py is GPT-2 (12 layers), and so is the cache its helper returns.
    assert [(f.code, MAIN[f.start:f.end]) for f in findings] == [("layer-out-of-range", '"pattern", 20')]


def test_parameters_of_a_helper_come_from_the_files_that_call_it(tmp_path):
    ws = _workspace(tmp_path, {"utils.py": UTILS, "setup.py": SETUP, "main.py": MAIN})
    shown = _full(ws, tmp_path / "utils.py", "layer_name]")
    assert shown.startswith("One of 2 hook names:\n\n- `blocks.4.hook_resid_post` · `[batch, pos, d_model]`\n"
                            "- `blocks.6.hook_resid_post` · `[batch, pos, d_model]`"), shown
    # Module-private helpers are not called from other files: their parameters stay unknown.
    (tmp_path / "utils.py").write_text(UTILS.replace("get_acts", "_get_acts"))
    (tmp_path / "main.py").write_text(MAIN.replace("get_acts", "_get_acts"))
    assert _full(ws, tmp_path / "utils.py", "layer_name]") == ""


def _full(workspace, path: Path, needle: str) -> str:
    analysis = workspace.text_view(str(path), path.read_text(), 0).analysis
    result = hover(analysis, path.read_text().encode().index(needle.encode()) + 1)
    return result.markdown if result else ""


def test_no_hover_comes_from_an_analysis_a_changed_caller_made_stale(tmp_path):
    """A hover right after an edit comes from the previous analysis; not once another file the analysis read
    changed (here, a caller binding the helper's parameters). It once did after a tokenizer load had expired
    the analysis, the text being unchanged: a helper kept showing its callers' old layers."""
    ws = _workspace(tmp_path, {"utils.py": UTILS, "setup.py": SETUP, "main.py": MAIN})
    utils = tmp_path / "utils.py"
    assert "blocks.4.hook_resid_post" in _full(ws, utils, "layer_name]")
    ws.refresh()  # a tokenizer loaded: nothing the analysis resolved changed
    assert ws.previous_text_view(str(utils), UTILS, 0) is not None
    assert ws.previous_text_view(str(utils), UTILS + "\n", 1) is not None
    (tmp_path / "main.py").write_text(MAIN.replace('"blocks.4.hook_resid_post"', '"blocks.9.hook_resid_post"'))
    assert ws.previous_text_view(str(utils), UTILS, 0) is None
    assert ws.previous_text_view(str(utils), UTILS + "\n", 1) is None
    assert "blocks.9.hook_resid_post" in _full(ws, utils, "layer_name]")

    ws.expire(str(utils))  # the server's word that a file it read changed
    assert ws.previous_text_view(str(utils), UTILS + "\n", 1) is None
    ws.refresh()  # (a later tokenizer load leaves it stale)
    assert ws.previous_text_view(str(utils), UTILS + "\n", 1) is None


def test_an_analysis_that_reuses_resolutions_still_depends_on_the_files_they_read(tmp_path):
    """Resolutions carried over from the previous version (after a keystroke, or a tokenizer load) were worked out
    from other files (here, the callers binding a helper's parameters): the new analysis depends on them as the
    old one did. It once did not, and a helper kept its callers' old layers for good once they changed."""
    ws = _workspace(tmp_path, {"utils.py": UTILS, "setup.py": SETUP, "main.py": MAIN})
    utils, main = tmp_path / "utils.py", tmp_path / "main.py"
    assert "blocks.4.hook_resid_post" in _full(ws, utils, "layer_name]")
    typed = UTILS.replace("return cache[layer_name]", "return cache[layer_name]  # the acts")
    for step in ("typed", "refreshed"):
        if step == "typed":
            view = ws.text_view(str(utils), typed, 1)
        else:
            ws.refresh()  # (what a tokenizer load does: the analysis is made again from the same resolutions)
            view = ws.text_view(str(utils), typed, 1)
        assert view.analysis.context.links.fresh()
        layer = "10" if step == "typed" else "5"  # (the text's length changes: a file read from disk is keyed by it)
        main.write_text(MAIN.replace('"blocks.4.hook_resid_post"', f'"blocks.{layer}.hook_resid_post"'))
        assert not view.analysis.context.links.fresh(), step  # a caller changed
        after = ws.text_view(str(utils), typed, 1).analysis
        shown = hover(after, typed.encode().index(b"layer_name]") + 1).markdown
        assert f"blocks.{layer}.hook_resid_post" in shown and "blocks.4.hook_resid_post" not in shown, (step, shown)


def test_private_names_libraries_and_cycles_stay_unknown(tmp_path):
    ws = _workspace(tmp_path, {
        "utils.py": UTILS,
        # A workspace copy of a library is never followed; nor is a module-private helper's parameter.
        "transformer_lens/__init__.py": "HookedTransformer = None\n",
        "a.py": "from b import name_b\nNAME_A = name_b('x')\ndef name_a(s):\n    return f'blocks.0.hook_{s}'\n",
        "b.py": "from a import name_a\ndef name_b(s):\n    return name_a(s)\n",
        "main.py": MAIN + "from a import NAME_A\ng = cache[NAME_A]\n",
    })
    main = tmp_path / "main.py"
    assert _hover(ws, main, "NAME_A]").startswith("`blocks.0.hook_x`")  # through a -> b -> a: no endless loop


@pytest.mark.parametrize("layout", ["package", "relative"])
def test_packages_and_relative_imports(tmp_path, layout):
    importer = ("from helpers.names import act_name\n" if layout == "package" else "from .names import act_name\n")
    ws = _workspace(tmp_path, {
        "helpers/__init__.py": "",
        "helpers/names.py": "def act_name(layer):\n    return f'blocks.{layer}.attn.hook_z'\n",
        "helpers/run.py": importer + SETUP + "logits, cache = model.run_with_cache('x')\nz = cache[act_name(1)]\n",
    })
    assert _hover(ws, tmp_path / "helpers/run.py", "act_name(1)").startswith("`blocks.1.attn.hook_z` · `[batch, pos, n_heads, d_head]` = `[batch, pos, 12, 64]`")


def test_an_edit_to_an_imported_file_makes_its_importers_stale(tmp_path):
    ws = _workspace(tmp_path, {"utils.py": UTILS, "setup.py": SETUP, "main.py": MAIN})
    main = tmp_path / "main.py"
    before = ws.text_view(str(main), MAIN, 0).analysis
    assert ws.text_view(str(main), MAIN, 0).analysis is before  # cached while nothing changed
    (tmp_path / "setup.py").write_text(SETUP.replace('"gpt2"', '"gpt2-xl"') + "\n")
    after = ws.text_view(str(main), MAIN, 0).analysis
    assert after is not before
    assert after.findings == []  # gpt2-xl has 48 layers: layer 20 exists


def test_a_dict_literal_imported_from_a_workspace_module_is_read_with_an_unknown_key(tmp_path):
    """Seen in real code: `from patching import _TARGETED_HOOK_MAP` then `get_act_name(_TARGETED_HOOK_MAP[comp], layer)`."""
    sites = 'SITES = {"resid": "resid_pre", "attn": "z"}\n'
    script = ("from sites import SITES\nfrom setup import model\nfrom transformer_lens.utils import get_act_name\n"
              "logits, cache = model.run_with_cache('hi')\n"
              "def read(component):\n    return cache[get_act_name(SITES[component], 3)]\n"
              "for kind in SITES.values():\n    x = cache[kind, 4]\n")
    ws = _workspace(tmp_path, {"sites.py": sites, "setup.py": SETUP, "main.py": script})
    shown = _full(ws, tmp_path / "main.py", "get_act_name(SITES")
    assert shown.startswith("One of 2 hook names:\n\n- `blocks.3.hook_resid_pre`"), shown
    assert "`blocks.3.attn.hook_z`" in shown
    shown = _full(ws, tmp_path / "main.py", "kind, 4]")
    assert shown.startswith("One of 2 hook names:\n\n- `blocks.4.hook_resid_pre`") and "`blocks.4.attn.hook_z`" in shown, shown
    # Changed where it is written, or here: not the literal any more.
    (tmp_path / "sites.py").write_text(sites + 'SITES["mlp"] = "mlp_out"\n')
    assert _full(ws, tmp_path / "main.py", "get_act_name(SITES") == ""


def test_an_imported_file_edited_on_disk_to_the_same_length_is_read_again(tmp_path):
    ws = _workspace(tmp_path, {"utils.py": UTILS, "setup.py": SETUP, "main.py": MAIN})
    main = tmp_path / "main.py"
    assert _hover(ws, main, "SITE]").startswith("`blocks.3.hook_resid_post`")
    edited = UTILS.replace('"blocks.3.hook_resid_post"', '"blocks.5.hook_resid_post"')
    assert len(edited) == len(UTILS) and edited != UTILS
    (tmp_path / "utils.py").write_text(edited)
    assert _hover(ws, main, "SITE]").startswith("`blocks.5.hook_resid_post`")


HELPER = '''\
def name_of(layer):
    return f"blocks.{layer}.attn.hook_z"

def add_patch(model, layer):
    model.add_hook(name_of(layer), lambda z, hook: z)
'''
SCRIPT = '''\
from transformer_lens import HookedTransformer
from helper import name_of, add_patch
model = HookedTransformer.from_pretrained("gpt2")
logits, cache = model.run_with_cache("hi")
z = cache[name_of({layer})]
add_patch(model, {layer})
'''


def test_a_module_analysed_inside_an_import_cycle_serves_every_reader(tmp_path, monkeypatch):
    """The helper's parameters are bound by its importers' calls, and they import it: its analysis, made
    inside that cycle, serves each script that reads it (an edit of one script analyses that script
    alone), while a script first analysed inside the cycle is analysed again, in full, when asked for."""
    import lsp_server.workspace

    ws = _workspace(tmp_path, {"helper.py": HELPER, "a.py": SCRIPT.format(layer=2), "b.py": SCRIPT.format(layer=3)})
    made = []
    analyze = lsp_server.workspace.analyze
    monkeypatch.setattr(lsp_server.workspace, "analyze", lambda *args, **kw: made.append(1) or analyze(*args, **kw))
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    assert _hover(ws, a, "name_of(2)").startswith("`blocks.2.attn.hook_z`")  # b read inside the cycle, helper cut
    assert _hover(ws, b, "name_of(3)").startswith("`blocks.3.attn.hook_z`")  # b on its own: in full
    made.clear()
    edited = a.read_text() + "#"
    a.write_text(edited)
    assert _hover(ws, a, "name_of(2)").startswith("`blocks.2.attn.hook_z`")
    assert len(made) == 1, made  # a alone: the helper's and b's analyses serve as they are


def test_a_module_constant_another_file_sets_is_unknown(tmp_path):
    main = MAIN + 'import utils\nutils.LAYER_SITE = "blocks.9.hook_resid_post"\n'
    ws = _workspace(tmp_path, {"utils.py": UTILS, "setup.py": SETUP, "main.py": main})
    assert _hover(ws, tmp_path / "main.py", "SITE]") == ""  # `from utils import LAYER_SITE as SITE`, then set
    helper = UTILS + 'def read(cache):\n    return cache[LAYER_SITE]\n'
    ws = _workspace(tmp_path, {"utils.py": helper, "setup.py": SETUP, "main.py": main})
    assert _hover(ws, tmp_path / "utils.py", "LAYER_SITE]") == ""  # read in the module an importer changes it in
    ws = _workspace(tmp_path, {"utils.py": helper, "setup.py": SETUP, "main.py": MAIN})
    assert _hover(ws, tmp_path / "utils.py", "LAYER_SITE]").startswith("`blocks.3.hook_resid_post`")


def test_attributes_of_objects_whose_class_is_in_another_file(tmp_path):
    graph = '''\
from transformer_lens import utils

class Node:
    def __init__(self, component_name, layer):
        self.component_name = component_name
        self.layer = layer

    @property
    def activation_name(self):
        return utils.get_act_name(self.component_name, self.layer)

    def read(self, cache):
        return cache[self.activation_name]
'''
    main = MAIN + 'from graph import Node\nsender = Node("z", 9)\nh = cache[sender.activation_name]\nNode("resid_pre", 2)\n'
    ws = _workspace(tmp_path, {"utils.py": UTILS, "setup.py": SETUP, "graph.py": graph, "main.py": main})
    assert _hover(ws, tmp_path / "main.py", "sender.activation_name").startswith("`blocks.9.attn.hook_z`")
    # Inside the class, `self` is any instance the workspace builds: each construction with its own arguments.
    shown = _full(ws, tmp_path / "graph.py", "self.activation_name]")
    assert shown.startswith("One of 2 hook names:\n\n- `blocks.9.attn.hook_z`"), shown
    assert "- `blocks.2.hook_resid_pre`" in shown and "blocks.2.attn.hook_z" not in shown
    # A file that sets the attribute on an instance it built: `__init__` no longer says what it is (the
    # layer is unknown; the component is still known).
    changed = main + 'sender.layer = 11\n'
    ws = _workspace(tmp_path, {"utils.py": UTILS, "setup.py": SETUP, "graph.py": graph, "main.py": changed})
    assert _hover(ws, tmp_path / "main.py", "sender.activation_name").startswith("`blocks.{self.layer}.attn.hook_z`")
    shown = _full(ws, tmp_path / "graph.py", "self.activation_name]")
    assert "blocks.9.attn.hook_z" not in shown and "blocks.2.hook_resid_pre" not in shown, shown


def test_a_workspace_with_its_own_copy_of_transformer_lens_may_have_hook_points_the_catalog_lacks(tmp_path):
    # Seen in real code: research done inside a fork of TransformerLens that adds `hook_q_normalized_input`.
    script = ('from transformer_lens import HookedTransformer\n'
              'model = HookedTransformer.from_pretrained("gpt2")\n'
              'model.run_with_hooks("hi", fwd_hooks=[("blocks.10.hook_q_normalized_input", fn)])\n'
              'logits, cache = model.run_with_cache("hi")\n'
              'a = cache["blocks.3.hook_resid_post"]\n')
    ws = _workspace(tmp_path, {"transformer_lens/__init__.py": "", "transformer_lens/rs/notebook.py": script,
                               "elsewhere/notebook.py": script})
    inside = ws.text_view(str(tmp_path / "transformer_lens/rs/notebook.py"), script, 0).analysis
    assert inside.findings == []
    assert _hover(ws, tmp_path / "transformer_lens/rs/notebook.py", '"blocks.3').startswith("`blocks.3.hook_resid_post`")
    # Any file of that workspace imports the fork (run from the repository's root), not the installed library.
    assert ws.text_view(str(tmp_path / "elsewhere/notebook.py"), script, 0).analysis.findings == []
    # Without the copy, the name is unknown.
    other = tmp_path / "other"
    ws = _workspace(other, {"notebook.py": script})
    assert [f.code for f in ws.text_view(str(other / "notebook.py"), script, 0).analysis.findings] == ["unknown-hook"]


CONFTEST = '''\
import pytest
from transformer_lens import HookedTransformer

@pytest.fixture(scope="session")
def model():
    model = HookedTransformer.from_pretrained("{name}")
    yield model
'''
TEST_FILE = '''\
def test_resid(model):
    _, cache = model.run_with_cache("hi")
    assert cache["resid_post", 1].shape[-1] > 0

def helper(model):
    _, cache = model.run_with_cache("hi")
    return cache["resid_post", 1]
'''


def test_a_tests_model_fixture_comes_from_the_conftest_above_it(tmp_path):
    """pytest hands `model` the conftest fixture's model: the test's keys get its shapes; a helper that is
    not a test gets no fixture; a change of the conftest makes the test's analysis stale."""
    ws = _workspace(tmp_path, {"conftest.py": CONFTEST.format(name="gpt2"), "tests/test_cache.py": TEST_FILE})
    test = tmp_path / "tests" / "test_cache.py"
    assert _hover(ws, test, '"resid_post", 1].shape') == "`blocks.1.hook_resid_post` · `[batch, pos, d_model]` = `[batch, pos, 768]`"
    assert _hover(ws, test, '"resid_post", 1]\n') == "`blocks.1.hook_resid_post` · `[batch, pos, d_model]`"
    (tmp_path / "conftest.py").write_text(CONFTEST.format(name="gpt2-medium"))
    assert _hover(ws, test, '"resid_post", 1].shape').endswith("= `[batch, pos, 1024]`")
