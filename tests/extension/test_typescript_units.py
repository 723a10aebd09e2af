"""The extension's TypeScript unit tests (`npm run test:unit`: tsc, esbuild, `node --test`), from pytest.

They exercise logic that needs no VS Code, e.g. attaching to a notebook's kernel through a fake Jupyter
extension API (extension/test/*.test.ts). Needs node and the npm dependencies (`make editors`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_typescript_unit_tests_pass():
    missing = [what for what, ok in [("node", shutil.which("node")), ("npm", shutil.which("npm")),
                                     ("node_modules (npm ci)", (REPO / "node_modules" / ".bin" / "esbuild").exists())]
               if not ok]
    if missing:
        reason = f"TypeScript unit tests need {', '.join(missing)}; install with `make editors`."
        if os.environ.get("TLENS_REQUIRE_EDITORS"):
            pytest.fail(reason + " (TLENS_REQUIRE_EDITORS is set)", pytrace=False)
        pytest.skip(reason)
    run = subprocess.run(["npm", "run", "--silent", "test:unit"], cwd=REPO, capture_output=True, text=True, timeout=180)
    out = run.stdout + run.stderr
    assert run.returncode == 0, f"npm run test:unit failed:\n{out[-6000:]}"
    passed = re.search(r"^# pass (\d+)$", out, re.M)
    failed = re.search(r"^# fail (\d+)$", out, re.M)
    assert passed and failed, f"no node --test summary in:\n{out[-3000:]}"
    assert int(failed.group(1)) == 0 and int(passed.group(1)) >= 10, out[-3000:]
