"""SAE Lens hook points whose SAE's own hook point is unknown, an SAE's own cache, SAEs loaded by id
(issue 9, item 5). Shapes as SAE Lens's ``SAE`` makes them (sae_lens 6.54: ``process_sae_in``,
``forward``, ``decode``)."""

from __future__ import annotations

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.analysis.saes import sae_point_of
from lsp_server.analysis.value_types import Hole, Pattern
from lsp_server.features.hover import hover
from lsp_server.knowledge.resolve import resolve_model_name
from lsp_server.knowledge.sae_hooks import sae_shape

HEADER = '''\
from sae_lens import SAE, HookedSAETransformer
model = HookedSAETransformer.from_pretrained("gpt2-small")
'''


def _analysis(body: str):
    return analyze(HEADER + body, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))


def _hover(analysis, needle: str) -> str | None:
    at = analysis.source.rindex(needle.encode()) + needle.index("[") + 1  # on the key
    result = hover(analysis, at)
    return result.markdown if result is not None else None


def test_only_one_unknown_part_before_an_sae_suffix_is_an_sae_point():
    assert sae_point_of(Pattern((Hole("sae.cfg.hook_name"), ".hook_sae_acts_post"))) == ("sae.cfg.hook_name", "hook_sae_acts_post")
    assert sae_point_of(Pattern((Hole("name"), ".hook_resid_post"))) is None  # not an SAE hook
    assert sae_point_of(Pattern((Hole("name"), "hook_sae_acts_post"))) is None  # no dot: not under a hook
    assert sae_point_of(Pattern(("blocks.", Hole("l"), ".hook_sae_acts_post"))) is None  # `blocks.{l}` is no hook
    assert sae_point_of("blocks.8.hook_resid_pre.hook_sae_acts_post") is None  # known: a full name


def test_unknown_sae_hover_gives_the_axis_every_sae_gives():
    a = _analysis('def f(model, sae, x):\n'
                  '    _, cache = model.run_with_cache_with_saes(x, saes=[sae])\n'
                  '    a = cache[f"{sae.cfg.hook_name}.hook_sae_acts_post"]\n'
                  '    b = cache[f"{sae.cfg.hook_name}.hook_sae_input"]\n'
                  '    c = cache[f"{sae.cfg.hook_name}.hook_sae_error"]\n')
    assert _hover(a, 'cache[f"{sae.cfg.hook_name}.hook_sae_acts_post"]').split("\n\n")[0] == \
        "`{sae.cfg.hook_name}.hook_sae_acts_post` · `[..., d_sae]`"
    assert _hover(a, 'cache[f"{sae.cfg.hook_name}.hook_sae_input"]').split("\n\n")[0] == \
        "`{sae.cfg.hook_name}.hook_sae_input` · `[..., d_in]`"
    # The error term has the shape of the hook the SAE sits on (a hook_z SAE's is per head): no shape.
    error = _hover(a, 'cache[f"{sae.cfg.hook_name}.hook_sae_error"]')
    assert error.split("\n\n")[0] == "`{sae.cfg.hook_name}.hook_sae_error`"
    assert "the shape of that hook" in error
    assert a.findings == []  # never judged: the SAE's hook is not known


def test_sae_loaded_by_an_id_that_only_looks_like_a_hook_name_stays_unknown():
    a = _analysis('sae = SAE.from_pretrained("some/release", "blocks.5.mlp.hook_post-v1")[0]\n'
                  '_, cache = model.run_with_cache_with_saes("x", saes=[sae])\n'
                  'acts = cache[f"{sae.cfg.hook_name}.hook_sae_acts_post"]\n')
    assert _hover(a, 'cache[f"{sae.cfg.hook_name}').split("\n\n")[0] == "`{sae.cfg.hook_name}.hook_sae_acts_post` · `[..., d_sae]`"
    assert a.findings == []


def test_old_api_tuple_indexed_gives_the_id_as_hook():
    a = _analysis('sae = SAE.from_pretrained("gpt2-small-res-jb", "blocks.8.hook_resid_pre")[0]\n'
                  '_, cache = model.run_with_cache_with_saes("x", saes=[sae])\n'
                  'acts = cache[f"{sae.cfg.hook_name}.hook_sae_acts_post"]\n')
    assert _hover(a, 'cache[f"{sae.cfg.hook_name}').split("\n\n")[0] == \
        "`blocks.8.hook_resid_pre.hook_sae_acts_post` · `[batch, pos, d_sae]`"


def test_an_sae_own_cache_names_its_hook_points():
    a = _analysis('sae = SAE.from_pretrained("gpt2-small-res-jb", "blocks.8.hook_resid_pre")\n'
                  '_, sae_cache = sae.run_with_cache(x)\n'
                  'acts = sae_cache["hook_sae_acts_post"]\n'
                  'out = sae_cache["hook_sae_output"]\n')
    head = _hover(a, 'sae_cache["hook_sae_acts_post"]').split("\n\n")
    assert head[0] == "`hook_sae_acts_post` · `[..., d_sae]`"
    assert "a hook point of an SAE itself" in head[1]
    assert _hover(a, 'sae_cache["hook_sae_output"]').split("\n\n")[0] == "`hook_sae_output`"
    assert a.findings == []


def test_hook_z_sae_output_and_error_are_per_head_again():
    z = ("batch", "pos", "n_heads", "d_head")
    assert sae_shape(z, "blocks.{l}.attn.hook_z", "hook_sae_input") == ("batch", "pos", "n_heads*d_head")
    assert sae_shape(z, "blocks.{l}.attn.hook_z", "hook_sae_recons") == ("batch", "pos", "n_heads*d_head")
    assert sae_shape(z, "blocks.{l}.attn.hook_z", "hook_sae_acts_post") == ("batch", "pos", "d_sae")
    assert sae_shape(z, "blocks.{l}.attn.hook_z", "hook_sae_output") == z  # after reshape_fn_out
    assert sae_shape(z, "blocks.{l}.attn.hook_z", "hook_sae_error") == z  # input minus the reshaped reconstruction
    resid = ("batch", "pos", "d_model")
    assert sae_shape(resid, "blocks.{l}.hook_resid_pre", "hook_sae_output") == resid


def test_an_sae_whose_hook_name_is_set_in_the_file_is_not_read_from_its_id():
    load = ('sae = SAE.from_pretrained("gpt2-small-res-jb", "blocks.8.hook_resid_pre")\n'
            '_, cache = model.run_with_cache_with_saes("x", saes=[sae])\n')
    read = 'acts = cache[sae.cfg.hook_name]\n'
    assert _hover(_analysis(load + read), "cache[sae.cfg.hook_name]").startswith("`blocks.8.hook_resid_pre`")
    assert _hover(_analysis(load + 'sae.cfg.hook_name = "blocks.9.hook_resid_pre"\n' + read), "cache[sae.cfg.hook_name]") is None
