"""sweeps/history.py: the runs of an experiment, the pair to compare, the difference of two runs."""

from __future__ import annotations

import dataclasses

import pytest

from lsp_server.sweeps import history
from lsp_server.sweeps.spec import SweepResult


def result(values, kind="resid_pre", **extra) -> SweepResult:
    return SweepResult(kind=kind, values=values, row_labels=["L0", "L1"], col_labels=["a", "b"], metric="logit diff",
                       clean_value=1.0, corrupted_value=0.0, normalized=True, partial=False, cells_done=4, cells_total=4,
                       elapsed_s=1.0, backend="bridge", tl_version="4.3", device="cpu", **extra)


def saved(tmp_path, name, r: SweepResult, file="nb.ipynb", experiment="exp") -> history.Run:
    path = tmp_path / f"{name}.json"
    path.write_text(r.to_json())
    return history.record(tmp_path, file, experiment, r, path, tmp_path / f"{name}.png", "L0 a = 1")


def test_runs_of_one_experiment_and_the_previous_of_the_same_kind_and_shape(tmp_path):
    a = saved(tmp_path, "a", result([[1.0, 2.0], [3.0, 4.0]]))
    saved(tmp_path, "other", result([[0.0, 0.0], [0.0, 0.0]]), experiment="another")
    b = saved(tmp_path, "b", result([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]))  # another shape
    assert history.previous_pair(history.runs_of(tmp_path, "nb.ipynb", "exp")) is None
    c = saved(tmp_path, "c", result([[2.0, 2.0], [3.0, None]]))
    runs = history.runs_of(tmp_path, "nb.ipynb", "exp")
    assert [r.json_path for r in runs] == [a.json_path, b.json_path, c.json_path]
    assert history.previous_pair(runs) == (a, c)
    (tmp_path / "a.json").unlink()  # numbers deleted: the run is gone from the list
    assert [r.json_path for r in history.runs_of(tmp_path, "nb.ipynb", "exp")] == [b.json_path, c.json_path]
    with (tmp_path / history.INDEX).open("a") as f:
        f.write('{"file": "nb.ipynb", "cut')  # a line cut by a crash is skipped
    assert len(history.runs_of(tmp_path, "nb.ipynb", "exp")) == 2


def test_difference_cell_by_cell():
    new, old = result([[2.0, 2.0], [3.0, None]]), result([[1.0, 2.5], [3.0, 1.0]])
    diff = history.difference(new, old)
    assert diff.values == [[1.0, -0.5], [0.0, None]]
    assert diff.metric == "Δ (m − corrupted) / (clean − corrupted)" and diff.value_label == diff.metric
    assert diff.row_labels == new.row_labels and "latest run − previous run" in diff.notes[-1]
    heads = history.difference(result([[1.0]], kind="heads", head_values=[[1.0]]),
                               result([[0.5]], kind="heads", head_values=[[0.25]]))
    assert heads.head_values == [[0.75]]
    with pytest.raises(ValueError, match="differ in kind or shape"):
        history.difference(new, dataclasses.replace(old, kind="attn_out"))
    with pytest.raises(ValueError, match="differ in kind or shape"):
        history.difference(new, result([[1.0, 2.0, 3.0]]))
