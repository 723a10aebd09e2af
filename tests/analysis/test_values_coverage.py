"""Values research code computes hook names with (issue 9): tuple unpacking, augmented assignments,
filter functions joined by ``or``, and activation stores (dicts hook functions fill under ``hook.name``)."""

from __future__ import annotations

from lsp_server.analysis.activation_stores import ActivationStores
from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.analysis.hookrefs import _filter_tests
from lsp_server.analysis.syntax import descendants, text
from lsp_server.analysis.value_types import Hole, OneOf, Pattern
from lsp_server.features.hover import hover
from lsp_server.knowledge.resolve import resolve_model_name

HEADER = '''\
from functools import partial
from transformer_lens import HookedTransformer
model = HookedTransformer.from_pretrained("gpt2")
_, cache = model.run_with_cache("x")
'''


def _analysis(body: str):
    return analyze(HEADER + body, AnalysisContext(tl_major=2, resolve_model=resolve_model_name))


def _value_at(analysis, needle: str, occurrence: int = -1):
    """The evaluated value of the identifier ``needle`` (its last occurrence unless told)."""
    nodes = [n for n in descendants(analysis.parsed.root, "identifier") if text(n) == needle]
    return analysis.evaluator.eval(nodes[occurrence])


def _hover_head(analysis, needle: str) -> str | None:
    at = analysis.source.rindex(needle.encode()) + needle.index("[") + 1  # on the key
    result = hover(analysis, at)
    return result.markdown.split("\n\n")[0] if result is not None else None


# -- tuple unpacking

def test_unpacked_names_take_their_item():
    a = _analysis('name, layer = "resid_post", 7\nname\nlayer\n')
    assert _value_at(a, "name") == "resid_post"
    assert _value_at(a, "layer") == 7


def test_unpacked_from_a_helper_each_return():
    a = _analysis('def f(x):\n    if x:\n        return "a", 1\n    return "b", 2\nn, l = f(3)\nn\nl\n')
    assert set(_value_at(a, "n").options) == {"a", "b"}
    assert set(_value_at(a, "l").options) == {1, 2}


def test_unpacking_a_length_mismatch_or_star_is_unknown():
    a = _analysis('x, y = "a", "b", "c"\nx\nfirst, *rest = ["a", "b"]\nfirst\n')
    assert _value_at(a, "x") is None
    assert _value_at(a, "first") is None


# -- augmented assignments

def test_augmented_assignment_makes_the_name_unknown_in_its_scope():
    a = _analysis('layer = 3\nlayer += 1\nlayer\n')
    assert _value_at(a, "layer") is None


def test_augmented_assignment_elsewhere_or_in_a_comment_leaves_it_known():
    a = _analysis('# layer += 1 in a comment\nlayer = 3\ndef f():\n    layer = 0\n    layer += 1\n    return layer\nlayer\n')
    assert _value_at(a, "layer") == 3


def test_augmented_parameter_no_longer_gives_a_wrong_layer():
    """The layer read after ``layer -= 1`` is not the one passed: no out-of-range error for 12 on gpt2."""
    a = _analysis('def f(layer):\n    if layer == 12:\n        layer -= 1\n    return cache["resid_post", layer]\nf(12)\n')
    assert not [f for f in a.findings if f.code == "layer-out-of-range"]
    assert _hover_head(a, 'cache["resid_post", layer]').startswith("`blocks.{layer}.hook_resid_post`")


# -- filters

def _filter_node(source: str):
    a = _analysis(source)
    return next(iter(descendants(a.parsed.root, "function_definition", "lambda")))


def test_filter_tests_of_an_or_chain_and_a_one_return_def():
    fn = _filter_node('def keep(name: str) -> bool:\n    """Doc."""\n    return name.endswith("z") or ("resid" in name)\n')
    assert sorted(text(t) for t in _filter_tests(fn)) == ['"resid" in name', 'name.endswith("z")']
    assert [text(t) for t in _filter_tests(_filter_node('f = lambda n: n == "blocks.0.hook_z"\n'))] == ['n == "blocks.0.hook_z"']


def test_filter_with_and_not_or_two_statements_has_no_tests():
    assert _filter_tests(_filter_node('f = lambda n: "resid" in n and n.endswith("post")\n')) is None
    assert _filter_tests(_filter_node('f = lambda n: not n.endswith("z")\n')) is None
    assert _filter_tests(_filter_node('def f(n):\n    k = n.endswith("z")\n    return k\n')) is None


def test_typed_def_filter_selects_the_cache_keys():
    a = _analysis('def keep(name: str) -> bool:\n    return name.endswith("hook_z") or name == "blocks.0.hook_resid_pre"\n'
                  '_, small = model.run_with_cache("x", names_filter=keep)\nfor key in small:\n    cache[key]\n')
    assert _hover_head(a, "cache[key]") == "One of 2 hook names:"


# -- activation stores

def _stores(source: str):
    a = _analysis(source)
    return a, ActivationStores(a.scopes)


def _last_name(a, word: str):
    return [n for n in descendants(a.parsed.root, "identifier") if text(n) == word][-1]


STORE = '''\
saved_cache = {}
def save(act, hook):
    saved_cache[hook.name] = act.detach()
model.run_with_hooks("x", fwd_hooks=[("blocks.2.hook_mlp_out", save)])
saved_cache["blocks.2.hook_mlp_out"]
'''


def test_a_dict_filled_with_activations_under_hook_name_is_a_store():
    a, stores = _stores(STORE)
    assert stores.is_store(_last_name(a, "saved_cache"))
    assert [text(k) for k in stores.write_keys(_last_name(a, "saved_cache"))] == ["hook.name"]


def test_not_a_store_when_it_holds_other_keys_other_values_or_is_filled_otherwise():
    for changed in (STORE.replace("saved_cache = {}", 'saved_cache = {"x": 1}'),
                    STORE.replace("act.detach()", "act.mean(0)"),
                    STORE + 'saved_cache["extra"] = 1\n',
                    STORE + "saved_cache.update({})\n",
                    STORE + "saved_cache = {}\n"):
        a, stores = _stores(changed)
        assert not stores.is_store(_last_name(a, "saved_cache")), changed


def test_store_reads_hover_but_are_never_judged():
    a = _analysis(STORE + 'saved_cache["blocks.2.hook_mlp_in"]\nsaved_cache["blocks.2.hook_mlp_outt"]\n')
    assert _hover_head(a, 'saved_cache["blocks.2.hook_mlp_out"]').startswith("`blocks.2.hook_mlp_out` · `[batch, pos, d_model]`")
    assert "not an ActivationCache" in hover(a, a.source.rindex(b'saved_cache["blocks.2.hook_mlp_out"]') + 13).markdown
    assert _hover_head(a, 'saved_cache["blocks.2.hook_mlp_in"]') is None  # not a name the filling hook runs on
    assert not [f for f in a.findings if f.code in ("unknown-hook", "hook-not-enabled", "layer-out-of-range")]


def test_a_hook_name_keying_another_dict_hovers_without_claiming_the_value_is_the_activation():
    """Mean ablation: `mean_cache[hook.name]` names the hook point the function is registered on, as a dict key; the
    shape shown is the hook point's own, not the value's (a mean). Never judged: a dict holds what the code put."""
    a = _analysis('mean_cache = {k: v.mean(0, keepdim=True) for k, v in cache.items()}\n'
                  'def ablate(z, hook, mean_cache):\n    z[:] = mean_cache[hook.name]\n    return z\n'
                  'model.run_with_hooks("x", fwd_hooks=[("blocks.3.attn.hook_z", partial(ablate, mean_cache=mean_cache))])\n'
                  'mean_cache["blocks.99.hook_resid_pre"]\nmean_cache["accuracy"]\n')
    markdown = hover(a, a.source.index(b"mean_cache[hook.name]") + len("mean_cache[")).markdown
    head, _, rest = markdown.partition("\n\n")
    assert head == "`blocks.3.attn.hook_z` · a dict key", head
    assert "not an ActivationCache" in rest and "own activation is `[batch, pos, n_heads, d_head]` = `[batch, pos, 12, 64]`" in rest
    assert _hover_head(a, 'mean_cache["accuracy"]') is None
    assert not [f for f in a.findings if f.code in ("unknown-hook", "layer-out-of-range")]


# -- call-site bound

def test_parameters_follow_up_to_sixteen_call_sites_and_no_more():
    from lsp_server.analysis.values import MAX_CALL_SITES

    body = 'def read(c, name):\n    return c[name]\n'
    sites = "".join(f'read(cache, "blocks.{i}.hook_resid_post")\n' for i in range(MAX_CALL_SITES))
    a = _analysis(body + sites)
    value = _value_at(a, "name")
    assert MAX_CALL_SITES == 16 and len(value.options) == 16
    a = _analysis(body + sites + 'read(cache, "blocks.0.hook_mlp_out")\n')
    assert _value_at(a, "name") is None  # one site past the bound: unknown, never a partial list


# -- receivers that are not caches

def test_a_name_annotated_as_a_tensor_or_array_is_not_a_cache():
    a = _analysis('def ablate(component, hook, cached_means: Float[Tensor, "layer d_model"], layer: int = 0):\n'
                  '    component[:] = cached_means[layer]\n'
                  'def read(acts, hook, act_cache: ActivationCache, name="blocks.0.hook_resid_post"):\n'
                  '    return act_cache[name]\n'
                  'def plot(attn, i):\n'
                  '    head_cache: Float[np.ndarray, "n_mazes seq seq"] = attn[0]\n'
                  '    return head_cache[i, -1]\n'
                  'def per_layer(named_cache: Dict[str, Tensor], name):\n'
                  '    return named_cache[name]\n')
    receivers = {text(v): v for n in descendants(a.parsed.root, "subscript")
                 if (v := n.child_by_field_name("value")).type == "identifier"}
    assert a.registrations._plain_container(receivers["cached_means"])
    assert a.registrations._plain_container(receivers["head_cache"])
    assert not a.registrations._plain_container(receivers["act_cache"])
    assert not a.registrations._plain_container(receivers["named_cache"])  # keyed by hook names, maybe


# -- config dicts

def test_a_dict_literal_is_read_only_while_nothing_may_change_it():
    cases = {
        'cfg["act_name"] = "blocks.5.hook_resid_post"\n': None,
        'del cfg["act_name"]\n': None,
        'cfg.setdefault("act_name", "blocks.5.hook_resid_post")\n': None,
        'cfg |= {"act_name": "blocks.5.hook_resid_post"}\n': None,
        'json.dump(cfg, f)\n': None,  # handed to a function: it may change it
        'for k in cfg:\n    print(k, cfg[k], len(cfg))\n': "blocks.0.hook_resid_post",
        'keys = [k for k in cfg]\n': "blocks.0.hook_resid_post",
        'cfg = {"act_name": "blocks.2.hook_resid_post"}\n': "blocks.2.hook_resid_post",  # rebound: the last binding
        'seeded = {**cfg, "seed": 0}\n': "blocks.0.hook_resid_post",  # a spread copies it
        # Handed to a function of this file: known while that function only reads the parameter (two calls deep).
        'def train(c):\n    return c["lr"], c.get("act_name")\ntrain(cfg)\n': "blocks.0.hook_resid_post",
        'def train(lr, config=None):\n    return show(config)\ndef show(c):\n    print(c["act_name"])\n'
        'train(1, config=cfg)\n': "blocks.0.hook_resid_post",
        'def train(c):\n    c["act_name"] = "blocks.1.hook_z"\ntrain(cfg)\n': None,
        'def train(c):\n    c.update(lr=2)\ntrain(cfg)\n': None,
        'def train(c):\n    json.dump(c, f)\ntrain(cfg)\n': None,
        'def train(c):\n    other = c\ntrain(cfg)\n': None,
        'def train(*cs):\n    print(cs)\ntrain(cfg)\n': None,
    }
    for change, expected in cases.items():
        a = _analysis('cfg = {"act_name": "blocks.0.hook_resid_post"}\n' + change + 'x = cfg["act_name"]\nx\n')
        assert _value_at(a, "x") == expected, change


def test_a_dict_literal_read_with_an_unknown_key_is_one_of_its_values():
    """Seen in real code: `hook_name = get_act_name(_TARGETED_HOOK_MAP[component], layer)`, `component` a parameter."""
    sites = 'SITES = {"attn_head": "z", "mlp_neuron": "post", "resid": "resid_pre"}\n'
    a = _analysis(sites + 'def run(component, layer):\n    x = utils.get_act_name(SITES[component], layer)\n    x\n')
    assert _value_at(a, "x") == OneOf(tuple(Pattern(("blocks.", Hole("layer"), site))
                                            for site in (".attn.hook_z", ".mlp.hook_post", ".hook_resid_pre")))
    # Several known keys select their values only; a key the dict lacks, or a non-string one, selects nothing.
    a = _analysis(sites + 'for c in ["resid", "attn_head"]:\n    y = SITES[c]\n    y\n')
    assert _value_at(a, "y") == OneOf(("z", "resid_pre"))
    assert _value_at(_analysis(sites + 'y = SITES["nope"]\ny\n'), "y") is None
    assert _value_at(_analysis(sites + 'y = SITES[3]\ny\n'), "y") is None
    # Loops over it: its keys, or its values.
    loops = {'for k in SITES:\n    y = k\n': ("attn_head", "mlp_neuron", "resid"),
             'for k in SITES.keys():\n    y = k\n': ("attn_head", "mlp_neuron", "resid"),
             'for v in SITES.values():\n    y = v\n': ("z", "post", "resid_pre"),
             'for k, v in SITES.items():\n    y = v\n': ("z", "post", "resid_pre"),
             'for k, v in SITES.items():\n    y = k\n': ("attn_head", "mlp_neuron", "resid")}
    for loop, expected in loops.items():
        assert _value_at(_analysis(sites + loop + '    y\n'), "y") == OneOf(expected), loop
    assert _value_at(_analysis(sites + 'SITES["x"] = "y"\nfor k in SITES:\n    y = k\n    y\n'), "y") is None
    # A literal that unpacks another dict, or that the file may change, has keys not seen here.
    assert _value_at(_analysis('SITES = {"a": "z", **more}\ndef f(c):\n    y = SITES[c]\n    y\n'), "y") is None
    assert _value_at(_analysis(sites + 'SITES.update(extra)\ndef f(c):\n    y = SITES[c]\n    y\n'), "y") is None
    # A known key: the last pair holding it, unless what follows it may hold it too.
    read = 'y = SITES["a"]\ny\n'
    assert _value_at(_analysis('SITES = {"a": "z", "a": "q", "b": "v"}\n' + read), "y") == "q"
    assert _value_at(_analysis('SITES = {**more, "a": "z"}\n' + read), "y") == "z"
    assert _value_at(_analysis('SITES = {"a": "z", **more}\n' + read), "y") is None
    assert _value_at(_analysis('SITES = {"a": "z", name: "q"}\n' + read), "y") is None
    assert _value_at(_analysis('SITES = {"a": "z", 3: "q", "b": "v"}\n' + read), "y") == "z"


def test_a_format_template_with_several_values_formats_each():
    """Seen in real code: `def sweep(hook_template): ... hook_template.format(L)`, called with three module constants."""
    a = _analysis('RESID, MLP = "blocks.{}.hook_resid_pre", "blocks.{}.hook_mlp_out"\n'
                  'def sweep(hook_template):\n    for L in range(n_layers):\n        x = hook_template.format(L)\n        x\n'
                  'sweep(RESID)\nsweep(MLP)\n')
    assert _value_at(a, "x") == OneOf((Pattern(("blocks.", Hole("L"), ".hook_resid_pre")),
                                       Pattern(("blocks.", Hole("L"), ".hook_mlp_out"))))
    assert _value_at(_analysis('def f(t):\n    x = t.format(3)\n    x\nf("blocks.{}.hook_z")\nf(some_name)\n'), "x") is None


def test_an_item_of_the_tuple_a_call_returns_at_a_literal_index():
    """Seen in real code: `NAMES = [get_resid_name(layer, model)[0] for layer in ...]`, the helper returning (name, layer)."""
    helper = ('def get_resid_name(layer, model):\n    resid_type = "resid_pre"\n    if layer == model.cfg.n_layers:\n'
              '        resid_type = "resid_post"\n        layer -= 1\n    return utils.get_act_name(resid_type, layer), layer\n')
    both = OneOf(tuple(Pattern(("blocks.", Hole("layer"), site)) for site in (".hook_resid_pre", ".hook_resid_post")))
    a = _analysis(helper + 'names = [get_resid_name(l, model)[0] for l in range(4)]\nfor each in names:\n    picked = each\n'
                  '    picked\nlast = get_resid_name(3, model)[-2]\nlast\nbeyond = get_resid_name(3, model)[2]\nbeyond\n')
    assert _value_at(a, "each", 0) == both and _value_at(a, "last") == both
    assert _value_at(a, "beyond") is None  # past the end: IndexError, no value


# -- attributes of the file's own objects

def test_an_attribute_set_outside_its_class_methods_is_unknown():
    cls = ('class Store:\n'
           '    def __init__(self, hook_point="blocks.0.hook_resid_post"):\n'
           '        self.hook_point = hook_point\n'
           'store = Store()\n')
    read = 'x = store.hook_point\nx\n'
    assert _value_at(_analysis(cls + read), "x") == "blocks.0.hook_resid_post"
    assert _value_at(_analysis(cls + 'if store.hook_point == "a":\n    pass\n' + read), "x") == "blocks.0.hook_resid_post"
    for change in ('store.hook_point = "blocks.3.hook_mlp_out"\n', 'setattr(store, "hook_point", "x")\n',
                   'holder.store.hook_point += "x"\n', 'store.hook_point: str = "x"\n',
                   'class Sub(Store):\n    def __init__(self):\n        self.hook_point = "y"\n'):
        assert _value_at(_analysis(cls + change + read), "x") is None, change


def test_a_module_name_a_function_declares_global_is_unknown():
    body = 'NAME = "blocks.0.hook_resid_post"\n{}x = NAME\nx\n'
    assert _value_at(_analysis(body.format('')), "x") == "blocks.0.hook_resid_post"
    assert _value_at(_analysis(body.format('def f():\n    global NAME\n    NAME = "b"\n')), "x") is None
    assert _value_at(_analysis(body.format('def f():\n    global OTHER\n    OTHER = 1\n# global NAME\n')), "x") == \
        "blocks.0.hook_resid_post"  # another name's declaration, and a comment


def test_a_list_handed_to_a_function_that_changes_it_is_unknown():
    body = 'sites = ["blocks.0.hook_resid_post"]\n{}for s in sites:\n    s\n'
    assert _value_at(_analysis(body.format('')), "s") == "blocks.0.hook_resid_post"
    for change in ('def add(l):\n    l.append("b")\nadd(sites)\n',
                   'def add(x, l=None):\n    l += ["b"]\nadd(1, l=sites)\n',
                   'class A:\n    def add(self, l):\n        l.insert(0, "b")\nA().add(sites)\n',  # unresolved: by name
                   'other = sites\n'):
        assert _value_at(_analysis(body.format(change)), "s") is None, change
    reads = 'def show(l):\n    print(l[0])\nshow(sites)\nsorted(sites)\n'
    assert _value_at(_analysis(body.format(reads)), "s") == "blocks.0.hook_resid_post"


def test_a_default_or_an_annotation_is_read_in_the_scope_around_its_function():
    """Python evaluates them where the def runs: `def patch(x, hook, layer=layer)` reads the loop's `layer`."""
    import re

    from lsp_server.analysis.scopes import Scopes
    from lsp_server.analysis.syntax import parse
    src = ("x = 'outer'\nT = int\n"
           "def f(a, b=x, c: T = x, *, d=lambda e, g=x: (e, g), x=x):\n    x = 'inner'\n    return x, b\n"
           "h = lambda b, y=b: y\n")
    scopes = Scopes(parse(src.encode()))

    def bound_on_line(name: str, nth: int) -> int | None:
        """The line of the definition the ``nth`` use of the word ``name`` refers to (1-based)."""
        at = [m.start() for m in re.finditer(rf"\b{name}\b", src)][nth - 1]
        d = scopes.lookup(name, at)
        return src.count("\n", 0, d.offset) + 1 if d is not None else None
    # Defaults and annotations, the lambda's default (`g=x`) and `x=x` too: the module's names.
    assert [bound_on_line("x", n) for n in (2, 3, 4, 6)] == [1, 1, 1, 1]
    assert bound_on_line("T", 2) == 2
    # In the body: the function's own names; its parameters where they are written.
    assert bound_on_line("x", 8) == 4 and bound_on_line("b", 2) == 3 and scopes.lookup("b", src.index("b=x")).kind == "param"
    # A lambda's default is read outside it: `y=b` is no parameter of its own lambda.
    assert bound_on_line("b", 4) is None
