"""Hover coverage and findings on a corpus of real research code (not committed: build your own; the
repositories of the corpora measured so far are listed in benchmarks/CORPORA.md).

For every subscript of a name that holds a cache (or is called like one: ``*cache*``), asks the hover
whether it names a hook point with its shape, and groups the subscripts by how the key is written;
names the analysis finds bound to a dict or a non-TransformerLens class are counted apart. Also counts
every finding by code, and writes them out for reading by hand (precision is judged, not computed).

    .venv/bin/python benchmarks/corpus_accuracy.py CORPUS_DIR [--tl 2] [--findings findings.tsv] [--misses misses.tsv]

Counted apart, as not ActivationCache subscripts: names the analysis finds bound to a dict, a list or
a non-TransformerLens object (also in the enclosing scope, or passed a dict by every caller; or a
parameter annotated as a tensor), int keys and tensor indexing (an ActivationCache has no int keys), and
caches of the user's own modules (an SAE or toy model written as a HookedRootModule, or any cache handed
to a file that defines its own ``HookPoint``). Literal keys that hover are checked for the exact name.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from lsp_server.analysis.document import AnalysisContext  # noqa: E402
from lsp_server.analysis.syntax import call_name, descendants, string_value, text  # noqa: E402
from lsp_server.knowledge.act_names import cache_key_name  # noqa: E402
from lsp_server.analysis.value_types import is_int, options_of  # noqa: E402
from lsp_server.features.hover import hover  # noqa: E402
from lsp_server.files import load_views  # noqa: E402
from lsp_server.knowledge.resolve import resolve_model_name  # noqa: E402
from lsp_server.modules import linked_workspace  # noqa: E402


def key_form(key) -> str:
    if key.type == "string":
        return "f-string" if text(key)[:2].lower() in ("f'", 'f"') or text(key)[:3].lower() in ("rf'", 'rf"') else "literal"
    if key.type in ("tuple", "expression_list") or key.type == "slice":
        return "tuple"
    if key.type == "call" and "get_act_name" in text(key.child_by_field_name("function")):
        return "get_act_name"
    if key.type == "identifier":
        return "variable"
    if key.type == "attribute" and text(key).endswith(".name"):
        return "hook.name"
    return "other"


def _short(name: str) -> bool:
    """A short name the cache expands through get_act_name (``"embed"``): TransformerLens's own rule, a
    name with no dot that does not start with ``hook_``."""
    return "." not in name and not name.startswith("hook_")


def _int_key(analysis, key) -> bool:
    """Whether every value of ``key`` is an int (``caches[layer]`` with ``layer`` from ``range(...)``
    or a list of ints): ActivationCache has no int keys, so its receiver is not one."""
    if key.type == "integer" or key.type == "unary_operator" and key.named_child_count == 1 \
            and key.named_children[0].type == "integer":
        return True  # (`x[-1]` too)
    if key.type != "identifier":
        return False
    d = analysis.scopes.lookup(text(key), key.start_byte)
    if d is not None and d.kind == "for" and d.node.type == "call" and text(d.node.child_by_field_name("function")) == "range":
        return True
    if d is not None and d.kind == "for" and d.node.type == "call" and text(d.node.child_by_field_name("function")) == "enumerate" \
            and d.target.type in ("pattern_list", "tuple_pattern") and text(d.target.named_children[0]) == text(key):
        return True  # `for i, block in enumerate(blocks)`: the index
    values = options_of(analysis.evaluator.eval(key))
    return bool(values) and all(is_int(v) for v in values)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--tl", type=int, default=2, help="TransformerLens major version the code targets")
    ap.add_argument("--findings", type=Path, help="write every finding here (tsv) to judge by hand")
    ap.add_argument("--misses", type=Path, help="write every cache subscript whose hover names no hook here (tsv)")
    ap.add_argument("--hovers", type=Path, help="write every cache subscript's hover head here (tsv: diff two runs to see what changed)")
    args = ap.parse_args()
    # Each top-level folder is one repository: imports are followed between its files.
    workspaces = {repo: linked_workspace(lambda _: AnalysisContext(tl_major=args.tl, resolve_model=resolve_model_name), repo)
                  for repo in args.corpus.iterdir() if repo.is_dir()}
    by_form: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    codes: collections.Counter = collections.Counter()
    rows = []
    misses = []
    hovers = []
    exact, wrong = [0, 0], []  # literal keys that hover: how many show exactly that name
    dict_keys = 0
    files = sorted(p for p in args.corpus.rglob("*") if p.suffix in (".py", ".ipynb"))
    for path in files:
        try:
            views = load_views(path, workspaces[args.corpus / path.relative_to(args.corpus).parts[0]])
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        analysis = views[0].analysis
        # A file that defines its own HookPoint writes its own hook system (an early EasyTransformer copy):
        # the caches its functions are handed hold that module's names.
        own_hook_points = any(text(c.child_by_field_name("name")) in ("HookPoint", "HookedRootModule")
                              for c in analysis.scopes.classes if c.child_by_field_name("name") is not None)
        for sub in descendants(analysis.parsed.root, "subscript"):
            value = sub.child_by_field_name("value")
            if value is None or value.type != "identifier" or "cache" not in text(value).lower():
                continue
            keys = sub.children_by_field_name("subscript")
            if not keys or (len(keys) == 1 and keys[0].type == "slice"):
                continue
            key = keys[0] if len(keys) == 1 else keys[0].parent
            form = "tuple" if len(keys) > 1 else key_form(keys[0])
            result = hover(analysis, keys[0].start_byte + 1)
            head = result.markdown.split("\n\n")[0] if result is not None else ""
            named = (head.startswith("`") and " · `[" in head) or head.startswith("One of")  # a name with its shape
            cache = analysis.models.cache_at(value)
            guessed = cache is None or (cache.model is None and cache.call is None)  # by its name alone, as the analysis
            if guessed and analysis.registrations._plain_container(value):
                form = "not a cache (dict, own class)"
            elif cache is not None and cache.call is not None and cache.model is None \
                    and analysis.registrations.foreign_receiver(call_name(cache.call)[2]):
                form = "not a model's cache (an SAE's or toy module's own)"  # hook names of the user's module
            elif guessed and own_hook_points:
                form = "not a model's cache (an SAE's or toy module's own)"
            elif len(keys) > 1 and (keys[0].type == "integer" or any(k.type in ("slice", "ellipsis") for k in keys)):
                form = "not a cache (int key: a list, tensor or dict of layers)"  # tensor indexing: `x[:, 3]`, `x[b, h, :]`
            elif len(keys) == 1 and _int_key(analysis, keys[0]):
                form = "not a cache (int key: a list, tensor or dict of layers)"  # ActivationCache keys are names
            by_form[form][0] += 1
            by_form[form][1] += named
            dict_keys += form.startswith("not a cache") and " · a dict key" in head  # a hook name keying the code's own dict
            if form == "literal" and named:  # the name shown must be the key itself (or what get_act_name makes of it)
                literal = string_value(keys[0])
                wanted = literal if literal is None or not _short(literal) else cache_key_name(literal)
                exact[0] += 1
                exact[1] += head.startswith(f"`{wanted}`")
                if not head.startswith(f"`{wanted}`"):
                    wrong.append(f"{path.relative_to(args.corpus)}: {text(sub)} shows {head[:80]!r}")
            line = analysis.lines.position(sub.start_byte).line + 1
            hovers.append(f"{path.relative_to(args.corpus)}\t{line}\t{form}\t{text(sub)[:100]!r}\t{head[:300]!r}")
            if not named:
                misses.append(f"{path.relative_to(args.corpus)}\t{line}\t{form}\t{text(sub)[:100]!r}\t{head[:80]!r}")
        for f in analysis.findings:
            codes[f.code] += 1
            line = analysis.lines.position(f.start).line + 1
            rows.append(f"{path.relative_to(args.corpus)}\t{line}\t{f.code}\t{f.message[:160]}")
    caches = {f: v for f, v in by_form.items() if not f.startswith("not a")}
    total = [sum(v[0] for v in caches.values()), sum(v[1] for v in caches.values())]
    print(f"{len(files)} files; cache subscripts whose hover names a hook point, by key form:\n")
    print("| key form | subscripts | hover names a hook | share |")
    print("|---|---|---|---|")
    for form, (n, ok) in sorted(by_form.items(), key=lambda kv: -kv[1][0]):
        print(f"| {form} | {n} | {ok} | {ok / n:.0%} |")
    print(f"| **all but the non-caches** | {total[0]} | {total[1]} | {total[1] / max(total[0], 1):.0%} |")
    print(f"\nliteral keys that hover with exactly their name: {exact[1]} of {exact[0]}" + "".join(f"\n  {w}" for w in wrong))
    print(f"subscripts of the non-caches whose key hovers as a hook name keying the code's own dict: {dict_keys}")
    print("\nfindings by code: " + (", ".join(f"{c} {n}" for c, n in codes.most_common()) or "none"))
    if args.findings:
        args.findings.write_text("\n".join(rows) + "\n")
    if args.misses:
        args.misses.write_text("\n".join(misses) + "\n")
    if args.hovers:
        args.hovers.write_text("\n".join(hovers) + "\n")


if __name__ == "__main__":
    main()
