"""The command line: check (text and JSON, scripts and notebooks), hover, serve's argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CLI = [sys.executable, "-m", "lsp_server"]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), cwd=cwd, capture_output=True, text=True, timeout=120)


def test_check_json_on_examples():
    out = run("check", "examples/hooked_transformer/logit_lens.py", "--format", "json")
    rows = json.loads(out.stdout)
    assert out.returncode == 1  # errors present
    keys = {"path", "line", "col", "end_line", "end_col", "severity", "code", "message"}
    assert all(set(r) == keys for r in rows)
    layer = next(r for r in rows if r["code"] == "layer-out-of-range")
    assert (layer["line"], layer["severity"]) == (25, "error")
    assert "6 layers" in layer["message"]


def test_check_notebook_reports_cells(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# title"]},
            {"cell_type": "code", "source": ["%pip install transformer_lens\n", "from transformer_lens import HookedTransformer\n",
                                             "model = HookedTransformer.from_pretrained('gpt2')\n"]},
            {"cell_type": "code", "source": "_, cache = model.run_with_cache('hi')\nx = cache['blocks.0.hook_resid_pree']"},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path = tmp_path / "exp.ipynb"
    path.write_text(json.dumps(nb))
    out = run("check", str(path), "--tl-version", "2.18")
    assert f"{path}, cell 3:2:" in out.stdout and "[unknown-hook]" in out.stdout
    # JSON: the real path (a tool can open it), the cell as editors number it, the line within the cell.
    (row,) = [r for r in json.loads(run("check", str(path), "--tl-version", "2.18", "--format", "json").stdout)
              if r["code"] == "unknown-hook"]
    assert (row["path"], row["cell"], row["line"]) == (str(path), 3, 2)
    github = run("check", str(path), "--tl-version", "2.18", "--format", "github").stdout
    assert f"::error file={path},line=2," in github and "title=tlens [unknown-hook]::cell 3, line 2: " in github


def test_tl_version_decides_what_check_reports():
    on_4 = json.loads(run("check", "examples/hooked_transformer/logit_lens.py", "--format", "json", "--tl-version", "4.3").stdout)
    on_2 = json.loads(run("check", "examples/hooked_transformer/logit_lens.py", "--format", "json", "--tl-version", "2.18").stdout)
    assert any(r["code"] == "removed-api" for r in on_4) and not any(r["code"] == "removed-api" for r in on_2)


def test_check_bad_notebook_is_a_clear_error_and_wins_over_findings(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    out = run("check", str(path), "examples/hooked_transformer/logit_lens.py")
    assert out.returncode == 2 and "not a valid notebook" in out.stderr
    assert "[layer-out-of-range]" in out.stdout  # the readable file is still checked


def test_hover_prints_markdown():
    line = next(i for i, l in enumerate((ROOT / "examples/hooked_transformer/ioi_patching.py").read_text().splitlines(), 1) if 'cache["resid_post", 5]' in l)
    out = run("hover", f"examples/hooked_transformer/ioi_patching.py:{line}:30")
    assert out.returncode == 0
    assert out.stdout.startswith("`blocks.5.hook_resid_post` · `[batch, pos, d_model]` = `[batch, pos, 768]`")


def test_hover_usage_error():
    out = run("hover", "examples/hooked_transformer/ioi_patching.py")
    assert out.returncode == 2 and "PATH:LINE:COL" in out.stderr


def test_serve_accepts_stdio_flag_and_exits_on_eof():
    out = subprocess.run(CLI + ["serve", "--stdio"], input="", capture_output=True, text=True, timeout=30)
    assert out.returncode == 0


def test_check_uses_the_version_the_project_declares(tmp_path):
    code = "from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained('gpt2')\n"
    (tmp_path / "exp.py").write_text(code)
    on_4 = json.loads(run("check", "exp.py", "--format", "json", cwd=tmp_path).stdout)
    assert [r["code"] for r in on_4] == ["removed-api"]  # the server's own TransformerLens 4
    assert "The code targets TransformerLens 4." in on_4[0]["message"]
    (tmp_path / "requirements.txt").write_text("torch\ntransformer-lens>=2.16,<3\n")
    assert json.loads(run("check", "exp.py", "--format", "json", cwd=tmp_path).stdout) == []


def test_select_ignore_and_the_projects_severities(tmp_path):
    code = ("from transformer_lens import HookedTransformer\nmodel = HookedTransformer.from_pretrained('gpt2')\n"
            "_, cache = model.run_with_cache('hi')\nx = cache['blocks.0.hook_resid_pree']\ny = cache['resid_post', 12]\n")
    (tmp_path / "exp.py").write_text(code)
    (tmp_path / "requirements.txt").write_text("transformer-lens==2.18.0\n")

    def codes(*extra: str) -> list[str]:
        out = run("check", "exp.py", "--format", "json", *extra, cwd=tmp_path)
        return sorted(r["code"] for r in json.loads(out.stdout))

    assert codes() == ["layer-out-of-range", "unknown-hook"]
    assert codes("--select", "unknown-hook") == ["unknown-hook"]
    assert codes("--ignore", "unknown-hook,layer-out-of-range") == []
    assert "unknown code(s) nonsense" in run("check", "exp.py", "--select", "nonsense", cwd=tmp_path).stderr
    (tmp_path / "pyproject.toml").write_text('[tool.tlens.diagnostics.severity]\n"layer-out-of-range" = "off"\n"unknown-hook" = "warning"\n')
    out = run("check", "exp.py", "--format", "json", cwd=tmp_path)
    assert [(r["code"], r["severity"]) for r in json.loads(out.stdout)] == [("unknown-hook", "warning")]
    assert out.returncode == 0  # no error left


def test_sweep_kernels_must_be_a_positive_count():
    out = run("sweep", "examples/tiny_patching.py:56", "--kernels", "0", "--out", "x.png")
    assert out.returncode == 2 and "--kernels: expected a whole number from 1 to 64, got '0'" in out.stderr


@pytest.mark.kernel
@pytest.mark.slow
def test_sweep_over_two_kernels(tmp_path):
    (tmp_path / "tiny_patching.py").write_text((ROOT / "examples" / "tiny_patching.py").read_text())
    out = subprocess.run(CLI + ["sweep", "tiny_patching.py:56", "--kernels", "2", "--out", "out.png"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=240, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("complete: 60/60 cells") and "note: ran on 2 kernels" in out.stdout
    assert "starting 1 more kernel" in out.stderr and "in 2 kernels first" in out.stderr
    data = json.loads(Path(out.stdout.split("numbers: ")[1].split("\n")[0]).read_text())
    assert [k["kernel"] for k in data["kernels"]] == [1, 2] and data["missing_cells"] == []
    assert sum(k["cells"] for k in data["kernels"]) <= 60 and all(v is not None for row in data["values"] for v in row)
