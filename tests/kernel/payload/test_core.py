"""payload/core.py: the call/take protocol, in-process (no kernel)."""

from __future__ import annotations

import json
import warnings

from .installed import answer


def _register(tlens, name, fn):
    tlens._API[name] = fn
    return name


def test_a_value_comes_back_as_json_once(tlens):
    name = _register(tlens, "echo", lambda x: {"got": x})
    tlens.call(name, json.dumps({"x": [1, 2]}))
    assert json.loads(tlens.take()) == {"ok": True, "value": {"got": [1, 2]}}
    assert tlens.take() is None  # read once


def test_a_tlens_error_keeps_its_code_and_details(tlens):
    def refuse():
        raise tlens.TlensError("missing-variables", "not defined: x", names=["x"])

    out = answer(tlens, _register(tlens, "refuse", refuse))
    assert out == {"ok": False, "code": "missing-variables", "error": "not defined: x", "details": {"names": ["x"]}}


def test_an_unknown_function_is_a_bad_call(tlens):
    out = answer(tlens, "no_such_function")
    assert (out["ok"], out["code"], out["error"]) == (False, "bad-call", "unknown payload function 'no_such_function'")


def test_any_other_exception_comes_back_with_its_traceback(tlens):
    out = answer(tlens, _register(tlens, "divide", lambda: 1 / 0))
    assert out["code"] == "exception" and out["error"] == "ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in out["traceback"] and '<tlens-payload/core.py>' in out["traceback"]


def test_prints_and_warnings_stay_out_of_the_notebook(tlens, capsys):
    def noisy():
        print("to stdout")
        warnings.warn("deprecated thing")
        return 1

    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        out = answer(tlens, _register(tlens, "noisy", noisy))
    assert out["value"] == 1 and out["log"] == "to stdout" and out["warnings"] == ["deprecated thing"]
    assert capsys.readouterr().out == "" and not outside


def test_json_has_no_nan_and_takes_tensors_and_objects(tlens):
    import torch

    assert tlens._finite(float("nan")) is None and tlens._finite(float("-inf")) is None and tlens._finite(2) == 2.0
    class Thing:
        def __str__(self):
            return "a thing"

    out = answer(tlens, _register(tlens, "odd", lambda: {"t": torch.tensor([1.5, 2.0]), "o": Thing()}))
    assert out["value"] == {"t": [1.5, 2.0], "o": "a thing"}


def test_the_user_namespace_is_the_bound_one(tlens, user_ns):
    assert tlens._user_ns() is user_ns
    tlens._bind(None)
    assert tlens._user_ns() == {}
