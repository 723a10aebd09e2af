"""SweepSpec validation and SweepResult serialisation (no kernel)."""

from __future__ import annotations

import json
import re

import pytest

from lsp_server.kernel.payload import install_code, payload_source
from lsp_server.kernel.payload import sweep_grid
from lsp_server.sweeps.errors import SweepError
from lsp_server.sweeps.spec import KINDS, SweepResult, SweepSpec


def test_unknown_kind():
    with pytest.raises(SweepError, match="unknown sweep kind 'resid'"):
        SweepSpec(model="m", clean="a", corrupted="b", kind="resid", metric="f").validate()


def test_unparsable_expression_names_the_field():
    with pytest.raises(SweepError, match=re.escape("`clean` = 'x +' is not a Python expression")):
        SweepSpec(model="m", clean="x +", corrupted="b", metric="f").validate()


@pytest.mark.parametrize(
    "kwargs", [{}, {"metric": "f", "answer": "a", "wrong": "b"}, {"answer": "a"}], ids=["neither", "both", "half"]
)
def test_metric_must_be_one_form(kwargs):
    with pytest.raises(SweepError, match="metric|answer"):
        SweepSpec(model="m", clean="a", corrupted="b", **kwargs).validate()


def test_spec_roundtrip_and_unknown_fields():
    spec = SweepSpec(model="m", clean="a", corrupted="b", kind="heads", answer="x", wrong="y", normalize=True)
    assert SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(SweepError, match="unknown SweepSpec field"):
        SweepSpec.from_dict({**spec.to_dict(), "layers": 3})


def test_kinds_agree_with_the_payload():
    assert tuple(KINDS) == tuple(sweep_grid.KINDS)


def test_result_json_roundtrip():
    r = SweepResult(kind="resid_pre", values=[[1.0, None]], row_labels=["L0"], col_labels=["a", " b"],
                    metric="m", clean_value=1.0, corrupted_value=0.0, normalized=True, partial=True,
                    cells_done=1, cells_total=2, elapsed_s=0.1, backend="HookedTransformer",
                    tl_version="2.18.0", device="cpu")
    again = SweepResult.from_dict(json.loads(r.to_json()))
    assert again == r and again.value_label.startswith("(m")


def test_payload_is_self_contained():
    # The payload runs in a foreign interpreter: stdlib at import time, nothing from lsp_server.
    src = payload_source()
    top_imports = re.findall(r"^(?:import|from) (\w+)", src, flags=re.M)
    assert set(top_imports) <= {"ast", "builtins", "contextlib", "io", "json", "math", "sys", "time",
                                "traceback", "warnings"}
    assert not re.search(r"^\s*(import|from) lsp_server", src, flags=re.M)


def test_install_code_defines_only_tlens():
    ns: dict = {}
    exec(install_code(), ns)
    assert set(ns) - {"__builtins__"} == {"__tlens__"}
    assert ns["__tlens__"].PAYLOAD_API == 1
