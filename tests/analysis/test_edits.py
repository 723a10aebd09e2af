"""After an edit, the previous analysis answers hovers the edit cannot have changed, and only those."""

from __future__ import annotations

import pytest

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.analysis.edits import diff, diff_in
from lsp_server.analysis.syntax import parse
from lsp_server.features.hover import hover, hover_after_edit
from lsp_server.knowledge.resolve import resolve_model_name

SOURCE = '''\
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
logits, cache = model.run_with_cache("The Eiffel Tower is in")
site = "blocks.3.hook_resid_post"
early = cache["pattern", 1]
resid = cache[site]
plots = []  # ordinary code between
def get_acts(layer_name):
    return cache[layer_name]
get_acts("blocks.5.attn.hook_z")
late = cache["mlp_out", 7]
'''
CTX = AnalysisContext(tl_major=2, resolve_model=resolve_model_name)


def _after(old: str, new: str, needle: str, offset: int = 2):
    """(previous analysis's answer, fresh analysis's answer) at ``needle`` in the new text."""
    previous = analyze(old, CTX)
    at = new.encode().index(needle.encode()) + offset
    edit = diff_in(previous.source, new.encode(), previous.parsed.root)  # (as the server does)
    quick = hover_after_edit(previous, edit, at)
    fresh = hover(analyze(new, CTX), at)
    return quick, fresh


@pytest.mark.parametrize("needle", ['"pattern", 1', '"mlp_out", 7', "[site]", "[layer_name]"])
def test_an_edit_elsewhere_keeps_every_hover_and_it_equals_a_fresh_one(needle):
    new = SOURCE.replace("plots = []", "plots = [1]")  # a one-character edit between the keys
    quick, fresh = _after(SOURCE, new, needle, 1)
    assert quick is not None and quick == fresh


@pytest.mark.parametrize("old,new,needle", [
    ('site = "blocks.3.hook_resid_post"', 'site = "blocks.4.hook_resid_post"', "[site]"),  # its variable
    ('get_acts("blocks.5.attn.hook_z")', 'get_acts("blocks.6.attn.hook_z")', "[layer_name]"),  # a call site
    ('gpt2', 'gpt2-medium', '"mlp_out", 7'),  # the model
    ('plots = []', 'for x in y: pass', '"mlp_out", 7'),  # structure
    ('plots = []', 'model.enable_compatibility_mode()', '"mlp_out", 7'),  # how the model is prepared
    ('late = cache["mlp_out", 7]', 'late = cache["mlp_out", 8]', '"mlp_out"'),  # the key itself
])
def test_an_edit_a_hover_depends_on_is_analysed_again(old, new, needle):
    quick, fresh = _after(SOURCE, SOURCE.replace(old, new), needle, 1)
    assert quick is None and fresh is not None


@pytest.mark.parametrize("old,new", [
    ('from_pretrained("gpt2")\n', 'from_pretrained("gpt2")\n\n'),  # Enter at the end of the model's line
    ('cache["pattern", 1]\n', 'cache["pattern", 1]   \n'),  # spaces at a line's end
    ('late = cache', 'late =  cache'),  # a space between two tokens
])
def test_white_space_between_tokens_changes_no_word(old, new):
    """Lines that hold words that can change facts anywhere (a model, a cache), but no word changed: every
    hover the edited line was not read for is answered at once, and equals a fresh one."""
    for needle in ("[site]", "[layer_name]", '"mlp_out", 7' if "late" not in old else '"pattern", 1'):
        quick, fresh = _after(SOURCE, SOURCE.replace(old, new), needle, 1)
        assert quick is not None and quick == fresh


@pytest.mark.parametrize("old,new", [
    (b"x = a if b else c\n", b"x = aif b else c\n"),  # a space deleted joins two words
    (b"total = alpha\n", b"total = al pha\n"),  # one typed splits a word
    (b"x = 1 + \\\n    2\n", b"x = 1 + \\ \n    2\n"),  # a space after `\\` breaks the continuation
    (b'p = "a  b"\n', b'p = "a b"\n'),  # white space in a string is its value
])
def test_white_space_that_changes_tokens_or_values_is_an_edit(old, new):
    assert diff_in(old, new, parse(old).root) == diff(old, new)


def test_offsets_after_the_edit_shift_and_inside_it_do_not_map():
    edit = diff(b"a = 1\nbb = 2\nc = 3\n", b"a = 1\nbbb = 2\nc = 3\n")
    assert (edit.start, edit.old_end, edit.new_end) == (6, 12, 13) and edit.local
    assert edit.to_old(2) == 2 and edit.to_old(15) == 14 and edit.to_old(8) is None
    assert edit.to_new(14) == 15 and edit.names == {"bb", "bbb"}


def test_a_comprehension_is_not_a_loop_statement():
    old = SOURCE.replace("plots = []", "plots = [r for r in range(3)]")
    quick, fresh = _after(old, old.replace("range(3)", "range(4)"), '"mlp_out", 7', 1)
    assert quick is not None and quick == fresh
    assert not diff(b"x = 1\n", b"for x in y: pass\n").local and not diff(b"a = 1\n", b"a = lambda: 1\n").local


def test_a_hash_that_comments_out_brackets_is_not_local():
    """`f(a, b=True))` -> `f(a, b#=True))`: the closing brackets become a comment and the lines after
    parse as the call's arguments, though no bracket was typed (found on a public notebook)."""
    old = b"x = f(g(1, b=True))\ny = cache['resid_post', 0]\n"
    assert not diff(old, old.replace(b"b=True", b"b#=True")).local
    assert diff(old + b"# a note\n", old + b"# a not\n").local  # typing inside a comment stays local


@pytest.mark.parametrize("old, new, prose", [
    (b"x = 1  # the model name\n", b"x = 1  # the model names\n", True),  # in a trailing comment
    (b'def f():\n    """Patch the cfg."""\n', b'def f():\n    """Patch the cfg here."""\n', True),  # a docstring
    (b'"""Swap in from_pretrained."""\nx = 1\n', b'"""Swap in from_pretrained ."""\nx = 1\n', True),
    (b'note = """the cfg"""\n', b'note = """the cfgs"""\n', False),  # a string that is a value
    (b"x = cfg.name  # note\n", b"x = cfg.names  # note\n", False),  # code
    (b"x = f(a)  # note\n", b"x = f(a)  #  note\n", True),
    (b"x = f(a)  # note\n", b"x = f(a)  note\n", False),  # the `#` itself
])
def test_an_edit_in_a_comment_or_docstring_is_prose(old, new, prose):
    """Words in prose bind nothing: an edit there counts as local even with a word like `cfg` that makes an
    edit of code count everywhere."""
    from lsp_server.analysis.edits import in_prose
    from lsp_server.analysis.syntax import parse

    assert in_prose(diff(old, new), parse(new).root) is prose
