"""A synthetic research workspace: helper modules that build hook names, return caches and add hooks, and
scripts that import them (``from helpers_17 import name_of``, ``import utils_3 as u``), with import chains
(script -> helpers -> utils -> sites), between ordinary research code (``corpus.py``, ``examples/``)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.corpus import EXAMPLES, ORDINARY

SITES = '''\
"""Hook sites shared by every helper."""
ATTN = "attn.hook_z"
RESID = "hook_resid_post"


def site_name(layer, site=RESID):
    return f"blocks.{layer}.{site}"
'''

UTILS = '''\
"""Utilities {j}: caches and names, built on the shared sites."""
from transformer_lens import HookedTransformer
from sites import site_name


def resid(layer):
    return site_name(layer)


def run(model, prompts):
    _, cache = model.run_with_cache(prompts)
    return cache
'''

HELPERS = '''\
"""Helpers {k}: the names of the hooks our experiments patch, and hooks that stay registered."""
from transformer_lens import HookedTransformer
import utils_{j} as u


def name_of(layer):
    return f"blocks.{{layer}}.attn.hook_z"


def cached(model, prompts):
    return u.run(model, prompts)


def zero_head(z, hook, head=0):
    z[:, :, head] = 0
    return z


def add_patch(model, layer):
    model.add_hook(name_of(layer), zero_head)
'''

SCRIPT = '''\
"""Experiment {i}."""
import pandas as pd
from dataclasses import dataclass
from transformer_lens import HookedTransformer
from helpers_{k} import name_of, cached, add_patch
import utils_{j} as u

model = HookedTransformer.from_pretrained("gpt2")
cache = cached(model, "When John and Mary went to the shops")
z = cache[name_of({layer})]
r = cache[u.resid({layer})]
add_patch(model, {layer})
'''


def workspace_files(n_files: int) -> dict[str, str]:
    """``n_files`` files (relative path -> text): one shared module, ``n/15`` utils, ``n/6`` helpers and
    scripts for the rest (some in ``experiments/``), each script with a stretch of ordinary code."""
    examples = [p.read_text() for p in sorted(EXAMPLES.rglob("*.py"))]
    n_utils, n_helpers = max(1, n_files // 15), max(1, n_files // 6)
    files = {"sites.py": SITES}
    files.update({f"utils_{j}.py": UTILS.format(j=j) for j in range(n_utils)})
    files.update({f"helpers_{k}.py": HELPERS.format(k=k, j=k % n_utils) for k in range(n_helpers)})
    for i in range(n_files - len(files)):
        folder = "experiments/" if i % 3 == 2 else ""
        body = SCRIPT.format(i=i, k=i % n_helpers, j=i % n_utils, layer=i % 12)
        tail = examples[i % len(examples)].replace("model", f"model{i % 5}") + ORDINARY.format(i=i)
        files[f"{folder}script_{i}.py"] = body + tail
    return files


def write_workspace(root: Path, n_files: int) -> dict[str, str]:
    files = workspace_files(n_files)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files
