"""What `unavailable-api` claims about older TransformerLens versions holds in the real TL 2.18, 3.9 and 4.3:
each import fails before its version and works from it on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lsp_server.analysis.checks import ADDED_IN

ENVIRONMENTS = {"main": lambda: sys.executable, "ht": lambda: os.environ.get("TLENS_HT_PYTHON"),
                "ht3": lambda: os.environ.get("TLENS_HT3_PYTHON")}
PROBE = """
import importlib, importlib.metadata, json, sys
out = {"version": importlib.metadata.version("transformer-lens"), "imports": {}}
for module, name in json.loads(sys.argv[1]):
    try:
        mod = importlib.import_module(module)
        if name is not None:
            getattr(mod, name)  # what `from module import name` needs
        out["imports"][f"{module}:{name}"] = True
    except (ImportError, AttributeError):
        out["imports"][f"{module}:{name}"] = False
print(json.dumps(out))
"""


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_added_imports_exist_exactly_from_their_version(env):
    python = ENVIRONMENTS[env]()
    if not python:
        pytest.skip(f"no interpreter for the {env} environment (TLENS_HT_PYTHON / TLENS_HT3_PYTHON)")
    run = subprocess.run([python, "-c", PROBE, json.dumps(list(ADDED_IN))], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    major = int(found["version"].split(".")[0])
    for (module, name), since in ADDED_IN.items():
        assert found["imports"][f"{module}:{name}"] == (major >= since), (found["version"], module, name, since)
