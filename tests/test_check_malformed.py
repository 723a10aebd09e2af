"""``check`` on malformed and huge notebooks: a clear error per file it cannot read, the other files still
checked and reported, exit code 2 when any file could not be read (it wins over 1)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsp_server.files import ipynb_line, notebook_code_cells

CLI = [sys.executable, "-m", "lsp_server"]
CODE = ["from transformer_lens import HookedTransformer\n", "model = HookedTransformer.from_pretrained('gpt2')\n",
        "_, cache = model.run_with_cache('hi')\n", "x = cache['blocks.0.hook_resid_pree']\n"]


def notebook(*cells: dict, **extra) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5, **extra}


def code(source, **extra) -> dict:
    return {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": source, **extra}


def check(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["check", ".", "--tl-version", "2.18", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


UNREADABLE = {
    "truncated.ipynb": (json.dumps(notebook(code(CODE)), indent=1)[:150], "not a valid notebook (JSON error at line"),
    "empty.ipynb": ("", "not a valid notebook (JSON error at line 1"),
    "a_list.ipynb": ("[1, 2]", "not a valid notebook (the JSON is list, not an object)"),
    "cells_not_a_list.ipynb": ('{"cells": {"a": 1}}', "not a valid notebook (`cells` is not a list)"),
    "cell_not_an_object.ipynb": ('{"cells": ["print(1)"]}', "not a valid notebook (cell 1 is not an object)"),
    "source_of_numbers.ipynb": (json.dumps(notebook(code([1, None]))), "cell 1: the source is neither text nor a list of lines"),
    "nested.ipynb": ("[" * 100_000, "not a valid notebook (JSON nested too deeply)"),
    "latin1.ipynb": (b'{"cells": []}\xff', "can't decode byte 0xff"),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_notebook_is_a_clear_error_and_the_rest_is_checked(tmp_path, name):
    content, why = UNREADABLE[name]
    (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "good.py").write_text("".join(CODE))
    out = check(tmp_path)
    assert out.returncode == 2, out.stderr  # wins over the finding's 1
    assert f"{name}: cannot read: " in out.stderr and why in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert "good.py:4:" in out.stdout and "[unknown-hook]" in out.stdout


def test_every_unreadable_file_is_named_once(tmp_path):
    for name, (content, _) in UNREADABLE.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "good.ipynb").write_text(json.dumps(notebook(code(CODE))))
    out = check(tmp_path, "--format", "json")
    assert out.returncode == 2
    assert sorted(line.split(": cannot read:")[0] for line in out.stderr.splitlines() if ": cannot read:" in line) == sorted(UNREADABLE)
    assert [(r["path"], r["cell"], r["code"]) for r in json.loads(out.stdout)] == [("good.ipynb", 1, "unknown-hook")]


def test_odd_but_readable_notebooks_are_checked(tmp_path):
    """nbformat 3 (code in worksheets' ``input``), a cell without ``source``, outputs that are not text."""
    nb3 = {"worksheets": [{"cells": [{"cell_type": "markdown", "source": "# v3"},
                                     {"cell_type": "code", "input": CODE, "language": "python", "outputs": []}]}],
           "metadata": {}, "nbformat": 3, "nbformat_minor": 0}
    (tmp_path / "v3.ipynb").write_text(json.dumps(nb3, indent=1))
    no_source = notebook({"cell_type": "code", "metadata": {}, "outputs": []}, code(CODE))
    (tmp_path / "no_source.ipynb").write_text(json.dumps(no_source))
    outputs = [{"output_type": "stream", "name": "stdout", "text": 5},
               {"output_type": "display_data", "data": {"image/png": None, "text/plain": [1, 2]}, "metadata": {}},
               {"output_type": "execute_result", "data": 7}]
    (tmp_path / "odd_outputs.ipynb").write_text(json.dumps(notebook(code(CODE, outputs=outputs))))
    out = check(tmp_path, "--format", "json")
    assert out.returncode == 1 and not out.stderr.strip(), out.stderr
    found = sorted((r["path"], r["cell"], r["line"], r["code"]) for r in json.loads(out.stdout))
    assert found == [("no_source.ipynb", 2, 4, "unknown-hook"), ("odd_outputs.ipynb", 1, 4, "unknown-hook"),
                     ("v3.ipynb", 2, 4, "unknown-hook")]
    # SARIF regions index the notebook's own text: the JSON line that holds the cell's line 4.
    text = (tmp_path / "v3.ipynb").read_text()
    assert "hook_resid_pree" in text.splitlines()[ipynb_line(text, 2, 4) - 1]


@pytest.mark.slow
def test_a_50_mb_notebook_of_images(tmp_path):
    image = base64.b64encode(os.urandom(1_000_000)).decode()  # 1.3 MB of PNG-like base64 per output
    outputs = [{"output_type": "display_data", "metadata": {}, "data": {"image/png": image, "text/plain": ["<Figure>"]}}]
    cells = [code(["plt.imshow(x)\n"], outputs=outputs) for _ in range(38)] + [code(CODE)]
    path = tmp_path / "big.ipynb"
    path.write_text(json.dumps(notebook(*cells), indent=1))
    assert path.stat().st_size > 50_000_000
    start = time.perf_counter()
    out = check(tmp_path, "--format", "sarif")
    elapsed = time.perf_counter() - start
    assert out.returncode == 1, out.stderr
    (result,) = json.loads(out.stdout)["runs"][0]["results"]
    assert result["properties"]["cell"] == 39 and result["properties"]["cellLine"] == 4
    assert elapsed < 60, f"{elapsed:.1f} s"


def test_notebook_code_cells_reads_v3_and_v4():
    v4 = json.dumps(notebook({"cell_type": "markdown", "source": "x"}, code(CODE)))
    assert notebook_code_cells(v4) == [(2, "".join(CODE))]
    v3 = json.dumps({"worksheets": [{"cells": [code("a"), {"cell_type": "code", "input": "b = 1"}]}], "nbformat": 3})
    assert notebook_code_cells(v3) == [(1, ""), (2, "b = 1")]
