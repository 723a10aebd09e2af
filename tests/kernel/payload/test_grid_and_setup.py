"""payload/sweep_grid.py (cells and grids) and payload/setup_code.py (the file's setup code, step by step)."""

from __future__ import annotations

import linecache
import math

import pytest

from .installed import answer

L, P, H = 3, 4, 2


@pytest.mark.parametrize("kind", ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "heads",
                                  "heads_by_pos", "block"])
def test_the_cells_of_a_kind_fill_its_grid_once(tlens, kind):
    cells = tlens._grid_cells(kind, L, P, H)
    shape = tlens._grid_shape(kind, L, P, H)
    assert sorted(c.flat for c in cells) == list(range(math.prod(shape)))
    hooks = {tlens._site_hook_name(c.site, c.layer).split(".", 2)[2] for c in cells}
    assert hooks == {("attn.hook_z" if s == "z" else f"hook_{s}") for s in tlens._site_names(kind)}


def test_grid_shapes_and_where_a_cell_enters(tlens):
    assert tlens._grid_shape("heads_by_pos", L, P, H) == [L, P, H]
    assert tlens._grid_shape("attribution", L, P, H) == [3, L, P]
    assert tlens._grid_cells("attribution", L, P, H) == []  # attribution runs no cells
    assert tlens._site_names("attribution") == ["resid_pre", "attn_out", "mlp_out", "z"]
    post = tlens._Cell(0, 1, "resid_post", 0, None, L)
    pre = tlens._Cell(0, 1, "resid_pre", 0, None, L)
    assert (post.entry, post.work, pre.entry, pre.work) == (2, 2, 1, 3)  # resid_post(1) is the input of block 2
    head = tlens._grid_cells("heads_by_pos", L, P, H)[-1]
    assert (head.flat, head.layer, head.pos, head.head, head.site) == (L * P * H - 1, L - 1, P - 1, H - 1, "z")


def test_setup_runs_lines_of_a_registered_file_in_the_user_namespace(tlens, user_ns):
    text = "from __future__ import annotations\nx = 2\nprint('x is', x)\ndef f(a: Undefined) -> int:\n    return a\n"
    assert answer(tlens, "setup_begin", files={"ioi.ipynb, cell 1": text})["value"] is True
    assert answer(tlens, "setup_step", file="ioi.ipynb, cell 1", first_line=1, last_line=1)["ok"]
    assert answer(tlens, "setup_step", file="ioi.ipynb, cell 1", first_line=2, last_line=3)["value"] == {"stdout": "x is 2\n"}
    # the __future__ import of line 1 still holds for line 4: the annotation is never evaluated
    assert answer(tlens, "setup_step", file="ioi.ipynb, cell 1", first_line=4, last_line=5)["ok"]
    assert user_ns["x"] == 2 and user_ns["f"].__code__.co_filename == "ioi.ipynb, cell 1"
    assert linecache.getline("ioi.ipynb, cell 1", 2) == "x = 2\n"


def test_a_failing_step_names_the_users_line_with_a_traceback_of_user_frames(tlens):
    text = "def g():\n    return 1 / 0\n\nprint('before')\ng()\n"
    answer(tlens, "setup_begin", files={"setup.py": text})
    answer(tlens, "setup_step", file="setup.py", first_line=1, last_line=2)
    out = answer(tlens, "setup_step", file="setup.py", first_line=4, last_line=5)
    assert (out["code"], out["error"]) == ("setup-failed", "ZeroDivisionError: division by zero")
    details = out["details"]
    assert (details["file"], details["line"], details["stdout"]) == ("setup.py", 2, "before\n")
    assert details["traceback"].startswith("Traceback") and "tlens-payload" not in details["traceback"]
    assert 'File "setup.py", line 5' in details["traceback"] and "return 1 / 0" in details["traceback"]


def test_setup_errors_before_a_step_runs(tlens):
    answer(tlens, "setup_begin", files={"a.py": "x = (\n"})
    out = answer(tlens, "setup_step", file="a.py", first_line=1, last_line=1)
    assert out["code"] == "setup-failed" and out["details"]["file"] == "a.py" and out["details"]["line"] == 1
    out = answer(tlens, "setup_step", file="b.py", first_line=1, last_line=1)
    assert out["code"] == "bad-call" and "setup file 'b.py' was not registered" in out["error"]


def test_a_new_setup_forgets_the_old_files(tlens):
    answer(tlens, "setup_begin", files={"old.py": "x = 1\n"})
    answer(tlens, "setup_begin", files={"new.py": "y = 1\n"})
    assert answer(tlens, "setup_step", file="old.py", first_line=1, last_line=1)["code"] == "bad-call"
    assert linecache.getline("old.py", 1) == ""
