"""Half-typed, truncated and random documents never crash or hang the analysis or the features."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from lsp_server.analysis.document import AnalysisContext, analyze
from lsp_server.features.completion import completions
from lsp_server.features.hover import hover
from lsp_server.features.inlay_hints import inlay_hints
from lsp_server.knowledge.resolve import resolve_model_name

ROOT = Path(__file__).parent.parent.parent
SOURCES = [p.read_text() for p in sorted((ROOT / "examples").rglob("*.py"))] + [
    p.read_text() for p in sorted((ROOT / "tests" / "fixtures").rglob("*.py"))
]
CONTEXT = AnalysisContext(tl_major=4, resolve_model=resolve_model_name)

# Fragments research code is made of, recombined at random.
FRAGMENTS = [
    'cache["', 'cache["resid_post", ', "5]", "layer]", 'f"blocks.{', "}.hook_z", '"]', "model.", "run_with_cache(",
    "run_with_hooks(", "fwd_hooks=[(", "lambda n: n.endswith(", "add_hook(", "reset_hooks()", "utils.get_act_name(",
    "%timeit ", "!pip install ", "?", "\n", "    ", "def f(x, hook):", "for l in range(", "):", "(", ")", "[", "]",
    '"""', "'", "#", "\\", "ℓ", "😀", "\t", "with model.hooks(", "to_single_token(", '" Neel"', "= ", ", ",
    "HookedTransformer.from_pretrained(", '"gpt2-small"', "logits, cache = ", "-1", "12", "None", ":", "**",
    " + 1", ' + "', "layer", " * 2", " // ", "model.cfg.n_layers", "1.5", "True",
]


def exercise(text: str, notebook: bool = False) -> None:
    start = time.perf_counter()
    analysis = analyze(text, CONTEXT, notebook=notebook)
    assert time.perf_counter() - start < 5, "analysis must never hang"
    n = len(analysis.source)
    for offset in {0, n // 3, n // 2, n - 1, n} if n else {0}:
        offset = max(0, min(offset, n))
        hover(analysis, offset)
        completions(analysis, offset)
    inlay_hints(analysis, 0, n)
    for f in analysis.findings:
        assert 0 <= f.start <= f.end <= n


def test_every_truncation_of_the_examples():
    for text in SOURCES:
        step = max(1, len(text) // 150)
        for cut in range(0, len(text), step):
            exercise(text[:cut])


def test_every_line_deleted():
    for text in SOURCES[:4]:
        lines = text.splitlines(keepends=True)
        for i in range(len(lines)):
            exercise("".join(lines[:i] + lines[i + 1:]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60), st.booleans())
def test_random_fragments(parts, notebook):
    exercise("".join(parts), notebook)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_random_text(text):
    exercise(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(SOURCES) - 1), st.data(), st.booleans())
def test_random_splices(index, data, notebook):
    text = SOURCES[index]
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, len(text)))
    noise = data.draw(st.sampled_from(FRAGMENTS))
    exercise(text[:a] + noise + text[b:], notebook)


def test_layers_computed_from_anything_never_crash():
    """A layer that evaluates to a string pattern, a float or a bool is unknown, not a crash (a
    `str + str` layer used to reach the cache-key rules as a Pattern and raise TypeError)."""
    for layer in ('layer + 1', '"a" + name', '1.5', 'True', '2 * "x"', '10 // 0', 'model.cfg.n_layers - 1'):
        exercise(f'model = HookedTransformer.from_pretrained("gpt2")\nlogits, cache = model.run_with_cache("x")\n'
                 f'layer = 3\nname = "x"\nv = cache["resid_post", {layer}]\nw = cache["scale", {layer}, "ln1"]\n')


def test_objects_built_from_themselves_in_a_notebook():
    """A notebook cell may be run in any order, so `site = Site(head=site.head)` reads its own result:
    the evaluation is bounded like any other (constructors' arguments and SAE ids used to restart the depth
    count, and recursed until Python gave up)."""
    exercise('sae = SAE.from_pretrained("gpt2-small-res-jb", sae.cfg.hook_name)\ncache[sae.cfg.hook_name]\n', notebook=True)
    exercise("class Site:\n    def __init__(self, kind, head=None):\n        self.kind = kind\n        self.head = head\n\n"
             "site = Site(f\"{site.kind}_input\", head=site.head)\ncache[site.kind]\n", notebook=True)


def _evaluations(monkeypatch) -> list[int]:
    """A counter of the expressions the analyses evaluate from now on (every file's evaluator)."""
    from lsp_server.analysis.values import Evaluator

    count, evaluate = [0], Evaluator._eval

    def counted(self, node, depth):
        count[0] += 1
        return evaluate(self, node, depth)

    monkeypatch.setattr(Evaluator, "_eval", counted)
    return count


NODE = '''from transformer_lens import HookedTransformer, utils
model = HookedTransformer.from_pretrained("gpt2")
_, cache = model.run_with_cache("x")


class Node:
    def __init__(self, component_name, layer=None, head=None, neuron=None, seq_pos=None):
        self.component_name = component_name
        self.layer = layer
        self.head = head
        self.neuron = neuron
        self.seq_pos = seq_pos

    @property
    def activation_name(self):
        return utils.get_act_name(self.component_name, layer=self.layer)

    def resolved(self, pos):
        return Node(component_name=self.component_name, layer=self.layer, head=self.head,
                    neuron=self.neuron, seq_pos=pos)

    def read(self, cache):
        return cache[self.activation_name]


node = Node("z", 9, 9)
z = cache[node.activation_name]
'''


def test_an_instance_built_from_its_own_attributes_ends_the_walk_at_once(monkeypatch):
    """Seen in real code (a path-patching `Node` whose method returns `Node(layer=self.layer, head=self.head, ...)`):
    `self.activation_name` follows every construction of `Node`, that one too, whose arguments read `self`'s
    attributes again, five at a time down to the depth bound: ~200,000 expressions (9 s) for this file. The cycle is
    unknown at once, and the module-level instance still resolves."""
    count = _evaluations(monkeypatch)
    analysis = analyze(NODE, CONTEXT)
    assert count[0] < 5_000, count[0]
    shown = hover(analysis, NODE.index("cache[node.activation_name]") + len("cache[") + 1)
    assert shown is not None and shown.markdown.startswith("`blocks.9.attn.hook_z`"), shown
    assert hover(analysis, NODE.index("cache[self.activation_name]") + len("cache[") + 1) is None


def test_a_value_whose_evaluation_multiplies_is_unknown_past_a_bound(monkeypatch):
    """Instances built from the attributes of instances built from the attributes of ...: each construction's
    arguments are read in full, six per level, so the walk multiplies by six per level (2.4 million expressions,
    minutes, nine levels deep). One value's evaluation stops at MAX_STEPS and is unknown."""
    from lsp_server.analysis.values import MAX_STEPS

    attrs = [f"a{i}" for i in range(6)]
    source = ("from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained('gpt2')\n"
              "_, cache = model.run_with_cache('x')\n"
              f"class P:\n    def __init__(self, {', '.join(attrs)}):\n" + "".join(f"        self.{a} = {a}\n" for a in attrs)
              + f"\np0 = P({', '.join(repr('resid_pre') for _ in attrs)})\n"
              + "".join(f"p{k} = P({', '.join(f'p{k - 1}.{a}' for a in attrs)})\n" for k in range(1, 9))
              + "v = cache[p8.a0, 3]\n")
    count = _evaluations(monkeypatch)
    analysis = analyze(source, CONTEXT)
    assert count[0] <= 2 * MAX_STEPS, count[0]
    assert hover(analysis, source.index("cache[p8") + len("cache[") + 1) is None
